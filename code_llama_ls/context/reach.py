"""How far a prompt reaches into its document: the text a token budget can use.

A window of the document that is longer than `tokens.max_chars(tok, budget)`
characters surely needs more ids than the budget, so the text before and
after the cursor is cut to that length before anything is copied, encoded
or split: a cursor in a 1 MB file then costs what one in a small file does.
The cut falls at a line start (the prompt's windows are whole lines, but for
the cursor's own), so which lines fit is exactly what it was on the whole
text; without a line break in range it falls mid-line.
"""

from __future__ import annotations


def reach_start(text: str, offset: int, chars: int) -> int:
    """Where the text before `offset` that a prompt can use starts.

    The first line start at or after `offset - chars` (after "\\n", "\\r\\n"
    or a lone "\\r"), else `offset - chars` itself; 0 when that is the start.
    """
    low = offset - chars
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
