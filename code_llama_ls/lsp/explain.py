"""Explain selection: the `codeLlama.explain` command, streamed as work-done progress, and the
code action that offers it."""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from code_llama_ls.cancel import CancelToken
from code_llama_ls.errors import InvalidRequestError, RequestCancelled
from code_llama_ls.lsp.arguments import uri_and_range
from code_llama_ls.lsp.methods import EXPLAIN_COMMAND
from code_llama_ls.lsp.server import CodeLlamaServer
from code_llama_ls.pipeline.explain import ExplainOptions, ExplainRequest


def register(server: CodeLlamaServer) -> None:
    """Register the explain command and its code action on `server`."""

    @server.command(EXPLAIN_COMMAND)
    async def explain_command(ls: CodeLlamaServer, *args: Any) -> str:
        uri, selection = uri_and_range(EXPLAIN_COMMAND, args)
        return await run_explain(ls, uri, selection)

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.RefactorRewrite]),
    )
    def code_action(ls: CodeLlamaServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        if params.text_document.uri not in ls.documents:
            return []
        start, end = params.range.start, params.range.end
        argument = {
            "uri": params.text_document.uri,
            "range": {
                "start": {"line": start.line, "character": start.character},
                "end": {"line": end.line, "character": end.character},
            },
        }
        command = types.Command(
            title="Explain selection", command=EXPLAIN_COMMAND, arguments=[argument]
        )
        return [
            types.CodeAction(
                title="Explain selection",
                kind=types.CodeActionKind.RefactorRewrite,
                command=command,
            )
        ]


async def run_explain(ls: CodeLlamaServer, uri: str, selection: types.Range) -> str:
    """The Markdown explanation of a range, streamed as work-done progress."""
    snapshot = ls.documents.get(uri)
    start = snapshot.offset_at(selection.start.line, selection.start.character)
    end = snapshot.offset_at(selection.end.line, selection.end.character)
    if end < start:
        raise InvalidRequestError("range end is before its start")
    settings = ls.settings
    request = ExplainRequest(
        snapshot, start, end, ExplainOptions.from_settings(settings), settings.explain_engine()
    )
    cancel = CancelToken()
    progress_token = ls.client_progress_tokens.get(ls.protocol.msg_id or "")
    progress = ls.work_progress("Explaining selection", cancel, token=progress_token)
    with ls.cancellable(cancel), ls.status.generating():
        async with progress as report:
            explanation = await ls.jobs.explain(
                request, cancel, on_text=lambda text: report(text, None)
            )
    ls.note_model_success()
    if cancel.cancelled:
        raise RequestCancelled("explanation cancelled")
    return explanation.markdown
