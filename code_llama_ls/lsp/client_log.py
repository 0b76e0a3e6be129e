"""Our log records in the editor: `window/logMessage`, from any thread.

Records are fed from any thread (the model's, the indexer's) and delivered
on the event loop, since pygls is not thread-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import ClassVar

from lsprotocol import types
from pygls.lsp.server import LanguageServer


class ClientLogHandler(logging.Handler):
    """Forwards our log records to the editor as `window/logMessage`, from any thread.

    Editors show these in their LSP log (VS Code's output channel, Neovim's
    lsp.log): each request's stages, timings and outcome, cancelled included.
    """

    _TYPES: ClassVar[dict[int, types.MessageType]] = {
        logging.ERROR: types.MessageType.Error,
        logging.WARNING: types.MessageType.Warning,
        logging.INFO: types.MessageType.Info,
    }

    def __init__(self, server: LanguageServer, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._server = server
        self._loop = loop
        self._attached = True

    def detach(self) -> None:
        """Stop forwarding (the client left): our records go to stderr again.

        Records already on their way are dropped, not sent to the next client.
        """
        self._attached = False
        ours = logging.getLogger("code_llama_ls")
        ours.removeHandler(self)
        ours.propagate = True

    def emit(self, record: logging.LogRecord) -> None:
        kind = self._TYPES.get(record.levelno, types.MessageType.Log)
        params = types.LogMessageParams(type=kind, message=self.format(record))
        with contextlib.suppress(RuntimeError):  # a closed loop: the session is over
            self._loop.call_soon_threadsafe(self._deliver, params)

    def _deliver(self, params: types.LogMessageParams) -> None:
        if self._attached:
            self._server.window_log_message(params)


def forward_logs_to_client(server: LanguageServer) -> ClientLogHandler:
    """Send our log records to the editor, and only there: editors also log stderr.

    Other libraries' records (pygls, torch, transformers) stay on stderr.
    """
    handler = ClientLogHandler(server, asyncio.get_running_loop())
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    ours = logging.getLogger("code_llama_ls")
    ours.addHandler(handler)
    ours.propagate = False
    return handler
