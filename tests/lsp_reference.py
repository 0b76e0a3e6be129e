"""An independent reference of LSP's document rules, and random edits to check ours against.

Written from the specification, sharing no code with `code_llama_ls.text.positions`:
lines end at "\\n", "\\r\\n" or "\\r" only; a character counts UTF-16 code
units or UTF-8 bytes as negotiated; a character past its line's end means
the line's end and a line past the last means the end of the document.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

_BREAK = re.compile(r"\r\n|\r|\n")

# What gets typed: ASCII, accents, astral characters (two UTF-16 units, four
# UTF-8 bytes), every LSP line break, and characters that str.splitlines
# wrongly treats as line breaks.
ALPHABET = ["a", "b", "x", " ", "é", "ß", "中", "😀", "𝄞", "\n", "\r\n", "\r", "\t", "\f", "\v"]
ALPHABET += ["\u2028", "\u2029", "\x85", "\x1c", "{", "}", "(", ")", "def ", "    "]


def _width(char: str, encoding: str) -> int:
    if encoding == "utf-16":
        return 2 if ord(char) > 0xFFFF else 1
    if encoding == "utf-8":
        return len(char.encode("utf-8"))
    return 1


def lines_of(text: str) -> list[tuple[int, int]]:
    """(start, end of content) of every LSP line of `text`."""
    spans, start = [], 0
    for match in _BREAK.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return spans


def offset(text: str, line: int, character: int, encoding: str) -> int:
    """The string index of an LSP position, clamped as didChange ranges are."""
    spans = lines_of(text)
    if line >= len(spans):
        return len(text)
    start, end = spans[line]
    units = 0
    for index in range(start, end):
        units += _width(text[index], encoding)
        if units > character:
            return index
    return end


def apply(text: str, change: dict[str, Any], encoding: str) -> str:
    """`text` after one `contentChanges` entry."""
    if "range" not in change:
        return str(change["text"])
    start = change["range"]["start"]
    end = change["range"]["end"]
    first = offset(text, start["line"], start["character"], encoding)
    last = offset(text, end["line"], end["character"], encoding)
    return text[:first] + change["text"] + text[last:]


@dataclass
class EditMaker:
    """Random `contentChanges` entries for a text, positions on character boundaries."""

    rng: random.Random
    encoding: str

    def position(self, text: str) -> dict[str, int]:
        spans = lines_of(text)
        line = self.rng.randrange(len(spans) + 2)  # sometimes past the last line
        if line >= len(spans):
            return {"line": line, "character": self.rng.randrange(4)}
        start, end = spans[line]
        widths = [_width(char, self.encoding) for char in text[start:end]]
        if self.rng.random() < 0.15:  # past the line's end
            return {"line": line, "character": sum(widths) + self.rng.randrange(1, 6)}
        cut = self.rng.randrange(len(widths) + 1)
        return {"line": line, "character": sum(widths[:cut])}

    def typed(self) -> str:
        return "".join(self.rng.choice(ALPHABET) for _ in range(self.rng.choice((0, 1, 1, 2, 5))))

    def change(self, text: str) -> dict[str, Any]:
        if self.rng.random() < 0.02:
            return {"text": "".join(self.typed() for _ in range(20))}
        a, b = sorted(
            (self.position(text), self.position(text)),
            key=lambda p: (offset(text, p["line"], p["character"], self.encoding), p["line"]),
        )
        if self.rng.random() < 0.5:
            b = a  # an insertion
        return {"range": {"start": a, "end": b}, "text": self.typed()}
