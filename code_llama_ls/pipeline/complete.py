"""The completion pipeline: classify → budget → context → local window → prompt → generate →
post-process.

Plain data in, plain data out: a `CompletionRequest` gives a `Completion`.
Each stage is timed under the request's id. Runs on the model worker
thread; knows nothing of LSP. `prepare_prompt` is the pipeline up to the
model, which the prompt inspector shows without generating.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from code_llama_ls.cancel import CancelToken
from code_llama_ls.context.builder import ContextBuilder, CursorRequest, PromptContext
from code_llama_ls.engine.base import Engine, GenerationParams
from code_llama_ls.errors import PromptError
from code_llama_ls.pipeline.alternatives import Branches
from code_llama_ls.pipeline.budget import ContextShare, prompt_budget
from code_llama_ls.pipeline.fim import FimTokens
from code_llama_ls.pipeline.finish import Finisher
from code_llama_ls.pipeline.local_window import window_cuts
from code_llama_ls.pipeline.postprocess import StopCheck
from code_llama_ls.pipeline.prompt import (
    LocalWindow,
    Prompt,
    PromptFormat,
    completion_overhead,
    fit_local,
    lay_out_completion,
    normalize_newlines,
)
from code_llama_ls.pipeline.reach import reach_end, reach_start
from code_llama_ls.pipeline.request import Completion, CompletionRequest
from code_llama_ls.pipeline.time_budget import TimeBudget
from code_llama_ls.syntax.cursor import (
    MAX_LINE_CHARS,
    MINIFIED_LINE,
    CompletionMode,
    CursorContext,
    classify_cursor,
)
from code_llama_ls.text.documents import Snapshot
from code_llama_ls.tokens.tokenizer import TokenizerLike, max_chars

log = logging.getLogger(__name__)


class _Stopwatch:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[f"{stage}_ms"] = round((now - self._last) * 1000, 2)
        self._last = now


@dataclass(frozen=True)
class PreparedPrompt:
    """Everything decided before the model runs."""

    cursor: CursorContext
    prompt: Prompt | None
    """None when nothing should be suggested here (see `cursor.reason`)."""
    context: PromptContext
    local: LocalWindow | None
    budget: int
    timings_ms: dict[str, float]


def prepare_prompt(
    request: CompletionRequest, engine: Engine, context: ContextBuilder | None = None
) -> PreparedPrompt:
    """Classify the cursor, gather context and build the prompt for `request`.

    `context`: the workspace's context builder; None for the file alone.
    """
    snapshot, offset, options = request.snapshot, request.offset, request.options
    watch = _Stopwatch()
    cursor = classify_cursor(snapshot.text, offset, snapshot.tree, snapshot.language)
    watch.lap("classify")
    if cursor.mode is CompletionMode.NONE:
        if cursor.reason == MINIFIED_LINE:  # rare and surprising: worth a line in the log
            log.info(
                "no completion in %s v%d: the cursor's line is minified code (over %d characters)",
                snapshot.uri,
                snapshot.version,
                MAX_LINE_CHARS,
            )
        return PreparedPrompt(cursor, None, PromptContext(), None, 0, watch.timings)
    budget = prompt_budget(engine, options.context_tokens, options.max_new_tokens)
    tok = engine.tokenizer
    available = budget - completion_overhead(tok)
    if available <= 0:
        raise PromptError(f"a prompt budget of {budget} tokens leaves no room for text")
    text, reach = snapshot.text, max_chars(tok, available)
    start, end = reach_start(text, offset, reach), reach_end(text, offset, reach)
    prefix = normalize_newlines(text[start:offset])
    suffix = normalize_newlines(text[offset:end])
    if context is None:
        local = fit_local(tok, prefix, suffix, available, cut=start > 0)
        gathered = PromptContext()
    else:
        window = _Window(prefix, suffix, start > 0)
        local, gathered = _with_context(tok, snapshot, offset, window, available, context)
        watch.timings.update(gathered.timings_ms)
    prompt = lay_out_completion(tok, local, fim_mode=options.fim_mode, context_ids=gathered.ids)
    if len(prompt.ids) > budget:  # cannot happen: every part was counted as it is laid out
        raise PromptError(f"internal error: prompt of {len(prompt.ids)} ids exceeds {budget}")
    watch.lap("prompt")
    return PreparedPrompt(cursor, prompt, gathered, local, budget, watch.timings)


@dataclass(frozen=True)
class _Window:
    """The text around the cursor that the prompt can reach (LF line breaks)."""

    prefix: str
    suffix: str
    cut: bool
    """Whether the document goes on before `prefix`."""


def _whole_text(snapshot: Snapshot, offset: int) -> tuple[str, int]:
    """The document with LF line breaks, and the cursor's offset in it (no copy without CR)."""
    text = snapshot.text
    if "\r" not in text:
        return text, offset
    prefix = normalize_newlines(text[:offset])
    return prefix + normalize_newlines(text[offset:]), len(prefix)


def _with_context(
    tok: TokenizerLike,
    snapshot: Snapshot,
    offset: int,
    window: _Window,
    available: int,
    builder: ContextBuilder,
) -> tuple[LocalWindow, PromptContext]:
    """The local window and the cross-file context, sharing the budget (`ContextShare`).

    The window is fitted, once, to what the context left, but never over a
    snippet of its own file that the context shows. Estimates are made on the
    whole document; `window` is its text that a prompt can reach.
    """
    text, cursor = _whole_text(snapshot, offset)
    cursor_row = text.count("\n", 0, cursor)
    share = ContextShare.of(text, cursor, cursor_row, available)
    request = CursorRequest(
        snapshot.uri, snapshot.language, snapshot.version, text, cursor, share.local_lines
    )
    fim = FimTokens.from_tokenizer(tok)
    frame = None if fim is None else fim.file_frame(tok, builder.repo_name)
    gathered = builder.build(tok, request, share.context_tokens, frame)
    path = builder.path_of(snapshot.uri)
    snap_start, snap_end = window_cuts(
        snapshot, offset, window.prefix, window.suffix, cursor_row, gathered, path
    )
    local = fit_local(
        tok,
        window.prefix,
        window.suffix,
        available - len(gathered.ids),
        continued=bool(gathered.ids),
        cut=window.cut,
        snap_start=snap_start,
        snap_end=snap_end,
    )
    return local, gathered


def complete(
    request: CompletionRequest,
    engine: Engine,
    cancel: CancelToken,
    *,
    context: ContextBuilder | None = None,
    on_text: Callable[[str], None] | None = None,
) -> Completion:
    """The completion `request` asks for, post-processed and ready to insert.

    `context`: the workspace's context builder; None for the file alone.
    `on_text` sees the generated text as it grows (before post-processing).
    """
    snapshot, options = request.snapshot, request.options
    if snapshot.too_large or snapshot.binary:
        kind = "too large" if snapshot.too_large else "binary"
        return Completion("", CompletionMode.NONE, f"document is {kind}")
    prepared = prepare_prompt(request, engine, context)
    cursor, prompt = prepared.cursor, prepared.prompt
    if prompt is None:
        return Completion("", cursor.mode, cursor.reason, timings_ms=prepared.timings_ms)
    if not prompt.ids:  # no BOS and no text fits (a blank line below a minified one)
        reason = "nothing before the cursor fits the prompt"
        return Completion("", cursor.mode, reason, timings_ms=prepared.timings_ms)
    watch = _Stopwatch()
    watch.timings.update(prepared.timings_ms)
    sees_suffix = prompt.format is not PromptFormat.LEFT_TO_RIGHT
    stop_check = StopCheck(cursor, sees_suffix=sees_suffix)
    budget = TimeBudget(options.time_budget_ms, request.budget_from)

    def seen(text: str) -> bool:
        text = prompt.strip_healed(text)
        if on_text is not None:
            on_text(text)
        return stop_check(text) or budget(text)

    params = GenerationParams(max_new_tokens=options.max_new_tokens, stop_ids=prompt.stop_ids)
    generation = engine.generate(prompt.ids, params, cancel, on_text=seen)
    watch.lap("generate")
    finish = Finisher(request, engine.tokenizer, cursor, prompt, prepared.budget)
    text = finish(generation.text, budget)
    watch.lap("postprocess")
    others: tuple[str, ...] = ()
    if request.candidates > 1 and text and generation.token_ids and not cancel.cancelled:
        branches = Branches(engine, prompt, params, options.time_budget_ms, finish)
        wanted = request.candidates - 1
        others = branches.distinct_from(text, generation.token_ids[0], wanted, cancel)
        watch.lap("alternatives")
    log.info(
        "completion %s %s v%d: %s (%s), %d prompt tokens (%d context, %d cached), %d new, %s, "
        "%d alternatives, %s",
        request.id,
        snapshot.uri,
        snapshot.version,
        cursor.mode.value,
        cursor.reason,
        len(prompt.ids),
        len(prepared.context.ids),
        generation.cached_tokens,
        len(generation.token_ids),
        generation.finish_reason,
        len(others),
        watch.timings,
    )
    return Completion(
        text,
        cursor.mode,
        cursor.reason,
        "time-budget" if budget.spent else generation.finish_reason,
        len(prompt.ids),
        generation.cached_tokens,
        watch.timings,
        others,
    )
