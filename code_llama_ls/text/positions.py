"""Every conversion between LSP positions, Python string offsets and UTF-8 bytes.

LSP counts characters in UTF-16 code units by default (or UTF-8 / UTF-32
when negotiated), Python strings index code points, and tree-sitter counts
bytes. Nothing outside this module converts between them.
"""

from __future__ import annotations

import enum
import re
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate

from code_llama_ls.errors import InvalidPositionError

__all__ = [
    "LineIndex",
    "PositionEncoding",
    "negotiate",
    "str_offset_from_utf8",
    "ts_point",
    "utf8_byte_offset",
]


class PositionEncoding(enum.StrEnum):
    """The unit an LSP `Position.character` counts (LSP 3.17 `PositionEncodingKind`)."""

    UTF8 = "utf-8"
    UTF16 = "utf-16"
    UTF32 = "utf-32"

    @staticmethod
    def negotiate(client_offered: Sequence[str] | None) -> PositionEncoding:
        """The encoding the server announces, given `general.positionEncodings`.

        UTF-8 when the client offers it (tree-sitter counts bytes too, so fewer
        conversions); otherwise UTF-16, which LSP makes mandatory for every
        client. Items are compared with ==, so str-valued enum members (such as
        lsprotocol's PositionEncodingKind) work as they are; note that str() of
        such a member is its name ("PositionEncodingKind.Utf8"), not its value.
        """
        if client_offered and any(item == PositionEncoding.UTF8.value for item in client_offered):
            return PositionEncoding.UTF8
        return PositionEncoding.UTF16


negotiate = PositionEncoding.negotiate


def utf8_byte_offset(text: str, offset: int) -> int:
    """The UTF-8 byte offset of string index `offset` in `text`."""
    return len(text[:offset].encode("utf-8", "surrogatepass"))


def str_offset_from_utf8(text: str, byte_offset: int) -> int:
    """The string index of UTF-8 byte offset `byte_offset` in `text`."""
    return len(text.encode("utf-8", "surrogatepass")[:byte_offset].decode("utf-8", "ignore"))


def ts_point(text: str, offset: int) -> tuple[int, int]:
    """The tree-sitter Point of string index `offset`: (row, UTF-8 column).

    tree-sitter breaks rows only at "\\n" (a lone "\\r" is not a row break for
    it, unlike LSP), and its column counts bytes since the last "\\n".
    """
    row = text.count("\n", 0, offset)
    line_start = text.rfind("\n", 0, offset) + 1
    return row, len(text[line_start:offset].encode("utf-8", "surrogatepass"))


# str.splitlines() also breaks at these; LSP does not, so their presence sends
# LineIndex down the slower regex path.
_NON_LSP_BREAKS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_LSP_BREAK = re.compile(r"\r\n|\r|\n")


def advance_point(point: tuple[int, int], inserted: str) -> tuple[int, int]:
    """The tree-sitter Point reached by writing `inserted` at `point` (rows break at \\n)."""
    rows = inserted.count("\n")
    if rows == 0:
        return point[0], point[1] + len(inserted.encode("utf-8", "surrogatepass"))
    tail = inserted[inserted.rfind("\n") + 1 :]
    return point[0] + rows, len(tail.encode("utf-8", "surrogatepass"))


def _line_starts(text: str) -> list[int]:
    """String indices at which each LSP line starts (\\n, \\r\\n and lone \\r end lines)."""
    if any(ch in text for ch in _NON_LSP_BREAKS):
        return [0, *(m.end() for m in _LSP_BREAK.finditer(text))]
    # splitlines() runs in C: about 2 ms for 1 MB, several times the regex speed.
    starts = list(accumulate(map(len, text.splitlines(keepends=True)), initial=0))
    if text and text[-1] not in "\r\n":
        starts.pop()  # the last line has no terminator, so no line starts after it
    return starts


class LineIndex:
    """Line starts of one text, for converting LSP positions to string offsets and back.

    Built once per text version (O(n) in C); each conversion then costs
    O(log lines) plus the length of the one line involved. Immutable.
    """

    __slots__ = ("_ascii", "_starts", "_text")

    def __init__(self, text: str) -> None:
        self._text = text
        self._starts = _line_starts(text)
        # All three encodings agree on ASCII text: the common case skips encoding.
        self._ascii = text.isascii()

    @property
    def text(self) -> str:
        """The text this index describes."""
        return self._text

    @property
    def is_ascii(self) -> bool:
        """Whether the text is pure ASCII (string, UTF-8, UTF-16 and UTF-32 offsets agree)."""
        return self._ascii

    @property
    def line_count(self) -> int:
        """Number of LSP lines; a text ending in a line terminator has an empty last line."""
        return len(self._starts)

    def line_start(self, line: int) -> int:
        """String index where `line` starts."""
        return self._starts[line]

    def line_end(self, line: int) -> int:
        """String index where `line`'s content ends (before its terminator)."""
        if line + 1 >= len(self._starts):
            return len(self._text)
        nxt = self._starts[line + 1]
        return nxt - 2 if self._text.startswith("\r\n", nxt - 2) else nxt - 1

    def line_text(self, line: int) -> str:
        """The content of `line`, without its terminator."""
        return self._text[self._starts[line] : self.line_end(line)]

    def dominant_line_ending(self) -> str:
        """The most frequent terminator ("\\n", "\\r\\n" or "\\r"); "\\n" when there is none."""
        crlf = self._text.count("\r\n")
        lf = self._text.count("\n") - crlf
        cr = self._text.count("\r") - crlf
        if crlf > lf and crlf >= cr:
            return "\r\n"
        if cr > lf and cr > crlf:
            return "\r"
        return "\n"

    def offset_at(
        self, line: int, character: int, encoding: PositionEncoding, *, strict: bool
    ) -> int:
        """String index of the LSP position (`line`, `character`) counted in `encoding`.

        Strict (requests at a cursor): a position outside the document or past
        its line's end raises InvalidPositionError. Non-strict (didChange
        ranges): clamped as LSP specifies, a character past the line's end to
        the line's end and a line past the last to the end of the document.
        Negative values and a character that splits a code point raise in
        both modes.
        """
        if line < 0 or character < 0:
            raise InvalidPositionError(
                f"position line {line}, character {character}: negative values are not positions"
            )
        if line >= len(self._starts):
            if strict:
                raise InvalidPositionError(
                    f"position line {line}, character {character}: the document has "
                    f"{len(self._starts)} line(s)"
                )
            return len(self._text)
        start = self._starts[line]
        end = self.line_end(line)
        if self._ascii or encoding is PositionEncoding.UTF32:
            column = character
            length = end - start
        else:
            column, length = _column_to_index(self._text[start:end], character, encoding, line)
        if column > length:
            if strict:
                raise InvalidPositionError(
                    f"position line {line}, character {character}: past the end of the "
                    f"line ({_units(self._text[start:end], encoding, self._ascii)} "
                    f"{encoding.value} code units)"
                )
            column = length
        return start + column

    def position_at(self, offset: int, encoding: PositionEncoding) -> tuple[int, int]:
        """The LSP position (line, character in `encoding`) of string index `offset`.

        An offset inside a "\\r\\n" terminator maps to the end of its line.
        """
        if offset < 0 or offset > len(self._text):
            raise InvalidPositionError(
                f"offset {offset} is outside the document (length {len(self._text)})"
            )
        line = bisect_right(self._starts, offset) - 1
        start = self._starts[line]
        column_end = min(offset, self.line_end(line))
        return line, _units(self._text[start:column_end], encoding, self._ascii)


def _units(segment: str, encoding: PositionEncoding, ascii_text: bool) -> int:
    """Length of `segment` in the code units of `encoding`."""
    if ascii_text or encoding is PositionEncoding.UTF32:
        return len(segment)
    if encoding is PositionEncoding.UTF16:
        return len(segment.encode("utf-16-le", "surrogatepass")) // 2
    return len(segment.encode("utf-8", "surrogatepass"))


def _column_to_index(
    line_text: str, character: int, encoding: PositionEncoding, line: int
) -> tuple[int, int]:
    """(string index of `character` in `line_text`, line length), both in code points.

    The index is len(line_text) + 1 when `character` lies past the line's end,
    so callers can tell "at the end" from "beyond it". Raises
    InvalidPositionError when `character` falls inside a code point.
    """
    if line_text.isascii():
        return min(character, len(line_text) + 1), len(line_text)
    if encoding is PositionEncoding.UTF16:
        data = line_text.encode("utf-16-le", "surrogatepass")
        unit = 2
    else:
        data = line_text.encode("utf-8", "surrogatepass")
        unit = 1
    cut = character * unit
    if cut > len(data):
        return len(line_text) + 1, len(line_text)
    if 0 < cut < len(data) and _splits(data, cut, encoding):
        raise InvalidPositionError(
            f"position line {line}, character {character}: splits a character "
            f"({encoding.value} offset inside a multi-unit code point)"
        )
    codec = "utf-16-le" if unit == 2 else "utf-8"
    return len(data[:cut].decode(codec, "surrogatepass")), len(line_text)


def _splits(data: bytes, cut: int, encoding: PositionEncoding) -> bool:
    """Whether byte offset `cut` (0 < cut < len(data)) falls inside an encoded code point."""
    if encoding is PositionEncoding.UTF16:
        # Inside a pair when the unit before the cut is a high surrogate and the
        # one after it a low surrogate (a lone surrogate is its own character).
        before = int.from_bytes(data[cut - 2 : cut], "little")
        after = int.from_bytes(data[cut : cut + 2], "little")
        return 0xD800 <= before <= 0xDBFF and 0xDC00 <= after <= 0xDFFF
    return (data[cut] & 0xC0) == 0x80  # a UTF-8 continuation byte
