"""Model runtimes behind one small `Engine` interface, chosen in one place (`load_engine`).

Importing this package is cheap: the torch backend (and torch itself) is only
imported when a name that needs it is first used, so the server starts in well
under a second and tests of everything else run without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from code_llama_ls.engine.base import (
    Engine,
    FinishReason,
    Generation,
    GenerationParams,
    ProgressCallback,
    ServedModel,
)

if TYPE_CHECKING:
    from code_llama_ls.engine.default_model import (
        DEFAULT_MODEL_NAME,
        default_cache_dir,
        ensure_default_model,
        find_default_gguf,
    )
    from code_llama_ls.engine.hf_tokenizer import TransformersTokenizer
    from code_llama_ls.engine.loading import load_engine
    from code_llama_ls.engine.onnx_engine import OnnxEngine
    from code_llama_ls.engine.transformers_engine import TransformersEngine

__all__ = [
    "DEFAULT_MODEL_NAME",
    "Engine",
    "FinishReason",
    "Generation",
    "GenerationParams",
    "OnnxEngine",
    "ProgressCallback",
    "ServedModel",
    "TransformersEngine",
    "TransformersTokenizer",
    "default_cache_dir",
    "ensure_default_model",
    "find_default_gguf",
    "load_engine",
]

_LAZY = {
    "DEFAULT_MODEL_NAME": "code_llama_ls.engine.default_model",
    "default_cache_dir": "code_llama_ls.engine.default_model",
    "ensure_default_model": "code_llama_ls.engine.default_model",
    "find_default_gguf": "code_llama_ls.engine.default_model",
    "load_engine": "code_llama_ls.engine.loading",
    "OnnxEngine": "code_llama_ls.engine.onnx_engine",
    "TransformersEngine": "code_llama_ls.engine.transformers_engine",
    "TransformersTokenizer": "code_llama_ls.engine.hf_tokenizer",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
