"""Acceptance reports over the real server: items carry an accept command; shows, accepts,
partial accepts and dismissals are counted, returned by getStatus, kept and printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from lsprotocol.converters import get_converter
from pytest_lsp import LanguageClient

from code_llama_ls.lsp.methods import (
    ACCEPT_COMPLETION_COMMAND,
    DID_PARTIALLY_ACCEPT_COMPLETION,
    DID_SHOW_COMPLETION,
)
from tests.e2e.lsp_client import as_json, insert_text, open_document, plain, start_client
from tests.scenarios import ADD_FILE, ADD_MIDDLE, ADD_URI, cursor_position, split_cursor


async def _item(client: LanguageClient, position: types.Position) -> types.InlineCompletionItem:
    result = await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=ADD_URI),
            position=position,
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Invoked
            ),
        )
    )
    assert isinstance(result, types.InlineCompletionList) and len(result.items) == 1
    return result.items[0]


async def _acceptance(client: LanguageClient) -> dict[str, Any]:
    status = plain(await client.protocol.send_request_async("codeLlama/getStatus", None))
    report = as_json(status["acceptance"])
    assert isinstance(report, dict)
    return report


async def test_reports_are_counted_kept_and_printed(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    client, _ = await start_client(
        "visual-studio-code",
        tiny_model,
        {"keepAcceptanceStats": True, "debounceMs": 0, "candidates": 1},
    )
    try:
        open_document(client, ADD_URI, "python", "".join(split_cursor(ADD_FILE)))
        position = cursor_position(ADD_FILE)
        item = await _item(client, position)
        assert item.insert_text == ADD_MIDDLE
        assert item.command is not None and item.command.command == ACCEPT_COMPLETION_COMMAND
        suggestion_id = item.command.arguments[0]["id"]  # type: ignore[index]
        wire_item = get_converter().unstructure(item)
        client.protocol.notify(DID_SHOW_COMPLETION, {"item": wire_item})
        client.protocol.notify(
            DID_PARTIALLY_ACCEPT_COMPLETION, {"item": wire_item, "acceptedLength": 2}
        )
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command=ACCEPT_COMPLETION_COMMAND, arguments=[{"id": suggestion_id}]
            )
        )
        counts = (await _acceptance(client))["total"]
        assert counts["offered"] == counts["shown"] == counts["accepted"] == 1, counts
        assert counts["partiallyAccepted"] == 1
        assert counts["acceptedChars"] == len(ADD_MIDDLE) + 2
        assert counts["taken"] == 1 and counts["acceptanceRate"] == 1.0

        # A second suggestion, shown, then typed over with something else: dismissed.
        shown = await _item(client, position)
        client.protocol.notify(DID_SHOW_COMPLETION, {"item": get_converter().unstructure(shown)})
        insert_text(client, ADD_URI, 2, position, "zz")
        typed_on = types.Position(position.line, position.character + 2)
        await client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=ADD_URI),
                position=typed_on,
                context=types.InlineCompletionContext(
                    trigger_kind=types.InlineCompletionTriggerKind.Invoked
                ),
            )
        )
        report = await _acceptance(client)
        assert report["total"]["dismissed"] == 1, report
        assert report["total"]["acceptanceRate"] == 0.5
        (row,) = report["byLanguageAndModel"]
        assert (row["language"], row["model"]) == ("python", "model")
        # Reports of items that are not ours are ignored, not errors.
        client.protocol.notify(DID_SHOW_COMPLETION, {"item": {"insertText": "x"}})
        assert (await _acceptance(client))["total"]["shown"] == 2
    finally:
        await client.shutdown_session()
        await client.stop()

    kept = tmp_path / "code-llama-ls" / "acceptance.json"
    assert json.loads(kept.read_text())["counts"][0]["accepted"] == 1
    printed = subprocess.run(
        [sys.executable, "-m", "code_llama_ls", "stats"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "XDG_STATE_HOME": str(tmp_path)},
    ).stdout
    assert "python" in printed and "50%" in printed and "never sent anywhere" in printed
