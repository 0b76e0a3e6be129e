"""`serve --tcp`: LSP over a socket bound to 127.0.0.1 only."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _message(payload: dict[str, object]) -> bytes:
    body = json.dumps(payload).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def _read_message(stream: socket.socket) -> dict[str, object]:
    data = b""
    while b"\r\n\r\n" not in data:
        data += stream.recv(4096)
    header, rest = data.split(b"\r\n\r\n", 1)
    length = int(header.split(b"Content-Length:")[1].split(b"\r\n")[0])
    while len(rest) < length:
        rest += stream.recv(4096)
    result: dict[str, object] = json.loads(rest[:length])
    return result


def test_tcp_server_answers_initialize_on_loopback(tmp_path: Path) -> None:
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "code_llama_ls",
            "serve",
            "--tcp",
            "--port",
            str(port),
            "--model",
            str(tmp_path / "unused"),
        ],
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                connection = socket.create_connection(("127.0.0.1", port), timeout=60)
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline, "server did not listen"
                assert server.poll() is None, "server exited"
                time.sleep(0.1)
        with connection:
            request = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {"processId": None, "rootUri": None, "capabilities": {}},
            }
            connection.sendall(_message(request))
            response = _read_message(connection)
            while "id" not in response:  # skip notifications
                response = _read_message(connection)
            assert response["id"] == 1
            result = response["result"]
            assert isinstance(result, dict)
            assert result["capabilities"]["positionEncoding"] == "utf-16"
            assert "inlineCompletionProvider" in result["capabilities"]
        listening = subprocess.run(
            ["ss", "-ltn", f"sport = :{port}"], capture_output=True, text=True, check=False
        )
        if listening.returncode == 0:
            assert "0.0.0.0" not in listening.stdout and "*:" not in listening.stdout
    finally:
        server.terminate()
        server.wait(timeout=30)
