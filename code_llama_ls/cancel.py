"""Cooperative cancellation: one token per piece of work, set from any thread.

The LSP layer and the scheduler set it; the model worker, the pipeline and every
engine poll it. It lives at the top so that none of them reaches into another's
package for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class CancelToken:
    """A one-way flag that the server sets and the model worker polls between tokens.

    Thread-safe: `cancel()` is called from the LSP event loop while `generate()`
    runs on the model worker. Work that blocks outside Python's reach (a
    socket read of a remote engine) registers `on_cancel` to be interrupted.
    """

    __slots__ = ("_callbacks", "_event", "_lock")

    def __init__(self) -> None:
        self._event = threading.Event()
        self._callbacks: list[Callable[[], object]] = []
        self._lock = threading.Lock()

    def cancel(self) -> None:
        """Ask the generation that holds this token to stop before its next token."""
        with self._lock:
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    @property
    def cancelled(self) -> bool:
        """Whether `cancel()` has been called."""
        return self._event.is_set()

    def wait(self, timeout_s: float) -> bool:
        """Sleep up to `timeout_s`, waking early on cancel; returns whether cancelled."""
        return self._event.wait(timeout_s)

    def on_cancel(self, callback: Callable[[], object]) -> Callable[[], None]:
        """Call `callback` on cancel (now, if already cancelled); returns its remover."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)

                def remove() -> None:
                    with self._lock:
                        if callback in self._callbacks:
                            self._callbacks.remove(callback)

                return remove
        callback()
        return lambda: None

    def __repr__(self) -> str:
        return f"CancelToken(cancelled={self.cancelled})"
