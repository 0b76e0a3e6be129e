"""The context engine's front door: from a cursor to the snippets before the prefix.

`ContextBuilder.build` runs the sources, each under its own time budget,
and hands their candidates to the assembler. It runs on the model worker,
reads the index and never waits for indexing: whatever the index holds now
is what the prompt gets.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import PurePosixPath

from code_llama_ls.context.assemble import (
    Assembler,
    FileFrame,
    Layout,
    PromptContext,
    TokenCounter,
)
from code_llama_ls.context.files import path_language
from code_llama_ls.context.index import WorkspaceIndex, looks_generated
from code_llama_ls.context.outline import FileOutline, outline_file
from code_llama_ls.context.recent import RecentEdits
from code_llama_ls.context.sources import (
    Candidate,
    CursorScope,
    definition_candidates,
    near_lines,
    recent_edit_candidates,
    similar_candidates,
    yank_candidates,
)
from code_llama_ls.context.yanks import Yank, YankRing
from code_llama_ls.text.uri import uri_to_path
from code_llama_ls.tokens.tokenizer import TokenizerLike

__all__ = ["ContextBuilder", "CursorRequest", "PromptContext", "TimeBudgets", "YankRing"]
"""What the rest of the server takes from `context/`: the builder, what it is asked with,
and what it gives (`PromptContext`, from `assemble`)."""


@dataclass(frozen=True)
class TimeBudgets:
    """Milliseconds each source may take before it returns what it has."""

    definitions_ms: float = 10.0


@dataclass(frozen=True)
class CursorRequest:
    """The document and cursor a completion is for."""

    uri: str
    language: str | None
    version: int
    text: str
    """The whole document, line breaks normalized to LF."""
    cursor: int
    """String offset of the cursor in `text`."""
    local_lines: tuple[int, int]
    """First and last line of the local window the prompt already shows."""


class ContextBuilder:
    """Builds the cross-file context of completion prompts from a workspace index."""

    def __init__(
        self,
        index: WorkspaceIndex,
        recent: RecentEdits | None = None,
        budgets: TimeBudgets | None = None,
        yanks: YankRing | None = None,
    ) -> None:
        self.index = index
        self.recent = recent or RecentEdits()
        self.yanks = yanks or YankRing()
        self.budgets = budgets or TimeBudgets()
        self._counter: TokenCounter | None = None
        self._outline_cache: tuple[str, int, FileOutline] | None = None

    def cache_usage(self) -> dict[str, int]:
        """Entries of the caches kept here: encoded snippets and the cursor file's outline."""
        counter = self._counter
        # TokenCounter keeps no count of its own; len() of its dict is atomic.
        snippets = len(getattr(counter, "_cache", ())) if counter is not None else 0
        return {
            "encodedSnippets": snippets,
            "outlines": 0 if self._outline_cache is None else 1,
            "yanks": len(self.yanks),
        }

    def path_of(self, uri: str) -> str:
        """The index's name for a document (its path, or its uri when not a file)."""
        return uri_to_path(uri)

    def counter(self, tokenizer: TokenizerLike) -> TokenCounter:
        """The token counter (and encoding cache) of this tokenizer."""
        if self._counter is None or self._counter.tokenizer is not tokenizer:
            self._counter = TokenCounter(tokenizer)
        return self._counter

    @property
    def repo_name(self) -> str | None:
        """The workspace's name (its first folder's), which a repository format opens with."""
        roots = self.index.roots
        return (PurePosixPath(roots[0]).name or None) if roots else None

    def build(
        self,
        tokenizer: TokenizerLike,
        request: CursorRequest,
        budget: int,
        frame: FileFrame | None = None,
    ) -> PromptContext:
        """The context for `request` in at most `budget` ids, with per-source timings;
        `frame`: how files are marked (comment headers by default)."""
        began = time.perf_counter()
        timings: dict[str, float] = {}
        path = uri_to_path(request.uri)
        scope = self._scope(request, path)
        lap = _lap(timings, "scope", began)
        candidates: list[Candidate] = definition_candidates(
            self.index, scope, lap + self.budgets.definitions_ms / 1000
        )
        lap = _lap(timings, "definitions", lap)
        candidates += recent_edit_candidates(
            self.index, scope, self.recent.newest_first(), time.monotonic()
        )
        lap = _lap(timings, "recent", lap)
        candidates += similar_candidates(self.index, scope)
        lap = _lap(timings, "similar", lap)
        yanks = self.yanks.newest_first()
        if yanks:  # the local window's text is cut out only to compare yanks with it
            candidates += yank_candidates(yanks, _local_text(request), time.monotonic())
        lap = _lap(timings, "yanks", lap)
        layout = Layout(
            path, request.language, self._display_path(path, request.language), scope.local_lines
        )
        extra_files = {yank.record.path: (yank.record, self._yank_header(yank)) for yank in yanks}
        assembler = Assembler(self.index, self.counter(tokenizer), extra_files, frame)
        context = assembler.assemble(candidates, layout, budget)
        _lap(timings, "assemble", lap)
        return PromptContext(context.blocks, context.ids, timings)

    def _scope(self, request: CursorRequest, path: str) -> CursorScope:
        lines, cursor_line = near_lines(request.text, request.cursor)
        line_start = request.text.rfind("\n", 0, request.cursor) + 1
        return CursorScope(
            path,
            request.language,
            lines,
            cursor_line,
            request.cursor - line_start,
            self._outline(request, path),
            request.local_lines,
        )

    def _outline(self, request: CursorRequest, path: str) -> FileOutline | None:
        """The cursor file's outline: the index's, else parsed once per document version."""
        record = self.index.file(path)
        if record is not None:
            return record.outline
        if request.language is None:
            return None
        cached = self._outline_cache
        if cached is None or cached[:2] != (path, request.version):
            outline = FileOutline(request.language, (), ())
            if not looks_generated(request.text):  # minified: seconds to parse, for nothing
                try:
                    outline = outline_file(request.text, request.language)
                except (ValueError, ImportError):
                    return None
            cached = self._outline_cache = (path, request.version, outline)
        return cached[2]

    def _yank_header(self, yank: Yank) -> str:
        """What a yank's header says: where it was yanked from, when the client said."""
        if yank.source_path is None:
            return "yanked text"
        return f"yanked from {self.index.relative_path(yank.source_path)}"

    def _display_path(self, path: str, language: str | None) -> str:
        shown = self.index.relative_path(path)
        if language is not None and path_language(path) != language:
            shown += f" ({language})"
        return shown


def _local_text(request: CursorRequest) -> str:
    """The lines of the local window: the code the prompt shows around the cursor."""
    first, last = request.local_lines
    return "\n".join(request.text.split("\n")[first : last + 1])


def _lap(timings: dict[str, float], stage: str, since: float) -> float:
    now = time.perf_counter()
    timings[f"context_{stage}_ms"] = round((now - since) * 1000, 2)
    return now
