"""The greedy decode loop every local backend shares: prefill, then one token at a time.

A backend (torch, ONNX Runtime) only supplies a `KvModel`: an empty cache,
cropping, and a forward step that appends keys/values and returns the next
token id. This loop does the rest the same way for all of them: prefix-KV
reuse through a `PrefixKvCache`, stop ids, stop strings, streaming through
`on_text`, cancellation between tokens, and the timings of a `Generation`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from code_llama_ls.engine.base import (
    CancelToken,
    FinishReason,
    Generation,
    GenerationParams,
    find_stop_string,
    stream_safe_text,
)
from code_llama_ls.engine.prefix_cache import PrefixKvCache
from code_llama_ls.tokens import TokenizerLike, decode_continuation

C = TypeVar("C")


class KvModel(Protocol[C]):
    """One model's forward step over a key/value cache of type C."""

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


def greedy_generate(
    model: KvModel[C],
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
