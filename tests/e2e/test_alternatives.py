"""Alternative suggestions over the real server: how many, when, distinct, each with its own
accept command, and counted as one offer."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from code_llama_ls.lsp.methods import ACCEPT_COMPLETION_COMMAND
from tests.e2e.lsp_client import as_json, open_document, start_client
from tests.scenarios import ADD_FILE, ADD_MIDDLE, ADD_URI, cursor_position, split_cursor


async def _items(
    client: LanguageClient, kind: types.InlineCompletionTriggerKind
) -> list[types.InlineCompletionItem]:
    result = await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=ADD_URI),
            position=cursor_position(ADD_FILE),
            context=types.InlineCompletionContext(trigger_kind=kind),
        )
    )
    assert isinstance(result, types.InlineCompletionList)
    return list(result.items)


async def test_an_invoked_request_gets_distinct_alternatives_on_a_cpu(tiny_model: Path) -> None:
    client, _ = await start_client("visual-studio-code", tiny_model, {"debounceMs": 0})
    try:
        open_document(client, ADD_URI, "python", "".join(split_cursor(ADD_FILE)))
        typing = await _items(client, types.InlineCompletionTriggerKind.Automatic)
        assert [item.insert_text for item in typing] == [ADD_MIDDLE]  # a CPU: one while typing
        invoked = await _items(client, types.InlineCompletionTriggerKind.Invoked)
        texts = [item.insert_text for item in invoked]
        assert texts[0] == ADD_MIDDLE, "the best suggestion comes first"
        assert 2 <= len(texts) <= 3 and len(set(texts)) == len(texts), texts
        assert all(isinstance(text, str) and text.strip() for text in texts)
        ids = set()
        for item in invoked:
            assert item.command is not None and item.command.command == ACCEPT_COMPLETION_COMMAND
            ids.add(item.command.arguments[0]["id"])  # type: ignore[index]
        assert len(ids) == len(invoked), "each item reports its own accept"
        second_id = invoked[1].command.arguments[0]["id"]  # type: ignore[index, union-attr]
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command=ACCEPT_COMPLETION_COMMAND, arguments=[{"id": second_id}]
            )
        )
        status = as_json(await client.protocol.send_request_async("codeLlama/getStatus", None))
        total = status["acceptance"]["total"]
        # Two answers (one while typing, one invoked): the alternatives are part of theirs.
        assert (total["offered"], total["accepted"], total["taken"]) == (2, 1, 1), total
        assert total["acceptedChars"] == len(texts[1])
    finally:
        await client.shutdown_session()


async def test_settings_choose_how_many_and_when(tiny_model: Path) -> None:
    options = {"debounceMs": 0, "candidates": 2, "candidatesWhileTyping": True}
    client, _ = await start_client("visual-studio-code", tiny_model, options)
    try:
        open_document(client, ADD_URI, "python", "".join(split_cursor(ADD_FILE)))
        typing = await _items(client, types.InlineCompletionTriggerKind.Automatic)
        assert len(typing) == 2 and typing[0].insert_text == ADD_MIDDLE
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"candidates": 1})
        )
        invoked = await _items(client, types.InlineCompletionTriggerKind.Invoked)
        assert [item.insert_text for item in invoked] == [ADD_MIDDLE]
    finally:
        await client.shutdown_session()
