"""The model worker: one thread that runs all model work, in order.

All model work (loading, generating) runs on a single worker thread so the
LSP event loop stays free to answer document sync, `initialize` and
`shutdown` at once. Cancellation is cooperative: a `CancelToken` checked
before work starts and by the engine between tokens.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from code_llama_ls.cancel import CancelToken
from code_llama_ls.errors import RequestCancelled
from code_llama_ls.memory import IDLE_RELEASE_S, ReleaseWhenIdle

T = TypeVar("T")

log = logging.getLogger(__name__)


class ModelWorker:
    """Runs model work in order on one thread and awaits it from the event loop.

    Once the model thread has been idle for `idle_release_s`, the memory its
    work freed (a generation's old key/value arrays, a prefill's activations)
    goes back to the system (`memory.ReleaseWhenIdle`): tens to hundreds of
    MB that the C allocator would otherwise keep.
    """

    def __init__(self, idle_release_s: float = IDLE_RELEASE_S) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self._release = ReleaseWhenIdle(idle_release_s)

    async def run(self, work: Callable[[], T], cancel: CancelToken) -> T:
        """Run `work` on the model thread; cancelling the awaiting task cancels the token."""
        self._release.started()  # queued work counts: no release before it has run
        future = self._executor.submit(self._run, work, cancel)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            cancel.cancel()
            raise

    def shutdown(self) -> None:
        """Stop taking work; queued work is dropped, running work finishes its token."""
        self._release.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _run(self, work: Callable[[], T], cancel: CancelToken) -> T:
        try:
            return _unless_cancelled(work, cancel)
        finally:
            self._release.finished()


def _unless_cancelled(work: Callable[[], T], cancel: CancelToken) -> T:
    if cancel.cancelled:
        raise RequestCancelled("cancelled before it started")
    return work()
