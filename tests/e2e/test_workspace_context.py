"""Repository-level context through the real server: indexing, watched files, the inspector.

A workspace on disk is opened as VS Code and Neovim open it; the prompt the
server builds at a call of an imported function must hold that function's
definition from the other file, and it must follow files created on disk,
workspace folders added later and the `workspaceContext` setting.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.e2e.conftest import EDITORS, dump
from tests.e2e.lsp_client import open_document, start_client

GREETINGS = (
    "def salutation(name, *, formal=False):\n"
    '    """The greeting for `name`: "Good day" when formal, else "Hi"."""\n'
    '    word = "Good day" if formal else "Hi"\n'
    '    return f"{word}, {name}!"\n'
)
APP = (
    "from lib.greetings import salutation\n"
    "from lib.farewells import parting\n\n\n"
    "def welcome(user):\n"
    "    print(salutation(user.name, formal=True))\n"
    "    return \n"
)
CURSOR = types.Position(line=6, character=11)
FAREWELLS = "def parting(name):\n    return f'Bye, {name}.'\n"


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


async def show_prompt(client: LanguageClient, uri: str, position: types.Position) -> Any:
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="codeLlama.showPrompt",
            arguments=[
                {"uri": uri, "position": {"line": position.line, "character": position.character}}
            ],
        )
    )
    return result


async def prompt_with(
    client: LanguageClient, uri: str, symbol: str, *, timeout: float = 60.0
) -> dict[str, Any]:
    """The prompt report once it shows `symbol`'s definition (indexing runs in the background)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        report = await show_prompt(client, uri, CURSOR)
        if any(part.get("symbol") == symbol for part in report["parts"]):
            return dict(report)
        if loop.time() > deadline:
            raise AssertionError(f"no {symbol} in the prompt: {dump(report)}")
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("editor", EDITORS)
async def test_the_prompt_holds_the_imported_definition_from_another_file(
    editor: str, tiny_model: Path, tmp_path: Path
) -> None:
    root = tmp_path / "project"
    write(root, "lib/__init__.py", "")
    write(root, "lib/greetings.py", GREETINGS)
    app = write(root, "app.py", APP)
    write(root, "node_modules/junk/index.py", "def salutation():\n    return 'not this one'\n")
    client, _ = await start_client(editor, tiny_model, workspace=root)
    try:
        open_document(client, app.as_uri(), "python", APP)
        report = await prompt_with(client, app.as_uri(), "salutation")
        part = next(p for p in report["parts"] if p.get("symbol") == "salutation")
        assert part["kind"] == "imported definition"
        assert part["path"] == "lib/greetings.py"
        assert (part["startLine"], part["endLine"]) == (1, 4)
        assert GREETINGS in report["text"]  # the whole definition: the budget allows it
        assert "not this one" not in report["text"]  # node_modules is not indexed
        assert report["text"].index("# lib/greetings.py\n") < report["text"].index("# app.py\n")
        assert len(report["ids"]) == report["tokens"] <= report["budget"]
        assert (
            sum(p["tokens"] for p in report["parts"])
            + report["headerTokens"]
            + report["fixedTokens"]
            == report["tokens"]
        )
        assert "| imported definition | lib/greetings.py:1-4 | salutation |" in report["markdown"]

        # A file created on disk joins the index through didChangeWatchedFiles.
        farewells = write(root, "lib/farewells.py", FAREWELLS)
        client.workspace_did_change_watched_files(
            types.DidChangeWatchedFilesParams(
                changes=[types.FileEvent(uri=farewells.as_uri(), type=types.FileChangeType.Created)]
            )
        )
        report = await prompt_with(client, app.as_uri(), "parting")
        assert FAREWELLS in report["text"]

        # The completion request itself runs with that prompt.
        result = await client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=app.as_uri()),
                position=CURSOR,
                context=types.InlineCompletionContext(
                    trigger_kind=types.InlineCompletionTriggerKind.Invoked
                ),
            )
        )
        assert result is not None
    finally:
        await client.shutdown_session()
        await client.stop()


async def test_added_folders_are_indexed_and_the_setting_turns_context_off(
    tiny_model: Path, tmp_path: Path
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    app = write(first, "app.py", APP)
    write(second, "lib/__init__.py", "")
    write(second, "lib/greetings.py", GREETINGS)
    client, _ = await start_client("visual-studio-code", tiny_model, workspace=first)
    try:
        open_document(client, app.as_uri(), "python", APP)
        report = await show_prompt(client, app.as_uri(), CURSOR)
        assert report["contextTokens"] == 0  # nothing to show yet
        client.workspace_did_change_workspace_folders(
            types.DidChangeWorkspaceFoldersParams(
                event=types.WorkspaceFoldersChangeEvent(
                    added=[types.WorkspaceFolder(uri=second.as_uri(), name="second")], removed=[]
                )
            )
        )
        report = await prompt_with(client, app.as_uri(), "salutation")
        assert any(p.get("path") == "lib/greetings.py" for p in report["parts"])

        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"codeLlama": {"workspaceContext": False}})
        )
        report = await show_prompt(client, app.as_uri(), CURSOR)
        assert report["contextTokens"] == 0
        assert [p["kind"] for p in report["parts"]] == ["local prefix", "local suffix"]

        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"codeLlama": {"workspaceContext": True}})
        )
        await prompt_with(client, app.as_uri(), "salutation")
    finally:
        await client.shutdown_session()
        await client.stop()


async def test_show_prompt_rejects_bad_arguments_and_unknown_documents(
    tiny_model: Path, tmp_path: Path
) -> None:
    from pygls.exceptions import JsonRpcException

    client, _ = await start_client("neovim", tiny_model, workspace=tmp_path)
    try:
        with pytest.raises(JsonRpcException, match="uri, position"):
            await client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="codeLlama.showPrompt", arguments=[{}])
            )
        with pytest.raises(JsonRpcException, match="not open"):
            await show_prompt(client, (tmp_path / "nope.py").as_uri(), CURSOR)
    finally:
        await client.shutdown_session()
        await client.stop()
