"""The GPU fast path: one preallocated static KV cache and a compiled decode step.

gpt-fast's recipe for batch-1 decoding, which is bound by memory bandwidth
and, in eager PyTorch, by the launch overhead of hundreds of small kernels
per token: keys/values live in a `StaticCache` of fixed shape, so the
one-token decode step has fixed shapes too, and `torch.compile` with
"reduce-overhead" replays it as a CUDA graph. The prefill (varying length)
runs eagerly over the same cache.

Prefix reuse comes for free: the cache is written at explicit positions and
attention is masked to the positions fed so far, so reusing a prefix of `n`
tokens is writing the next token at position `n`; what lies beyond is
overwritten before it is read. There is one buffer, so one cache entry.

Compilation is tried on the first decode; if it fails the step runs eagerly
(logged once), so a missing compiler costs speed, never a completion. On a
CPU the path works uncompiled (tests use that).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from code_llama_ls.engine.greedy import FailureHandler

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, StaticCache

log = logging.getLogger(__name__)

R = TypeVar("R")

MAX_STATIC_TOKENS = 16384
"""The static cache's length: Code Llama's trained context (8 GiB of fp16 KV for 7B)."""


class StaticKvModel:
    """Forward steps over a single `StaticCache`, the one-token step compiled where it can be."""

    def __init__(
        self,
        model: PreTrainedModel,
        context_length: int,
        on_failure: FailureHandler,
        *,
        compile_decode: bool | None = None,
    ) -> None:
        """`compile_decode` (default: on CUDA) compiles the decode step on its first use."""
        self._model = model
        self._on_failure = on_failure
        self.max_length = min(context_length, MAX_STATIC_TOKENS)
        self._cache: StaticCache | None = None
        self._compile = model.device.type == "cuda" if compile_decode is None else compile_decode
        self._step: Callable[..., Any] | None = None

    def empty_cache(self) -> StaticCache:
        """The one static cache (its old contents are masked, then overwritten)."""
        if self._cache is None:
            from transformers import StaticCache

            self._cache = StaticCache(config=self._model.config, max_cache_len=self.max_length)
        return self._cache

    def crop(self, cache: StaticCache, length: int) -> StaticCache:
        """Nothing to do: positions from `length` on are rewritten before they are attended to."""
        del length
        return cache

    def forward(self, cache: StaticCache, ids: list[int], start: int) -> tuple[StaticCache, int]:
        """Write `ids` at positions start.. and return the greedy next id."""

        def step(input_ids: torch.Tensor, positions: torch.Tensor) -> int:
            if len(ids) == 1:
                next_id = self._decode_step()(input_ids, positions, cache)
            else:
                next_id = _greedy_step(self._model, input_ids, positions, cache)
            return int(next_id.item())

        return cache, self._run(ids, start, step)

    def logits(
        self, cache: StaticCache, ids: list[int], start: int
    ) -> tuple[StaticCache, torch.Tensor]:
        """Write `ids` at positions start..; the cache and the last position's logits ([vocab]).

        Eager, also for one id: the compiled step returns only the argmax.
        """

        def step(input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
            return _last_logits(self._model, input_ids, positions, cache)

        return cache, self._run(ids, start, step)

    def _run(
        self, ids: list[int], start: int, step: Callable[[torch.Tensor, torch.Tensor], R]
    ) -> R:
        """`step(input_ids, positions)` for `ids` at start.., in inference mode; failures mapped."""
        import torch

        try:
            with torch.inference_mode():
                device = self._model.device
                input_ids = torch.tensor([ids], dtype=torch.long, device=device)  # [1, T]
                positions = torch.arange(start, start + len(ids), device=device)  # [T]
                return step(input_ids, positions)
        except BaseException as exc:
            failure = self._on_failure(exc, start + len(ids))
            if failure is exc:
                raise
            raise failure from exc

    def _decode_step(self) -> Callable[..., Any]:
        """The one-token step: compiled on first use where asked, else eager."""
        if self._step is None:
            self._step = _eager_step(self._model)
            if self._compile:
                self._step = _compiled_or_eager(self._model)
        return self._step


def _greedy_step(
    model: PreTrainedModel, input_ids: torch.Tensor, positions: torch.Tensor, cache: StaticCache
) -> torch.Tensor:
    """The argmax of the last position's logits after feeding `input_ids` ([1, T])."""
    return _last_logits(model, input_ids, positions, cache).argmax()


def _last_logits(
    model: PreTrainedModel, input_ids: torch.Tensor, positions: torch.Tensor, cache: StaticCache
) -> torch.Tensor:
    """The last position's logits ([vocab]) after feeding `input_ids` ([1, T])."""
    out = model(
        input_ids=input_ids,
        past_key_values=cache,
        use_cache=True,
        cache_position=positions,
        logits_to_keep=1,
    )
    logits: torch.Tensor = out.logits[0, -1]  # [vocab]
    return logits


def _eager_step(model: PreTrainedModel) -> Callable[..., Any]:
    def step(input_ids: torch.Tensor, positions: torch.Tensor, cache: StaticCache) -> Any:
        return _greedy_step(model, input_ids, positions, cache)

    return step


def _compiled_or_eager(model: PreTrainedModel) -> Callable[..., Any]:
    """The decode step compiled as a CUDA graph, falling back to eager if compiling fails."""
    import torch

    compiled = torch.compile(
        _eager_step(model), mode="reduce-overhead", fullgraph=True, dynamic=False
    )
    eager = _eager_step(model)
    failed = False

    def step(input_ids: torch.Tensor, positions: torch.Tensor, cache: StaticCache) -> Any:
        nonlocal failed
        if not failed:
            try:
                # A CUDA graph's output is overwritten by its next replay: copy it out.
                return compiled(input_ids, positions, cache).clone()
            except Exception as exc:  # a missing compiler or an unsupported op
                failed = True
                log.warning("decode step not compiled (%s): running it eagerly", exc)
        return eager(input_ids, positions, cache)

    return step
