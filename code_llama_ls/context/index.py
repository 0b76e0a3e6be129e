"""The workspace index: every source file's outline, lines and identifier windows.

Built in the background from the workspace folders, then kept current from
document events and watched-file changes. Writers (the indexer thread) and
readers (the model worker) share it under one lock; each file's record is
immutable and replaced whole, so a reader never sees half an update.

Three lookups serve the context sources: definitions by name, imports
resolved to files, and windows of code by identifier overlap (an inverted
index, so a query touches only windows that share a word with it).
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TypeVar

from code_llama_ls.context.identifiers import identifier_set, without_prose
from code_llama_ls.context.imports import ImportResolver, is_config_file
from code_llama_ls.context.outline import Definition, FileOutline, Import, outline_file
from code_llama_ls.context.workspace_files import ScanLimits, read_source, scan_workspace

log = logging.getLogger(__name__)
V = TypeVar("V")

WINDOW_LINES = 20
"""Lines per similarity window; windows start every WINDOW_STRIDE lines."""
WINDOW_STRIDE = 10
# Files whose lines average more characters than this are minified or generated.
_MAX_AVERAGE_LINE_CHARS = 200
# An identifier found in more windows than this is too common to point anywhere.
_MAX_POSTINGS = 2_000


INDEX_LIMITS = ScanLimits(max_total_bytes=64_000_000)
"""The default bounds: source text kept in memory is capped at 64 MB, all files together."""


@dataclass(frozen=True)
class IndexedFile:
    """One file as the index knows it (from disk, or an open document's text)."""

    path: str
    language: str
    lines: tuple[str, ...]
    """The text's lines without line terminators (CRLF read as LF)."""
    outline: FileOutline
    windows: tuple[frozenset[str], ...]
    """Identifier sets of windows [i*WINDOW_STRIDE, i*WINDOW_STRIDE + WINDOW_LINES)."""
    size: int

    @classmethod
    def build(cls, path: str, language: str, text: str) -> IndexedFile:
        """Outline and window a file's text."""
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        if len(lines) > 1 and not lines[-1]:  # the text ends with a line break
            lines.pop()
        try:
            outline = outline_file(text, language)
        except (ValueError, ImportError):  # no query for this language: still windowed
            outline = FileOutline(language, (), ())
        code = without_prose("\n".join(lines), language).split("\n")
        starts = range(0, max(len(lines) - WINDOW_LINES, 0) + WINDOW_STRIDE, WINDOW_STRIDE)
        windows = tuple(
            identifier_set("\n".join(code[start : start + WINDOW_LINES])) for start in starts
        )
        return cls(path, language, tuple(lines), outline, windows, len(text))

    def window_range(self, index: int) -> tuple[int, int]:
        """First and last line (inclusive) of window `index`."""
        start = index * WINDOW_STRIDE
        return start, min(start + WINDOW_LINES, len(self.lines)) - 1


@dataclass(frozen=True)
class IndexProgress:
    """Where a workspace scan stands, for progress reports."""

    root: str
    files_done: int
    files_total: int


@dataclass(frozen=True)
class SimilarWindow:
    """A window of another file that shares identifiers with the code at the cursor."""

    file: IndexedFile
    index: int
    score: float


class WorkspaceIndex:
    """Outlines, lines and windows of the workspace's source files; thread-safe."""

    def __init__(self, limits: ScanLimits = INDEX_LIMITS) -> None:
        self.limits = limits
        self._lock = threading.RLock()
        self._roots: list[str] = []
        self._files: dict[str, IndexedFile] = {}
        self._by_name: dict[str, dict[str, list[Definition]]] = defaultdict(dict)
        self._postings: dict[str, dict[str, set[int]]] = defaultdict(dict)
        self._posting_counts: dict[str, int] = defaultdict(int)
        self._open: set[str] = set()
        self._total_bytes = 0
        self._resolver = ImportResolver(self._read_small_file)

    # -- roots -----------------------------------------------------------------

    @property
    def roots(self) -> tuple[str, ...]:
        """The workspace folders indexed, as absolute POSIX paths."""
        with self._lock:
            return tuple(self._roots)

    def index_root(
        self,
        root: Path,
        cancelled: Callable[[], bool] = lambda: False,
        on_progress: Callable[[IndexProgress], None] | None = None,
    ) -> int:
        """Scan and index one workspace folder; the number of files indexed."""
        root_path = root.resolve().as_posix()
        with self._lock:
            if root_path not in self._roots:
                self._roots.append(root_path)
        found, report = scan_workspace(root, self.limits, cancelled, other_files=is_config_file)
        with self._lock:
            for config in report.other_files:
                self._resolver.add(config)
        log.info("workspace %s: %d source files (%s)", root_path, len(found), report)
        done = 0
        for done, entry in enumerate(found, start=1):
            if cancelled():
                break
            if entry.path not in self._open:  # an open document's text wins over the disk's
                self.update_from_disk(entry.path, entry.language)
            if on_progress is not None and (done % 50 == 0 or done == len(found)):
                on_progress(IndexProgress(root_path, done, len(found)))
        return done

    def remove_root(self, root: Path) -> None:
        """Forget a workspace folder and its files (open documents stay)."""
        root_path = root.resolve().as_posix()
        with self._lock:
            if root_path in self._roots:
                self._roots.remove(root_path)
            doomed = [p for p in self._files if _is_under(p, root_path) and p not in self._open]
        for path in doomed:
            self.remove(path)

    def relative_path(self, path: str) -> str:
        """`path` relative to the deepest workspace folder holding it, else as given."""
        with self._lock:
            holders = [root for root in self._roots if _is_under(path, root)]
        if not holders:
            return path
        return PurePosixPath(path).relative_to(max(holders, key=len)).as_posix()

    # -- files -----------------------------------------------------------------

    def update_from_disk(self, path: str, language: str) -> bool:
        """(Re)index a file from disk; False when it is unreadable, binary or too big."""
        text = read_source(Path(path), self.limits.max_file_bytes)
        if text is None or looks_generated(text):
            self.remove(path)
            return False
        return self.update(path, language, text)

    def update(self, path: str, language: str, text: str, *, is_open: bool = False) -> bool:
        """(Re)index a file from its text; False when it looks generated or memory is short.

        An open document that looks generated (minified) is forgotten, as on
        disk: outlining it would take seconds per edit, for nothing.
        """
        if looks_generated(text):
            self.remove(path)
            return False
        record = IndexedFile.build(path, language, text)  # the slow part, outside the lock
        with self._lock:
            old = self._files.get(path)
            growth = record.size - (old.size if old else 0)
            if self._total_bytes + growth > self.limits.max_total_bytes:
                log.warning("index full (%d bytes): %s not indexed", self._total_bytes, path)
                return False
            if old is not None:
                self._unlink(old)
            elif len(self._files) >= self.limits.max_files and not is_open:
                return False
            self._link(record)
            if is_open:
                self._open.add(path)
            if old is None:
                self._resolver.add(path)
        return True

    def close(self, path: str, language: str) -> None:
        """An open document was closed: index the disk's version again (or forget it)."""
        with self._lock:
            self._open.discard(path)
            under_root = any(_is_under(path, root) for root in self._roots)
        if under_root and Path(path).is_file():
            self.update_from_disk(path, language)
        else:
            self.remove(path)

    def remove(self, path: str) -> None:
        """Forget a file."""
        with self._lock:
            old = self._files.get(path)
            if old is None:
                return
            self._unlink(old)
            self._open.discard(path)
            self._resolver.remove(path)

    def resolution_file_changed(self, path: str) -> None:
        """A go.mod, package.json, tsconfig.json or Cargo.toml changed: resolve anew."""
        with self._lock:
            self._resolver.remove(path)
            self._resolver.add(path)

    def file(self, path: str) -> IndexedFile | None:
        """The indexed record of `path`, if any."""
        with self._lock:
            return self._files.get(path)

    def __len__(self) -> int:
        with self._lock:
            return len(self._files)

    @property
    def total_lines(self) -> int:
        """Lines held, all files together."""
        with self._lock:
            return sum(len(f.lines) for f in self._files.values())

    # -- lookups ---------------------------------------------------------------

    def definitions_named(self, name: str) -> list[tuple[IndexedFile, Definition]]:
        """Every indexed definition called `name`, by path."""
        with self._lock:
            found = self._by_name.get(name, {})
            return [
                (self._files[path], definition)
                for path in sorted(found)
                for definition in found[path]
            ]

    def resolve(self, importer: str, language: str, imp: Import) -> tuple[str, ...]:
        """The indexed workspace files an import refers to."""
        with self._lock:
            return self._resolver.resolve(importer, language, imp)

    def similar_windows(
        self,
        query: frozenset[str],
        *,
        exclude: str,
        limit: int,
        min_score: float = 0.1,
        min_shared: int = 3,
    ) -> list[SimilarWindow]:
        """The windows of other files with the highest Jaccard index to `query`.

        A window must share `min_shared` identifiers: with a small query, one
        or two common words make a high index by chance.
        """
        if not query:
            return []
        shared: dict[tuple[str, int], int] = defaultdict(int)
        with self._lock:
            for word in query:
                by_path = self._postings.get(word)
                if not by_path or self._posting_counts[word] > _MAX_POSTINGS:
                    continue
                for path, indexes in by_path.items():
                    if path != exclude:
                        for index in indexes:
                            shared[path, index] += 1
            scored = []
            for (path, index), common in shared.items():
                if common < min_shared:
                    continue
                size = len(self._files[path].windows[index])
                score = common / (len(query) + size - common)
                if score >= min_score:
                    scored.append(SimilarWindow(self._files[path], index, score))
        scored.sort(key=lambda w: (-w.score, w.file.path, w.index))
        return scored[:limit]

    # -- internals -------------------------------------------------------------

    def _link(self, record: IndexedFile) -> None:
        self._files[record.path] = record
        self._total_bytes += record.size
        for definition in record.outline.definitions:
            self._by_name[definition.name].setdefault(record.path, []).append(definition)
        for index, words in enumerate(record.windows):
            for word in words:
                self._postings[word].setdefault(record.path, set()).add(index)
                self._posting_counts[word] += 1

    def _unlink(self, record: IndexedFile) -> None:
        del self._files[record.path]
        self._total_bytes -= record.size
        for name in {d.name for d in record.outline.definitions}:
            _drop(self._by_name, name, record.path)
        for words in record.windows:
            for word in words:
                self._posting_counts[word] -= 1
        for word in set().union(*record.windows) if record.windows else ():
            _drop(self._postings, word, record.path)
            if self._posting_counts[word] <= 0:
                del self._posting_counts[word]

    def _read_small_file(self, path: str) -> str | None:
        return read_source(Path(path), 1_000_000)


def looks_generated(text: str) -> bool:
    """Minified or generated code: long lines on average (parsing it costs seconds, for nothing)."""
    lines = text.count("\n") + 1
    return len(text) / lines > _MAX_AVERAGE_LINE_CHARS


def _drop(table: dict[str, dict[str, V]], key: str, path: str) -> None:
    entries = table.get(key)
    if entries is not None:
        entries.pop(path, None)
        if not entries:
            del table[key]


def _is_under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")
