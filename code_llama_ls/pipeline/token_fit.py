"""Cutting text to a token limit: the searches that size a prompt's windows.

Nothing here knows a model's special tokens or a prompt's layout; each
function takes the text, an encoder and a limit in ids, and `prompt.py`
decides which windows to offer. `max_fitting` finds the largest of a growing
series of windows (`Windows`, scanned lazily) that encodes within the limit
in a handful of encodes; `fit_line` cuts one over-long line at a token
boundary; `last_fitting` bisects over line marks whose counts come cheaply
from cached pieces (`tokens/pieces.py`).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence

from code_llama_ls.tokens.pieces import Encoder
from code_llama_ls.tokens.tokenizer import TokenizerLike, decode_continuation

__all__ = ["Windows", "fit_line", "last_fitting", "max_fitting"]

# Token boundaries tried when a single line must be cut, before cutting by characters.
_CUT_TRIES = 16
# Characters of the first, small window measured to learn the characters per token.
_SAMPLE_CHARS = 2048


class Windows:
    """Candidate windows k = 0, 1, 2, ... of growing size, found lazily line by line.

    `mark` is where window k ends (a suffix) or starts (a prefix), `size`
    turns a mark into the window's length, `step` gives the next mark (None
    at the end of the text). Windows longer than `cap` characters are never
    listed: they cannot fit. Lines are only scanned as far as the search
    looks, so a 1 MB file costs no more than a small one.
    """

    def __init__(
        self, first: int, step: Callable[[int], int | None], size: Callable[[int], int], cap: int
    ) -> None:
        self.marks = [first]
        self._step, self._size, self._cap = step, size, cap
        self.done = False

    def chars(self, k: int) -> int:
        return self._size(self.marks[k])

    def _extend(self) -> bool:
        nxt = None if self.done else self._step(self.marks[-1])
        if nxt is None or self._size(nxt) > self._cap:
            self.done = True
            return False
        self.marks.append(nxt)
        return True

    def last_at_most(self, target: float, lo: int, hi: int | None) -> int | None:
        """Largest k in [lo, hi) with chars(k) <= target, else lo; None when lo is past the end."""
        while (hi is None or len(self.marks) < hi) and (
            len(self.marks) <= lo or self.chars(len(self.marks) - 1) <= target
        ):
            if not self._extend():
                break
        top = len(self.marks) if hi is None else min(hi, len(self.marks))
        if lo >= top:
            return None
        k = bisect.bisect_right(range(top), target, lo=lo, key=self.chars) - 1
        return max(k, lo)


def max_fitting(
    windows: Windows, measure: Callable[[int], list[int]], limit: int
) -> tuple[int, list[int]]:
    """Largest k whose window encodes in <= limit ids, and those ids.

    The token count is assumed nondecreasing in k, and window 0 must fit.
    A small sample gives the characters per token, an extrapolation
    brackets the answer, and regula falsi (Illinois variant) on characters
    closes the bracket: typically 4-6 encodes, none much longer than the
    window itself.
    """
    lo, lo_ids = 0, measure(0)
    hi: int | None = None  # the smallest k known not to fit
    goal = limit + 0.5  # the boundary lies between counts limit and limit + 1
    f_lo, f_hi = len(lo_ids) - goal, 0.0  # signed distances to the goal (Illinois-weighted)
    ratio = 0.0  # characters per token, once measured
    last_side = 0  # +1: the last step moved hi, -1: it moved lo
    while hi is None or hi - lo > 1:
        if hi is not None:  # both ends known: false position
            target = windows.chars(lo) - f_lo * (windows.chars(hi) - windows.chars(lo)) / (
                f_hi - f_lo
            )
        elif ratio == 0.0:  # a small sample first, to learn the ratio
            target = windows.chars(lo) + _SAMPLE_CHARS
        else:  # aim just past the limit, to bracket it
            target = windows.chars(lo) + ((limit - len(lo_ids)) * 1.01 + 2) * ratio
        k = windows.last_at_most(target, lo + 1, hi)
        if k is None:  # every window fits
            break
        ids = measure(k)
        if ids:
            ratio = windows.chars(k) / len(ids)
        if len(ids) <= limit:
            lo, lo_ids, f_lo = k, ids, len(ids) - goal
            f_hi = f_hi / 2 if last_side == -1 else f_hi
            last_side = -1
        else:
            hi, f_hi = k, len(ids) - goal
            f_lo = f_lo / 2 if last_side == 1 else f_lo
            last_side = 1
    return lo, lo_ids


def _grow(text: str, limit: int, encode: Encoder, *, from_end: bool) -> tuple[str, list[int]]:
    """A piece of `text` at its start or end, grown until it exceeds `limit` ids or is whole."""
    size = min(len(text), 4 * limit + 16)
    while True:
        piece = text[len(text) - size :] if from_end else text[:size]
        ids = encode(piece)
        if len(ids) > limit + 8 or size == len(text):
            return piece, ids
        size = min(len(text), size * 2)


def fit_line(
    tok: TokenizerLike, line: str, limit: int, encode: Encoder, *, keep_end: bool
) -> tuple[str, list[int]]:
    """One line, cut at a token boundary to <= limit ids when it is too long.

    keep_end: keep the end of the line (the cursor line of a prefix), else its start.
    """
    if limit <= 0 or not line:
        return "", []
    piece, ids = _grow(line, limit, encode, from_end=keep_end)
    if len(ids) <= limit and piece == line:
        return line, ids
    top = min(limit, len(ids))
    for keep in range(top, max(top - _CUT_TRIES, 0), -1):
        kept = ids[len(ids) - keep :] if keep_end else ids[:keep]
        text = decode_continuation(tok, kept)
        if not text or not (line.endswith(text) if keep_end else line.startswith(text)):
            continue  # a cut inside a multi-byte character or a dummy space
        text_ids = encode(text)
        if len(text_ids) <= limit:
            return text, text_ids
    # A decoder that does not give the text back: cut by characters instead.
    size = limit // 2
    while size > 0:
        text = line[len(line) - size :] if keep_end else line[:size]
        text_ids = encode(text)
        if len(text_ids) <= limit:
            return text, text_ids
        size //= 2
    return "", []


def last_fitting(marks: Sequence[int], count: Callable[[int], int], limit: int) -> int:
    """The last k with count(marks[k]) <= limit; marks[0] must fit, counts never shrink."""
    lo, hi = 0, len(marks)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if count(marks[mid]) <= limit:
            lo = mid
        else:
            hi = mid
    return lo
