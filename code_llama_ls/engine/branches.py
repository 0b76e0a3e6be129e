"""Alternative suggestions as one batch: torch decodes every branch in the same forward passes.

Each branch is the prompt, one forced first token, then greedy decoding:
exactly what `Engine.generate(prompt + [first])` gives, but the branches
share each step. The prompt's keys/values (from the engine's kept cache,
dynamic or static) are copied once into a batched `DynamicCache`; a
branch that ends (a stop id, a stop string, its `on_text` saying enough,
its length) leaves the batch, so the others' steps get cheaper. On a GPU a
step of a few rows costs about what one row does; on a CPU less than that
many steps. The copy reads transformers' cache layers (`cache.layers[i].keys`
/ `.values`, transformers 4.56 and later): a cache without them raises
`BatchUnsupported`, and the engine writes the branches one by one instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from code_llama_ls.cancel import CancelToken
from code_llama_ls.engine.base import (
    FinishReason,
    Generation,
    GenerationParams,
    find_stop_string,
    stream_safe_text,
)
from code_llama_ls.tokens.tokenizer import TokenizerLike, decode_continuation

if TYPE_CHECKING:
    from transformers import DynamicCache, PreTrainedModel


class BatchUnsupported(Exception):
    """The kept cache cannot be copied into a batch (another cache layout)."""


def batched_prompt_cache(cache: Any, length: int, batch: int) -> DynamicCache:
    """A new cache holding the first `length` positions of `cache`, once per row of `batch`."""
    from transformers import DynamicCache

    layers = getattr(cache, "layers", None)
    if not layers or not all(hasattr(layer, "keys") for layer in layers):
        raise BatchUnsupported(f"{type(cache).__name__} has no cache layers to copy")
    pairs = [
        (
            layer.keys[:, :, :length].repeat(batch, 1, 1, 1),
            layer.values[:, :, :length].repeat(batch, 1, 1, 1),
        )
        for layer in layers
    ]
    return DynamicCache(pairs)


@dataclass
class _Branch:
    on_text: Callable[[str], bool] | None
    generated: list[int] = field(default_factory=list)
    text: str = ""
    finish: FinishReason = "length"
    done: bool = False


def decode_branches(
    model: PreTrainedModel,
    cache: DynamicCache,
    start: int,
    first_ids: Sequence[int],
    tokenizer: TokenizerLike,
    budget: int,
    params: GenerationParams,
    cancel: CancelToken,
    on_text_for: Callable[[int], Callable[[str], bool]] | None,
) -> list[Generation]:
    """Decode every branch from `cache` (the prompt, `start` positions, one row per branch).

    Row i is fed `first_ids[i]` at position `start`; each then goes on
    greedily for at most `budget` tokens, checked as `greedy_generate`
    checks one generation. The `Generation`s are those of `generate(prompt +
    [first_ids[i]])`: `prompt_tokens` counts the forced token, `cached_tokens`
    the prompt.
    """
    import torch

    began = time.perf_counter()
    branches = [_Branch(on_text_for(i) if on_text_for else None) for i in range(len(first_ids))]
    rows = list(range(len(branches)))  # the branch of each row of the batch
    feed = [int(i) for i in first_ids]
    position = start
    prefill_ms: float | None = None
    device = model.device
    with torch.inference_mode():
        while rows:
            out = model(
                input_ids=torch.tensor([[i] for i in feed], dtype=torch.long, device=device),
                past_key_values=cache,
                use_cache=True,
                cache_position=torch.tensor([position], device=device),
            )
            next_ids = out.logits[:, -1].argmax(-1).tolist()
            position += 1
            if prefill_ms is None:
                prefill_ms = (time.perf_counter() - began) * 1000
            keep = [
                r
                for r, next_id in enumerate(next_ids)
                if _step(branches[rows[r]], next_id, tokenizer, params, budget)
            ]
            if cancel.cancelled:
                for r in keep:
                    branches[rows[r]].finish = "cancelled"
                break
            if len(keep) < len(rows):
                if not keep:
                    break
                cache.batch_select_indices(torch.tensor(keep, device=device))
                rows = [rows[r] for r in keep]
            feed = [branches[b].generated[-1] for b in rows]
    decode_ms = (time.perf_counter() - began) * 1000 - (prefill_ms or 0.0)
    return [
        Generation(
            b.text, tuple(b.generated), b.finish, start + 1, start, prefill_ms or 0.0, decode_ms
        )
        for b in branches
    ]


def _step(
    branch: _Branch, next_id: int, tokenizer: TokenizerLike, params: GenerationParams, budget: int
) -> bool:
    """Take the branch's next token; whether it goes on."""
    if next_id in params.stop_ids:
        branch.finish = "stop"
        return False
    branch.generated.append(next_id)
    text = decode_continuation(tokenizer, branch.generated)
    cut = find_stop_string(text, params.stop_strings)
    if cut is not None:
        branch.text, branch.finish = text[:cut], "stop-string"
        return False
    branch.text = text
    if branch.on_text is not None:
        seen = stream_safe_text(text, params.stop_strings)
        if branch.on_text(seen):
            branch.text, branch.finish = seen, "callback"
            return False
    if len(branch.generated) >= budget:
        branch.finish = "length"
        return False
    return True
