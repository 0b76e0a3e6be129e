"""Position conversions: LSP (UTF-8/16/32) <-> Python string offsets <-> tree-sitter bytes."""

from __future__ import annotations

import enum

import pytest

from code_llama_ls.errors import InvalidPositionError, InvalidRequestError
from code_llama_ls.text.positions import (
    LineIndex,
    PositionEncoding,
    negotiate,
    str_offset_from_utf8,
    ts_point,
    utf8_byte_offset,
)

U8 = PositionEncoding.UTF8
U16 = PositionEncoding.UTF16
U32 = PositionEncoding.UTF32
ALL = (U8, U16, U32)

SAMPLES = [
    "",
    "abc",
    "abc\n",
    "a😀b\nc",
    "e\u0301x\n中文z\r\nq",
    "ab\r\ncd\r\n",
    "a\rb\rc",
    "a\r\nb\rc\nd\n\r",
    "😀\n\n😀😀\r",
    "tab\there\u2028still one line\x0cand this",
    "lone \ud83d surrogate\n",
]


def units(s: str, encoding: PositionEncoding) -> int:
    """Reference length in code units, by a per-character loop."""
    if encoding is U32:
        return len(s)
    if encoding is U16:
        return sum(2 if ord(c) > 0xFFFF else 1 for c in s)
    return sum(
        1 if ord(c) < 0x80 else 2 if ord(c) < 0x800 else 3 if ord(c) < 0x10000 else 4 for c in s
    )


# --- negotiation -------------------------------------------------------------


def test_encoding_values() -> None:
    assert [e.value for e in PositionEncoding] == ["utf-8", "utf-16", "utf-32"]
    assert PositionEncoding("utf-16") is U16
    assert isinstance(U8, str)
    assert U8 == "utf-8"


@pytest.mark.parametrize(
    ("offered", "expected"),
    [
        (None, U16),
        ([], U16),
        (["utf-16"], U16),
        (["utf-32"], U16),
        (["utf-32", "utf-8"], U8),
        (["utf-8", "utf-16"], U8),
        (("utf-8",), U8),
    ],
)
def test_negotiate(offered: list[str] | None, expected: PositionEncoding) -> None:
    assert negotiate(offered) is expected
    assert PositionEncoding.negotiate(offered) is expected


def test_negotiate_accepts_str_enum_members() -> None:
    class Kind(str, enum.Enum):  # noqa: UP042 -- the shape of lsprotocol's PositionEncodingKind
        Utf8 = "utf-8"
        Utf16 = "utf-16"

    assert negotiate([Kind.Utf16, Kind.Utf8]) is U8
    assert negotiate([Kind.Utf16]) is U16
    assert [e.value for e in PositionEncoding] == ["utf-8", "utf-16", "utf-32"]  # no extra member


# --- line splitting -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ("", [""]),
        ("abc", ["abc"]),
        ("abc\n", ["abc", ""]),
        ("a\nb", ["a", "b"]),
        ("ab\r\ncd\r\n", ["ab", "cd", ""]),
        ("a\rb\rc", ["a", "b", "c"]),
        ("a\r\nb\rc\nd\n\r", ["a", "b", "c", "d", "", ""]),
        ("\n", ["", ""]),
        ("\r\n\r\n", ["", "", ""]),
        ("\n\r", ["", "", ""]),
        ("x\u2028y\x0bz\x0c\x1c\x85w", ["x\u2028y\x0bz\x0c\x1c\x85w"]),
        ("x\u2028y\r\nz", ["x\u2028y", "z"]),
    ],
)
def test_lines(text: str, lines: list[str]) -> None:
    index = LineIndex(text)
    assert index.line_count == len(lines)
    assert [index.line_text(i) for i in range(index.line_count)] == lines
    assert index.text is text


def test_line_start_end_crlf() -> None:
    index = LineIndex("ab\r\ncd\ref\n")
    assert [index.line_start(i) for i in range(4)] == [0, 4, 7, 10]
    assert [index.line_end(i) for i in range(4)] == [2, 6, 9, 10]


@pytest.mark.parametrize(
    ("text", "ending"),
    [
        ("", "\n"),
        ("a", "\n"),
        ("a\nb\n", "\n"),
        ("a\r\nb\r\n", "\r\n"),
        ("a\r\nb\r\nc\n", "\r\n"),
        ("a\r\nb\nc\n", "\n"),
        ("a\rb\r", "\r"),
    ],
)
def test_dominant_line_ending(text: str, ending: str) -> None:
    assert LineIndex(text).dominant_line_ending() == ending


# --- offset_at / position_at ----------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "character", "offset"),
    [
        # "a😀b": 😀 is 1 code point, 2 UTF-16 units, 4 UTF-8 bytes.
        (U16, 0, 0),
        (U16, 1, 1),
        (U16, 3, 2),
        (U16, 4, 3),
        (U8, 1, 1),
        (U8, 5, 2),
        (U8, 6, 3),
        (U32, 2, 2),
        (U32, 3, 3),
    ],
)
def test_offset_at_emoji(encoding: PositionEncoding, character: int, offset: int) -> None:
    index = LineIndex("a😀b\nc")
    assert index.offset_at(0, character, encoding, strict=True) == offset
    assert index.position_at(offset, encoding) == (0, character)


@pytest.mark.parametrize(
    ("encoding", "character", "offset"),
    [
        # line 1 is "中文z": CJK is 1 UTF-16 unit and 3 UTF-8 bytes each.
        (U16, 2, 6),
        (U8, 6, 6),
        (U32, 2, 6),
        (U16, 3, 7),
        (U8, 7, 7),
        (U32, 3, 7),
    ],
)
def test_offset_at_cjk_after_combining_line(
    encoding: PositionEncoding, character: int, offset: int
) -> None:
    # line 0 is "e\u0301x" (combining acute: its own code point, 2 UTF-8 bytes)
    index = LineIndex("e\u0301x\n中文z\r\nq")
    assert index.offset_at(1, character, encoding, strict=True) == offset
    assert index.position_at(offset, encoding) == (1, character)


@pytest.mark.parametrize(("encoding", "x_character"), [(U16, 2), (U8, 3), (U32, 2)])
def test_combining_character(encoding: PositionEncoding, x_character: int) -> None:
    index = LineIndex("e\u0301x\n")
    assert index.offset_at(0, x_character, encoding, strict=True) == 2
    assert index.offset_at(0, 1, encoding, strict=True) == 1  # between e and its accent


@pytest.mark.parametrize("text", SAMPLES)
@pytest.mark.parametrize("encoding", ALL)
def test_round_trip_every_offset(text: str, encoding: PositionEncoding) -> None:
    index = LineIndex(text)
    for offset in range(len(text) + 1):
        line, character = index.position_at(offset, encoding)
        start = index.line_start(line)
        if offset > index.line_end(line):  # between "\r" and "\n": maps to the line's end
            assert text[offset - 1 : offset + 1] == "\r\n"
            assert index.offset_at(line, character, encoding, strict=True) == offset - 1
            continue
        assert character == units(text[start:offset], encoding)
        assert index.offset_at(line, character, encoding, strict=True) == offset
        assert index.offset_at(line, character, encoding, strict=False) == offset


@pytest.mark.parametrize("encoding", ALL)
def test_end_of_each_line_is_valid(encoding: PositionEncoding) -> None:
    text = "😀\r\nab\rc😀\n"
    index = LineIndex(text)
    ends = [
        index.offset_at(i, units(index.line_text(i), encoding), encoding, strict=True)
        for i in range(index.line_count)
    ]
    assert ends == [1, 5, 8, 9]


def test_empty_text() -> None:
    index = LineIndex("")
    assert index.line_count == 1
    for encoding in ALL:
        assert index.offset_at(0, 0, encoding, strict=True) == 0
        assert index.position_at(0, encoding) == (0, 0)
        assert index.offset_at(0, 5, encoding, strict=False) == 0
        assert index.offset_at(3, 0, encoding, strict=False) == 0
        with pytest.raises(InvalidPositionError):
            index.offset_at(0, 1, encoding, strict=True)
        with pytest.raises(InvalidPositionError):
            index.offset_at(1, 0, encoding, strict=True)


def test_trailing_newline_last_line() -> None:
    with_nl = LineIndex("ab\n")
    assert with_nl.offset_at(1, 0, U16, strict=True) == 3
    assert with_nl.position_at(3, U16) == (1, 0)
    without = LineIndex("ab")
    assert without.position_at(2, U16) == (0, 2)
    with pytest.raises(InvalidPositionError, match="line 1, character 0"):
        without.offset_at(1, 0, U16, strict=True)


@pytest.mark.parametrize(
    ("line", "character", "encoding", "fragment"),
    [
        (-1, 0, U16, "line -1, character 0"),
        (0, -1, U16, "line 0, character -1"),
        (3, 0, U16, "line 3, character 0"),  # 3 lines: the last is empty
        (9, 9, U8, "line 9, character 9"),
        (0, 5, U16, "line 0, character 5"),  # "a😀b" is 4 UTF-16 units
        (0, 7, U8, "line 0, character 7"),  # ... and 6 UTF-8 bytes
        (0, 4, U32, "line 0, character 4"),  # ... and 3 code points
        (0, 2, U16, "splits a character"),  # inside the surrogate pair
        (0, 2, U8, "splits a character"),  # inside the 4-byte sequence
        (0, 3, U8, "splits a character"),
        (0, 4, U8, "splits a character"),
        (1, 2, U16, "line 1, character 2"),  # "c\r" -> 1 unit, "\r" is not content
    ],
)
def test_strict_errors(
    line: int, character: int, encoding: PositionEncoding, fragment: str
) -> None:
    index = LineIndex("a😀b\r\nc\r\n")
    with pytest.raises(InvalidPositionError, match=fragment) as info:
        index.offset_at(line, character, encoding, strict=True)
    assert isinstance(info.value, InvalidRequestError)


def test_error_message_names_line_length() -> None:
    index = LineIndex("a😀b\n")
    with pytest.raises(InvalidPositionError) as info:
        index.offset_at(0, 9, U16, strict=True)
    assert str(info.value) == (
        "position line 0, character 9: past the end of the line (4 utf-16 code units)"
    )


@pytest.mark.parametrize(
    ("line", "character", "encoding", "offset"),
    [
        (0, 99, U16, 3),  # past the line's end -> the end of "a😀b", before "\r\n"
        (0, 99, U8, 3),
        (0, 99, U32, 3),
        (1, 1, U16, 6),  # "c" then "\r\n"
        (1, 2, U16, 6),
        (2, 0, U16, 8),  # the empty last line
        (2, 5, U16, 8),
        (3, 0, U16, 8),  # past the last line -> the end of the document
        (100, 100, U8, 8),
    ],
)
def test_non_strict_clamps(
    line: int, character: int, encoding: PositionEncoding, offset: int
) -> None:
    index = LineIndex("a😀b\r\nc\r\n")
    assert index.offset_at(line, character, encoding, strict=False) == offset


@pytest.mark.parametrize(("character", "encoding"), [(2, U16), (3, U8)])
def test_non_strict_still_rejects_split_characters(
    character: int, encoding: PositionEncoding
) -> None:
    index = LineIndex("a😀b")
    with pytest.raises(InvalidPositionError, match="splits a character"):
        index.offset_at(0, character, encoding, strict=False)


def test_non_strict_rejects_negative() -> None:
    index = LineIndex("abc")
    with pytest.raises(InvalidPositionError):
        index.offset_at(0, -1, U16, strict=False)
    with pytest.raises(InvalidPositionError):
        index.offset_at(-1, 0, U16, strict=False)


def test_lone_surrogate_is_one_unit() -> None:
    index = LineIndex("a\ud83db")  # a lone high surrogate (JSON can carry one)
    assert index.offset_at(0, 2, U16, strict=True) == 2
    assert index.position_at(3, U16) == (0, 3)
    assert index.offset_at(0, 4, U8, strict=True) == 2  # surrogatepass: 3 bytes


def test_position_at_out_of_range() -> None:
    index = LineIndex("ab")
    with pytest.raises(InvalidPositionError, match="offset 3"):
        index.position_at(3, U16)
    with pytest.raises(InvalidPositionError, match="offset -1"):
        index.position_at(-1, U16)


def test_position_at_inside_crlf() -> None:
    index = LineIndex("ab\r\ncd")
    assert index.position_at(2, U16) == (0, 2)
    assert index.position_at(3, U16) == (0, 2)
    assert index.position_at(4, U16) == (1, 0)


def test_lone_cr_lines() -> None:
    index = LineIndex("a😀\rb\rc")
    assert index.line_count == 3
    assert index.offset_at(1, 0, U16, strict=True) == 3
    assert index.offset_at(2, 1, U8, strict=True) == 6
    assert index.position_at(5, U16) == (2, 0)


def test_large_file_lookup() -> None:
    text = "x = 1\n" * 50_000 + "y = '😀'\n"
    index = LineIndex(text)
    assert index.line_count == 50_002
    assert index.offset_at(50_000, 7, U16, strict=True) == 300_000 + 6
    assert index.position_at(300_000 + 6, U8) == (50_000, 9)
    assert not index.is_ascii
    assert LineIndex("plain").is_ascii


# --- bytes and tree-sitter points -------------------------------------------------


def test_utf8_helpers() -> None:
    text = "a😀é\n中"
    assert [utf8_byte_offset(text, i) for i in range(len(text) + 1)] == [0, 1, 5, 7, 8, 11]
    assert [str_offset_from_utf8(text, b) for b in (0, 1, 5, 7, 8, 11)] == [0, 1, 2, 3, 4, 5]
    assert str_offset_from_utf8(text, 3) == 1  # inside 😀: the code points wholly before it


@pytest.mark.parametrize(
    ("text", "offset", "point"),
    [
        ("", 0, (0, 0)),
        ("abc", 2, (0, 2)),
        ("a\nbc", 2, (1, 0)),
        ("a\nbc", 4, (1, 2)),
        ("a\r\nb😀c", 5, (1, 5)),  # CRLF: one row; 😀 is 4 bytes
        ("a\r\nb", 2, (0, 2)),  # between \r and \n: still row 0, "\r" counted
        ("a\rb", 3, (0, 3)),  # lone CR is no row break for tree-sitter
        ("中\n\n文x", 5, (2, 4)),
    ],
)
def test_ts_point(text: str, offset: int, point: tuple[int, int]) -> None:
    assert ts_point(text, offset) == point
