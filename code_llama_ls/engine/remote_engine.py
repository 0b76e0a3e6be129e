"""The `remote` backend: an `Engine` whose model runs on a shared inference server.

The language server keeps everything else local (documents, context,
prompts, post-processing) and loads only the model's tokenizer, so prompts
are built and budgeted in exact token ids as for a local model. Each
generation is one streamed request (`remote_api` says its shape,
`remote_http` carries it).

The server is asked what it serves on start (`connect`) and again after it
has been unreachable, so a server restarted mid-session is picked up by the
next completion without restarting the editor.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from code_llama_ls.cancel import CancelToken
from code_llama_ls.engine.base import (
    BranchesOneByOne,
    FinishReason,
    Generation,
    GenerationParams,
    find_stop_string,
    stream_safe_text,
)
from code_llama_ls.engine.greedy import checked_prompt
from code_llama_ls.engine.remote_api import (
    Dialect,
    RequestPlan,
    ServerInfo,
    parse_event,
    plan_request,
    probe_server,
    prompt_text,
    tokenize_remote,
)
from code_llama_ls.engine.remote_http import (
    EngineHttpError,
    HttpClient,
    HttpSettings,
    StreamCancelled,
)
from code_llama_ls.errors import EngineUnreachableError, GenerationError
from code_llama_ls.tokens.tokenizer import TokenizerLike

log = logging.getLogger(__name__)

DOWN_RETRY_S = 2.0
"""After the server was unreachable, requests fail at once for this long instead of waiting."""
PROBE_CODE = 'def greet(name):\n    """Say hello."""\n    return f"Hello, {name}!"\n'
_FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "eos_token": "stop",
    "stop_sequence": "stop-string",
    "length": "length",
}


@dataclass
class _Streamed:
    """What a stream has brought so far."""

    text: str = ""
    finish: FinishReason = "length"
    first_at: float | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None


class EngineMismatchError(GenerationError):
    """The server's model does not go with the local tokenizer, or is not the one asked for."""


@dataclass(frozen=True)
class RemoteSettings:
    """Where the shared engine is and how to talk to it."""

    http: HttpSettings
    api: str = "auto"
    """auto (by what the server is), openai (/v1/completions) or tgi (/generate_stream)."""
    served_model: str | None = None
    """The name to ask for; None: the first model the server lists."""
    prompt_format: str = "auto"
    """auto (token ids where the server takes them), ids, or text."""


class RemoteEngine(BranchesOneByOne):
    """`Engine` over an inference server; `generate` runs on the model worker thread."""

    def __init__(
        self,
        settings: RemoteSettings,
        tokenizer: TokenizerLike,
        *,
        name: str,
        local_context_length: int,
        client: HttpClient | None = None,
    ) -> None:
        self.settings = settings
        self.tokenizer = tokenizer
        self.dtype = "remote"
        self._tokenizer_name = name
        self._local_context_length = local_context_length
        self._client = client or HttpClient(settings.http)
        self._info: ServerInfo | None = None
        self._down_until = 0.0
        self._down_error: EngineUnreachableError | None = None
        self._prompt_checked = False
        self._lock = threading.Lock()

    # -- Engine properties ---------------------------------------------------

    @property
    def name(self) -> str:
        """The served model's name once known, else the tokenizer's source."""
        info = self._info
        return info.model if info is not None and info.model else self._tokenizer_name

    @property
    def device(self) -> str:
        """The server's URL."""
        return self._client.base_url

    @property
    def context_length(self) -> int:
        """The smaller of the server's context (when it says) and the model's own."""
        info = self._info
        if info is not None and info.context_length:
            return min(info.context_length, self._local_context_length)
        return self._local_context_length

    @property
    def server(self) -> ServerInfo | None:
        """What the server said about itself, once connected."""
        return self._info

    # -- connecting ----------------------------------------------------------

    def connect(self) -> ServerInfo:
        """Ask the server what it serves and check that it goes with the tokenizer.

        `Engine.connect`: returns what the server said (a `ServedModel` with
        its kind and listed models). Raises EngineUnreachableError when it does not answer,
        and EngineMismatchError when it serves another model than asked for or
        tokenizes differently from the local tokenizer.
        """
        info = probe_server(self._client)
        wanted = self.settings.served_model
        if wanted is not None:
            if info.models and wanted not in info.models:
                raise EngineMismatchError(
                    f"{self.device} serves {', '.join(info.models)}, not {wanted!r}: "
                    "fix remoteModel, or leave it empty to use the first served model."
                )
            info = dataclasses.replace(info, model=wanted)
        self._check_tokenizer(info)
        with self._lock:
            self._info, self._down_error, self._down_until = info, None, 0.0
        log.info(
            "remote engine at %s: %s (prompts as %s)",
            self.device,
            info.describe(),
            "token ids" if self._sends_ids(info) else "text",
        )
        return info

    def _check_tokenizer(self, info: ServerInfo) -> None:
        local = self._with_bos(self.tokenizer.encode(PROBE_CODE))
        remote = tokenize_remote(self._client, info, PROBE_CODE)
        if remote is None or remote == local:
            return
        raise EngineMismatchError(
            f"{self.device} serves {info.model or 'a model'} whose tokenizer differs from the "
            f"local one ({self._tokenizer_name}): set `model` to the served model's tokenizer "
            "(its directory or Hugging Face id), so prompts are the ids the model expects."
        )

    def _with_bos(self, ids: list[int]) -> list[int]:
        bos = self.tokenizer.bos_token_id
        return ids if bos is None else [bos, *ids]

    def _connected(self) -> ServerInfo:
        info = self._info
        if info is not None:
            return info
        if time.monotonic() < self._down_until and self._down_error is not None:
            raise self._down_error
        try:
            return self.connect()
        except EngineUnreachableError as exc:
            self._mark_down(exc)
            raise

    def _mark_down(self, error: EngineUnreachableError) -> None:
        with self._lock:
            self._info = None
            self._down_error = error
            self._down_until = time.monotonic() + DOWN_RETRY_S

    def _sends_ids(self, info: ServerInfo) -> bool:
        if self.settings.prompt_format == "auto":
            return info.accepts_token_ids and self._dialect(info) is Dialect.OPENAI
        return self.settings.prompt_format == "ids"

    def _dialect(self, info: ServerInfo) -> Dialect:
        return info.native_dialect if self.settings.api == "auto" else Dialect(self.settings.api)

    # -- generating ----------------------------------------------------------

    def next_token_choices(self, prompt_ids: Sequence[int], count: int) -> tuple[int, ...]:
        """None known: the inference server's APIs stream text, not the next token's odds, so
        a remote engine makes one suggestion per request."""
        return ()

    def generate(
        self,
        prompt_ids: Sequence[int],
        params: GenerationParams,
        cancel: CancelToken,
        on_text: Callable[[str], bool] | None = None,
    ) -> Generation:
        """Stream a greedy continuation from the server; raises GenerationError on failure."""
        began = time.perf_counter()
        info = self._connected()
        prompt = checked_prompt(prompt_ids, self.context_length, self.name)
        budget = min(params.max_new_tokens, self.context_length - len(prompt))
        if cancel.cancelled or budget <= 0:
            reason: FinishReason = "cancelled" if cancel.cancelled else "length"
            return Generation("", (), reason, len(prompt), 0, 0.0, 0.0)
        dialect = self._dialect(info)
        payload: list[int] | str = prompt
        if not self._sends_ids(info):
            payload = prompt_text(self.tokenizer, prompt)
            self._check_prompt_once(info, payload, prompt)
        plan = plan_request(dialect, info, payload, params, budget)
        streamed = _Streamed()
        try:
            self._stream(dialect, plan, params, cancel, on_text, streamed)
        except EngineUnreachableError as exc:
            self._mark_down(exc)
            raise
        except EngineHttpError as exc:
            raise self._explained(exc, len(prompt)) from None
        ended = time.perf_counter()
        first_at = streamed.first_at or ended
        ids = tuple(self.tokenizer.encode(streamed.text)) if streamed.text else ()
        if streamed.completion_tokens is not None:
            ids = ids[: streamed.completion_tokens]
        return Generation(
            text=streamed.text,
            token_ids=ids,
            finish_reason=streamed.finish,
            prompt_tokens=len(prompt),
            cached_tokens=min(streamed.cached_tokens or 0, len(prompt)),
            prefill_ms=round((first_at - began) * 1000, 2),
            decode_ms=round((ended - first_at) * 1000, 2),
        )

    def _stream(
        self,
        dialect: Dialect,
        plan: RequestPlan,
        params: GenerationParams,
        cancel: CancelToken,
        on_text: Callable[[str], bool] | None,
        streamed: _Streamed,
    ) -> None:
        """Read the stream into `streamed` until the server or a stop ends it."""
        events = self._client.stream_events(plan.path, plan.body, cancel)
        try:
            for raw in events:
                event = parse_event(dialect, raw)
                streamed.first_at = streamed.first_at or time.perf_counter()
                streamed.completion_tokens = event.completion_tokens or streamed.completion_tokens
                streamed.cached_tokens = event.cached_tokens or streamed.cached_tokens
                if event.token_id is not None and event.token_id in plan.client_stop_ids:
                    streamed.finish = "stop"
                    return
                streamed.text += event.text
                cut = find_stop_string(streamed.text, params.stop_strings)
                if cut is not None:
                    streamed.text, streamed.finish = streamed.text[:cut], "stop-string"
                    return
                if event.finish_reason:
                    streamed.finish = _FINISH_REASONS.get(event.finish_reason, "stop")
                shown = stream_safe_text(streamed.text, params.stop_strings)
                if event.text and on_text is not None and on_text(shown):
                    streamed.finish = "callback"
                    return
        except StreamCancelled:
            streamed.finish = "cancelled"
        finally:
            events.close()

    def _check_prompt_once(self, info: ServerInfo, text: str, prompt: list[int]) -> None:
        """Check, on the first prompt sent as text, that the server reads back the same ids."""
        if self._prompt_checked:
            return
        self._prompt_checked = True
        remote = tokenize_remote(self._client, info, text)
        if remote is not None and remote != prompt:
            log.warning(
                "%s tokenizes prompts sent as text differently from the prompt builder "
                "(%d ids there, %d here); completions work but are not exact. Serve the "
                "model from vLLM or llama.cpp's server, which take token ids.",
                self.device,
                len(remote),
                len(prompt),
            )

    def _explained(self, error: EngineHttpError, prompt_tokens: int) -> GenerationError:
        detail = error.detail.lower()
        if error.status in (400, 413, 422) and ("context" in detail or "token" in detail):
            return GenerationError(
                f"{error} (the prompt has {prompt_tokens} tokens: set contextTokens below "
                "the server's context size)"
            )
        return error

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


def load_remote_engine(
    location: str | Path,
    name: str,
    settings: RemoteSettings,
    gguf_file: str | None = None,
) -> RemoteEngine:
    """A remote engine with the local tokenizer of `location`; connects lazily.

    Raises ModelLoadError when the tokenizer cannot be loaded. The server is
    not contacted here: an unreachable server is a message, not a failed load.
    """
    from code_llama_ls.engine.tokenizer_files import load_tokenizer, local_context_length

    tokenizer = load_tokenizer(location, gguf_file=gguf_file)
    context = local_context_length(location, tokenizer, gguf_file=gguf_file)
    return RemoteEngine(settings, tokenizer, name=name, local_context_length=context)
