"""What the user does with suggestions, as clients report it: shown, accepted, partly accepted.

Copilot's notifications (`textDocument/didShowCompletion`,
`textDocument/didPartiallyAcceptCompletion`) and the command each item
carries (`codeLlama.didAcceptCompletion`, run by the client after an
accept) feed `serving/acceptance.py`'s counts, which `codeLlama/getStatus`
returns. Reports of unknown or forgotten items are ignored: counting is
never worth an error in the editor.
"""

from __future__ import annotations

import asyncio
from typing import Any

from lsprotocol import types

from code_llama_ls.lsp.arguments import member
from code_llama_ls.lsp.methods import (
    ACCEPT_COMPLETION_COMMAND,
    DID_PARTIALLY_ACCEPT_COMPLETION,
    DID_SHOW_COMPLETION,
)
from code_llama_ls.lsp.server import CodeLlamaServer

SAVE_DELAY_S = 5.0
"""How long after a change the counts are written to their file (at most one write per delay)."""


def register(server: CodeLlamaServer) -> None:
    """Register the acceptance reports on `server`."""

    @server.feature(DID_SHOW_COMPLETION)
    def did_show(ls: CodeLlamaServer, params: object) -> None:
        suggestion_id = _item_id(member(params, "item"))
        if suggestion_id is not None and ls.acceptance.shown(suggestion_id):
            save_soon(ls)

    @server.feature(DID_PARTIALLY_ACCEPT_COMPLETION)
    def did_partially_accept(ls: CodeLlamaServer, params: object) -> None:
        suggestion_id = _item_id(member(params, "item"))
        length = member(params, "acceptedLength")
        if (
            suggestion_id is not None
            and isinstance(length, int)
            and ls.acceptance.partially_accepted(suggestion_id, length)
        ):
            save_soon(ls)

    @server.command(ACCEPT_COMPLETION_COMMAND)
    def did_accept(ls: CodeLlamaServer, *args: Any) -> None:
        suggestion_id = member(args[0], "id") if args else None
        if isinstance(suggestion_id, str) and ls.acceptance.accepted(suggestion_id):
            save_soon(ls)


def item_command(suggestion_id: str) -> types.Command:
    """The command an item carries, so that accepting it is reported."""
    return types.Command(
        title="Accepted", command=ACCEPT_COMPLETION_COMMAND, arguments=[{"id": suggestion_id}]
    )


def save_soon(ls: CodeLlamaServer) -> None:
    """Write the counts to their file a moment from now, if they are kept in one."""
    if ls.acceptance.path is None or ls.acceptance_save is not None:
        return

    def save() -> None:
        ls.acceptance_save = None
        ls.acceptance.save()

    ls.acceptance_save = asyncio.get_running_loop().call_later(SAVE_DELAY_S, save)


def _item_id(item: object) -> str | None:
    """The id in an item's command (`item_command`), None when it is not one of ours."""
    command = member(item, "command")
    if member(command, "command") != ACCEPT_COMPLETION_COMMAND:
        return None
    arguments = member(command, "arguments")
    if not isinstance(arguments, list | tuple) or not arguments:
        return None
    suggestion_id = member(arguments[0], "id")
    return suggestion_id if isinstance(suggestion_id, str) else None
