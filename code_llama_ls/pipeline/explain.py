"""Explain selection: pick the code, ask the model in its chat format, stream the answer.

An empty selection means the definition around the cursor (found with
tree-sitter), or the cursor's line when there is none. The explanation is
Markdown; `on_text` receives the text so far as it is written, for
work-done progress. Knows nothing of LSP.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from code_llama_ls.cancel import CancelToken
from code_llama_ls.config import EngineSettings, Settings
from code_llama_ls.engine.base import Engine, GenerationParams
from code_llama_ls.pipeline.budget import prompt_budget
from code_llama_ls.pipeline.prompt import build_chat_prompt, normalize_newlines
from code_llama_ls.syntax.definitions import enclosing_definition
from code_llama_ls.text.documents import Snapshot
from code_llama_ls.text.positions import str_offset_from_utf8, utf8_byte_offset

log = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You are an expert software engineer. Explain code to a colleague: what it does, "
    "how, and anything surprising. Answer in concise Markdown."
)


@dataclass(frozen=True)
class ExplainOptions:
    """The settings one explanation needs (`from_settings`: the one conversion from `Settings`)."""

    max_new_tokens: int = 384
    context_tokens: int | None = None
    """The whole context (prompt + answer); None: the model's."""

    @classmethod
    def from_settings(cls, settings: Settings) -> ExplainOptions:
        """The options the settings give, for the server and the command line alike."""
        return cls(settings.explain.max_new_tokens, settings.completion.context_tokens)


@dataclass(frozen=True)
class ExplainRequest:
    """One explanation: of what, with which options, from which engine."""

    snapshot: Snapshot
    start: int
    """The selection's start and end, string offsets into `snapshot.text`; an empty
    selection explains what is around `start`."""
    end: int
    options: ExplainOptions = ExplainOptions()
    engine: EngineSettings = field(default_factory=EngineSettings)


@dataclass(frozen=True)
class Explanation:
    """The finished Markdown and what it explained."""

    markdown: str
    code: str
    finish_reason: str
    prompt_tokens: int
    elapsed_ms: float


def select_code(snapshot: Snapshot, start: int, end: int) -> str:
    """The code to explain: the selection, else the enclosing definition, else the line."""
    text = snapshot.text
    if start != end:
        return text[start:end]
    if snapshot.tree is not None and snapshot.language is not None:
        start_byte = utf8_byte_offset(text, start)
        span = enclosing_definition(snapshot.tree, snapshot.language, start_byte, start_byte)
        if span is not None:
            return text[str_offset_from_utf8(text, span[0]) : str_offset_from_utf8(text, span[1])]
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", start)
    return text[line_start : len(text) if line_end < 0 else line_end]


def explanation_messages(code: str, language: str | None, uri: str) -> list[dict[str, str]]:
    """The chat messages asking for an explanation of `code`."""
    fence = language or ""
    name = uri.rsplit("/", 1)[-1]
    user = f"Explain what this code from `{name}` does.\n\n```{fence}\n{code.rstrip()}\n```"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def explain(
    request: ExplainRequest,
    engine: Engine,
    cancel: CancelToken,
    on_text: Callable[[str], None] | None = None,
) -> Explanation:
    """Explain the code `request` selects."""
    began = time.perf_counter()
    snapshot, max_new_tokens = request.snapshot, request.options.max_new_tokens
    code = normalize_newlines(select_code(snapshot, request.start, request.end))
    if not code.strip():
        return Explanation("Nothing to explain: the selection is empty.", code, "none", 0, 0.0)
    budget = prompt_budget(engine, request.options.context_tokens, max_new_tokens)
    prompt = build_chat_prompt(
        engine.tokenizer,
        explanation_messages(code, snapshot.language, snapshot.uri),
        budget=budget,
    )

    def report(text: str) -> bool:
        if on_text is not None:
            on_text(text.strip())
        return False

    generation = engine.generate(
        prompt.ids,
        GenerationParams(max_new_tokens=max_new_tokens, stop_ids=prompt.stop_ids),
        cancel,
        on_text=report,
    )
    elapsed = round((time.perf_counter() - began) * 1000, 2)
    log.info(
        "explain %s: %d prompt tokens, %d new, %s, %.0f ms",
        snapshot.uri,
        len(prompt.ids),
        len(generation.token_ids),
        generation.finish_reason,
        elapsed,
    )
    return Explanation(
        generation.text.strip(), code, generation.finish_reason, len(prompt.ids), elapsed
    )
