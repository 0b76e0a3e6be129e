"""A JSON-RPC client that speaks raw bytes to the real server, to send what editors should not.

pytest-lsp's client only sends well-formed messages; these tests need
invalid JSON, batches, bad ids and params, and requests out of LSP's order.
Everything the server writes is read on a thread and queued.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from tests.e2e.conftest import server_command

Message = dict[str, Any]


def frame(body: bytes) -> bytes:
    """`body` with LSP's Content-Length header."""
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def encode(message: object) -> bytes:
    """A framed JSON message (lone surrogates are kept as JSON escapes, as JSON allows)."""
    return frame(json.dumps(message).encode())


def read_frame(stream: BinaryIO) -> Message | None:
    """The next message from `stream`, or None at its end."""
    length = None
    while True:
        line = stream.readline()
        if not line:
            return None
        if not line.strip():
            break
        name, _, value = line.decode("ascii").partition(":")
        if name.lower() == "content-length":
            length = int(value)
    assert length is not None, "the server sent a header without Content-Length"
    message: Message = json.loads(stream.read(length))
    return message


class RawServer:
    """The real server over stdio (or any byte stream pair), driven by hand."""

    def __init__(
        self, flags: Sequence[str] = (), *, stderr_path: Path | None = None, **popen: Any
    ) -> None:
        self._stderr = open(stderr_path, "wb") if stderr_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            server_command(*flags),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            **popen,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin: BinaryIO = self.process.stdin
        self.received: queue.Queue[Message | None] = queue.Queue()
        self.seen: list[Message] = []
        self._next_id = 1000
        threading.Thread(target=self._pump, args=(self.process.stdout,), daemon=True).start()

    def _pump(self, stream: BinaryIO) -> None:
        while (message := read_frame(stream)) is not None:
            self.received.put(message)
        self.received.put(None)

    def send_bytes(self, data: bytes) -> None:
        self.stdin.write(data)
        self.stdin.flush()

    def send(self, message: object) -> None:
        self.send_bytes(encode(message))

    def notify(self, method: str, params: object) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def request(self, method: str, params: object = None, *, msg_id: int | None = None) -> int:
        """Send a request; its id."""
        if msg_id is None:
            self._next_id += 1
            msg_id = self._next_id
        message: Message = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return msg_id

    def wait_for(self, wanted: Callable[[Message], bool], timeout: float = 30) -> Message:
        """The first message (seen before or arriving within `timeout`) that `wanted` accepts."""
        for message in self.seen:
            if wanted(message):
                self.seen.remove(message)
                return message
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no such message within {timeout} s; seen: {self.seen[-5:]}"
            try:
                message = self.received.get(timeout=remaining)
            except queue.Empty:
                continue
            assert message is not None, f"the server closed its output; seen: {self.seen[-5:]}"
            if wanted(message):
                return message
            self.seen.append(message)

    def response(self, msg_id: int | str | None, timeout: float = 30) -> Message:
        """The reply to request `msg_id` (None: an error reply with id null)."""
        return self.wait_for(
            lambda m: "method" not in m and ("result" in m or "error" in m) and m["id"] == msg_id,
            timeout,
        )

    def call(self, method: str, params: object = None, timeout: float = 30) -> Message:
        """Send a request and wait for its reply."""
        return self.response(self.request(method, params), timeout)

    def initialize(self, capabilities: Message | None = None, **options: Any) -> Message:
        reply = self.call(
            "initialize",
            {
                "processId": None,
                "rootUri": None,
                "capabilities": capabilities or {},
                "initializationOptions": options,
            },
        )
        self.notify("initialized", {})
        return reply

    def notifications(self, method: str) -> list[Message]:
        """Every notification of `method` received so far (they stay queued)."""
        while True:
            try:
                message = self.received.get_nowait()
            except queue.Empty:
                break
            if message is not None:
                self.seen.append(message)
        return [m for m in self.seen if m.get("method") == method]

    def exit_code(self, timeout: float = 30) -> int:
        return self.process.wait(timeout=timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        if self._stderr is not subprocess.DEVNULL:
            self._stderr.close()  # type: ignore[union-attr]
