"""Turn the user's `model` setting into a loaded `Engine`, offline.

The setting may be empty (the bundled default model), a local model
directory, a `.gguf` file, or a Hugging Face id that is already in the local
cache. Nothing here downloads: a machine running an editor often cannot reach
the hub, and a language server must fail fast with a message saying what to do
rather than hang on the network.
"""

from __future__ import annotations

import re
from pathlib import Path

from code_llama_ls.engine.base import Engine, ProgressCallback
from code_llama_ls.engine.default_model import DEFAULT_MODEL_NAME, ensure_default_model
from code_llama_ls.errors import ModelLoadError

# "org/name" as the hub spells repository ids; anything else is a path.
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_DEFAULT_ALIASES = {"", "default", DEFAULT_MODEL_NAME.lower()}


def load_engine(
    model: str | None,
    *,
    device: str = "auto",
    dtype: str = "auto",
    trust_remote_code: bool = False,
    cache_dir: Path | None = None,
    on_progress: ProgressCallback | None = None,
) -> Engine:
    """Load the model named by the `model` setting; raises ModelLoadError saying what to do.

    Blocking (seconds to minutes): call it on the model worker, not the event loop.
    """
    from code_llama_ls.engine.transformers_engine import TransformersEngine

    spec = (model or "").strip()
    report = on_progress or _ignore_progress

    if spec.lower() in _DEFAULT_ALIASES:
        directory = ensure_default_model(cache_dir, on_progress)
        report(f"loading {DEFAULT_MODEL_NAME}", None)
        engine = TransformersEngine.from_pretrained(
            directory,
            name=DEFAULT_MODEL_NAME,
            device=device,
            dtype=dtype,
            trust_remote_code=trust_remote_code,
        )
        report(f"loaded {DEFAULT_MODEL_NAME}", 1.0)
        return engine

    path = Path(spec).expanduser()
    if path.is_dir():
        report(f"loading {path.name}", None)
        engine = TransformersEngine.from_pretrained(
            path, device=device, dtype=dtype, trust_remote_code=trust_remote_code
        )
    elif path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelLoadError(
                f"Model {spec!r} is a file but not a .gguf model: set `model` to a model "
                "directory (config.json + *.safetensors) or to a .gguf file."
            )
        # transformers dequantizes a GGUF file on every load: seconds for small models.
        report(f"loading {path.name} (dequantizing GGUF)", None)
        engine = TransformersEngine.from_pretrained(
            path.parent,
            gguf_file=path.name,
            name=path.stem,
            device=device,
            dtype=dtype,
            trust_remote_code=trust_remote_code,
        )
    elif looks_like_hub_id(spec):
        _require_cached(spec)
        report(f"loading {spec}", None)
        engine = TransformersEngine.from_pretrained(
            spec, device=device, dtype=dtype, trust_remote_code=trust_remote_code
        )
    else:
        raise ModelLoadError(
            f"Model path {str(path)!r} does not exist. Set `model` to a local model directory, "
            "a .gguf file, a Hugging Face id already in the local cache "
            "(like codellama/CodeLlama-7b-hf), or leave it empty for the default model."
        )
    report(f"loaded {engine.name}", 1.0)
    return engine


def looks_like_hub_id(spec: str) -> bool:
    """Whether `spec` has the shape of a hub repository id ("org/name")."""
    return bool(_HUB_ID.match(spec)) and ".." not in spec


def _require_cached(repo_id: str) -> None:
    """Fail fast, without touching the network, when `repo_id` is not in the local HF cache."""
    from huggingface_hub import try_to_load_from_cache
    from transformers.utils import hub

    # transformers' own cache location (it honours TRANSFORMERS_CACHE and HF_HUB_CACHE).
    cached = try_to_load_from_cache(repo_id, "config.json", cache_dir=hub.TRANSFORMERS_CACHE)
    if isinstance(cached, str):
        return
    raise ModelLoadError(
        f"Model {repo_id!r} is neither a local directory nor in the local Hugging Face cache, "
        "and code-llama-ls does not download models (the hub may be unreachable from here). "
        f"On a machine with access run `huggingface-cli download {repo_id} --local-dir DIR`, "
        "copy DIR here, and set `model` to DIR."
    )


def _ignore_progress(message: str, fraction: float | None) -> None:
    del message, fraction
