"""One typed `Settings` tree, grouped by concern, resolved in layers and validated key by key.

Groups: `engine` (what loads a model, and the `remote` server), `completion`,
`context`, `explain`; each part of the server reads its own group.

Layers, later winning: defaults < config file < command-line flags <
`initializationOptions` < `workspace/didChangeConfiguration`. Keys are
camelCase as editors send them (`maxNewTokens`); a config file may also use
snake_case. Every bad value is a `ConfigError` that names the key and where
it came from, never a crash.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from code_llama_ls.errors import ConfigError

FIM_MODES = ("auto", "psm", "spm")
BACKENDS = ("auto", "transformers", "onnx", "remote")
ONNX_WEIGHTS = ("int8", "int4", "fp32")
REMOTE_APIS = ("auto", "openai", "tgi")
REMOTE_PROMPTS = ("auto", "ids", "text")
REMOTE_TOKEN_ENV = "CODE_LLAMA_LS_REMOTE_TOKEN"
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16", "float16")
LOG_LEVELS = ("error", "warning", "info", "debug")

# The section editors nest our settings under in didChangeConfiguration.
SETTINGS_SECTION = "codeLlama"


@dataclass(frozen=True)
class RemoteServer:
    """The inference server of the remote backend."""

    url: str | None = None
    """http[s]://host:port."""
    api: str = "auto"
    """auto (by what the server says it is), openai (/v1/completions), tgi (/generate_stream)."""
    model: str | None = None
    """The served model to ask for; None: the first one the server lists."""
    prompt: str = "auto"
    """auto (token ids where the server takes them, else text), ids, or text."""
    token: str | None = field(default=None, repr=False)
    """Bearer token for the server; else $CODE_LLAMA_LS_REMOTE_TOKEN. Never logged."""
    ca_file: str | None = None
    """CA bundle to verify the server's TLS certificate with (default: the system's)."""
    connect_timeout_ms: int = 3000
    timeout_ms: int = 60_000
    """The longest wait for the server's next bytes (a long prompt's prefill included)."""

    @property
    def auth_token(self) -> str | None:
        """The bearer token: the `remoteToken` setting, else the environment."""
        return self.token or os.environ.get(REMOTE_TOKEN_ENV) or None


@dataclass(frozen=True)
class EngineSettings:
    """What loads a model. Loaded engines are kept by these: any change loads anew."""

    model: str | None = None
    """Hub id, local directory or .gguf file; None means the offline default model."""
    backend: str = "auto"
    """auto (ONNX Runtime int8 for the default model on a CPU, else torch), transformers, onnx,
    or remote (an inference server at `remote.url`; `model` then names the tokenizer)."""
    onnx_weights: str = "int8"
    """The ONNX backend's weights: int8, int4 (block-wise MatMulNBits) or fp32; each is
    exported once and cached beside the others."""
    device: str = "auto"
    dtype: str = "auto"
    trust_remote_code: bool = False
    cache_dir: str | None = None
    prefix_cache_entries: int = 4
    """KV caches of recent prompts kept for reuse; 0 computes every prompt in full."""
    prefix_cache_mib: int = 192
    """The most memory (MiB) those caches hold together; the newest is kept even when larger.
    192 holds two places at the CPU prompt cap (93 MiB each for the default model)."""
    remote: RemoteServer = RemoteServer()

    @property
    def cache_path(self) -> Path:
        """Where converted models (and the server's other caches) are kept."""
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        if env := os.environ.get("CODE_LLAMA_LS_CACHE"):
            return Path(env).expanduser()
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base) / "code-llama-ls"


MAX_CANDIDATES = 8
"""The most suggestions one request may get (`candidates`)."""


@dataclass(frozen=True)
class CompletionSettings:
    """How completions are prompted, generated and scheduled."""

    fim_mode: str = "auto"
    """Infilling layout: psm, spm, or auto (SPM where the model's family was trained on it:
    cache-friendly as the user types; else PSM). A family trained on PSM alone gets PSM."""
    max_new_tokens: int = 64
    context_tokens: int | None = None
    """Prompt + generation budget; None means the model's own context length (explanations
    use it too)."""
    time_budget_ms: int = 500
    """After this long since the request came, a completion returns what it has written:
    its completed lines, or the whole words of an unfinished first line; 0: no budget."""
    reuse: bool = True
    """Answer from the suggestion being typed through, or from the generation in flight."""
    debounce_ms: int = 120
    """The most the server waits for typing to pause (adaptive to typing speed); 0: none."""
    candidates: int = 3
    """Suggestions a request may get, distinct and best first (1: the best alone)."""
    candidates_while_typing: bool | None = None
    """Whether requests made as the user types get the alternatives too, not only requests
    the user invoked; None: only when the model runs on a GPU (on a CPU each costs a
    generation)."""
    speculate: bool = True
    """After a suggestion is shown and typing pauses, write the one that would follow it
    if accepted, so that accepting is answered at once (cancelled by any keystroke)."""


@dataclass(frozen=True)
class ContextSettings:
    """Where completion prompts take code from beyond the cursor's window."""

    workspace: bool = True
    """Fill completion prompts with code from other files of the workspace."""


@dataclass(frozen=True)
class ExplainSettings:
    """How explanations are written."""

    model: str | None = None
    """The model for explanations, in the same forms as `engine.model`; None: that one."""
    max_new_tokens: int = 384


@dataclass(frozen=True)
class Settings:
    """Everything the server can be told, by concern; every field has a working default.

    Clients and files name settings flat (`maxNewTokens`); `_FIELDS` says which
    group each lives in.
    """

    engine: EngineSettings = EngineSettings()
    completion: CompletionSettings = CompletionSettings()
    context: ContextSettings = ContextSettings()
    explain: ExplainSettings = ExplainSettings()
    max_document_bytes: int = 1_000_000
    log_level: str = "info"
    keep_acceptance_stats: bool = False
    """Keep the counts of suggestions shown and accepted in a file of the user's state
    folder (`state_dir()`), for `code-llama-ls stats`; they never leave the machine."""

    def with_values(self, values: Mapping[str, Any], source: str) -> Settings:
        """A copy with `values` applied; raises ConfigError naming the first bad key."""
        changes: dict[tuple[str, ...], Any] = {}
        for raw_key, value in values.items():
            key = _camel_case(str(raw_key))
            known = _FIELDS.get(key)
            if known is None:
                names = ", ".join(sorted(_FIELDS))
                raise ConfigError(key, f"unknown setting in {source} (known: {names})")
            path, validate = known
            try:
                changes[path] = validate(value)
            except ValueError as exc:
                raise ConfigError(key, f"{exc} (in {source})") from None
        settings = self
        for path, value in changes.items():
            settings = _replaced(settings, path, value)
        return settings

    def explain_engine(self) -> EngineSettings:
        """The engine that writes explanations (`explainModel`, else `model`)."""
        if self.explain.model is None:
            return self.engine
        return dataclasses.replace(self.engine, model=self.explain.model)


def _replaced(node: Any, path: tuple[str, ...], value: Any) -> Any:
    """A copy of the settings tree `node` with the field at `path` set to `value`."""
    head, *rest = path
    new = _replaced(getattr(node, head), tuple(rest), value) if rest else value
    return dataclasses.replace(node, **{head: new})


def settings_from_client(payload: object, source: str) -> Mapping[str, Any]:
    """The mapping of our keys inside what an editor sent.

    VS Code nests settings under their section (`{"codeLlama": {...}}`);
    Neovim users often send them flat. Both are accepted.
    """
    if payload is None:
        return {}
    if not isinstance(payload, Mapping):
        raise ConfigError(source, f"expected an object, got {type(payload).__name__}")
    nested = payload.get(SETTINGS_SECTION)
    if isinstance(nested, Mapping):
        return nested
    return payload


def load_config_file(path: Path) -> Mapping[str, Any]:
    """Read a TOML config file; a missing or malformed file is a ConfigError."""
    import tomllib  # here: most starts have no file to read, and it is 7 ms of the start

    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError("config", f"file not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError("config", f"{path} is not valid TOML: {exc}") from None
    section = data.get(SETTINGS_SECTION, data)
    if not isinstance(section, dict):
        raise ConfigError(SETTINGS_SECTION, f"expected a table in {path}")
    return section


def state_dir() -> Path:
    """Where the server keeps what it learns about its user (`$XDG_STATE_HOME`)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "code-llama-ls"


def default_config_path() -> Path:
    """The user's config file location (it need not exist)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "code-llama-ls" / "config.toml"


def _camel_case(key: str) -> str:
    return re.sub(r"_([a-z])", lambda match: match.group(1).upper(), key)


def _optional_text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def validate(value: Any) -> str:
        if not isinstance(value, str) or value.lower() not in options:
            raise ValueError(f"expected one of {', '.join(options)}, got {value!r}")
        return value.lower()

    return validate


def _optional_url(value: Any) -> str | None:
    text = _optional_text(value)
    if text is not None and not re.match(r"^https?://[^/\s]+", text):
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
    return text


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _optional_boolean(value: Any) -> bool | None:
    return None if value is None else _boolean(value)


def _positive_int(low: int, high: int) -> Callable[[Any], int]:
    def validate(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"expected an integer from {low} to {high}, got {value!r}")
        return value

    return validate


def _optional_positive_int(low: int, high: int) -> Callable[[Any], int | None]:
    validate_int = _positive_int(low, high)

    def validate(value: Any) -> int | None:
        return None if value is None else validate_int(value)

    return validate


_FIELDS: dict[str, tuple[tuple[str, ...], Callable[[Any], Any]]] = {
    "model": (("engine", "model"), _optional_text),
    "backend": (("engine", "backend"), _choice(BACKENDS)),
    "onnxWeights": (("engine", "onnx_weights"), _choice(ONNX_WEIGHTS)),
    "device": (("engine", "device"), _choice(DEVICES)),
    "dtype": (("engine", "dtype"), _choice(DTYPES)),
    "trustRemoteCode": (("engine", "trust_remote_code"), _boolean),
    "cacheDir": (("engine", "cache_dir"), _optional_text),
    "prefixCacheEntries": (("engine", "prefix_cache_entries"), _positive_int(0, 64)),
    "prefixCacheMib": (("engine", "prefix_cache_mib"), _positive_int(0, 1 << 20)),
    "remoteUrl": (("engine", "remote", "url"), _optional_url),
    "remoteApi": (("engine", "remote", "api"), _choice(REMOTE_APIS)),
    "remoteModel": (("engine", "remote", "model"), _optional_text),
    "remotePrompt": (("engine", "remote", "prompt"), _choice(REMOTE_PROMPTS)),
    "remoteToken": (("engine", "remote", "token"), _optional_text),
    "remoteCaFile": (("engine", "remote", "ca_file"), _optional_text),
    "remoteConnectTimeoutMs": (
        ("engine", "remote", "connect_timeout_ms"),
        _positive_int(100, 600_000),
    ),
    "remoteTimeoutMs": (("engine", "remote", "timeout_ms"), _positive_int(100, 3_600_000)),
    "fimMode": (("completion", "fim_mode"), _choice(FIM_MODES)),
    "maxNewTokens": (("completion", "max_new_tokens"), _positive_int(1, 4096)),
    "contextTokens": (("completion", "context_tokens"), _optional_positive_int(256, 1_048_576)),
    "timeBudgetMs": (("completion", "time_budget_ms"), _positive_int(0, 600_000)),
    "completionCache": (("completion", "reuse"), _boolean),
    "debounceMs": (("completion", "debounce_ms"), _positive_int(0, 5000)),
    "candidates": (("completion", "candidates"), _positive_int(1, MAX_CANDIDATES)),
    "candidatesWhileTyping": (("completion", "candidates_while_typing"), _optional_boolean),
    "speculate": (("completion", "speculate"), _boolean),
    "workspaceContext": (("context", "workspace"), _boolean),
    "explainModel": (("explain", "model"), _optional_text),
    "explainMaxNewTokens": (("explain", "max_new_tokens"), _positive_int(1, 8192)),
    "maxDocumentBytes": (("max_document_bytes",), _positive_int(1, 1 << 31)),
    "logLevel": (("log_level",), _choice(LOG_LEVELS)),
    "keepAcceptanceStats": (("keep_acceptance_stats",), _boolean),
}
"""Each key clients send (flat, camelCase): where it lives in `Settings`, and its check."""
