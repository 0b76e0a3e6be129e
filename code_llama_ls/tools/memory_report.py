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
from collections.abc import Iterable
from typing import Any

from code_llama_ls.context.builder import ContextBuilder
from code_llama_ls.context.index import WorkspaceIndex
from code_llama_ls.engine.base import Engine
from code_llama_ls.engine.usage import engine_memory
from code_llama_ls.memory import process_memory
from code_llama_ls.serving.reuse import InFlight, TypedThrough, WrittenAhead
from code_llama_ls.text.documents import DocumentStore
from code_llama_ls.tokens import pieces

log = logging.getLogger(__name__)


def piece_caches() -> dict[str, int]:
    """The line-piece encodings kept per tokenizer (`pieces.py`), all tokenizers together."""
    entries = chars = caches = 0
    try:
        for cache in pieces._cache_for.values():
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
    written_ahead: WrittenAhead | None = None,
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
            "writtenAheadChars": written_ahead.text_chars() if written_ahead is not None else 0,
        }
    accounted = docs.text_bytes + docs.line_index_bytes + docs.tree_bytes_estimate
    accounted += indexed.approx_bytes
    for held in engine_reports:
        accounted += held.get("weightsBytes", 0) + held.get("prefixCache", {}).get("bytes", 0)
    report["accountedBytes"] = accounted
    return report
