"""Open documents: their exact text, incremental edits and an incrementally parsed tree.

The server mutates a DocumentStore on its event loop and hands immutable
Snapshots to the inference worker. A Snapshot never changes: edits build a new
text, a new LineIndex and a new tree, and the tree a snapshot holds is never
edited (edits go to a copy).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import tree_sitter

from code_llama_ls.errors import InvalidPositionError, UnknownDocumentError
from code_llama_ls.positions import (
    LineIndex,
    PositionEncoding,
    advance_point,
    str_offset_from_utf8,
    ts_point,
    utf8_byte_offset,
)
from code_llama_ls.syntax.languages import language_name, parser_for

__all__ = ["DocumentStore", "Snapshot", "TextChange"]

Range = tuple[tuple[int, int], tuple[int, int]]


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
    tree: tree_sitter.Tree | None
    """None for unknown languages, binary content and documents over max_bytes."""
    line_index: LineIndex
    encoding: PositionEncoding
    too_large: bool
    binary: bool

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


class DocumentStore:
    """Open documents by uri.

    Mutated by one writer (the server's event loop); `get` may be called from
    any thread. Each mutation is atomic: a change batch that fails part-way
    (a bad range) leaves the document as it was.
    """

    def __init__(
        self, encoding: PositionEncoding = PositionEncoding.UTF16, max_bytes: int = 1_000_000
    ) -> None:
        self._lock = threading.RLock()
        self._docs: dict[str, Snapshot] = {}
        self._encoding = encoding
        self.max_bytes = max_bytes
        """Documents larger than this (UTF-8 bytes) are kept but not parsed."""

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
            return snap

    def close(self, uri: str) -> None:
        """didClose: forget `uri` (closing a uri that is not open does nothing)."""
        with self._lock:
            self._docs.pop(uri, None)

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
            tree = snap.tree
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
            return new

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
        tree = None
        if language is not None and data is not None and not too_large and not binary:
            parser = _parser(language)
            if parser is not None:
                tree = parser.parse(data) if old_tree is None else parser.parse(data, old_tree)
        return Snapshot(
            uri=uri,
            language_id=language_id,
            language=language,
            version=version,
            text=text,
            tree=tree,
            line_index=line_index,
            encoding=self._encoding,
            too_large=too_large,
            binary=binary,
        )


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
