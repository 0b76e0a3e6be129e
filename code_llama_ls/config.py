"""One typed `Settings` object, resolved in layers and validated key by key.

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
class Settings:
    """Everything the server can be told; every field has a working default."""

    model: str | None = None
    """Hub id, local directory or .gguf file; None means the offline default model."""
    explain_model: str | None = None
    """The model for explanations, in the same forms; None means `model`."""
    backend: str = "auto"
    """auto (ONNX Runtime int8 for the default model on a CPU, else torch), transformers, onnx,
    or remote (an inference server at `remote_url`; `model` then names the tokenizer)."""
    onnx_weights: str = "int8"
    """The ONNX backend's weights: int8, int4 (block-wise MatMulNBits) or fp32; each is
    exported once and cached beside the others."""
    device: str = "auto"
    dtype: str = "auto"
    trust_remote_code: bool = False
    fim_mode: str = "auto"
    """Infilling layout: psm, spm, or auto (SPM, cache-friendly as the user types)."""
    max_new_tokens: int = 64
    explain_max_new_tokens: int = 384
    context_tokens: int | None = None
    """Prompt + generation budget; None means the model's own context length."""
    workspace_context: bool = True
    """Fill completion prompts with code from other files of the workspace."""
    max_document_bytes: int = 1_000_000
    prefix_cache_entries: int = 4
    """KV caches of recent prompts kept for reuse; 0 computes every prompt in full."""
    prefix_cache_mib: int = 192
    """The most memory (MiB) those caches hold together; the newest is kept even when larger.
    192 holds two places at the CPU prompt cap (93 MiB each for the default model)."""
    completion_cache: bool = True
    """Answer from the suggestion being typed through, or from the generation in flight."""
    debounce_ms: int = 120
    """The most the server waits for typing to pause (adaptive to typing speed); 0: none."""
    time_budget_ms: int = 500
    """After this long since the request came, a completion returns what it has written:
    its completed lines, or the whole words of an unfinished first line; 0: no budget."""
    cache_dir: str | None = None
    log_level: str = "info"
    remote_url: str | None = None
    """The inference server of the remote backend (http[s]://host:port)."""
    remote_api: str = "auto"
    """auto (by what the server says it is), openai (/v1/completions), tgi (/generate_stream)."""
    remote_model: str | None = None
    """The served model to ask for; None: the first one the server lists."""
    remote_prompt: str = "auto"
    """auto (token ids where the server takes them, else text), ids, or text."""
    remote_token: str | None = field(default=None, repr=False)
    """Bearer token for the server; else $CODE_LLAMA_LS_REMOTE_TOKEN. Never logged."""
    remote_ca_file: str | None = None
    """CA bundle to verify the server's TLS certificate with (default: the system's)."""
    remote_connect_timeout_ms: int = 3000
    remote_timeout_ms: int = 60_000
    """The longest wait for the server's next bytes (a long prompt's prefill included)."""

    def with_values(self, values: Mapping[str, Any], source: str) -> Settings:
        """A copy with `values` applied; raises ConfigError naming the first bad key."""
        changes: dict[str, Any] = {}
        for raw_key, value in values.items():
            key = _camel_case(str(raw_key))
            field = _FIELDS.get(key)
            if field is None:
                known = ", ".join(sorted(_FIELDS))
                raise ConfigError(key, f"unknown setting in {source} (known: {known})")
            name, validate = field
            try:
                changes[name] = validate(value)
            except ValueError as exc:
                raise ConfigError(key, f"{exc} (in {source})") from None
        return dataclasses.replace(self, **changes)

    @property
    def cache_path(self) -> Path:
        """Where converted models are kept."""
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        if env := os.environ.get("CODE_LLAMA_LS_CACHE"):
            return Path(env).expanduser()
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base) / "code-llama-ls"

    @property
    def infill_mode(self) -> str:
        """The infilling layout to build: `fim_mode` with auto resolved."""
        return "spm" if self.fim_mode == "auto" else self.fim_mode

    def engine_key(self) -> tuple[object, ...]:
        """The settings that need the model to be loaded again when they change."""
        return (
            self.backend,
            self.onnx_weights,
            self.model,
            self.device,
            self.dtype,
            self.trust_remote_code,
            self.cache_dir,
            self.prefix_cache_entries,
            self.prefix_cache_mib,
            self.remote_url,
            self.remote_api,
            self.remote_model,
            self.remote_prompt,
            self.remote_token,
            self.remote_ca_file,
            self.remote_connect_timeout_ms,
            self.remote_timeout_ms,
        )

    @property
    def remote_auth_token(self) -> str | None:
        """The bearer token: the `remoteToken` setting, else the environment."""
        return self.remote_token or os.environ.get(REMOTE_TOKEN_ENV) or None

    def for_explanations(self) -> Settings:
        """The settings whose model writes explanations (`explainModel`, else `model`)."""
        if self.explain_model is None:
            return self
        return dataclasses.replace(self, model=self.explain_model)


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


_FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "model": ("model", _optional_text),
    "explainModel": ("explain_model", _optional_text),
    "backend": ("backend", _choice(BACKENDS)),
    "onnxWeights": ("onnx_weights", _choice(ONNX_WEIGHTS)),
    "device": ("device", _choice(DEVICES)),
    "dtype": ("dtype", _choice(DTYPES)),
    "trustRemoteCode": ("trust_remote_code", _boolean),
    "fimMode": ("fim_mode", _choice(FIM_MODES)),
    "maxNewTokens": ("max_new_tokens", _positive_int(1, 4096)),
    "explainMaxNewTokens": ("explain_max_new_tokens", _positive_int(1, 8192)),
    "contextTokens": ("context_tokens", _optional_positive_int(256, 1_048_576)),
    "workspaceContext": ("workspace_context", _boolean),
    "maxDocumentBytes": ("max_document_bytes", _positive_int(1, 1 << 31)),
    "prefixCacheEntries": ("prefix_cache_entries", _positive_int(0, 64)),
    "prefixCacheMib": ("prefix_cache_mib", _positive_int(0, 1 << 20)),
    "completionCache": ("completion_cache", _boolean),
    "debounceMs": ("debounce_ms", _positive_int(0, 5000)),
    "timeBudgetMs": ("time_budget_ms", _positive_int(0, 600_000)),
    "cacheDir": ("cache_dir", _optional_text),
    "logLevel": ("log_level", _choice(LOG_LEVELS)),
    "remoteUrl": ("remote_url", _optional_url),
    "remoteApi": ("remote_api", _choice(REMOTE_APIS)),
    "remoteModel": ("remote_model", _optional_text),
    "remotePrompt": ("remote_prompt", _choice(REMOTE_PROMPTS)),
    "remoteToken": ("remote_token", _optional_text),
    "remoteCaFile": ("remote_ca_file", _optional_text),
    "remoteConnectTimeoutMs": ("remote_connect_timeout_ms", _positive_int(100, 600_000)),
    "remoteTimeoutMs": ("remote_timeout_ms", _positive_int(100, 3_600_000)),
}
