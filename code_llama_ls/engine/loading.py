"""Turn the user's `model` setting into a loaded `Engine`, offline.

The setting may be empty (the bundled default model), a local model
directory, a `.gguf` file, or a Hugging Face id that is already in the local
cache. Nothing here downloads: a machine running an editor often cannot reach
the hub, and a language server must fail fast with a message saying what to do
rather than hang on the network.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from code_llama_ls.engine.base import Engine, ProgressCallback
from code_llama_ls.engine.default_model import DEFAULT_MODEL_NAME, ensure_default_model
from code_llama_ls.engine.model_files import (
    check_gguf_file,
    check_model_dir,
    check_tokenizer_dir,
    load_failure,
)
from code_llama_ls.engine.prefix_cache import DEFAULT_BUDGET_MIB, DEFAULT_ENTRIES, MIB
from code_llama_ls.errors import ModelLoadError

if TYPE_CHECKING:
    from code_llama_ls.engine.onnx_engine import OnnxEngine
    from code_llama_ls.engine.remote_engine import RemoteSettings

# "org/name" as the hub spells repository ids; anything else is a path.
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_DEFAULT_ALIASES = {"", "default", DEFAULT_MODEL_NAME.lower()}
_GPU_DRIVER_PATHS = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/kfd")

log = logging.getLogger(__name__)


def load_engine(
    model: str | None,
    *,
    backend: str = "auto",
    device: str = "auto",
    dtype: str = "auto",
    trust_remote_code: bool = False,
    cache_dir: Path | None = None,
    prefix_cache_entries: int = DEFAULT_ENTRIES,
    prefix_cache_bytes: int | None = DEFAULT_BUDGET_MIB * MIB,
    onnx_weights: str = "int8",
    remote: RemoteSettings | None = None,
    on_progress: ProgressCallback | None = None,
) -> Engine:
    """Load the model named by the `model` setting; raises ModelLoadError saying what to do.

    `backend`: "transformers" (torch), "onnx" (ONNX Runtime, CPU only, with
    `onnx_weights`: int8, int4 or fp32; exported once into `cache_dir`), or
    "auto": ONNX Runtime for the default model on a CPU when it is
    installed, torch otherwise, or "remote": the inference server `remote`
    describes runs the model and only the tokenizer of `model` is loaded
    here. Blocking (seconds to minutes): call it on the model worker, not the
    event loop.
    """
    try:
        return _load(
            model,
            backend=backend,
            device=device,
            dtype=dtype,
            trust_remote_code=trust_remote_code,
            cache_dir=cache_dir,
            prefix_cache_entries=prefix_cache_entries,
            prefix_cache_bytes=prefix_cache_bytes,
            onnx_weights=onnx_weights,
            remote=remote,
            on_progress=on_progress,
        )
    except ModelLoadError:
        raise
    except Exception as exc:
        # Whatever a backend raised (IndexError, a reshape error, MemoryError):
        # the user gets the model's name and what to do; the log keeps the trace.
        label = model_label(model)
        log.error("loading %s failed", label, exc_info=exc)
        raise load_failure(label, exc) from exc


def _load(
    model: str | None,
    *,
    backend: str,
    device: str,
    dtype: str,
    trust_remote_code: bool,
    cache_dir: Path | None,
    prefix_cache_entries: int,
    prefix_cache_bytes: int | None,
    onnx_weights: str,
    remote: RemoteSettings | None,
    on_progress: ProgressCallback | None,
) -> Engine:
    if backend == "remote" and remote is None:
        raise ModelLoadError(
            "The remote backend needs remoteUrl: the address of the inference server "
            "(for example http://gpu-box:8000 for vLLM or llama.cpp's server)."
        )
    source = _resolve_source(model, cache_dir, on_progress, weights=backend != "remote")
    if backend == "remote" and remote is not None:
        return _load_remote(source, remote, on_progress)
    if _chooses_onnx(backend, device, source):
        return load_onnx(
            source,
            cache_dir,
            prefix_cache_entries,
            prefix_cache_bytes,
            on_progress,
            onnx_weights,
        )
    from code_llama_ls.engine.transformers_engine import TransformersEngine

    report = on_progress or _ignore_progress
    report(f"loading {source.name}" + (" (dequantizing GGUF)" if source.gguf_file else ""), None)
    engine = TransformersEngine.from_pretrained(
        source.location,
        gguf_file=source.gguf_file,
        name=source.name,
        device=device,
        dtype=dtype,
        trust_remote_code=trust_remote_code,
        prefix_cache_entries=prefix_cache_entries,
        prefix_cache_bytes=prefix_cache_bytes,
    )
    report(f"loaded {engine.name}", 1.0)
    return engine


def torch_device_report() -> str:
    """What torch runs on here: "cuda (NAME), DTYPE" or "cpu, float32, N threads".

    Raises ImportError when torch does not import.
    """
    import torch

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        return f"cuda ({name}), {dtype}"
    return f"cpu, float32, {torch.get_num_threads()} threads"


def model_label(model: str | None) -> str:
    """The model as messages name it: its path or hub id as set, or the default model."""
    spec = (model or "").strip()
    if spec.lower() in _DEFAULT_ALIASES:
        return f"the default model ({DEFAULT_MODEL_NAME})"
    return str(Path(spec).expanduser()) if not looks_like_hub_id(spec) else spec


@dataclass(frozen=True)
class ModelSource:
    """Where a model's files are: a directory or hub id, or a GGUF file in a directory."""

    location: str | Path
    name: str
    gguf_file: str | None = None
    bundled: bool = False
    """The offline default model."""


def _resolve_source(
    model: str | None,
    cache_dir: Path | None,
    on_progress: ProgressCallback | None,
    *,
    weights: bool = True,
) -> ModelSource:
    """Where the model's files are, checked (`model_files`) before any backend reads them.

    `weights`: the backend loads the weights (every backend but the remote
    one, which needs only a tokenizer).
    """
    spec = (model or "").strip()
    if spec.lower() in _DEFAULT_ALIASES:
        directory = ensure_default_model(cache_dir, on_progress)
        return ModelSource(directory, DEFAULT_MODEL_NAME, bundled=True)
    path = Path(spec).expanduser()
    if path.is_dir():
        if weights:
            check_model_dir(path)
        else:
            check_tokenizer_dir(path)
        return ModelSource(path, path.name)
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelLoadError(
                f"Model {spec!r} is a file but not a .gguf model: set `model` to a model "
                "directory (config.json + *.safetensors) or to a .gguf file."
            )
        # The tokenizer alone (remote backend) is read from the same header and
        # tensor table, which transformers' GGUF reader maps whole: check it all.
        check_gguf_file(path)
        # transformers dequantizes a GGUF file on every load: seconds for small models.
        return ModelSource(path.parent, path.stem, gguf_file=path.name)
    if path.is_symlink():
        raise ModelLoadError(
            f"Model path {str(path)!r} is a link to {str(path.readlink())!r}, which does not "
            "exist. Set `model` to an existing model directory or .gguf file."
        )
    if looks_like_hub_id(spec):
        _require_cached(spec)
        return ModelSource(spec, spec)
    raise ModelLoadError(
        f"Model path {str(path)!r} does not exist. Set `model` to a local model directory, "
        "a .gguf file, a Hugging Face id already in the local cache "
        "(like codellama/CodeLlama-7b-hf), or leave it empty for the default model."
    )


def _chooses_onnx(backend: str, device: str, source: ModelSource) -> bool:
    """Whether ONNX Runtime runs this model.

    "auto" picks it for the default model on a CPU (measured faster there,
    see benchmarks/README.md); other models keep torch unless asked, since
    exporting a large model on a CPU takes long and much memory.
    """
    if backend == "transformers":
        return False
    if backend == "onnx":
        if device.startswith("cuda"):
            raise ModelLoadError(
                'The onnx backend runs on the CPU: set device to "cpu" or "auto", '
                'or backend to "transformers" for the GPU.'
            )
        if not isinstance(source.location, Path) or source.gguf_file is not None:
            raise ModelLoadError(
                "The onnx backend exports a model directory (config.json + *.safetensors); "
                f"{source.name} is not one here: set backend to transformers, or convert it "
                "to a directory first."
            )
        return True
    if not source.bundled or device.startswith("cuda") or not _onnx_installed():
        return False
    return _runs_on_cpu(device)


def _runs_on_cpu(device: str) -> bool:
    """Whether `device` means the CPU here, asking torch only when a GPU driver is present.

    Importing torch takes seconds and hundreds of MB: without a GPU driver
    torch could not see a GPU anyway, so "auto" is the CPU without asking it.
    """
    wanted = device.strip().lower() or "auto"
    if wanted == "cpu":
        return True
    if wanted == "auto" and not _gpu_driver_present():
        return True
    from code_llama_ls.engine.transformers_engine import resolve_device

    return resolve_device(device) == "cpu"


def _gpu_driver_present() -> bool:
    """An NVIDIA or ROCm driver is loaded (Linux), or the system is one this check cannot read."""
    if sys.platform == "darwin":  # no CUDA builds of torch for macOS
        return False
    if not sys.platform.startswith("linux"):
        return True
    return any(Path(p).exists() for p in _GPU_DRIVER_PATHS)


def _onnx_installed() -> bool:
    """onnxruntime and optimum-onnx's exporter are installed, found without importing them."""
    if importlib.util.find_spec("onnxruntime") is None:
        return False
    # find_spec("optimum.exporters.onnx") would import optimum and optimum.exporters.
    optimum = importlib.util.find_spec("optimum")
    locations = (optimum.submodule_search_locations or []) if optimum is not None else []
    return any((Path(location) / "exporters" / "onnx").is_dir() for location in locations)


def onnx_source(
    model: str | None,
    *,
    backend: str,
    device: str,
    cache_dir: Path | None,
    on_progress: ProgressCallback | None,
) -> ModelSource | None:
    """The model ONNX Runtime runs for these settings, or None when another backend runs it.

    Raises ModelLoadError for a model that cannot be found, as `load_engine` would.
    """
    if backend == "remote":
        return None
    source = _resolve_source(model, cache_dir, on_progress)
    return source if _chooses_onnx(backend, device, source) else None


def load_onnx(
    source: ModelSource,
    cache_dir: Path | None,
    prefix_cache_entries: int,
    prefix_cache_bytes: int | None,
    on_progress: ProgressCallback | None,
    weights: str = "int8",
    on_exported: Callable[[Path], object] | None = None,
    decoding_tokenizer: bool = False,
) -> OnnxEngine:
    """Export `source` once (see `OnnxEngine.from_model_dir`, also for the last two), then
    open it."""
    from code_llama_ls.engine.default_model import default_cache_dir
    from code_llama_ls.engine.onnx_engine import OnnxEngine

    assert isinstance(source.location, Path)
    report = on_progress or _ignore_progress
    engine = OnnxEngine.from_model_dir(
        source.location,
        cache_root=cache_dir or default_cache_dir(),
        weights=weights,
        name=source.name,
        prefix_cache_entries=prefix_cache_entries,
        prefix_cache_bytes=prefix_cache_bytes,
        on_progress=on_progress,
        on_exported=on_exported,
        decoding_tokenizer=decoding_tokenizer,
    )
    report(f"loaded {engine.name}", 1.0)
    return engine


def _load_remote(
    source: ModelSource, remote: RemoteSettings, on_progress: ProgressCallback | None
) -> Engine:
    from code_llama_ls.engine.remote_engine import load_remote_engine

    report = on_progress or _ignore_progress
    report(f"loading the tokenizer of {source.name}", None)
    engine = load_remote_engine(source.location, source.name, remote, gguf_file=source.gguf_file)
    report(f"tokenizer of {source.name} loaded; the model runs at {engine.device}", 1.0)
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
