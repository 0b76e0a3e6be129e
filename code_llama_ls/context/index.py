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
import sys
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TypeVar

from code_llama_ls.context.files import ScanLimits, read_source, scan_workspace
from code_llama_ls.context.identifiers import identifier_set, without_prose
from code_llama_ls.context.imports import ImportResolver, is_config_file
from code_llama_ls.context.outline import Definition, FileOutline, Import, outline_file

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
MAX_INDEX_MEMORY = 256 << 20
"""The default bound on the index's memory (estimated, `IndexedFile.approx_bytes`): about
30 MB of source; the files past it are not indexed."""
# Per (identifier, file) posting and per distinct identifier: dict slots and the
# per-identifier dict, measured with tracemalloc (Python 3.11).
_POSTING_BYTES = 100
_WORD_BYTES = 250


@dataclass(frozen=True)
class IndexedFile:
    """One file as the index knows it (from disk, or an open document's text)."""

    path: str
    language: str
    lines: tuple[str, ...]
    """The text's lines without line terminators (CRLF read as LF)."""
    outline: FileOutline
    window_sizes: tuple[int, ...]
    """Distinct identifiers of each window [i*WINDOW_STRIDE, i*WINDOW_STRIDE + WINDOW_LINES)."""
    words: dict[str, int]
    """Each identifier of the file: the windows holding it, as a bit mask (bit i: window i).
    Read-only, as the whole record is."""
    size: int
    """The text's length."""
    approx_bytes: int = 0
    """Roughly the memory this record holds (lines, outline, words; postings not included)."""

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
        sizes: list[int] = []
        masks: dict[str, int] = {}
        for window, start in enumerate(starts):
            found = identifier_set("\n".join(code[start : start + WINDOW_LINES]))
            sizes.append(len(found))
            bit = 1 << window
            for word in found:
                masks[word] = masks.get(word, 0) | bit
        # Interned: every file and the postings share one string per identifier.
        words = {sys.intern(word): mask for word, mask in masks.items()}
        kept = tuple(lines)
        approx = (
            sys.getsizeof(kept)
            + sum(map(sys.getsizeof, kept))
            + sys.getsizeof(words)
            + sum(mask.bit_length() // 8 + 28 for mask in words.values())
            + 8 * len(sizes)
            + 200 * (len(outline.definitions) + len(outline.imports))
        )
        return cls(path, language, kept, outline, tuple(sizes), words, len(text), approx)

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


@dataclass(frozen=True)
class IndexUsage:
    """What the index holds (for `codeLlama/memory`)."""

    files: int
    open_files: int
    lines: int
    text_bytes: int
    identifiers: int
    """Distinct identifiers with postings."""
    postings: int
    """(identifier, file) pairs."""
    approx_bytes: int
    max_text_bytes: int
    max_approx_bytes: int

    def to_json(self) -> dict[str, int]:
        """camelCase keys, as the protocol reports them."""
        return {
            "files": self.files,
            "openFiles": self.open_files,
            "lines": self.lines,
            "textBytes": self.text_bytes,
            "identifiers": self.identifiers,
            "postings": self.postings,
            "approxBytes": self.approx_bytes,
            "maxTextBytes": self.max_text_bytes,
            "maxApproxBytes": self.max_approx_bytes,
        }


class WorkspaceIndex:
    """Outlines, lines and windows of the workspace's source files; thread-safe.

    Bounded by `limits` (files, text bytes) and by `max_memory`, the memory
    it holds as estimated (`approx_bytes`): a file that would pass a bound is
    not indexed.
    """

    def __init__(
        self, limits: ScanLimits = INDEX_LIMITS, max_memory: int = MAX_INDEX_MEMORY
    ) -> None:
        self.limits = limits
        self.max_memory = max_memory
        self._lock = threading.RLock()
        self._roots: list[str] = []
        self._files: dict[str, IndexedFile] = {}
        self._by_name: dict[str, dict[str, list[Definition]]] = defaultdict(dict)
        self._postings: dict[str, dict[str, int]] = defaultdict(dict)  # word -> path -> mask
        self._posting_counts: dict[str, int] = defaultdict(int)
        self._open: set[str] = set()
        self._total_bytes = 0
        self._total_lines = 0
        self._record_bytes = 0  # sum of approx_bytes
        self._posting_pairs = 0
        self._words_peak = 0  # the most identifiers held since the tables were last copied
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
            approx = self._approx_bytes()
            growth = _approx_bytes_of(record) - (_approx_bytes_of(old) if old else 0)
            if approx + growth > self.max_memory:
                log.warning("index full (about %d bytes): %s not indexed", approx, path)
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
            self._compact()

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
            return self._total_lines

    def usage(self) -> IndexUsage:
        """What the index holds now (running sums: nothing is walked)."""
        with self._lock:
            return IndexUsage(
                files=len(self._files),
                open_files=len(self._open),
                lines=self._total_lines,
                text_bytes=self._total_bytes,
                identifiers=len(self._postings),
                postings=self._posting_pairs,
                approx_bytes=self._approx_bytes(),
                max_text_bytes=self.limits.max_total_bytes,
                max_approx_bytes=self.max_memory,
            )

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
                for path, mask in by_path.items():
                    if path != exclude:
                        for index in _bits(mask):
                            shared[path, index] += 1
            scored = []
            for (path, index), common in shared.items():
                if common < min_shared:
                    continue
                size = self._files[path].window_sizes[index]
                score = common / (len(query) + size - common)
                if score >= min_score:
                    scored.append(SimilarWindow(self._files[path], index, score))
        scored.sort(key=lambda w: (-w.score, w.file.path, w.index))
        return scored[:limit]

    # -- internals -------------------------------------------------------------

    def _link(self, record: IndexedFile) -> None:
        self._files[record.path] = record
        self._total_bytes += record.size
        self._total_lines += len(record.lines)
        self._record_bytes += record.approx_bytes
        self._posting_pairs += len(record.words)
        for definition in record.outline.definitions:
            self._by_name[definition.name].setdefault(record.path, []).append(definition)
        for word, mask in record.words.items():
            self._postings[word][record.path] = mask
            self._posting_counts[word] += mask.bit_count()
        self._words_peak = max(self._words_peak, len(self._postings))

    def _unlink(self, record: IndexedFile) -> None:
        del self._files[record.path]
        self._total_bytes -= record.size
        self._total_lines -= len(record.lines)
        self._record_bytes -= record.approx_bytes
        self._posting_pairs -= len(record.words)
        for name in {d.name for d in record.outline.definitions}:
            _drop(self._by_name, name, record.path)
        for word, mask in record.words.items():
            _drop(self._postings, word, record.path)
            self._posting_counts[word] -= mask.bit_count()
            if self._posting_counts[word] <= 0:
                del self._posting_counts[word]

    def _compact(self) -> None:
        """Copy the identifier tables once they shrank to a quarter: a dict keeps its size."""
        words = len(self._postings)
        if self._words_peak > 4096 and words * 4 < self._words_peak:
            self._postings = defaultdict(dict, self._postings)
            self._posting_counts = defaultdict(int, self._posting_counts)
            self._by_name = defaultdict(dict, self._by_name)
            self._words_peak = words

    def _approx_bytes(self) -> int:
        """The index's memory, roughly: records, postings and identifiers."""
        return (
            self._record_bytes
            + self._posting_pairs * _POSTING_BYTES
            + len(self._postings) * _WORD_BYTES
        )

    def _read_small_file(self, path: str) -> str | None:
        return read_source(Path(path), 1_000_000)


def looks_generated(text: str) -> bool:
    """Minified or generated code: long lines on average (parsing it costs seconds, for nothing)."""
    lines = text.count("\n") + 1
    return len(text) / lines > _MAX_AVERAGE_LINE_CHARS


def _approx_bytes_of(record: IndexedFile) -> int:
    """A record's memory with its postings, roughly (new identifiers not counted)."""
    return record.approx_bytes + len(record.words) * _POSTING_BYTES


def _bits(mask: int) -> Iterator[int]:
    """The indexes of the set bits of `mask`, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def _drop(table: dict[str, dict[str, V]], key: str, path: str) -> None:
    entries = table.get(key)
    if entries is not None:
        entries.pop(path, None)
        if not entries:
            del table[key]


def _is_under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")
