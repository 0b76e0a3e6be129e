"""The completion pipeline: classify → gather context → build prompt → generate → post-process.

Plain data in, plain data out: a document snapshot and a cursor offset give
a `Completion`. Each stage is timed under one request id. Runs on the model
worker thread; knows nothing of LSP. `prepare_prompt` is the pipeline up to
the model, which the prompt inspector shows without generating.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from code_llama_ls.context.assemble import PromptContext
from code_llama_ls.context.builder import ContextBuilder, CursorRequest
from code_llama_ls.engine.base import CancelToken, Engine, GenerationParams
from code_llama_ls.errors import PromptError
from code_llama_ls.pipeline.local_window import boundaries, prefix_snap, suffix_snap
from code_llama_ls.pipeline.postprocess import StopCheck, postprocess
from code_llama_ls.pipeline.prompt import (
    FimMode,
    LocalWindow,
    Prompt,
    PromptFormat,
    Snap,
    completion_overhead,
    fit_local,
    lay_out_completion,
    normalize_newlines,
)
from code_llama_ls.pipeline.reach import reach_end, reach_start
from code_llama_ls.syntax.cursor import (
    MAX_LINE_CHARS,
    MINIFIED_LINE,
    CompletionMode,
    CursorContext,
    classify_cursor,
)
from code_llama_ls.syntax.errors import InsertionParser
from code_llama_ls.text.documents import Snapshot
from code_llama_ls.tokens.tokenizer import TokenizerLike, max_chars

log = logging.getLogger(__name__)

CPU_PROMPT_TOKENS = 2048
"""The default prompt cap on a CPU: prefilling more there takes seconds per keystroke."""
LOCAL_SHARE = 0.5
"""Of the prompt's budget, what the local window gets before cross-file context is added."""


@dataclass(frozen=True)
class CompletionOptions:
    """The settings one completion needs."""

    fim_mode: FimMode = FimMode.SPM
    max_new_tokens: int = 64
    context_tokens: int | None = None
    """The whole context (prompt + answer); None: the model's (prompts capped on a CPU)."""
    time_budget_ms: int = 0
    """After this long, return what is written so far (0: no budget); see `TimeBudget`."""
    budget_from: float | None = None
    """When the budget's clock started (`time.perf_counter()`); None: when generation starts."""


@dataclass(frozen=True)
class Completion:
    """What to show at the cursor; empty text means nothing to suggest."""

    text: str
    mode: CompletionMode
    reason: str
    finish_reason: str = "none"
    prompt_tokens: int = 0
    cached_tokens: int = 0
    """Prompt tokens whose keys/values were reused (prefix-KV cache)."""
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
    """Tokens the prompt may use: the context (configured or the model's) minus the answer.

    Without a configured context, a prompt on a CPU is capped at CPU_PROMPT_TOKENS.
    """
    context = min(context_tokens or engine.context_length, engine.context_length)
    budget = context - max_new_tokens
    if budget < 16:
        raise PromptError(
            f"a context of {context} tokens leaves no room for a prompt after "
            f"{max_new_tokens} new tokens: lower maxNewTokens or raise contextTokens"
        )
    if context_tokens is None and engine.device == "cpu":
        budget = min(budget, CPU_PROMPT_TOKENS)
    return budget


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
    engine: Engine,
    snapshot: Snapshot,
    offset: int,
    options: CompletionOptions,
    context: ContextBuilder | None = None,
) -> PreparedPrompt:
    """Classify the cursor, gather context and build the prompt for a completion at `offset`."""
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
    """The local window and the cross-file context, sharing the budget.

    The context gets what the local window is estimated not to need (it
    needs at most LOCAL_SHARE of the budget); the window is then fitted, once,
    to what the context left, but never over a snippet of its own file that
    the context shows. Estimates count 3 characters a token for the window's
    reach (so snippets just outside it are allowed: the window yields to
    them) and 2.5 for its size (so it is not starved). They are made on the
    whole document; `window` is its text that a prompt can reach.
    """
    text, cursor = _whole_text(snapshot, offset)
    cursor_row = text.count("\n", 0, cursor)
    share = int(available * LOCAL_SHARE)
    reach = share * 3
    local_lines = (
        cursor_row - text.count("\n", max(cursor - reach, 0), cursor),
        cursor_row + text.count("\n", cursor, cursor + reach // 4),
    )
    request = CursorRequest(
        snapshot.uri, snapshot.language, snapshot.version, text, cursor, local_lines
    )
    needed = min(share, int(len(text) / 2.5) + 1)
    gathered = builder.build(tok, request, available - needed)
    prefix, suffix = window.prefix, window.suffix
    # CRLF text: its offsets differ from the tree's rows.
    crlf = len(text) != len(snapshot.text)
    starts, ends = (None, None) if crlf else _syntax_snaps(snapshot, offset, window, cursor_row)
    floor, ceiling = _own_snippet_limits(gathered, builder.path_of(snapshot.uri), cursor_row)
    local = fit_local(
        tok,
        prefix,
        suffix,
        available - len(gathered.ids),
        continued=bool(gathered.ids),
        cut=window.cut,
        snap_start=_clamped_start(starts, prefix, cursor_row, floor),
        snap_end=_clamped_end(ends, suffix, cursor_row, ceiling),
    )
    return local, gathered


def _syntax_snaps(
    snapshot: Snapshot, offset: int, window: _Window, cursor_row: int
) -> tuple[Snap | None, Snap | None]:
    """Moves of the window's cuts to statement boundaries (none without a tree)."""
    if snapshot.tree is None:
        return None, None
    rows = (cursor_row - window.prefix.count("\n"), cursor_row + window.suffix.count("\n"))
    bounds = boundaries(snapshot.tree, snapshot.byte_offset(offset), rows)
    return (
        prefix_snap(bounds, window.prefix, cursor_row),
        suffix_snap(bounds, window.suffix, cursor_row),
    )


def _own_snippet_limits(
    context: PromptContext, path: str, cursor_row: int
) -> tuple[int | None, int | None]:
    """The first row the local window may start at and the last it may end at."""
    own = [b for b in context.blocks if b.path == path and b.is_code]
    above = [b.end_line + 1 for b in own if b.end_line < cursor_row]
    below = [b.start_line - 1 for b in own if b.start_line > cursor_row]
    return (max(above) if above else None), (min(below) if below else None)


def _clamped_start(
    snap: Snap | None, prefix: str, cursor_row: int, floor: int | None
) -> Snap | None:
    if floor is None:
        return snap
    skip = max(floor - (cursor_row - prefix.count("\n")), 0)  # rows of the whole prefix to skip
    floor_offset = 0
    for _ in range(skip):
        floor_offset = prefix.index("\n", floor_offset) + 1

    def clamp(start: int) -> int:
        start = max(start, floor_offset)
        return snap(start) if snap is not None else start

    return clamp


def _clamped_end(
    snap: Snap | None, suffix: str, cursor_row: int, ceiling: int | None
) -> Snap | None:
    if ceiling is None:
        return snap
    ceiling_offset = 0
    for _ in range(ceiling - cursor_row + 1):  # the suffix's rows up to and including `ceiling`
        nxt = suffix.find("\n", ceiling_offset)
        if nxt < 0:
            ceiling_offset = len(suffix)
            break
        ceiling_offset = nxt + 1

    def clamp(end: int) -> int:
        end = min(end, ceiling_offset)
        return snap(end) if snap is not None else end

    return clamp


class TimeBudget:
    """Ends a generation that runs past `budget_ms` (0: never), at once.

    Past the budget, the lines completed so far are what the user gets
    (`cut`); when no line is complete yet, the whole words of the first one (a
    word it may end inside is dropped: a partial line can still be accepted
    word by word and typed on). On a CPU, a long or run-on first line (64
    tokens without a line break, a model repeating itself inside one word)
    took up to 2 s before, and waiting for a line's or a word's end 70-170 ms
    past the budget. It ends before a token that would finish past the
    budget (judged by the last token's time), so answers come within it.

    The first tokens always get half the budget, however long the prompt
    took (a cold prompt on a CPU: 1.5-2 s), so that a slow prompt still
    yields words: llama.cpp's `t_max_predict_ms` counts from the first token.
    """

    def __init__(self, budget_ms: int, started: float | None = None) -> None:
        began = time.perf_counter() if started is None else started
        self._budget_s = budget_ms / 1000
        self._deadline = began + self._budget_s if budget_ms > 0 else None
        self._last_token_at: float | None = None
        self.spent = False

    def __call__(self, text_so_far: str) -> bool:
        if self._deadline is None or self.spent:
            return self.spent
        now = time.perf_counter()
        if self._last_token_at is None:  # the first token
            self._deadline = max(self._deadline, now + self._budget_s / 2)
            step = 0.0
        else:
            step = now - self._last_token_at
        self._last_token_at = now
        # Ends before a token that would finish past the budget, not after it;
        # but not with nothing to show, unless the model is repeating itself.
        self.spent = now + step >= self._deadline and (
            bool(self.cut_text(text_so_far)) or _trailing_word(text_so_far) >= _RUN_ON_WORD
        )
        return self.spent

    def cut(self, text: str) -> str:
        """`text` as the budget leaves it (as it is when the budget did not end it)."""
        return self.cut_text(text) if self.spent else text

    @staticmethod
    def cut_text(text: str) -> str:
        """`text` up to its last line end, or the whole words of its first line."""
        if "\n" in text:
            return text[: text.rfind("\n")]
        return text.rstrip(_WORD_CHARS).rstrip()


_WORD_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
_RUN_ON_WORD = 32
"""A word this long is no identifier but a model repeating itself ("_line_on_line_on...")."""


def _trailing_word(text: str) -> int:
    """The length of the word `text` ends inside (0 at a word boundary)."""
    return len(text) - len(text.rstrip(_WORD_CHARS))


def complete(
    engine: Engine,
    snapshot: Snapshot,
    offset: int,
    options: CompletionOptions,
    cancel: CancelToken,
    request_id: str = "-",
    context: ContextBuilder | None = None,
    on_text: Callable[[str], None] | None = None,
) -> Completion:
    """The completion at `offset` in `snapshot`, post-processed and ready to insert.

    `on_text` sees the generated text as it grows (before post-processing).
    """
    if snapshot.too_large or snapshot.binary:
        kind = "too large" if snapshot.too_large else "binary"
        return Completion("", CompletionMode.NONE, f"document is {kind}")
    prepared = prepare_prompt(engine, snapshot, offset, options, context)
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
    budget = TimeBudget(options.time_budget_ms, options.budget_from)

    def seen(text: str) -> bool:
        text = prompt.strip_healed(text)
        if on_text is not None:
            on_text(text)
        return stop_check(text) or budget(text)

    generation = engine.generate(
        prompt.ids,
        GenerationParams(max_new_tokens=options.max_new_tokens, stop_ids=prompt.stop_ids),
        cancel,
        on_text=seen,
    )
    watch.lap("generate")

    # Post-processing reads the lines after the cursor: no more than the prompt could show.
    reach = max_chars(engine.tokenizer, prepared.budget)
    suffix = normalize_newlines(snapshot.text[offset : offset + reach])
    parse = None
    if snapshot.tree is not None and snapshot.language is not None:
        parse = InsertionParser(
            snapshot.language, snapshot.tree, snapshot.text, offset, snapshot.uses_crlf
        )
    text = postprocess(
        budget.cut(prompt.strip_healed(generation.text)),
        cursor,
        suffix,
        sees_suffix=sees_suffix,
        parse=parse,
    )
    if snapshot.uses_crlf:
        text = text.replace("\n", "\r\n")
    watch.lap("postprocess")
    log.info(
        "completion %s %s v%d: %s (%s), %d prompt tokens (%d context, %d cached), %d new, %s, %s",
        request_id,
        snapshot.uri,
        snapshot.version,
        cursor.mode.value,
        cursor.reason,
        len(prompt.ids),
        len(prepared.context.ids),
        generation.cached_tokens,
        len(generation.token_ids),
        generation.finish_reason,
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
    )
