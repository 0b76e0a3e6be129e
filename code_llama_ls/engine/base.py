"""The engine contract: what every model backend offers the rest of the server.

Plain Python only (no torch), so the scheduler, the server and their tests can
use these types without a model. Every backend implements `Engine`: the local
ones (`transformers_engine`, `onnx_engine`, both on `greedy.KvEngine`), the
model host's (`host/hosted_engine.py`) and the inference server's (`remote_engine`).
The stop-string helpers here are shared by all of them so that every backend
cuts and streams text the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from code_llama_ls.cancel import CancelToken
from code_llama_ls.tokens.tokenizer import TokenizerLike

log = logging.getLogger(__name__)

FinishReason = Literal["stop", "length", "cancelled", "stop-string", "callback"]

# (message, fraction done in 0..1 or None when unknown): model download,
# conversion and loading report through this; the server turns it into
# `$/progress` notifications.
ProgressCallback = Callable[[str, float | None], None]


@dataclass(frozen=True)
class GenerationParams:
    """How long to generate and where to stop.

    `stop_ids` end generation when sampled (the id is not part of the result);
    `stop_strings` end it when they appear in the decoded text (the text is cut
    before the first occurrence).
    """

    max_new_tokens: int
    stop_ids: frozenset[int]
    stop_strings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {self.max_new_tokens}")
        # An empty stop string would end every generation at once: it means "none".
        object.__setattr__(self, "stop_strings", tuple(s for s in self.stop_strings if s))


@dataclass(frozen=True)
class Generation:
    """The result of one `Engine.generate` call.

    `token_ids` are the generated ids behind `text` (a stop id that ended the
    generation is not included). `cached_tokens` counts prompt tokens whose
    key/values were reused from the previous request (prefix-KV reuse);
    `prompt_tokens - cached_tokens` were computed by the prefill.
    """

    text: str
    token_ids: tuple[int, ...]
    finish_reason: FinishReason
    prompt_tokens: int
    cached_tokens: int
    prefill_ms: float
    decode_ms: float


@dataclass(frozen=True)
class ServedModel:
    """What a server said it serves, once reached (`Engine.connect`)."""

    model: str | None
    """The served model's name, when the server names it."""
    context_length: int | None = None
    """Prompt plus generated tokens the server accepts, when it says."""

    def describe(self) -> str:
        """One line for logs and the status: model and context."""
        context = f", {self.context_length} tokens of context" if self.context_length else ""
        return f"{self.model or 'an unnamed model'}{context}"


class Generates(Protocol):
    """The one method every engine has and `branch_by_branch` needs (see `Engine`)."""

    def generate(
        self,
        prompt_ids: Sequence[int],
        params: GenerationParams,
        cancel: CancelToken,
        on_text: Callable[[str], bool] | None = None,
    ) -> Generation:
        """Generate greedily after `prompt_ids`; raises GenerationError on failure."""
        ...


class Engine(Generates, Protocol):
    """A loaded model that turns prompt ids into a greedy continuation.

    Members are read-only properties so that a backend may implement them as
    plain attributes or as properties. `generate` blocks and is called from
    one worker thread. It checks `cancel` before the prefill and before each
    decode step, so at most one more token is produced after `cancel()`. It
    stops only at `params.stop_ids` (pass `tokenizer.stop_token_ids` there).
    `on_text`, when given, is called once per generated token with the text
    so far (see `stream_safe_text`); returning True ends the generation with
    finish reason "callback".
    """

    @property
    def name(self) -> str:
        """A short name for logs and messages (model directory or hub id)."""
        ...

    @property
    def tokenizer(self) -> TokenizerLike:
        """The model's own tokenizer."""
        ...

    @property
    def context_length(self) -> int:
        """Tokens the model attends to: prompt plus generated tokens must fit."""
        ...

    @property
    def device(self) -> str:
        """Where the model runs ("cpu", "cuda:0", or a server URL for remote engines)."""
        ...

    @property
    def dtype(self) -> str:
        """Weight and activation type ("float32", "bfloat16", ...)."""
        ...

    def next_token_choices(self, prompt_ids: Sequence[int], count: int) -> tuple[int, ...]:
        """The `count` likeliest first tokens after `prompt_ids`, likeliest first.

        What alternative suggestions start with (`pipeline/alternatives.py`);
        empty where the backend cannot tell (an inference server). Blocks like
        `generate`; a local engine keeps the prompt's cache, as after a generation.
        """
        ...

    def generate_branches(
        self,
        prompt_ids: Sequence[int],
        first_ids: Sequence[int],
        params: GenerationParams,
        cancel: CancelToken,
        on_text_for: Callable[[int], Callable[[str], bool]] | None = None,
    ) -> list[Generation]:
        """For each of `first_ids`, what `generate(prompt_ids + [that id], ...)` gives, with
        `on_text_for(i)` as the i-th one's `on_text`.

        A backend may write them as one batch (torch does); the others write
        them one after the other (`branch_by_branch`). After a cancel the
        list may be shorter.
        """
        ...

    def connect(self) -> ServedModel | None:
        """Reach whatever serves the model and check that it goes with this engine.

        Returns what it serves, or None for an engine with nothing to connect
        to (a model loaded here or in the model host). Blocks like `generate`
        (call it on the model worker). Raises EngineUnreachableError when the
        server does not answer, and another GenerationError (the remote
        backend's EngineMismatchError) when it serves another model than the
        one asked for or one that tokenizes differently.
        """
        ...


def branch_by_branch(
    engine: Generates,
    prompt_ids: Sequence[int],
    first_ids: Sequence[int],
    params: GenerationParams,
    cancel: CancelToken,
    on_text_for: Callable[[int], Callable[[str], bool]] | None = None,
) -> list[Generation]:
    """`Engine.generate_branches` one generation after the other (a kept prefix makes each
    cost its own tokens), stopping at a cancel."""
    done: list[Generation] = []
    for branch, first_id in enumerate(first_ids):
        if cancel.cancelled:
            break
        on_text = on_text_for(branch) if on_text_for is not None else None
        done.append(engine.generate([*prompt_ids, first_id], params, cancel, on_text))
    return done


class BranchesOneByOne:
    """`Engine.generate_branches` for the backends that do not batch: `branch_by_branch`."""

    def generate_branches(
        self: Generates,
        prompt_ids: Sequence[int],
        first_ids: Sequence[int],
        params: GenerationParams,
        cancel: CancelToken,
        on_text_for: Callable[[int], Callable[[str], bool]] | None = None,
    ) -> list[Generation]:
        """One after the other (see `Engine.generate_branches`)."""
        return branch_by_branch(self, prompt_ids, first_ids, params, cancel, on_text_for)


def find_stop_string(text: str, stop_strings: Sequence[str]) -> int | None:
    """Index of the earliest occurrence of any stop string in `text`, or None."""
    best: int | None = None
    for stop in stop_strings:
        index = text.find(stop)
        if index >= 0 and (best is None or index < best):
            best = index
    return best


def stream_safe_text(text: str, stop_strings: Sequence[str]) -> str:
    """The part of `text` that can be shown now without being taken back later.

    Holds back a trailing U+FFFD (a multi-byte character split across tokens
    decodes to it until its last byte arrives) and any tail that could be the
    start of a stop string, so streamed text is always a prefix of the final
    text.
    """
    end = len(text)
    while end > 0 and text[end - 1] == "\ufffd":
        end -= 1
    hold = 0
    for stop in stop_strings:
        for length in range(min(len(stop) - 1, end), hold, -1):
            if text.endswith(stop[:length], 0, end):
                hold = length
                break
    return text[: end - hold]


def warm_up(engine: Engine, on_progress: ProgressCallback | None) -> None:
    """Run the engine's warm-up generation, if it has one; a failure is only logged."""
    run = getattr(engine, "warm_up", None)
    if run is None:  # the remote backend: the server's model is warm
        return
    if on_progress is not None:
        on_progress(f"warming up {engine.name}", None)
    try:
        run()
    except Exception as exc:  # the first request will meet and report it
        log.warning("warming up %s failed: %s", engine.name, exc)
