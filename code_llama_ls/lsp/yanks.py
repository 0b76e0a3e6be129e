"""Yanked and copied text: `codeLlama/didYank` ({text, uri?}) from the editor clients.

The text joins the context builder's ring of yanks (`context/yanks.py`),
with the language of the document it came from, so that the next
completion prompts can show it. A malformed notification is ignored: a
yank is never worth an error in the editor.
"""

from __future__ import annotations

import logging

from code_llama_ls.context.files import path_language
from code_llama_ls.errors import UnknownDocumentError
from code_llama_ls.lsp.arguments import member
from code_llama_ls.lsp.methods import DID_YANK_NOTIFICATION
from code_llama_ls.lsp.server import CodeLlamaServer
from code_llama_ls.text.uri import uri_to_path

log = logging.getLogger(__name__)


def register(server: CodeLlamaServer) -> None:
    """Register the yank notification on `server`."""

    @server.feature(DID_YANK_NOTIFICATION)
    def did_yank(ls: CodeLlamaServer, params: object) -> None:
        text, uri = member(params, "text"), member(params, "uri")
        if not isinstance(text, str):
            return
        path = uri_to_path(uri) if isinstance(uri, str) else None
        if ls.context_builder.yanks.add(text, path, _language(ls, uri, path)):
            log.debug("yank of %d characters from %s kept as context", len(text), uri)


def _language(ls: CodeLlamaServer, uri: object, path: str | None) -> str | None:
    """The language of the document a yank came from: the open document's, else its name's."""
    if isinstance(uri, str):
        try:
            return ls.documents.get(uri).language
        except UnknownDocumentError:
            pass
    return None if path is None else path_language(path)
