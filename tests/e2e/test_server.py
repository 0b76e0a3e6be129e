"""The real server over stdio, driven like VS Code and Neovim drive it.

initialize → didOpen → didChange → inlineCompletion → completion → explain
(with progress) → cancel → shutdown, with a tiny Code Llama-shaped model on
the FIM path, plus bad input that must get clear errors while the server
keeps serving.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from tests.e2e.conftest import EDITORS
from tests.e2e.lsp_client import (
    inline_text,
    insert_text,
    open_document,
    range_json,
    record_statuses,
    start_client,
)
from tests.scenarios import (
    ADD_FILE,
    ADD_MIDDLE,
    ADD_URI,
    EXPLAINED_CODE,
    EXPLANATION,
    GREET_FILE,
    GREET_MIDDLE,
    GREET_URI,
    cursor_position,
    split_cursor,
)

INVALID_PARAMS = -32602
REQUEST_CANCELLED = -32800


@pytest_asyncio.fixture(params=EDITORS)
async def session(
    request: pytest.FixtureRequest, tiny_model: Path
) -> AsyncIterator[tuple[str, LanguageClient, types.InitializeResult]]:
    client, result = await start_client(request.param, tiny_model)
    yield request.param, client, result
    await client.shutdown_session()
    await client.stop()


async def test_initialize_advertises_features_and_negotiates_encoding(
    session: tuple[str, LanguageClient, types.InitializeResult],
) -> None:
    editor, _, result = session
    caps = result.capabilities
    assert caps.inline_completion_provider is not None
    assert caps.completion_provider is not None
    assert caps.code_action_provider is not None
    assert caps.execute_command_provider is not None
    assert "codeLlama.explain" in caps.execute_command_provider.commands
    sync = caps.text_document_sync
    assert isinstance(sync, types.TextDocumentSyncOptions)
    assert sync.change == types.TextDocumentSyncKind.Incremental
    # Neovim offers UTF-8 (we take it); VS Code offers nothing (UTF-16).
    expected = "utf-8" if editor == "neovim" else "utf-16"
    assert caps.position_encoding == expected


async def test_edit_then_complete_inline_and_as_completion_item(
    session: tuple[str, LanguageClient, types.InitializeResult],
) -> None:
    _, client, _ = session
    prefix, suffix = split_cursor(ADD_FILE)
    # Open with the body missing, then type it through incremental edits.
    typed_line = "    return "
    before = prefix[: -len(typed_line)]
    open_document(client, ADD_URI, "python", before + suffix)
    line = before.count("\n")
    for version, character in enumerate(range(len(typed_line)), start=2):
        at = types.Position(line, character)
        insert_text(client, ADD_URI, version, at, typed_line[character])
    position = cursor_position(ADD_FILE)
    assert await inline_text(client, ADD_URI, position) == [ADD_MIDDLE]

    completion = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=ADD_URI), position=position
        )
    )
    assert isinstance(completion, types.CompletionList)
    assert [item.text_edit.new_text for item in completion.items if item.text_edit] == [ADD_MIDDLE]


async def test_javascript_completion_fills_before_the_closing_text(
    session: tuple[str, LanguageClient, types.InitializeResult],
) -> None:
    _, client, _ = session
    prefix, suffix = split_cursor(GREET_FILE)
    open_document(client, GREET_URI, "javascript", prefix + suffix)
    assert await inline_text(client, GREET_URI, cursor_position(GREET_FILE)) == [GREET_MIDDLE]


async def test_explain_streams_progress_and_returns_markdown(
    session: tuple[str, LanguageClient, types.InitializeResult],
) -> None:
    _, client, _ = session
    open_document(client, ADD_URI, "python", EXPLAINED_CODE + "\n\nprint(add(1, 2))\n")
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=ADD_URI),
            range=types.Range(types.Position(0, 0), types.Position(2, 0)),
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    assert actions is not None
    action = actions[0]
    assert isinstance(action, types.CodeAction)
    assert action.title == "Explain selection"
    assert action.command is not None
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command=action.command.command, arguments=action.command.arguments
        )
    )
    assert result == EXPLANATION

    reports = [values for values in client.progress_reports.values() if values]
    explain_reports = [
        values
        for values in reports
        if isinstance(values[0], types.WorkDoneProgressBegin)
        and values[0].title == "Explaining selection"
    ]
    assert len(explain_reports) == 1
    values = explain_reports[0]
    assert isinstance(values[-1], types.WorkDoneProgressEnd)
    messages = [v.message for v in values if isinstance(v, types.WorkDoneProgressReport)]
    assert messages, "no text was reported while the explanation was written"
    assert all(message is not None and EXPLANATION.startswith(message) for message in messages)
    assert messages[-1] == EXPLANATION


async def test_cancel_request_stops_generation_and_server_keeps_serving(
    babbling_model: Path,
) -> None:
    # The babbling model never picks a stop token: only cancellation ends its
    # 4000-token explanation early.
    limit = 4000
    statuses: list[dict[str, Any]] = []
    client, _ = await start_client(
        "neovim",
        babbling_model,
        {"explainMaxNewTokens": limit},
        on_start=lambda c: record_statuses(c, statuses),
    )
    try:
        open_document(client, ADD_URI, "python", EXPLAINED_CODE)
        request_id = "explain-to-cancel"
        response = client.protocol.send_request(
            types.WORKSPACE_EXECUTE_COMMAND,
            types.ExecuteCommandParams(
                command="codeLlama.explain",
                arguments=[{"uri": ADD_URI, "range": range_json(0, 0, 2, 0)}],
            ),
            msg_id=request_id,
        )
        while not _explain_reports(client, types.WorkDoneProgressReport):
            await asyncio.sleep(0.01)
        client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=request_id))
        with pytest.raises(JsonRpcException) as caught:
            await asyncio.wrap_future(response)
        assert caught.value.code == REQUEST_CANCELLED
        # The status shows the model free again, with no other request to refresh it.
        for _ in range(3000):
            if statuses[-1]["state"] == "ready":
                break
            await asyncio.sleep(0.01)
        assert statuses[-1]["state"] == "ready", statuses

        # The model worker is free again: the next request is answered.
        assert isinstance(await inline_text(client, ADD_URI, types.Position(1, 4)), list)
        outcome = None
        while outcome is None:
            logs = [m.message for m in client.log_messages]
            outcome = next((m for m in logs if re.search(r"explain .* new, ", m)), None)
            await asyncio.sleep(0.01)
        match = re.search(r"(\d+) new, (\S+),", outcome)
        assert match is not None, outcome
        assert match.group(2) == "cancelled", outcome
        assert int(match.group(1)) < limit
        assert _explain_reports(client, types.WorkDoneProgressEnd)
    finally:
        await client.shutdown_session()
        await client.stop()


def _explain_reports(client: LanguageClient, kind: type) -> list[object]:
    return [
        value
        for values in client.progress_reports.values()
        if values
        and isinstance(values[0], types.WorkDoneProgressBegin)
        and values[0].title == "Explaining selection"
        for value in values
        if isinstance(value, kind)
    ]


async def test_bad_input_gets_clear_errors_and_the_server_keeps_serving(
    session: tuple[str, LanguageClient, types.InitializeResult],
) -> None:
    _, client, _ = session
    # Unknown document: an empty result, not an error.
    assert await inline_text(client, "file:///nowhere.py", types.Position(0, 0)) == []

    open_document(client, ADD_URI, "python", "".join(split_cursor(ADD_FILE)))
    for position in (types.Position(99, 0), types.Position(1, 500)):
        with pytest.raises(JsonRpcException) as caught:
            await inline_text(client, ADD_URI, position)
        assert caught.value.code == INVALID_PARAMS
        assert "line" in caught.value.message or "character" in caught.value.message

    for arguments in ([], [{"uri": ADD_URI}], [{"uri": ADD_URI, "range": "everything"}]):
        with pytest.raises(JsonRpcException) as caught:
            await client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="codeLlama.explain", arguments=arguments)
            )
        assert caught.value.code == INVALID_PARAMS

    # Still serving, with the right answer.
    assert await inline_text(client, ADD_URI, cursor_position(ADD_FILE)) == [ADD_MIDDLE]


async def test_unknown_model_is_shown_to_the_user_and_requests_still_answer(
    tmp_path: Path,
) -> None:
    client, _ = await start_client("visual-studio-code", tmp_path / "no-such-model")
    try:
        open_document(client, ADD_URI, "python", "".join(split_cursor(ADD_FILE)))
        assert await inline_text(client, ADD_URI, cursor_position(ADD_FILE)) == []
        shown = [m.message for m in client.messages if m.type == types.MessageType.Error]
        assert any("no-such-model" in message for message in shown), shown
    finally:
        await client.shutdown_session()
        await client.stop()


async def test_bad_configuration_names_the_key_and_keeps_serving(
    session: tuple[str, LanguageClient, types.InitializeResult],
) -> None:
    _, client, _ = session
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"codeLlama": {"maxNewTokens": "lots"}})
    )
    open_document(client, ADD_URI, "python", "".join(split_cursor(ADD_FILE)))
    assert await inline_text(client, ADD_URI, cursor_position(ADD_FILE)) == [ADD_MIDDLE]
    shown = [m.message for m in client.messages if m.type == types.MessageType.Error]
    assert any("maxNewTokens" in message for message in shown), shown
