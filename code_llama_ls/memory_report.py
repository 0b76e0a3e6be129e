"""What holds the server's memory: the numbers behind the `codeLlama/memory` request.

One job: ask each part what it holds (the process's resident memory, each
loaded engine's weights and kept KV caches, the open documents, the
workspace index, the completion and encoding caches) and return one JSON
object. No LSP here: the server's handler passes its parts in.

Cheap by design, since it runs on the event loop: every number is a running
sum or a sum of `len()`s; no tree, text or tensor is walked. The
`accountedBytes` total adds what is measured or estimated; the rest of the
resident memory is the interpreter, libraries, allocator slack and ONNX
Runtime's arena (which `codeLlama/memory` cannot see into).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from code_llama_ls import pieces
from code_llama_ls.completion_cache import InFlight, TypedThrough
from code_llama_ls.context.builder import ContextBuilder
from code_llama_ls.context.index import WorkspaceIndex
from code_llama_ls.documents import DocumentStore
from code_llama_ls.engine.base import Engine

log = logging.getLogger(__name__)

MEMORY_REQUEST = "codeLlama/memory"

# /proc/self/status fields reported, and their JSON keys (values in kB there).
_PROC_FIELDS = {
    "VmRSS": "rssBytes",
    "VmHWM": "peakRssBytes",
    "RssAnon": "rssAnonBytes",
    "RssFile": "rssFileBytes",
}


def process_memory(status_file: Path = Path("/proc/self/status")) -> dict[str, int]:
    """The process's resident memory now and at its peak, in bytes (Linux; else the peak)."""
    found: dict[str, int] = {}
    try:
        text = status_file.read_text(encoding="ascii", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        name, _, value = line.partition(":")
        key = _PROC_FIELDS.get(name)
        parts = value.split()
        if key is not None and parts and parts[0].isdigit():
            found[key] = int(parts[0]) * 1024
    if "rssBytes" not in found:
        found.update(_peak_from_rusage())
    return found


def _peak_from_rusage() -> dict[str, int]:
    try:
        import resource
    except ImportError:  # Windows
        return {}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kB, macOS bytes.
    return {"peakRssBytes": int(peak if sys.platform == "darwin" else peak * 1024)}


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
            # External data files (models over 2 GB) sit beside the graph.
            files = [Path(path), *Path(path).parent.glob("*.onnx_data")]
            return sum(f.stat().st_size for f in files if f.is_file())
        except OSError:
            return None
    return None


def piece_caches() -> dict[str, int]:
    """The line-piece encodings kept per tokenizer (`pieces.py`), all tokenizers together."""
    entries = chars = caches = 0
    try:
        for cache in list(pieces._caches.values()):
            kept = getattr(cache, "_ids", {})
            caches += 1
            entries += len(kept)
            chars += sum(map(len, list(kept)))
    except RuntimeError:  # changed by the model worker meanwhile: report what was counted
        pass
    return {"tokenizers": caches, "entries": entries, "chars": chars}


def memory_report(
    *,
    engines: Iterable[tuple[str, Engine]],
    documents: DocumentStore,
    index: WorkspaceIndex,
    context: ContextBuilder | None = None,
    typed_through: TypedThrough | None = None,
    in_flight: InFlight[Any] | None = None,
) -> dict[str, Any]:
    """The `codeLlama/memory` answer: the process, then each holder and what it holds.

    `engines`: (role, engine) of each loaded engine ("completion", "explanation").
    """
    engine_reports: list[dict[str, Any]] = []
    seen: set[int] = set()
    for role, engine in engines:
        if id(engine) not in seen:  # one engine may serve completions and explanations
            seen.add(id(engine))
            engine_reports.append(engine_memory(engine, role))
    docs = documents.usage()
    indexed = index.usage()
    report: dict[str, Any] = {
        "process": process_memory(),
        "engines": engine_reports,
        "documents": docs.to_json(),
        "workspaceIndex": indexed.to_json(),
        "pieceCaches": piece_caches(),
    }
    if context is not None:
        report["contextCaches"] = context.cache_usage()
    if typed_through is not None or in_flight is not None:
        report["completionCache"] = {
            "typedThrough": len(typed_through) if typed_through is not None else 0,
            "typedThroughChars": typed_through.text_chars() if typed_through is not None else 0,
            "inFlight": len(in_flight) if in_flight is not None else 0,
        }
    accounted = docs.text_bytes + docs.line_index_bytes + docs.tree_bytes_estimate
    accounted += indexed.approx_bytes
    for held in engine_reports:
        accounted += held.get("weightsBytes", 0) + held.get("prefixCache", {}).get("bytes", 0)
    report["accountedBytes"] = accounted
    return report
