"""What every local backend shares: the greedy decode loop and the engine around it.

A backend (torch, ONNX Runtime) only supplies a `KvModel`: an empty cache,
cropping, and a forward step that appends keys/values and returns the next
token id (or the logits it is the argmax of). `greedy_generate` does the
rest the same way for all of them: prefix-KV reuse through a `PrefixKvCache`,
stop ids, stop strings, streaming through `on_text`, cancellation between
tokens, and the timings of a `Generation`. `KvEngine` is the `Engine` built
on it (prompt checks, the lock, the kept caches, warm-up, `prefill_logits`),
which each backend subclasses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar

from code_llama_ls.cancel import CancelToken
from code_llama_ls.engine.base import (
    BranchesOneByOne,
    FinishReason,
    Generation,
    GenerationParams,
    ServedModel,
    find_stop_string,
    stream_safe_text,
)
from code_llama_ls.engine.prefix_cache import (
    DEFAULT_BUDGET_MIB,
    MIB,
    PrefixCacheStats,
    PrefixCacheUsage,
    PrefixKvCache,
    SizeOf,
)
from code_llama_ls.errors import GenerationError
from code_llama_ls.tokens.tokenizer import TokenizerLike, decode_continuation

C = TypeVar("C")
L = TypeVar("L")
L_co = TypeVar("L_co", covariant=True)

EMPTY_PROMPT = "The prompt is empty: there is nothing to continue."

FailureHandler = Callable[[BaseException, int], BaseException]
"""Maps an exception from a forward pass (and the tokens fed) to the one to raise."""


class KvModel(Protocol[C, L_co]):
    """One model's forward step over a key/value cache of type C, with logits of type L_co."""

    def empty_cache(self) -> C:
        """A cache holding nothing."""
        ...

    def crop(self, cache: C, length: int) -> C:
        """`cache` keeping only its first `length` positions (may reuse `cache`)."""
        ...

    def forward(self, cache: C, ids: list[int], start: int) -> tuple[C, int]:
        """Feed `ids` at positions start.. after `cache`; the cache holding them and the argmax id.

        On failure the cache passed in is no longer usable (some layers may
        have appended); raise GenerationError.
        """
        ...

    def logits(self, cache: C, ids: list[int], start: int) -> tuple[C, L_co]:
        """Feed `ids` as `forward` does; the cache holding them and the last position's logits.

        The logits are [vocab], the backend's own array type; failures as in `forward`.
        """
        ...


def greedy_generate(
    model: KvModel[C, object],
    kept: PrefixKvCache[C],
    tokenizer: TokenizerLike,
    prompt: list[int],
    budget: int,
    params: GenerationParams,
    cancel: CancelToken,
    on_text: Callable[[str], bool] | None,
) -> Generation:
    """Greedy continuation of `prompt` (at most `budget` new tokens); see `Engine.generate`.

    The caller holds the model's lock. The cache of everything fed (prompt
    and generated tokens but the last) goes back to `kept`, also after a
    cancel or an error raised by `on_text`; after a failed forward it is dropped.
    """
    start = time.perf_counter()
    taken, reused = kept.take(prompt, model.crop)
    cache = model.empty_cache() if taken is None else taken
    cache, next_id = model.forward(cache, prompt[reused:], reused)
    fed = list(prompt)  # ids whose keys/values are in `cache`
    prefill_end = time.perf_counter()

    generated: list[int] = []
    text = ""
    finish: FinishReason = "length"
    while True:
        if next_id in params.stop_ids:
            finish = "stop"
            break
        generated.append(next_id)
        text = decode_continuation(tokenizer, generated)
        cut = find_stop_string(text, params.stop_strings)
        if cut is not None:
            text, finish = text[:cut], "stop-string"
            break
        if on_text is not None:
            seen = stream_safe_text(text, params.stop_strings)
            try:
                done = on_text(seen)
            except BaseException:
                kept.put(fed, cache)  # the caller's error: the cache is consistent, keep it
                raise
            if done:
                text, finish = seen, "callback"
                break
        if len(generated) >= budget:
            finish = "length"
            break
        if cancel.cancelled:
            finish = "cancelled"
            break
        # A failed forward raises here and the cache is dropped with it.
        cache, next_id = model.forward(cache, [next_id], len(fed))
        fed.append(generated[-1])
    kept.put(fed, cache)
    end = time.perf_counter()
    return Generation(
        text=text,
        token_ids=tuple(generated),
        finish_reason=finish,
        prompt_tokens=len(prompt),
        cached_tokens=reused,
        prefill_ms=(prefill_end - start) * 1000.0,
        decode_ms=(end - prefill_end) * 1000.0,
    )


class KvEngine(BranchesOneByOne, Generic[C, L]):
    """An `Engine` over a `KvModel`: greedy generation with kept prefix caches.

    Subclasses set the `Engine` attributes (name, device, dtype) and pass
    their `KvModel`, tokenizer and context length here.
    """

    def __init__(
        self,
        kv: KvModel[C, L],
        tokenizer: TokenizerLike,
        *,
        name: str,
        context_length: int,
        prefix_cache_entries: int,
        prefix_cache_bytes: int | None = DEFAULT_BUDGET_MIB * MIB,
        cache_size_of: SizeOf | None = None,
    ) -> None:
        """`prefix_cache_entries` caches are kept, at most that many contexts of tokens.

        `prefix_cache_bytes` bounds their memory (None: the count alone), as
        `cache_size_of` measures a cache (default: `cache_nbytes`, which
        knows numpy arrays and torch tensors).
        """
        self._kv = kv
        self.tokenizer = tokenizer
        self.name = name
        self.context_length = context_length
        self._kept: PrefixKvCache[C] = PrefixKvCache(
            prefix_cache_entries,
            max_tokens=prefix_cache_entries * context_length,
            max_bytes=prefix_cache_bytes,
            size_of=cache_size_of,
        )
        self._lock = threading.Lock()

    def generate(
        self,
        prompt_ids: Sequence[int],
        params: GenerationParams,
        cancel: CancelToken,
        on_text: Callable[[str], bool] | None = None,
    ) -> Generation:
        """Greedy continuation of `prompt_ids`; see `Engine` for the contract."""
        prompt = checked_prompt(prompt_ids, self.context_length, self.name)
        budget = min(params.max_new_tokens, self.context_length - len(prompt))
        with self._lock:
            if cancel.cancelled or budget == 0:
                finish: FinishReason = "cancelled" if cancel.cancelled else "length"
                return Generation("", (), finish, len(prompt), 0, 0.0, 0.0)
            return greedy_generate(
                self._kv, self._kept, self.tokenizer, prompt, budget, params, cancel, on_text
            )

    def prefill_logits(self, prompt_ids: Sequence[int]) -> L:
        """Next-token logits after `prompt_ids` ([vocab]), reusing a kept prefix.

        The prompt's cache is kept, as after a generation. No context check:
        for tests and benchmarks that compare logits, not for serving.
        """
        prompt = [int(i) for i in prompt_ids]
        if not prompt:
            raise GenerationError(EMPTY_PROMPT)
        return self._prompt_logits(prompt)

    def _prompt_logits(self, prompt: list[int]) -> L:
        """`prefill_logits` for a checked prompt, on any `KvModel`."""
        with self._lock:
            taken, reused = self._kept.take(prompt, self._kv.crop)
            cache = self._kv.empty_cache() if taken is None else taken
            cache, logits = self._kv.logits(cache, prompt[reused:], reused)
            self._kept.put(prompt, cache)
            return logits

    def next_token_choices(self, prompt_ids: Sequence[int], count: int) -> tuple[int, ...]:
        """The `count` likeliest first tokens after `prompt_ids` (see `Engine`)."""
        prompt = checked_prompt(prompt_ids, self.context_length, self.name)
        return top_ids(self._prompt_logits(prompt), count) if count > 0 else ()

    def connect(self) -> ServedModel | None:
        """None: the model runs in this process, there is nothing to connect to."""
        return None

    def reset_cache(self) -> None:
        """Forget the kept KV caches (frees their memory; the next prompt is prefilled in full)."""
        with self._lock:
            self._kept.clear()

    def prefix_cache_stats(self) -> PrefixCacheStats:
        """Lookups, hits and reused tokens of the prefix-KV cache so far."""
        return self._kept.stats()

    def prefix_cache_usage(self) -> PrefixCacheUsage:
        """Entries, tokens and bytes the prefix-KV cache holds now, and its bounds."""
        return self._kept.usage()

    def set_prefix_cache_budget(self, max_bytes: int | None) -> None:
        """Bound the kept caches by `max_bytes` (None: by count only); evicts at once."""
        self._kept.set_budget(max_bytes)

    def warm_up(self, prompt_tokens: int = 4) -> None:
        """Run one small generation (a prefill, then a single-token step), so the first
        request does not pay for kernel setup. A longer one (16 tokens, 4 steps) cost
        60 ms more at start for no faster first completion (benchmarks/footprint.py)."""
        ids = self.tokenizer.encode("def warm_up(value):\n    return value + 1\n")[:prompt_tokens]
        if ids:
            self.generate(ids, GenerationParams(2, frozenset()), CancelToken())
        self.reset_cache()


def top_ids(logits: object, count: int) -> tuple[int, ...]:
    """The ids of the `count` largest logits ([vocab]: a torch tensor or a numpy array), largest
    first."""
    topk = getattr(logits, "topk", None)
    if topk is not None:  # a torch tensor, on whichever device
        return tuple(int(i) for i in topk(count).indices.tolist())
    import numpy as np

    values = np.asarray(logits).reshape(-1)
    count = min(count, values.size)
    best = np.argpartition(-values, count - 1)[:count]
    return tuple(int(i) for i in best[np.argsort(-values[best], kind="stable")])


def checked_prompt(prompt_ids: Sequence[int], context_length: int, name: str) -> list[int]:
    """`prompt_ids` as a list of ints; GenerationError when empty or longer than the context."""
    prompt = [int(i) for i in prompt_ids]
    if not prompt:
        raise GenerationError(EMPTY_PROMPT)
    if len(prompt) >= context_length:
        raise GenerationError(
            f"The prompt has {len(prompt)} tokens but {name} holds "
            f"{context_length}: lower the context budget."
        )
    return prompt
