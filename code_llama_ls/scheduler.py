"""Request lifecycle: one model worker, cancellation, supersession, the loaded engine.

All model work (loading, generating) runs on a single worker thread so the
LSP event loop stays free to answer document sync, `initialize` and
`shutdown` at once. Cancellation is cooperative: a `CancelToken` checked
before work starts and by the engine between tokens. A newer completion
request for a document cancels the older one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from code_llama_ls.config import Settings
from code_llama_ls.engine.base import CancelToken, Engine, ProgressCallback
from code_llama_ls.errors import CodeLlamaLsError, ModelLoadError

T = TypeVar("T")

log = logging.getLogger(__name__)


class RequestCancelled(CodeLlamaLsError):
    """The request was cancelled before its model work began."""


class ModelWorker:
    """Runs model work in order on one thread and awaits it from the event loop."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")

    async def run(self, work: Callable[[], T], cancel: CancelToken) -> T:
        """Run `work` on the model thread; cancelling the awaiting task cancels the token."""
        future = self._executor.submit(_unless_cancelled, work, cancel)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            cancel.cancel()
            raise

    def shutdown(self) -> None:
        """Stop taking work; queued work is dropped, running work finishes its token."""
        self._executor.shutdown(wait=False, cancel_futures=True)


def _unless_cancelled(work: Callable[[], T], cancel: CancelToken) -> T:
    if cancel.cancelled:
        raise RequestCancelled("cancelled before it started")
    return work()


class Supersession:
    """Tracks the latest request per key; starting a newer one cancels the older."""

    def __init__(self) -> None:
        self._latest: dict[str, CancelToken] = {}
        self._lock = threading.Lock()

    def begin(self, key: str) -> CancelToken:
        """A token for a new request on `key`, cancelling the previous one."""
        token = CancelToken()
        with self._lock:
            previous = self._latest.get(key)
            self._latest[key] = token
        if previous is not None:
            previous.cancel()
        return token

    def end(self, key: str, token: CancelToken) -> None:
        """Forget `token` if it is still the latest for `key`."""
        with self._lock:
            if self._latest.get(key) is token:
                del self._latest[key]

    def cancel_all(self) -> None:
        """Cancel every request in flight (shutdown)."""
        with self._lock:
            tokens = list(self._latest.values())
            self._latest.clear()
        for token in tokens:
            token.cancel()


class EngineHolder:
    """The loaded engine, reloaded when settings that shape it change.

    `get` runs on the model thread. A failed load is remembered for the same
    settings, so each request answers with the same clear error at once
    instead of retrying a slow failure.
    """

    def __init__(self, loader: Callable[[Settings, ProgressCallback | None], Engine]) -> None:
        self._loader = loader
        self._engine: Engine | None = None
        self._key: tuple[object, ...] | None = None
        self._error: ModelLoadError | None = None

    def get(self, settings: Settings, on_progress: ProgressCallback | None = None) -> Engine:
        key = settings.engine_key()
        if key != self._key:
            self._engine, self._error, self._key = None, None, key
        if self._error is not None:
            raise self._error
        if self._engine is None:
            try:
                self._engine = self._loader(settings, on_progress)
            except ModelLoadError as exc:
                self._error = exc
                raise
            log.info("model ready: %s on %s", self._engine.name, self._engine.device)
        return self._engine

    @property
    def loaded(self) -> Engine | None:
        """The engine if one is loaded now (no loading)."""
        return self._engine
