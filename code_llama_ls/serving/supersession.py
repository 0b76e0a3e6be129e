"""Supersession: a newer request for a document cancels the older one's work."""

from __future__ import annotations

import threading

from code_llama_ls.cancel import CancelToken


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

    def cancel(self, key: str) -> None:
        """Cancel the request in flight on `key` and forget the key (a closed document)."""
        with self._lock:
            token = self._latest.pop(key, None)
        if token is not None:
            token.cancel()

    def cancel_all(self) -> None:
        """Cancel every request in flight (shutdown)."""
        with self._lock:
            tokens = list(self._latest.values())
            self._latest.clear()
        for token in tokens:
            token.cancel()
