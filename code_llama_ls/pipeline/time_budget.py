"""The time budget of a generation: past it, the user gets the lines written so far."""

from __future__ import annotations

import time


class TimeBudget:
    """Ends a generation that runs past `budget_ms` (0: never), at once.

    Past the budget, the lines completed so far are what the user gets
    (`cut`); when no line is complete yet, the whole words of the first one (a
    word it may end inside is dropped: a partial line can still be accepted
    word by word and typed on). On a CPU, a long or run-on first line (64
    tokens without a line break, a model repeating itself inside one word)
    took up to 2 s before, and waiting for a line's or a word's end 70-170 ms
    past the budget. It ends before a token that would finish past the
    budget (judged by the last token's time), so answers come within it.

    The first tokens always get half the budget, however long the prompt
    took (a cold prompt on a CPU: 1.5-2 s), so that a slow prompt still
    yields words: llama.cpp's `t_max_predict_ms` counts from the first token.
    """

    def __init__(self, budget_ms: int, started: float | None = None) -> None:
        began = time.perf_counter() if started is None else started
        self._budget_s = budget_ms / 1000
        self._deadline = began + self._budget_s if budget_ms > 0 else None
        self._last_token_at: float | None = None
        self.spent = False

    def __call__(self, text_so_far: str) -> bool:
        if self._deadline is None or self.spent:
            return self.spent
        now = time.perf_counter()
        if self._last_token_at is None:  # the first token
            self._deadline = max(self._deadline, now + self._budget_s / 2)
            step = 0.0
        else:
            step = now - self._last_token_at
        self._last_token_at = now
        # Ends before a token that would finish past the budget, not after it;
        # but not with nothing to show, unless the model is repeating itself.
        self.spent = now + step >= self._deadline and (
            bool(self.cut_text(text_so_far)) or _trailing_word(text_so_far) >= _RUN_ON_WORD
        )
        return self.spent

    def cut(self, text: str) -> str:
        """`text` as the budget leaves it (as it is when the budget did not end it)."""
        return self.cut_text(text) if self.spent else text

    @staticmethod
    def cut_text(text: str) -> str:
        """`text` up to its last line end, or the whole words of its first line."""
        if "\n" in text:
            return text[: text.rfind("\n")]
        return text.rstrip(_WORD_CHARS).rstrip()


_WORD_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
_RUN_ON_WORD = 32
"""A word this long is no identifier but a model repeating itself ("_line_on_line_on...")."""


def _trailing_word(text: str) -> int:
    """The length of the word `text` ends inside (0 at a word boundary)."""
    return len(text) - len(text.rstrip(_WORD_CHARS))
