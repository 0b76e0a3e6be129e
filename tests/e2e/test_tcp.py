"""`serve --tcp`: LSP over a socket bound to 127.0.0.1 only, outliving its clients.

One client at a time, the next waiting its turn; however a client leaves (a
clean close, a reset, `exit`), the server serves the next, model loaded.
"""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.raw_client import Message, encode, read_frame


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Client:
    """One TCP connection to the server."""

    def __init__(self, port: int) -> None:
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=60)
        self._in = self.socket.makefile("rb")
        self._next_id = 0

    def call(self, method: str, params: object = None) -> Message:
        self._next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if params is not None:
            message["params"] = params
        self.socket.sendall(encode(message))
        while True:
            reply = read_frame(self._in)
            assert reply is not None, "the server closed the connection"
            if reply.get("id") == self._next_id and "method" not in reply:
                return reply

    def notify(self, method: str, params: object = None) -> None:
        self.socket.sendall(encode({"jsonrpc": "2.0", "method": method, "params": params}))

    def initialize(self) -> Message:
        reply = self.call("initialize", {"processId": None, "rootUri": None, "capabilities": {}})
        self.notify("initialized", {})
        return reply

    def closed_by_server(self) -> bool:
        """Whether the server has closed this connection (reads until it does, up to 60 s)."""
        while True:
            try:
                message = read_frame(self._in)
            except ConnectionError:
                return True
            if message is None:
                return True

    def close(self) -> None:
        self._in.close()
        self.socket.close()

    def reset(self) -> None:
        """Leave abruptly: the kernel sends RST instead of FIN."""
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()


@pytest.fixture
def tcp_server(tiny_model: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = _free_port()
    command = [sys.executable, "-m", "code_llama_ls", "serve", "--tcp", "--port", str(port)]
    server = subprocess.Popen([*command, "--model", str(tiny_model)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            break
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, "server did not listen"
            assert server.poll() is None, "server exited"
            time.sleep(0.1)
    yield server, port
    server.terminate()
    server.wait(timeout=30)


def _served(port: int) -> Client:
    """A new client that gets initialized and a status (the server's model answers)."""
    client = Client(port)
    result = client.initialize()["result"]
    assert result["capabilities"]["positionEncoding"] == "utf-16"
    assert "inlineCompletionProvider" in result["capabilities"]
    status = client.call("codeLlama/getStatus")["result"]
    assert status["model"], status
    return client


def test_listens_on_loopback_only(tcp_server: tuple[subprocess.Popen[bytes], int]) -> None:
    _, port = tcp_server
    _served(port).close()
    listening = subprocess.run(
        ["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=False
    )
    if listening.returncode == 0:  # ss is optional: the bind address is checked when it is there
        local = [line.split()[3] for line in listening.stdout.splitlines() if line.strip()]
        assert local and all(address.startswith("127.0.0.1:") for address in local), local


@pytest.mark.parametrize("leave", ["close", "reset", "shutdown-exit", "exit"])
def test_serves_the_next_client_however_one_leaves(
    tcp_server: tuple[subprocess.Popen[bytes], int], leave: str
) -> None:
    server, port = tcp_server
    first = _served(port)
    first.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": "file:///a.py", "languageId": "python", "version": 1, "text": ""}},
    )
    if leave == "close":
        first.close()
    elif leave == "reset":
        first.reset()
    else:
        if leave == "shutdown-exit":
            assert first.call("shutdown")["result"] is None
        first.notify("exit")
        assert first.closed_by_server()
        first.close()
    second = _served(port)
    # The first client's documents went with it.
    reply = second.call(
        "workspace/executeCommand",
        {
            "command": "codeLlama.showPrompt",
            "arguments": [{"uri": "file:///a.py", "position": {"line": 0, "character": 0}}],
        },
    )
    assert reply["error"]["code"] == -32602, reply
    assert second.call("shutdown")["result"] is None
    second.close()
    assert server.poll() is None, "the server exited"


def test_a_second_client_is_served_when_the_first_leaves(
    tcp_server: tuple[subprocess.Popen[bytes], int],
) -> None:
    _, port = tcp_server
    first = _served(port)
    second = Client(port)
    second.socket.sendall(
        encode(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {"processId": None, "rootUri": None, "capabilities": {}},
            }
        )
    )
    first.close()
    # The first message the second client gets is its reply: nothing of the
    # first session (its last log records, say) reaches it.
    reply = read_frame(second._in)
    assert reply is not None and reply.get("id") == 1 and "result" in reply, reply
    second.close()
