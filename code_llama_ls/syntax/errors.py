"""Count the syntax errors of a document with a completion inserted at the cursor.

Post-processing asks "does this text, inserted here, leave the file with more
ERROR/MISSING nodes than it has now?" for a few candidate cuts of one
completion. Each question is an incremental parse: the document's own tree is
copied, told about the insertion, and reparsed, so only the region around the
cursor is parsed again. Counting walks only into subtrees that hold an error.
"""

from __future__ import annotations

import tree_sitter

from code_llama_ls.syntax.languages import parser_for
from code_llama_ls.text.positions import advance_point, ts_point


def count_errors(node: tree_sitter.Node) -> int:
    """ERROR and MISSING nodes in the tree under `node` (itself included)."""
    if not node.has_error:
        return 0
    count = 0
    pending = [node]
    while pending:
        current = pending.pop()
        if current.is_error or current.is_missing:
            count += 1
        pending.extend(child for child in current.children if child.has_error)
    return count


class InsertionParser:
    """Parses `text` with something inserted at string index `offset`, reusing `tree`.

    `tree` is the parse of `text` (which may use CRLF; inserted text is LF and
    converted when `crlf`). The document is encoded on the first question
    only. Not thread-safe: use one per request.
    """

    def __init__(
        self, language: str, tree: tree_sitter.Tree, text: str, offset: int, crlf: bool
    ) -> None:
        self._language, self._tree, self._crlf = language, tree, crlf
        self._text, self._offset = text, offset
        # The document's bytes before and after the cursor, and the cursor's Point.
        self._split: tuple[bytes, bytes, tuple[int, int]] | None = None
        self._counts: dict[str, int] = {}

    def errors_with(self, inserted: str) -> int:
        """ERROR/MISSING nodes in the document with `inserted` (LF line endings) at the cursor."""
        known = self._counts.get(inserted)
        if known is None:
            known = self._counts[inserted] = count_errors(self._parse(inserted).root_node)
        return known

    def _parse(self, inserted: str) -> tree_sitter.Tree:
        if not inserted:
            return self._tree
        if self._split is None:
            text, offset = self._text, self._offset
            self._split = (
                text[:offset].encode("utf-8", "surrogatepass"),
                text[offset:].encode("utf-8", "surrogatepass"),
                ts_point(text, offset),
            )
        before, after, point = self._split
        native = inserted.replace("\n", "\r\n") if self._crlf else inserted
        data = native.encode("utf-8", "surrogatepass")
        edited = self._tree.copy()
        edited.edit(
            start_byte=len(before),
            old_end_byte=len(before),
            new_end_byte=len(before) + len(data),
            start_point=point,
            old_end_point=point,
            new_end_point=advance_point(point, native),
        )
        return parser_for(self._language).parse(before + data + after, edited)
