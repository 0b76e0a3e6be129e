"""Document sync: didOpen, didChange, didClose, and `codeLlama/document` (our copy of a
document, for clients and tests to check it against theirs)."""

from __future__ import annotations

from lsprotocol import types

from code_llama_ls.errors import InvalidRequestError
from code_llama_ls.lsp.methods import DOCUMENT_REQUEST
from code_llama_ls.lsp.server import CodeLlamaServer
from code_llama_ls.text.documents import TextChange
from code_llama_ls.text.uri import uri_to_path


def register(server: CodeLlamaServer) -> None:
    """Register the document sync handlers on `server`."""

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: CodeLlamaServer, params: types.DidOpenTextDocumentParams) -> None:
        doc = params.text_document
        snapshot = ls.documents.open(doc.uri, doc.language_id, doc.version, doc.text)
        if not (snapshot.too_large or snapshot.binary):
            ls.indexer.document_opened(uri_to_path(doc.uri), snapshot.language, snapshot.text)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: CodeLlamaServer, params: types.DidChangeTextDocumentParams) -> None:
        changes = [_text_change(change) for change in params.content_changes]
        uri = params.text_document.uri
        try:
            snapshot = ls.documents.change(uri, params.text_document.version, changes)
        except InvalidRequestError as exc:
            # Our copy would drift from the editor's: forget it until the
            # document is reopened. The client erred, so it is logged, no popup.
            ls.forget_document(uri)
            raise InvalidRequestError(
                f"{exc}; {uri} is no longer served until it is opened again"
            ) from exc
        ls.completions.edited(uri, snapshot.text)
        path = uri_to_path(uri)
        for change in changes:
            if change.range is not None:
                ls.recent_edits.record(path, change.range[0][0])
        if not (snapshot.too_large or snapshot.binary):
            ls.indexer.document_changed(path, snapshot.language, snapshot.text)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: CodeLlamaServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.forget_document(params.text_document.uri)

    @server.feature(DOCUMENT_REQUEST)
    def document(ls: CodeLlamaServer, params: object) -> dict[str, object]:
        # pygls hands methods lsprotocol does not know their params as a namedtuple.
        uri = getattr(params, "uri", None)
        if not isinstance(uri, str):
            raise InvalidRequestError(f"{DOCUMENT_REQUEST} expects {{uri}}")
        snapshot = ls.documents.get(uri)
        return {
            "uri": uri,
            "version": snapshot.version,
            "text": snapshot.text,
            "lineCount": snapshot.line_index.line_count,
            "encoding": snapshot.encoding.value,
            "language": snapshot.language,
            "tooLarge": snapshot.too_large,
            "binary": snapshot.binary,
        }


def _text_change(change: types.TextDocumentContentChangeEvent) -> TextChange:
    if isinstance(change, types.TextDocumentContentChangePartial):
        start, end = change.range.start, change.range.end
        return TextChange(((start.line, start.character), (end.line, end.character)), change.text)
    return TextChange(None, change.text)
