"""How far a prompt reaches into its document: the text a token budget can use.

A window of the document that is longer than `tokens.max_chars(tok, budget)`
characters surely needs more ids than the budget, so the text before and
after the cursor is cut to that length before anything is copied, encoded
or split: a cursor in a 1 MB file then costs what one in a small file does.
The cut falls at a line start (the prompt's windows are whole lines, but for
the cursor's own), so the largest window that fits is exactly what it is on
the whole text; without a line break in range it falls mid-line.

The start of the reach moves in steps: the prompt's prefix window starts on
a grid counted from it (`prompt.py`), so a start that followed the cursor
would move that grid, and the prompt's first tokens, once per typed line.
A reach of at least MIN_STEPPED_REACH characters starts at the first line
start at or after a multiple of half the reach (`chars // 2`) of the text
below `offset - chars`: it moves once per half a reach typed, and reaches
between `chars` and `1.5 * chars` characters back. The end of the reach
follows the cursor: the suffix window is counted from the cursor, never
from the end of the reach, so where it ends changes no prompt.
"""

from __future__ import annotations

MIN_STEPPED_REACH = 1024
"""Shorter reaches (a budget of a few dozen tokens) start exactly `chars` back."""


def reach_start(text: str, offset: int, chars: int) -> int:
    """Where the text before `offset` that a prompt can use starts.

    The first line start at or after `offset - chars` (after "\\n", "\\r\\n"
    or a lone "\\r"), else `offset - chars` itself; 0 when that is the start.
    From MIN_STEPPED_REACH characters on, `offset - chars` is first rounded
    down to a multiple of `chars // 2`.
    """
    low = offset - chars
    if chars >= MIN_STEPPED_REACH:
        step = chars // 2
        low = low // step * step
    if low <= 0:
        return 0
    newline = text.find("\n", low - 1, offset)
    carriage = text.find("\r", low - 1, offset if newline < 0 else newline)
    if carriage >= 0 and carriage + 1 != newline:
        return carriage + 1  # a lone "\r" ends a line too
    return newline + 1 if newline >= 0 else low


def reach_end(text: str, offset: int, chars: int) -> int:
    """Where the text after `offset` that a prompt can use ends.

    After the last line break within `chars` characters of `offset`, else at
    `offset + chars`; the end of the text when that is within reach.
    """
    high = offset + chars
    if high >= len(text):
        return len(text)
    newline = text.rfind("\n", offset, high)
    carriage = text.rfind("\r", max(newline, offset), high)
    if carriage > newline:
        return carriage + 2 if text.startswith("\n", carriage + 1) else carriage + 1
    return newline + 1 if newline >= 0 else high
