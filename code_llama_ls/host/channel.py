"""The line between the language server and its model host: messages over a socket pair.

A message is a tuple whose first item names it, pickled and sent with its
length in front. Both ends are this package, over a `socket.socketpair()`
that nothing else can reach. Sending is safe from any thread; receiving is
done by one reader thread per end. A peer that is gone reads as None, and
sending to it as False: neither raises.
"""

from __future__ import annotations

import contextlib
import pickle
import socket
import struct
import threading
from typing import Any

Message = tuple[Any, ...]

_LENGTH = struct.Struct("!I")


class Channel:
    """One end of the socket pair."""

    def __init__(self, connection: socket.socket) -> None:
        self._connection = connection
        self._reader = connection.makefile("rb")
        self._sending = threading.Lock()

    def send(self, message: Message) -> bool:
        """Send `message`; False when the other end is gone."""
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        with self._sending:
            try:
                self._connection.sendall(_LENGTH.pack(len(data)) + data)
            except OSError:
                return False
        return True

    def receive(self) -> Message | None:
        """The next message, or None once the other end is gone."""
        try:
            header = self._reader.read(_LENGTH.size)
            if len(header) < _LENGTH.size:
                return None
            (length,) = _LENGTH.unpack(header)
            body = self._reader.read(length)
        except (OSError, ValueError):  # reset, or closed on this side
            return None
        if len(body) < length:
            return None
        message = pickle.loads(body)
        return message if isinstance(message, tuple) and message else None

    def close(self) -> None:
        """Close this end: the other end reads None."""
        with contextlib.suppress(OSError):
            self._connection.shutdown(socket.SHUT_RDWR)
        self._connection.close()
