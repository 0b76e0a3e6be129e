"""`codeLlama/memory` over the real server: what each holder keeps, before and after closing.

The tiny Code Llama-shaped model (torch) answers ADD_FILE's hole; after that
completion its kept KV cache is in the report. Closing the documents empties
the document store and the index (they are not under a workspace folder).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.e2e.lsp_client import inline_text, open_document, plain, start_client
from tests.scenarios import ADD_FILE, ADD_MIDDLE, ADD_URI, cursor_position, split_cursor

MEMORY = "codeLlama/memory"
OTHER_URI = "file:///project/other.py"


async def _memory(client: LanguageClient) -> dict[str, Any]:
    return plain(await client.protocol.send_request_async(MEMORY, None))


def _field(value: Any, name: str) -> Any:
    """A field of an object in the answer (pygls gives nested objects as namedtuples)."""
    return value[name] if isinstance(value, dict) else getattr(value, name)


async def _until(client: LanguageClient, check: Any) -> dict[str, Any]:
    """The memory report once `check(report)` holds (the index follows on its own thread)."""
    for _ in range(200):
        report = await _memory(client)
        if check(report):
            return report
        await asyncio.sleep(0.05)
    raise AssertionError(f"never held: {report}")


async def test_the_memory_request_reports_each_holder(tiny_model: Path) -> None:
    settings = {"debounceMs": 0, "prefixCacheMib": 64}
    client, _ = await start_client("visual-studio-code", tiny_model, settings)
    try:
        open_document(client, ADD_URI, "python", "".join(split_cursor(ADD_FILE)))
        open_document(client, OTHER_URI, "python", "def other(x):\n    return x\n")
        assert await inline_text(client, ADD_URI, cursor_position(ADD_FILE)) == [ADD_MIDDLE]

        report = await _until(client, lambda r: _field(r["workspaceIndex"], "files") == 2)
        process = report["process"]
        assert _field(process, "rssBytes") > 0 and _field(process, "peakRssBytes") > 0
        (engine,) = report["engines"]
        assert _field(engine, "role") == "completion"
        assert _field(engine, "weightsBytes") > 0
        kept = _field(engine, "prefixCache")
        assert _field(kept, "entries") == 1 and _field(kept, "tokens") > 0
        assert _field(kept, "bytes") > 0
        assert _field(kept, "budgetBytes") == 64 << 20  # the setting reached the engine
        documents = report["documents"]
        assert (_field(documents, "documents"), _field(documents, "trees")) == (2, 2)
        assert _field(report["completionCache"], "typedThrough") == 1
        assert report["accountedBytes"] > _field(engine, "weightsBytes")

        for uri in (ADD_URI, OTHER_URI):
            client.text_document_did_close(
                types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri))
            )
        closed = await _until(client, lambda r: _field(r["workspaceIndex"], "files") == 0)
        documents = closed["documents"]
        assert (_field(documents, "documents"), _field(documents, "textBytes")) == (0, 0)
        assert _field(documents, "trees") == 0
        index = closed["workspaceIndex"]
        assert (_field(index, "identifiers"), _field(index, "approxBytes")) == (0, 0)
        assert _field(closed["completionCache"], "typedThrough") == 0
    finally:
        await client.shutdown_session()
        await client.stop()
