"""Starting the real server under pytest-lsp's client, and the requests tests repeat."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, Union

from lsprotocol import types
from lsprotocol.converters import get_converter
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.e2e.conftest import capabilities, server_command


async def start_client(
    editor: str,
    model: Path | str,
    options: dict[str, object] | None = None,
    *,
    on_start: Callable[[LanguageClient], None] | None = None,
    workspace: Path | None = None,
) -> tuple[LanguageClient, types.InitializeResult]:
    """The real server with `model`, initialized as `editor`; `on_start` runs before that.

    `workspace`: a folder opened as the workspace (none by default).
    """
    config = ClientServerConfig(server_command=server_command("--model", str(model)))
    client = await config.start()
    assert isinstance(client, LanguageClient)
    if on_start is not None:
        on_start(client)
    client.protocol._converter.register_structure_hook(
        Union[types.Command, types.CodeAction],  # noqa: UP007 - the key lsprotocol registered
        _command_or_code_action,
    )
    result = await client.initialize_session(
        types.InitializeParams(
            capabilities=capabilities(editor),
            initialization_options=options or {},
            workspace_folders=None
            if workspace is None
            else [types.WorkspaceFolder(uri=workspace.as_uri(), name=workspace.name)],
        )
    )
    return client, result


def _command_or_code_action(value: Any, _: type) -> types.Command | types.CodeAction:
    """lsprotocol 2025.0.0 reads every CodeAction that carries a command as a Command.

    A Command's `command` is a string; a CodeAction's is an object. Real
    editors tell them apart that way; the test client is taught to as well.
    """
    converter = get_converter()
    if isinstance(value.get("command"), str):
        return converter.structure(value, types.Command)
    return converter.structure(value, types.CodeAction)


def open_document(client: LanguageClient, uri: str, language: str, text: str) -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id=language, version=1, text=text
            )
        )
    )


def insert_text(
    client: LanguageClient, uri: str, version: int, at: types.Position, text: str
) -> None:
    """One incremental didChange inserting `text` at `at`, as a keystroke sends it."""
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[
                types.TextDocumentContentChangePartial(range=types.Range(at, at), text=text)
            ],
        )
    )


async def inline_text(client: LanguageClient, uri: str, position: types.Position) -> list[str]:
    result = await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=position,
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Automatic
            ),
        )
    )
    assert isinstance(result, types.InlineCompletionList)
    texts = []
    for item in result.items:
        assert isinstance(item.insert_text, str)
        assert item.range == types.Range(position, position)
        texts.append(item.insert_text)
    return texts


def record_statuses(client: LanguageClient, statuses: list[dict[str, Any]]) -> None:
    """Append every `codeLlama/status` the server sends to `statuses` (call before initialize)."""

    @client.feature("codeLlama/status")
    def on_status(params: Any) -> None:
        statuses.append(plain(params))


def plain(value: Any) -> dict[str, Any]:
    """pygls gives custom methods' params as namedtuples; compare them as dicts."""
    return value if isinstance(value, dict) else dict(value._asdict())


def as_json(value: Any) -> Any:
    """pygls' namedtuples (custom methods' results), nested too, as plain JSON values."""
    if hasattr(value, "_asdict"):
        return {key: as_json(item) for key, item in value._asdict().items()}
    if isinstance(value, list | tuple):
        return [as_json(item) for item in value]
    return value


async def wait_for_state(statuses: list[dict[str, Any]], state: str) -> dict[str, Any]:
    """The first status in `state`, waiting up to 60 s for it."""
    for _ in range(6000):
        found = next((s for s in statuses if s["state"] == state), None)
        if found is not None:
            return found
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {state!r} status in {statuses}")


def range_json(line: int, character: int, end_line: int, end_character: int) -> dict[str, object]:
    """An LSP range as a command argument carries it: plain JSON."""
    return {
        "start": {"line": line, "character": character},
        "end": {"line": end_line, "character": end_character},
    }
