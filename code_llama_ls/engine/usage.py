"""What one loaded engine holds: its weights and its kept KV caches, for `codeLlama/memory`.

Light on purpose (no torch, ONNX Runtime or LSP imports): the model host
(`host/model_host.py`) answers with it for the engine it runs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from code_llama_ls.engine.base import Engine

log = logging.getLogger(__name__)


def engine_memory(engine: Engine, role: str) -> dict[str, Any]:
    """What one loaded engine holds: its weights (when known) and its kept KV caches.

    An engine may say more itself through `memory_usage()` (a mapping of
    camelCase keys merged in, `weightsBytes` among them).
    """
    report: dict[str, Any] = {
        "role": role,
        "name": engine.name,
        "backend": type(engine).__name__,
        "device": engine.device,
        "dtype": engine.dtype,
    }
    weights = _weights_bytes(engine)
    if weights is not None:
        report["weightsBytes"] = weights
    usage = getattr(engine, "prefix_cache_usage", None)
    if callable(usage):
        report["prefixCache"] = usage().to_json()
    own = getattr(engine, "memory_usage", None)
    if callable(own):
        try:
            extra = own()
        except Exception:  # a report must not fail because one part could not answer
            log.debug("%s: memory_usage failed", engine.name, exc_info=True)
        else:
            if isinstance(extra, Mapping):
                report.update(extra)
    return report


def _weights_bytes(engine: Engine) -> int | None:
    """The weights' size: the torch model's parameters, or the ONNX model file's size."""
    model = getattr(engine, "_model", None)
    parameters = getattr(model, "parameters", None)
    if callable(parameters):
        return int(sum(p.numel() * p.element_size() for p in parameters()))
    session = getattr(getattr(engine, "_onnx", None), "_session", None)
    path = getattr(session, "_model_path", None)
    if isinstance(path, str | Path):
        try:
            # External data (weights) sits beside the graph: model.onnx.data here.
            files = [Path(path), *Path(path).parent.glob("*.onnx[._]data")]
            return sum(f.stat().st_size for f in files if f.is_file())
        except OSError:
            return None
    return None
