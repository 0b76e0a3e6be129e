"""What the server says about itself: the facts behind its `codeLlama/status`.

Editors show it in a status bar (VS Code) or `:checkhealth` (Neovim): which
model, on which device, whether it is loading, ready, generating or broken,
and how long the last completion took. The state is derived from counters
the server keeps, so overlapping requests cannot leave it stuck. The LSP
layer sends it (`lsp/server.py`); model work marks itself busy here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from code_llama_ls.engine.default_model import DEFAULT_MODEL_NAME


class State(StrEnum):
    """The server's state as clients show it."""

    LOADING = "loading"
    READY = "ready"
    GENERATING = "generating"
    ERROR = "error"


def model_display_name(model: str | None) -> str:
    """A short name for the `model` setting before the model is loaded."""
    if not model or model.strip().lower() in ("", "default"):
        return DEFAULT_MODEL_NAME
    return Path(model.strip()).name or model


@dataclass
class ServerStatus:
    """The facts behind `codeLlama/status`; the state is derived from them."""

    model: str
    device: str | None = None
    loading: bool = False
    error: str | None = None
    busy: int = 0
    last_completion_ms: float | None = None
    prompt: str | None = None
    """What completion prompts are once the model is loaded (`fim.describe_prompt`)."""
    on_busy_change: Callable[[], None] = field(default=lambda: None, repr=False, compare=False)
    """Called when model work starts or ends (the server publishes the status)."""

    @property
    def state(self) -> State:
        """Error beats loading beats generating beats ready."""
        if self.error is not None:
            return State.ERROR
        if self.loading:
            return State.LOADING
        return State.GENERATING if self.busy > 0 else State.READY

    @property
    def message(self) -> str | None:
        """What a client shows beside the state: the error, or what is loading."""
        if self.error is not None:
            return self.error
        return f"loading {self.model}" if self.loading else None

    @contextlib.contextmanager
    def generating(self) -> Iterator[None]:
        """Count one piece of model work for as long as the block runs."""
        self.busy += 1
        try:
            self.on_busy_change()
            yield
        finally:
            self.busy -= 1
            self.on_busy_change()

    def to_json(self) -> dict[str, object]:
        """The notification's params, as PROTOCOL.md in extensions/ describes them."""
        last = None if self.last_completion_ms is None else round(self.last_completion_ms, 1)
        return {
            "state": self.state.value,
            "model": self.model,
            "device": self.device,
            "message": self.message,
            "lastCompletionMs": last,
            "prompt": self.prompt,
        }
