"""The last stage: from a generation's text to the text to insert at the cursor.

Token healing's echo taken off, the time budget's cut, post-processing
(`postprocess.py`: stops, brackets, the suffix, syntax) against the
document after the cursor, and the document's own line breaks. The same
for the best suggestion and for each alternative.
"""

from __future__ import annotations

from code_llama_ls.pipeline.postprocess import postprocess
from code_llama_ls.pipeline.prompt import Prompt, PromptFormat, normalize_newlines
from code_llama_ls.pipeline.request import CompletionRequest
from code_llama_ls.pipeline.time_budget import TimeBudget
from code_llama_ls.syntax.cursor import CursorContext
from code_llama_ls.syntax.errors import InsertionParser
from code_llama_ls.tokens.tokenizer import TokenizerLike, max_chars


class Finisher:
    """Post-processes generated text for one request (the suffix read once)."""

    def __init__(
        self,
        request: CompletionRequest,
        tokenizer: TokenizerLike,
        cursor: CursorContext,
        prompt: Prompt,
        prompt_budget: int,
    ) -> None:
        """`prompt_budget`: the prompt's tokens at most (post-processing reads no further
        after the cursor than the prompt could show)."""
        snapshot, offset = request.snapshot, request.offset
        self.cursor = cursor
        self.prompt = prompt
        self.sees_suffix = prompt.format is not PromptFormat.LEFT_TO_RIGHT
        reach = max_chars(tokenizer, prompt_budget)
        self._suffix = normalize_newlines(snapshot.text[offset : offset + reach])
        self._crlf = snapshot.uses_crlf
        self._parse: InsertionParser | None = None
        if snapshot.tree is not None and snapshot.language is not None:
            self._parse = InsertionParser(
                snapshot.language, snapshot.tree, snapshot.text, offset, snapshot.uses_crlf
            )

    def __call__(self, generated: str, budget: TimeBudget) -> str:
        """The text to insert for `generated` (the model's text, cut by `budget` if spent)."""
        text = postprocess(
            budget.cut(self.prompt.strip_healed(generated)),
            self.cursor,
            self._suffix,
            sees_suffix=self.sees_suffix,
            parse=self._parse,
        )
        return text.replace("\n", "\r\n") if self._crlf else text
