"""Completions: `textDocument/inlineCompletion` (ghost text) and `textDocument/completion`.

The handler builds one `CompletionRequest` from the document and the
settings, the scheduler answers it, and the handler turns the answer into
LSP. Model trouble is answered with an empty list (editors ask on every
keystroke and would show each failed request) and shown once by `fail`;
only the client's own mistakes get an error reply.
"""

from __future__ import annotations

import logging

from lsprotocol import types

from code_llama_ls.errors import RequestCancelled, UnknownDocumentError
from code_llama_ls.lsp.acceptance import item_command, save_soon
from code_llama_ls.lsp.errors import is_client_mistake
from code_llama_ls.lsp.server import CodeLlamaServer
from code_llama_ls.pipeline.request import Completion, CompletionOptions, CompletionRequest
from code_llama_ls.serving.scheduler import CACHED
from code_llama_ls.text.documents import Snapshot

log = logging.getLogger(__name__)


def register(server: CodeLlamaServer) -> None:
    """Register the completion handlers on `server`."""

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: CodeLlamaServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList:
        invoked = params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked
        result = await completion_or_nothing(ls, params.text_document.uri, params.position, invoked)
        if result is None or not result[1].text:
            return types.InlineCompletionList(items=[])
        snapshot, done = result
        here = types.Range(params.position, params.position)
        first_id = _offered(ls, snapshot, done)
        items = [types.InlineCompletionItem(done.text, range=here, command=item_command(first_id))]
        for text in done.alternatives:
            command = item_command(ls.acceptance.alternative(first_id, text))
            items.append(types.InlineCompletionItem(text, range=here, command=command))
        return types.InlineCompletionList(items=items)

    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions())
    async def completion(
        ls: CodeLlamaServer, params: types.CompletionParams
    ) -> types.CompletionList:
        invoked = (
            params.context is not None
            and params.context.trigger_kind == types.CompletionTriggerKind.Invoked
        )
        result = await completion_or_nothing(ls, params.text_document.uri, params.position, invoked)
        if result is None or not result[1].text:
            return types.CompletionList(is_incomplete=True, items=[])
        snapshot, done = result
        item = _completion_item(snapshot, params.position, done.text)
        item.command = item_command(_offered(ls, snapshot, done))
        return types.CompletionList(is_incomplete=True, items=[item])


def completion_request(
    ls: CodeLlamaServer, snapshot: Snapshot, position: types.Position, *, invoked: bool = False
) -> CompletionRequest:
    """The request for a completion at `position`, with the settings now in force."""
    offset = snapshot.offset_at(position.line, position.character)
    options = CompletionOptions.from_settings(ls.settings)
    candidates = options.candidates_for(invoked=invoked, device=ls.status.device)
    return CompletionRequest(snapshot, offset, options, ls.settings.engine, invoked, candidates)


async def completion_or_nothing(
    ls: CodeLlamaServer, uri: str, position: types.Position, invoked: bool
) -> tuple[Snapshot, Completion] | None:
    """`run_completion`, with every failure but the client's own answered by nothing."""
    try:
        return await run_completion(ls, uri, position, invoked=invoked)
    except Exception as exc:
        if is_client_mistake(exc):
            raise
        ls.fail(exc, f"completion at {uri}")
        return None


async def run_completion(
    ls: CodeLlamaServer, uri: str, position: types.Position, *, invoked: bool = False
) -> tuple[Snapshot, Completion] | None:
    """The completion at a position, or None when there is nothing to show.

    `invoked`: the user asked for it explicitly (no debounce).
    """
    try:
        snapshot = ls.documents.get(uri)
    except UnknownDocumentError:
        return None
    request = completion_request(ls, snapshot, position, invoked=invoked)
    try:
        completion = await ls.completions.complete(request)
    except RequestCancelled:
        return None
    ls.note_model_success()
    if completion is None or not _is_current(ls, snapshot):
        log.info("completion at %s v%d dropped: superseded", uri, snapshot.version)
        return None
    ls.acceptance.answered(uri, continues=completion.finish_reason == CACHED)
    return snapshot, completion


def _offered(ls: CodeLlamaServer, snapshot: Snapshot, completion: Completion) -> str:
    """Count the suggestion as offered; its id, for the command that reports its accept."""
    model = ls.status.model
    suggestion_id = ls.acceptance.offered(snapshot.uri, snapshot.language, model, completion.text)
    save_soon(ls)
    return suggestion_id


def _is_current(ls: CodeLlamaServer, snapshot: Snapshot) -> bool:
    """Whether the document is still at the snapshot's version."""
    try:
        return ls.documents.get(snapshot.uri).version == snapshot.version
    except UnknownDocumentError:
        return False


def _completion_item(
    snapshot: Snapshot, position: types.Position, text: str
) -> types.CompletionItem:
    """A completion item that replaces the word before the cursor with word + suggestion.

    Clients filter items by the word being typed; starting the edit at that
    word keeps the suggestion visible (the same trick Copilot's server uses).
    """
    offset = snapshot.offset_at(position.line, position.character)
    start = offset
    while start > 0 and (snapshot.text[start - 1].isalnum() or snapshot.text[start - 1] == "_"):
        start -= 1
    word = snapshot.text[start:offset]
    line, character = snapshot.position_at(start)
    edit_range = types.Range(types.Position(line, character), position)
    first_line = (word + text).strip().splitlines()[0] if (word + text).strip() else text
    return types.CompletionItem(
        label=first_line[:80],
        kind=types.CompletionItemKind.Snippet,
        detail="Code Llama",
        documentation=types.MarkupContent(
            kind=types.MarkupKind.Markdown,
            value=f"```{snapshot.language or ''}\n{word + text}\n```",
        ),
        filter_text=word + text,
        text_edit=types.TextEdit(range=edit_range, new_text=word + text),
        insert_text_format=types.InsertTextFormat.PlainText,
        sort_text="0",
    )
