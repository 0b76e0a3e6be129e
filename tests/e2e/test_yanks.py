"""Yanked and copied text over the real server: a yank in one document shows up, under its
own header, in the prompt built at a cursor in another; bad notifications are ignored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import LanguageClient

from code_llama_ls.lsp.methods import DID_YANK_NOTIFICATION
from tests.e2e.lsp_client import open_document, start_client
from tests.scenarios import ADD_FILE, ADD_URI, cursor_position, split_cursor

HELPERS_URI = "file:///project/helpers.py"
YANKED = "def scale(values, factor):\n    return [value * factor for value in values]\n"


async def _prompt(client: LanguageClient) -> Any:
    position = cursor_position(ADD_FILE)
    where = {"line": position.line, "character": position.character}
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="codeLlama.showPrompt", arguments=[{"uri": ADD_URI, "position": where}]
        )
    )


async def test_a_yank_shows_up_in_the_prompt_at_another_place(tiny_model: Path) -> None:
    client, _ = await start_client("neovim", tiny_model, {"debounceMs": 0})
    try:
        open_document(client, HELPERS_URI, "python", "import math\n\n\n" + YANKED)
        open_document(client, ADD_URI, "python", "".join(split_cursor(ADD_FILE)))
        before = await _prompt(client)
        assert "scale(values" not in before["text"]
        client.protocol.notify(DID_YANK_NOTIFICATION, {"text": "x = 1"})  # a word: not kept
        client.protocol.notify(DID_YANK_NOTIFICATION, {"text": 42})  # malformed: ignored
        client.protocol.notify(DID_YANK_NOTIFICATION, {"text": YANKED, "uri": HELPERS_URI})
        after = await _prompt(client)
        assert "# yanked from /project/helpers.py\n" + YANKED in after["text"]
        yanked = [part for part in after["parts"] if part["kind"] == "yanked text"]
        assert len(yanked) == 1 and yanked[0]["tokens"] > 0
        assert "x = 1" not in after["text"]
        # The completion itself still works with the yank in its prompt.
        result = await client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=ADD_URI),
                position=cursor_position(ADD_FILE),
                context=types.InlineCompletionContext(
                    trigger_kind=types.InlineCompletionTriggerKind.Automatic
                ),
            )
        )
        assert isinstance(result, types.InlineCompletionList)
    finally:
        await client.shutdown_session()
