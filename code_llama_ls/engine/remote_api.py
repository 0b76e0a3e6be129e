"""What an inference server is and how to ask it for a greedy continuation.

Two request dialects: OpenAI's `/v1/completions` (vLLM, llama.cpp's server,
llama-cpp-python's server, TGI's OpenAI route) and TGI's native
`/generate_stream`. `probe_server` asks the server what it is and serves
(`/v1/models`, llama.cpp's `/props`, TGI's `/info`) once on start; the
answer decides the dialect, whether prompts go as token ids or as text, and
the context length.

Prompts go as token ids where the server takes them (vLLM, llama.cpp), so
they are exactly the ids the prompt builder made. Elsewhere they go as text
rendered from those ids (`prompt_text`), which the server's tokenizer turns
back into the same ids; `tokenize_remote` lets the engine check that.
Streamed text is made `tokenizable`: JSON can carry a lone surrogate
("\\ud83d"), which neither the editor nor the tokenizer can take.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from code_llama_ls.engine.base import GenerationParams, ServedModel
from code_llama_ls.engine.remote_http import EngineHttpError, HttpClient, NotJsonError
from code_llama_ls.errors import GenerationError
from code_llama_ls.tokens.tokenizer import TokenizerLike, tokenizable

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 5.0
TGI_MAX_STOP_SEQUENCES = 4
"""TGI refuses more stop sequences than this by default; the rest are cut locally."""


class ServerKind(StrEnum):
    """The engines we know by name; `openai` is any other OpenAI-compatible server."""

    VLLM = "vllm"
    LLAMA_CPP = "llama.cpp"
    LLAMA_CPP_PYTHON = "llama-cpp-python"
    TGI = "tgi"
    OPENAI = "openai"


class Dialect(StrEnum):
    """Which request shape the server is sent."""

    OPENAI = "openai"
    TGI = "tgi"


@dataclass(frozen=True, kw_only=True)
class ServerInfo(ServedModel):
    """What the server said about itself on start: the `ServedModel` of a remote engine.

    `model` is what OpenAI requests put in `model`.
    """

    kind: ServerKind
    models: tuple[str, ...] = ()
    """Every model the server lists."""

    @property
    def accepts_token_ids(self) -> bool:
        """Whether the server takes a prompt as a list of token ids."""
        return self.kind in (ServerKind.VLLM, ServerKind.LLAMA_CPP)

    @property
    def native_dialect(self) -> Dialect:
        """The dialect to use when the settings say `auto`."""
        return Dialect.TGI if self.kind is ServerKind.TGI else Dialect.OPENAI

    def describe(self) -> str:
        """One line for logs and the status: kind, model, context."""
        return f"{self.kind} serving {super().describe()}"


def probe_server(client: HttpClient) -> ServerInfo:
    """Ask the server what it is; raises EngineUnreachableError when it does not answer."""
    models_body = _optional_get(client, "/v1/models")
    models = _model_entries(models_body)
    first = models[0] if models else {}
    owner = str(first.get("owned_by", "")).lower()
    names = tuple(str(entry["id"]) for entry in models if "id" in entry)
    name = names[0] if names else None
    if owner == "vllm":
        return ServerInfo(
            kind=ServerKind.VLLM,
            model=name,
            context_length=_int(first.get("max_model_len")),
            models=names,
        )
    props = _optional_get(client, "/props") if owner in ("llamacpp", "") else None
    if isinstance(props, dict) and (owner == "llamacpp" or "default_generation_settings" in props):
        settings = props.get("default_generation_settings") or {}
        context = _int(props.get("n_ctx")) or _int(settings.get("n_ctx"))
        model = name or _str(props.get("model_alias")) or _str(props.get("model_path"))
        return ServerInfo(
            kind=ServerKind.LLAMA_CPP, model=model, context_length=context, models=names
        )
    if owner == "me":
        # llama-cpp-python's server: it does not say its context size.
        return ServerInfo(kind=ServerKind.LLAMA_CPP_PYTHON, model=name, models=names)
    info = _optional_get(client, "/info")
    if isinstance(info, dict) and "max_total_tokens" in info:
        context = _int(info.get("max_total_tokens"))
        model = name or _str(info.get("model_id"))
        return ServerInfo(kind=ServerKind.TGI, model=model, context_length=context, models=names)
    if models_body is None:
        raise GenerationError(
            f"{client.base_url} answers HTTP but is not an inference server code-llama-ls "
            "knows: it has no /v1/models (OpenAI-compatible), /props (llama.cpp) or "
            "/info (TGI). Check remoteUrl."
        )
    return ServerInfo(kind=ServerKind.OPENAI, model=name, models=names)


def tokenize_remote(client: HttpClient, info: ServerInfo, text: str) -> list[int] | None:
    """The server's tokenization of `text` with its special tokens (BOS included), if it can say.

    None when the server has no tokenize endpoint that code-llama-ls knows.
    """
    try:
        if info.kind is ServerKind.VLLM:
            body = client.post_json(
                "/tokenize",
                {"model": info.model, "prompt": text, "add_special_tokens": True},
                timeout_s=PROBE_TIMEOUT_S,
            )
            return _ids(body.get("tokens"))
        if info.kind is ServerKind.LLAMA_CPP:
            body = client.post_json(
                "/tokenize",
                {"content": text, "add_special": True, "parse_special": True},
                timeout_s=PROBE_TIMEOUT_S,
            )
            return _ids(body.get("tokens"))
        if info.kind is ServerKind.LLAMA_CPP_PYTHON:
            body = client.post_json(
                "/extras/tokenize", {"input": text, "model": info.model}, timeout_s=PROBE_TIMEOUT_S
            )
            return _ids(body.get("tokens"))
        if info.kind is ServerKind.TGI:
            body = client.post_json("/tokenize", {"inputs": text}, timeout_s=PROBE_TIMEOUT_S)
            if isinstance(body, list):
                return _ids([piece.get("id") for piece in body if isinstance(piece, dict)])
    except EngineHttpError as exc:
        log.info("%s cannot tokenize (%s); prompts are not checked", client.base_url, exc.detail)
    return None


def prompt_text(tokenizer: TokenizerLike, prompt_ids: Sequence[int]) -> str:
    """The text a server's tokenizer turns back into `prompt_ids`.

    The server adds BOS itself (as the model's tokenizer does by default), so
    a leading BOS is left out of the text rather than sent twice.
    """
    ids = list(prompt_ids)
    bos = tokenizer.bos_token_id
    if bos is not None and ids[:1] == [bos]:
        ids = ids[1:]
    return tokenizer.decode(ids)


@dataclass
class RequestPlan:
    """One generation request: where it goes and what it sends."""

    path: str
    body: dict[str, Any]
    client_stop_ids: frozenset[int] = field(default_factory=frozenset)
    """Ids the client stops at itself (servers that stream token ids)."""


def plan_request(
    dialect: Dialect,
    info: ServerInfo,
    prompt: list[int] | str,
    params: GenerationParams,
    max_new_tokens: int,
) -> RequestPlan:
    """The streaming request for a greedy continuation of `prompt`."""
    stops = list(params.stop_strings)
    if dialect is Dialect.TGI:
        parameters: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "do_sample": False,
            "return_full_text": False,
            "details": False,
        }
        if stops:
            parameters["stop"] = stops[:TGI_MAX_STOP_SEQUENCES]
        return RequestPlan(
            "/generate_stream", {"inputs": prompt, "parameters": parameters}, params.stop_ids
        )
    body: dict[str, Any] = {
        "prompt": prompt,
        "max_tokens": max_new_tokens,
        "temperature": 0.0,
        "stream": True,
    }
    if info.model:
        body["model"] = info.model
    if stops:
        body["stop"] = stops
    if info.kind is ServerKind.VLLM:
        # Code Llama's <EOT> is not its EOS: vLLM must be told to stop at it.
        body["stop_token_ids"] = sorted(params.stop_ids)
        body["stream_options"] = {"include_usage": True}
    if info.kind in (ServerKind.LLAMA_CPP, ServerKind.LLAMA_CPP_PYTHON):
        # Reuse the KV of the longest matching prefix; plain greedy, no penalties.
        body["cache_prompt"] = True
        body["repeat_penalty"] = 1.0
    return RequestPlan("/v1/completions", body)


@dataclass
class StreamEvent:
    """What one server-sent event carried."""

    text: str = ""
    token_id: int | None = None
    finish_reason: str | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None


def parse_event(dialect: Dialect, event: Any) -> StreamEvent:
    """The text and bookkeeping of one streamed event of `dialect`."""
    if not isinstance(event, dict):
        return StreamEvent()
    if "error" in event:
        error = event["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        raise GenerationError(f"the inference server failed while generating: {message}")
    if dialect is Dialect.TGI:
        token = event.get("token") or {}
        details = event.get("details") or {}
        special = bool(token.get("special"))
        return StreamEvent(
            text="" if special else tokenizable(str(token.get("text", ""))),
            token_id=_int(token.get("id")),
            finish_reason=_str(details.get("finish_reason")),
            completion_tokens=_int(details.get("generated_tokens")),
        )
    choices = event.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    usage = event.get("usage") or {}
    details = usage.get("prompt_tokens_details") or {}
    timings = event.get("timings") or {}
    return StreamEvent(
        text=tokenizable(str(choice.get("text") or "")),
        finish_reason=_str(choice.get("finish_reason")),
        completion_tokens=_int(usage.get("completion_tokens")),
        cached_tokens=_int(details.get("cached_tokens")) or _int(timings.get("cache_n")),
    )


def _optional_get(client: HttpClient, path: str) -> Any:
    """GET `path`, or None when the server answers it with an HTTP error or not with JSON."""
    try:
        return client.get_json(path, timeout_s=PROBE_TIMEOUT_S)
    except (EngineHttpError, NotJsonError):
        return None


def _model_entries(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        return []
    return [entry for entry in body["data"] if isinstance(entry, dict)]


def _ids(value: Any) -> list[int] | None:
    if isinstance(value, list) and all(isinstance(i, int) for i in value):
        return list(value)
    return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
