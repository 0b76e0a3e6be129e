"""A scripted HTTP server on 127.0.0.1 that answers as vLLM or TGI document their APIs.

vLLM and TGI need a GPU, so the remote backend's handling of their answers
(probe, request bodies, streams, errors) is tested against their documented
shapes here; llama.cpp's real server is tested end to end in
`tests/e2e/test_remote_engine.py`. Every request is recorded.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

Handler = Callable[["Request"], "Reply"]


@dataclass
class Request:
    """What a client sent."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Reply:
    """A JSON answer, or a stream of server-sent events (each `data:` one item)."""

    status: int = 200
    json_body: Any = None
    events: Iterable[Any] | None = None
    event_pause_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


class ScriptedServer:
    """Routes (method, path) to handlers; unknown routes answer 404."""

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        """`tls`: (certificate, key) files to serve https with."""
        self.routes: dict[tuple[str, str], Handler] = {}
        self.requests: list[Request] = []
        self.stream_closed_early = threading.Event()
        script = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                self._answer("POST")

            def _answer(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                request = Request(method, self.path, dict(self.headers.items()), body)
                script.requests.append(request)
                handler = script.routes.get((method, self.path))
                reply = handler(request) if handler else Reply(404, {"error": "not found"})
                if reply.events is None:
                    self._send_json(reply)
                else:
                    self._send_events(reply)

            def _send_json(self, reply: Reply) -> None:
                data = json.dumps(reply.json_body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _send_events(self, reply: Reply) -> None:
                self.send_response(reply.status)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                assert reply.events is not None
                try:
                    for event in reply.events:
                        data = event if isinstance(event, str) else json.dumps(event)
                        self.wfile.write(f"data: {data}\n\n".encode())
                        self.wfile.flush()
                        time.sleep(reply.event_pause_s)
                except (BrokenPipeError, ConnectionResetError):
                    script.stream_closed_early.set()
                self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"{self.scheme}://127.0.0.1:{self._server.server_address[1]}"

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Answer `method path` with `handler`."""
        self.routes[(method, path)] = handler

    def answer(self, method: str, path: str, json_body: Any, status: int = 200) -> None:
        """Answer `method path` with a fixed JSON body."""
        self.route(method, path, lambda _: Reply(status, json_body))

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def as_vllm(server: ScriptedServer, model: str, max_model_len: int) -> None:
    """vLLM's /v1/models (owned_by "vllm", max_model_len)."""
    server.answer(
        "GET",
        "/v1/models",
        {
            "object": "list",
            "data": [
                {"id": model, "object": "model", "owned_by": "vllm", "max_model_len": max_model_len}
            ],
        },
    )


def as_tgi(server: ScriptedServer, model: str, max_total_tokens: int) -> None:
    """TGI's /info (its /v1/models is left out, as in older TGI releases)."""
    server.answer(
        "GET",
        "/info",
        {
            "model_id": model,
            "max_input_tokens": max_total_tokens - 1,
            "max_total_tokens": max_total_tokens,
        },
    )


def openai_chunks(pieces: Iterable[str], finish_reason: str = "length") -> list[Any]:
    """An OpenAI completions stream writing `pieces`, then `[DONE]`."""
    chunks: list[Any] = [
        {"choices": [{"text": piece, "index": 0, "finish_reason": None}]} for piece in pieces
    ]
    chunks.append({"choices": [{"text": "", "index": 0, "finish_reason": finish_reason}]})
    chunks.append("[DONE]")
    return chunks
