"""What the editor sees of long work: work-done progress (model loading, indexing,
explanations as they are written).

Fed from the model thread and delivered on the event loop, since pygls is
not thread-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from code_llama_ls.cancel import CancelToken
from code_llama_ls.engine.base import ProgressCallback

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.1
"""At most one progress report per interval: explanations stream a token every few ms."""


class WorkProgress:
    """Work-done progress on the client's token or one we create, fed from any thread, throttled.

    A report carries the caller's message (a model load's stage) and its
    fraction as `percentage`. At most one report goes out per interval, and
    the latest one always does, at most an interval late: a short stage may
    be skipped, but the editor never keeps showing a stage that has ended.
    """

    def __init__(
        self,
        server: LanguageServer,
        title: str,
        cancel: CancelToken | None,
        *,
        token: types.ProgressToken | None = None,
        supported: bool,
    ) -> None:
        self._server = server
        self._supported = supported
        self._title = title
        self._cancel = cancel
        self._client_token = token
        self._token: types.ProgressToken | None = None
        self._loop = asyncio.get_running_loop()
        self._lock = threading.Lock()
        self._last_sent = 0.0
        self._pending: tuple[str, float | None] | None = None  # the latest report not sent yet
        self._flush: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> ProgressCallback:
        token = self._client_token
        if token is None and self._supported:
            token = f"code-llama-ls/{uuid.uuid4().hex}"
            try:
                await self._server.work_done_progress.create_async(token)
            except Exception:
                log.debug("client refused work-done progress", exc_info=True)
                token = None
        if token is not None:
            self._begin(token)
        return self.report

    def _begin(self, token: types.ProgressToken) -> None:
        self._token = token
        self._server.work_done_progress.begin(
            token,
            types.WorkDoneProgressBegin(title=self._title, cancellable=self._cancel is not None),
        )
        cancelled = self._server.work_done_progress.tokens.get(token)
        if cancelled is not None and self._cancel is not None:
            cancel = self._cancel
            cancelled.add_done_callback(lambda _: cancel.cancel())

    def report(self, message: str, fraction: float | None) -> None:
        """Called from any thread; the message goes out at once or at the end of the interval."""
        if self._token is None or not message:
            return
        with self._lock:
            scheduled = self._pending is not None
            self._pending = (message, fraction)
        if not scheduled:
            with contextlib.suppress(RuntimeError):  # a closed loop: the session is over
                self._loop.call_soon_threadsafe(self._schedule)

    def _schedule(self) -> None:
        delay = self._last_sent + PROGRESS_INTERVAL_S - time.monotonic()
        if delay <= 0:
            self._send_pending()
        else:
            self._flush = self._loop.call_later(delay, self._send_pending)

    def _send_pending(self) -> None:
        self._flush = None
        with self._lock:
            pending, self._pending = self._pending, None
        if self._token is None or pending is None:
            return
        self._last_sent = time.monotonic()
        message, fraction = pending
        percentage = None if fraction is None else round(fraction * 100)
        self._server.work_done_progress.report(
            self._token, types.WorkDoneProgressReport(message=message, percentage=percentage)
        )

    async def __aexit__(self, *exc_info: object) -> None:
        if self._token is None:
            return
        if self._flush is not None:
            self._flush.cancel()
        self._send_pending()
        self._server.work_done_progress.end(self._token, types.WorkDoneProgressEnd())
        self._token = None
