"""The prompt's budget in tokens, and how the local window and cross-file context share it.

The budget is the context (configured, or the model's) minus the answer,
capped on a CPU. The context gets what the local window is estimated not to
need: the window needs at most LOCAL_SHARE of the budget, and its size is
estimated from the document before anything is encoded (`ContextShare`).
"""

from __future__ import annotations

from dataclasses import dataclass

from code_llama_ls.engine.base import Engine
from code_llama_ls.errors import PromptError

CPU_PROMPT_TOKENS = 2048
"""The default prompt cap on a CPU: prefilling more there takes seconds per keystroke."""
LOCAL_SHARE = 0.5
"""Of the prompt's budget, what the local window gets before cross-file context is added."""
REACH_CHARS_PER_TOKEN = 3
"""Characters a token, to estimate how far the local window reaches: generous, so that
snippets of the cursor's file just outside the window are allowed (the window yields)."""
SIZE_CHARS_PER_TOKEN = 2.5
"""Characters a token, to estimate what a whole short document needs: stingy, so the
window is not starved."""
SUFFIX_PART = 4
"""The suffix reaches a SUFFIX_PART-th of the prefix's reach."""


def prompt_budget(engine: Engine, context_tokens: int | None, max_new_tokens: int) -> int:
    """Tokens the prompt may use: the context (configured or the model's) minus the answer.

    Without a configured context, a prompt on a CPU is capped at CPU_PROMPT_TOKENS.
    """
    context = min(context_tokens or engine.context_length, engine.context_length)
    budget = context - max_new_tokens
    if budget < 16:
        raise PromptError(
            f"a context of {context} tokens leaves no room for a prompt after "
            f"{max_new_tokens} new tokens: lower maxNewTokens or raise contextTokens"
        )
    if context_tokens is None and engine.device == "cpu":
        budget = min(budget, CPU_PROMPT_TOKENS)
    return budget


@dataclass(frozen=True)
class ContextShare:
    """The local window's estimated rows and needs, and what is left for the context."""

    local_lines: tuple[int, int]
    """First and last row the local window is estimated to show."""
    context_tokens: int
    """Tokens the cross-file context may use."""

    @classmethod
    def of(cls, text: str, cursor: int, cursor_row: int, available: int) -> ContextShare:
        """The share for a cursor at `cursor` (row `cursor_row`) of `text` (LF line breaks)."""
        share = int(available * LOCAL_SHARE)
        reach = share * REACH_CHARS_PER_TOKEN
        local_lines = (
            cursor_row - text.count("\n", max(cursor - reach, 0), cursor),
            cursor_row + text.count("\n", cursor, cursor + reach // SUFFIX_PART),
        )
        needed = min(share, int(len(text) / SIZE_CHARS_PER_TOKEN) + 1)
        return cls(local_lines, available - needed)
