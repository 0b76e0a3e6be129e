"""What a completion is asked with and what it gives: the request, its options, the result.

The LSP handler builds one frozen `CompletionRequest` on the event loop; the
scheduler decides when it runs; the model worker runs `complete.complete` on
it. Nothing here changes after it is built, so a request can cross threads.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from code_llama_ls.config import EngineSettings, Settings
from code_llama_ls.pipeline.fim import FimMode
from code_llama_ls.syntax.cursor import CompletionMode
from code_llama_ls.text.documents import Snapshot


@dataclass(frozen=True)
class CompletionOptions:
    """The settings one completion needs (`from_settings`: the one conversion from `Settings`)."""

    fim_mode: FimMode = FimMode.AUTO
    max_new_tokens: int = 64
    context_tokens: int | None = None
    """The whole context (prompt + answer); None: the model's (prompts capped on a CPU)."""
    time_budget_ms: int = 0
    """After this long, return what is written so far (0: no budget); see `TimeBudget`."""
    workspace_context: bool = False
    """Whether the prompt takes code from other files of the workspace."""
    reuse: bool = True
    """Whether the scheduler may answer from a suggestion typed through or in flight."""
    debounce_ms: int = 0
    """The most the scheduler waits for typing to pause."""
    candidates: int = 1
    """Suggestions a request may get (see `candidates_for`)."""
    candidates_while_typing: bool | None = None
    """Whether automatic requests get alternatives too; None: on a GPU only."""
    speculate: bool = False
    """Whether the scheduler writes the suggestion that follows a shown one, ahead."""

    @classmethod
    def from_settings(cls, settings: Settings) -> CompletionOptions:
        """The options the settings give, for the server and the command line alike."""
        completion = settings.completion
        return cls(
            FimMode(completion.fim_mode),
            completion.max_new_tokens,
            completion.context_tokens,
            completion.time_budget_ms,
            settings.context.workspace,
            completion.reuse,
            completion.debounce_ms,
            completion.candidates,
            completion.candidates_while_typing,
            completion.speculate,
        )

    def candidates_for(self, *, invoked: bool, device: str | None) -> int:
        """Suggestions a request gets: all `candidates` when the user invoked it, or when
        alternatives are wanted while typing (by default where the model runs on a GPU,
        `device` "cuda…"; on a CPU each alternative costs a generation); else one."""
        while_typing = self.candidates_while_typing
        if while_typing is None:
            while_typing = device is not None and device.startswith("cuda")
        return self.candidates if invoked or while_typing else 1


def _request_id() -> str:
    return uuid.uuid4().hex[:8]


@dataclass(frozen=True)
class CompletionRequest:
    """One completion: where, with which options, from which engine."""

    snapshot: Snapshot
    offset: int
    """The cursor, a string offset into `snapshot.text`."""
    options: CompletionOptions = field(default_factory=CompletionOptions)
    engine: EngineSettings = field(default_factory=EngineSettings)
    invoked: bool = False
    """The user asked for it explicitly (no debounce)."""
    candidates: int = 1
    """Suggestions wanted: the best, and up to this many less one alternatives."""
    id: str = field(default_factory=_request_id)
    """Names the request in the log."""
    budget_from: float | None = None
    """When the time budget's clock started (`time.perf_counter()`); None: when generation
    starts. The scheduler sets it to count the time the request waited for typing to pause."""


@dataclass(frozen=True)
class Completion:
    """What to show at the cursor; empty text means nothing to suggest."""

    text: str
    mode: CompletionMode
    reason: str
    finish_reason: str = "none"
    prompt_tokens: int = 0
    cached_tokens: int = 0
    """Prompt tokens whose keys/values were reused (prefix-KV cache)."""
    timings_ms: dict[str, float] = field(default_factory=dict)
    alternatives: tuple[str, ...] = ()
    """Other suggestions, distinct from `text` and each other, likeliest first."""
