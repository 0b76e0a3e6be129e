"""Every conversion between LSP positions, Python string offsets and UTF-8 bytes.

LSP counts characters in UTF-16 code units by default (or UTF-8 / UTF-32
when negotiated), Python strings index code points, and tree-sitter counts
bytes. Nothing outside this module converts between them.
"""

from __future__ import annotations


def utf8_byte_offset(text: str, offset: int) -> int:
    """The UTF-8 byte offset of string index `offset` in `text`."""
    return len(text[:offset].encode("utf-8", "surrogatepass"))


def str_offset_from_utf8(text: str, byte_offset: int) -> int:
    """The string index of UTF-8 byte offset `byte_offset` in `text`."""
    return len(text.encode("utf-8", "surrogatepass")[:byte_offset].decode("utf-8", "ignore"))
