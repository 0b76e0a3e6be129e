"""Open documents: their exact text, incremental edits and an incrementally parsed tree.

The server mutates a DocumentStore on its event loop and hands immutable
Snapshots to the inference worker. A Snapshot never changes: edits build a new
text, a new LineIndex and a new tree, and the tree a snapshot holds is never
edited (edits go to a copy).

Trees cost far more than their text (a 20 KB Python module's tree takes
about 0.5 MiB), so only the documents touched most recently keep theirs
(`max_trees`, `max_tree_bytes`): an editor with hundreds of tabs open parses
them once, then drops the trees of those left alone. A dropped tree is parsed
again, in full, when it is next needed (`Snapshot.tree`, or an edit).
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import tree_sitter

from code_llama_ls.errors import InvalidPositionError, UnknownDocumentError
from code_llama_ls.syntax.languages import language_name, parser_for
from code_llama_ls.text.positions import (
    LineIndex,
    PositionEncoding,
    advance_point,
    str_offset_from_utf8,
    ts_point,
    utf8_byte_offset,
)

__all__ = ["DocumentStore", "DocumentsUsage", "Snapshot", "TextChange"]

Range = tuple[tuple[int, int], tuple[int, int]]

DEFAULT_MAX_TREES = 16
"""Documents that keep their syntax tree (the most recently opened or edited)."""
DEFAULT_MAX_TREE_BYTES = 4_000_000
"""The most text (UTF-8 bytes) whose trees are kept, all documents together."""
TREE_BYTES_PER_TEXT_BYTE = 25
"""A tree's memory per byte of its text, roughly (measured: Python, 20 KB modules)."""


@dataclass(frozen=True)
class TextChange:
    """One entry of didChange's contentChanges.

    `range` is ((start_line, start_char), (end_line, end_char)) in the store's
    position encoding; None replaces the whole text.
    """

    range: Range | None
    text: str


@dataclass(frozen=True, eq=False)
class Snapshot:
    """One version of one open document, safe to read from any thread."""

    uri: str
    language_id: str
    language: str | None
    """Canonical grammar name (see syntax.languages), None when no grammar fits."""
    version: int
    text: str
    """Exactly what the client sent: line endings are never normalized here."""
    trees: _TreeSlot = field(repr=False)
    """Where the tree is kept (see `tree`)."""
    line_index: LineIndex
    encoding: PositionEncoding
    too_large: bool
    binary: bool

    @property
    def tree(self) -> tree_sitter.Tree | None:
        """The syntax tree; None for unknown languages, binary content and documents over max_bytes.

        Parsed again (in full, on the calling thread) when the store dropped it.
        """
        return self.trees.get(self.text)

    def offset_at(self, line: int, character: int) -> int:
        """String index of an LSP position; raises InvalidPositionError when it is invalid."""
        return self.line_index.offset_at(line, character, self.encoding, strict=True)

    def position_at(self, offset: int) -> tuple[int, int]:
        """LSP position (line, character) of string index `offset`."""
        return self.line_index.position_at(offset, self.encoding)

    def byte_offset(self, offset: int) -> int:
        """UTF-8 byte offset of string index `offset` (tree-sitter's Node.start_byte unit)."""
        return offset if self.line_index.is_ascii else utf8_byte_offset(self.text, offset)

    def offset_from_byte(self, byte_offset: int) -> int:
        """String index of a UTF-8 byte offset, such as a tree-sitter node's start_byte."""
        return (
            byte_offset
            if self.line_index.is_ascii
            else str_offset_from_utf8(self.text, byte_offset)
        )

    def ts_point(self, offset: int) -> tuple[int, int]:
        """tree-sitter Point (row, byte column) of string index `offset`."""
        return ts_point(self.text, offset)

    @property
    def uses_crlf(self) -> bool:
        """Whether the document's dominant line ending is "\\r\\n"."""
        return self.line_index.dominant_line_ending() == "\r\n"

    def with_insertion(self, offset: int, text: str) -> Snapshot:
        """The document as it would be with `text` inserted at `offset` (the same version): what
        the user sees after accepting a suggestion. Kept nowhere; its tree is parsed on first
        use, by the thread that uses it."""
        new_text = self.text[:offset] + text + self.text[offset:]
        data_bytes = self.trees.data_bytes + len(text.encode("utf-8", "surrogatepass"))
        return dataclasses.replace(
            self,
            text=new_text,
            trees=_TreeSlot(self.trees.language, data_bytes),
            line_index=LineIndex(new_text),
        )


class DocumentStore:
    """Open documents by uri.

    Mutated by one writer (the server's event loop); `get` may be called from
    any thread. Each mutation is atomic: a change batch that fails part-way
    (a bad range) leaves the document as it was.
    """

    def __init__(
        self,
        encoding: PositionEncoding = PositionEncoding.UTF16,
        max_bytes: int = 1_000_000,
        *,
        max_trees: int = DEFAULT_MAX_TREES,
        max_tree_bytes: int = DEFAULT_MAX_TREE_BYTES,
    ) -> None:
        self._lock = threading.RLock()
        self._docs: dict[str, Snapshot] = {}
        self._encoding = encoding
        self.max_bytes = max_bytes
        """Documents larger than this (UTF-8 bytes) are kept but not parsed."""
        self.max_trees = max_trees
        """Documents whose trees are kept; the others' are dropped (at least one is kept)."""
        self.max_tree_bytes = max_tree_bytes
        """The most text (UTF-8 bytes) whose trees are kept, all documents together."""
        self._touched: OrderedDict[str, None] = OrderedDict()  # least recently touched first

    @property
    def encoding(self) -> PositionEncoding:
        """The position encoding negotiated with the client."""
        return self._encoding

    @encoding.setter
    def encoding(self, encoding: PositionEncoding) -> None:
        with self._lock:
            self._encoding = encoding
            for uri, snap in self._docs.items():
                self._docs[uri] = dataclasses.replace(snap, encoding=encoding)

    def __contains__(self, uri: object) -> bool:
        return uri in self._docs

    def __len__(self) -> int:
        return len(self._docs)

    def snapshots(self) -> list[Snapshot]:
        """The current snapshot of every open document."""
        with self._lock:
            return list(self._docs.values())

    def get(self, uri: str) -> Snapshot:
        """The current snapshot of `uri`; raises UnknownDocumentError when it is not open."""
        try:
            return self._docs[uri]
        except KeyError:
            raise UnknownDocumentError(f"document {uri} is not open") from None

    def open(self, uri: str, language_id: str, version: int, text: str) -> Snapshot:
        """didOpen: store `text` (re-opening a uri replaces it)."""
        with self._lock:
            snap = self._snapshot(
                uri,
                language_id,
                language_name(language_id, uri),
                version,
                text,
                LineIndex(text),
                old_tree=None,
            )
            self._docs[uri] = snap
            self._touch(uri)
            return snap

    def close(self, uri: str) -> None:
        """didClose: forget `uri` (closing a uri that is not open does nothing)."""
        with self._lock:
            self._docs.pop(uri, None)
            self._touched.pop(uri, None)

    def usage(self) -> DocumentsUsage:
        """What the open documents hold now (sums of sizes: no text is scanned)."""
        with self._lock:
            snapshots = list(self._docs.values())
        with_trees = [s for s in snapshots if s.trees.holds_tree]
        return DocumentsUsage(
            documents=len(snapshots),
            text_bytes=sum(sys.getsizeof(s.text) for s in snapshots),
            line_index_bytes=sum(_line_index_bytes(s.line_index) for s in snapshots),
            trees=len(with_trees),
            tree_text_bytes=sum(s.trees.data_bytes for s in with_trees),
            max_trees=self.max_trees,
            max_tree_bytes=self.max_tree_bytes,
        )

    def change(self, uri: str, version: int, changes: Sequence[TextChange]) -> Snapshot:
        """didChange: apply `changes` in order, each range read against the text before it.

        The tree is edited once per change (on a private copy) and reparsed
        once for the whole batch, reusing every unchanged subtree.
        """
        with self._lock:
            snap = self.get(uri)
            encoding = self._encoding
            text = snap.text
            index: LineIndex | None = snap.line_index
            tree = snap.trees.kept  # a dropped tree is not parsed again to be edited
            owned = False  # whether `tree` is our private copy, safe to edit
            for change in changes:
                if change.range is None:
                    text, index, tree = change.text, None, None
                    continue
                if index is None:
                    index = LineIndex(text)
                start, end = _range_offsets(index, change.range, encoding)
                if tree is not None:
                    if not owned:
                        tree, owned = tree.copy(), True
                    _edit_tree(tree, text, start, end, change.text)
                text = text[:start] + change.text + text[end:]
                index = None
            new = self._snapshot(
                uri,
                snap.language_id,
                snap.language,
                version,
                text,
                index if index is not None else LineIndex(text),
                old_tree=tree,
            )
            self._docs[uri] = new
            self._touch(uri)
            return new

    def _touch(self, uri: str) -> None:
        """`uri` was opened, edited or parsed again: it keeps its tree, the oldest lose theirs."""
        with self._lock:
            if uri not in self._docs:
                return
            self._touched[uri] = None
            self._touched.move_to_end(uri)
            trees = tree_bytes = 0
            for other in reversed(self._touched):  # newest first
                slot = self._docs[other].trees
                if not slot.holds_tree:
                    continue
                trees += 1
                tree_bytes += slot.data_bytes
                if trees > 1 and (trees > self.max_trees or tree_bytes > self.max_tree_bytes):
                    slot.drop()

    def _snapshot(
        self,
        uri: str,
        language_id: str,
        language: str | None,
        version: int,
        text: str,
        line_index: LineIndex,
        old_tree: tree_sitter.Tree | None,
    ) -> Snapshot:
        """A snapshot of `text`, parsed (reusing `old_tree`, already edited) when it can be."""
        binary = "\x00" in text
        data: bytes | None = None
        # A str of more than max_bytes code points is over the limit in any
        # encoding: skip encoding megabytes just to measure them.
        too_large = len(text) > self.max_bytes
        if not too_large:
            data = text.encode("utf-8", "surrogatepass")
            too_large = len(data) > self.max_bytes
        parseable = language is not None and data is not None and not too_large and not binary
        slot = _TreeSlot(language if parseable else None, len(data) if data is not None else 0)
        if parseable and language is not None and data is not None:
            parser = _parser(language)
            if parser is not None:
                slot.keep(parser.parse(data) if old_tree is None else parser.parse(data, old_tree))
        # A partial, not a lambda over `slot`: a slot in a reference cycle would
        # keep its tree until the garbage collector ran.
        slot.on_reparse = functools.partial(self._touch_if_current, uri)
        return Snapshot(
            uri=uri,
            language_id=language_id,
            language=language,
            version=version,
            text=text,
            trees=slot,
            line_index=line_index,
            encoding=self._encoding,
            too_large=too_large,
            binary=binary,
        )

    def _touch_if_current(self, uri: str, slot: _TreeSlot) -> None:
        """A tree was parsed again on use: the current version's counts as touched."""
        with self._lock:
            snap = self._docs.get(uri)
            if snap is not None and snap.trees is slot:
                self._touch(uri)


@dataclass(frozen=True)
class DocumentsUsage:
    """What the open documents hold (for `codeLlama/memory`)."""

    documents: int
    text_bytes: int
    """The texts' memory as Python strings."""
    line_index_bytes: int
    """Roughly: the line starts of every document."""
    trees: int
    """Documents holding a parsed tree now."""
    tree_text_bytes: int
    """UTF-8 bytes of those documents' text."""
    max_trees: int
    max_tree_bytes: int

    @property
    def tree_bytes_estimate(self) -> int:
        """The trees' memory, roughly (tree-sitter does not tell)."""
        return self.tree_text_bytes * TREE_BYTES_PER_TEXT_BYTE

    def to_json(self) -> dict[str, int]:
        """camelCase keys, as the protocol reports them."""
        return {
            "documents": self.documents,
            "textBytes": self.text_bytes,
            "lineIndexBytes": self.line_index_bytes,
            "trees": self.trees,
            "treeTextBytes": self.tree_text_bytes,
            "treeBytesEstimate": self.tree_bytes_estimate,
            "maxTrees": self.max_trees,
            "maxTreeTextBytes": self.max_tree_bytes,
        }


class _TreeSlot:
    """One snapshot's tree: kept, or dropped by the store and parsed again on use.

    Thread-safe: the store drops trees on the event loop while the model
    worker reads them. A tree handed out stays valid for its holder after a
    drop (it is only no longer kept here).
    """

    __slots__ = ("_lock", "_tree", "data_bytes", "language", "on_reparse")

    def __init__(self, language: str | None, data_bytes: int) -> None:
        self._lock = threading.Lock()
        self._tree: tree_sitter.Tree | None = None
        self.language = language
        """The grammar to parse with; None when the document gets no tree."""
        self.data_bytes = data_bytes
        """The text's UTF-8 size."""
        self.on_reparse: Callable[[_TreeSlot], None] | None = None
        """Called (outside the lock) after the tree was parsed again on use."""

    @property
    def holds_tree(self) -> bool:
        """Whether a parsed tree is kept now."""
        return self._tree is not None

    @property
    def kept(self) -> tree_sitter.Tree | None:
        """The tree kept now, never parsing."""
        return self._tree

    def keep(self, tree: tree_sitter.Tree) -> None:
        with self._lock:
            self._tree = tree

    def drop(self) -> None:
        """Free the tree (a later `get` parses the text again)."""
        with self._lock:
            self._tree = None

    def get(self, text: str) -> tree_sitter.Tree | None:
        """The tree of `text` (this slot's snapshot's text), parsed again when it was dropped."""
        tree = self._tree
        if tree is not None or self.language is None:
            return tree
        with self._lock:
            if self._tree is None:
                parser = _parser(self.language)
                if parser is None:
                    return None
                self._tree = parser.parse(text.encode("utf-8", "surrogatepass"))
                reparsed = True
            else:
                reparsed = False
            tree = self._tree
        if reparsed and self.on_reparse is not None:
            self.on_reparse(self)
        return tree


def _line_index_bytes(index: LineIndex) -> int:
    """Roughly what a LineIndex's line starts take (a list of ints)."""
    return 8 + 36 * index.line_count


def _range_offsets(index: LineIndex, rng: Range, encoding: PositionEncoding) -> tuple[int, int]:
    """String offsets of a didChange range, clamped as LSP specifies."""
    (start_line, start_char), (end_line, end_char) = rng
    start = index.offset_at(start_line, start_char, encoding, strict=False)
    end = index.offset_at(end_line, end_char, encoding, strict=False)
    if end < start:
        raise InvalidPositionError(
            f"range ({start_line}:{start_char})-({end_line}:{end_char}) ends before it starts"
        )
    return start, end


def _edit_tree(tree: tree_sitter.Tree, text: str, start: int, end: int, new: str) -> None:
    """Tell `tree` that text[start:end] (of `text`) became `new`, in bytes and Points."""
    start_byte = utf8_byte_offset(text, start)
    old = text[start:end]
    start_point = ts_point(text, start)
    tree.edit(
        start_byte=start_byte,
        old_end_byte=start_byte + len(old.encode("utf-8", "surrogatepass")),
        new_end_byte=start_byte + len(new.encode("utf-8", "surrogatepass")),
        start_point=start_point,
        old_end_point=advance_point(start_point, old),
        new_end_point=advance_point(start_point, new),
    )


def _parser(language: str) -> tree_sitter.Parser | None:
    """The parser for `language`, or None when its grammar cannot be loaded."""
    try:
        return parser_for(language)
    except Exception:  # a broken grammar wheel must not lose the user's document
        return None
