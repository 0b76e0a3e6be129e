"""The completion pipeline: classify → build prompt → generate → post-process.

Plain data in, plain data out: a document snapshot and a cursor offset give
a `Completion`. Each stage is timed under one request id. Runs on the model
worker thread; knows nothing of LSP.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from code_llama_ls.documents import Snapshot
from code_llama_ls.engine.base import CancelToken, Engine, GenerationParams
from code_llama_ls.errors import PromptError
from code_llama_ls.postprocess import postprocess, should_stop
from code_llama_ls.prompt import FimMode, build_completion_prompt, normalize_newlines
from code_llama_ls.syntax.cursor import CompletionMode, classify_cursor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompletionOptions:
    """The settings one completion needs."""

    fim_mode: FimMode = FimMode.SPM
    max_new_tokens: int = 64
    context_tokens: int | None = None


@dataclass(frozen=True)
class Completion:
    """What to show at the cursor; empty text means nothing to suggest."""

    text: str
    mode: CompletionMode
    reason: str
    finish_reason: str = "none"
    prompt_tokens: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)


class _Stopwatch:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[f"{stage}_ms"] = round((now - self._last) * 1000, 2)
        self._last = now


def prompt_budget(engine: Engine, context_tokens: int | None, max_new_tokens: int) -> int:
    """Tokens the prompt may use: the context (configured or the model's) minus the answer."""
    context = min(context_tokens or engine.context_length, engine.context_length)
    budget = context - max_new_tokens
    if budget < 16:
        raise PromptError(
            f"a context of {context} tokens leaves no room for a prompt after "
            f"{max_new_tokens} new tokens: lower maxNewTokens or raise contextTokens"
        )
    return budget


def complete(
    engine: Engine,
    snapshot: Snapshot,
    offset: int,
    options: CompletionOptions,
    cancel: CancelToken,
    request_id: str = "-",
) -> Completion:
    """The completion at `offset` in `snapshot`, post-processed and ready to insert."""
    watch = _Stopwatch()
    if snapshot.too_large or snapshot.binary:
        kind = "too large" if snapshot.too_large else "binary"
        return Completion("", CompletionMode.NONE, f"document is {kind}")
    context = classify_cursor(snapshot.text, offset, snapshot.tree, snapshot.language)
    watch.lap("classify")
    if context.mode is CompletionMode.NONE:
        return Completion("", context.mode, context.reason, timings_ms=watch.timings)

    prefix = normalize_newlines(snapshot.text[:offset])
    suffix = normalize_newlines(snapshot.text[offset:])
    budget = prompt_budget(engine, options.context_tokens, options.max_new_tokens)
    prompt = build_completion_prompt(
        engine.tokenizer, prefix, suffix, fim_mode=options.fim_mode, budget=budget
    )
    watch.lap("prompt")

    generation = engine.generate(
        prompt.ids,
        GenerationParams(max_new_tokens=options.max_new_tokens, stop_ids=prompt.stop_ids),
        cancel,
        on_text=lambda text: should_stop(prompt.strip_healed(text), context),
    )
    watch.lap("generate")

    text = postprocess(prompt.strip_healed(generation.text), context, suffix)
    if snapshot.uses_crlf:
        text = text.replace("\n", "\r\n")
    watch.lap("postprocess")
    log.info(
        "completion %s %s v%d: %s (%s), %d prompt tokens (%d cached), %d new, %s, %s",
        request_id,
        snapshot.uri,
        snapshot.version,
        context.mode.value,
        context.reason,
        len(prompt.ids),
        generation.cached_tokens,
        len(generation.token_ids),
        generation.finish_reason,
        watch.timings,
    )
    return Completion(
        text,
        context.mode,
        context.reason,
        generation.finish_reason,
        len(prompt.ids),
        watch.timings,
    )
