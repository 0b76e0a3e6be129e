"""JSON-RPC 2.0 and LSP conformance of the real server, driven with raw bytes over stdio.

Every request gets an answer with the right code and id, whatever arrives;
malformed notifications are logged, never popped up; after each bad message
the server still answers a normal request. And LSP's lifecycle: requests
before `initialize` and after `shutdown`, `exit`'s status codes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.raw_client import RawServer, encode, frame

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
SERVER_NOT_INITIALIZED = -32002

URI = "file:///tmp/conformance/a.py"
TEXT = "def add(a, b):\n    return a + b\n"
POSITION = {"line": 1, "character": 4}
DOC = {"uri": URI}


def _request(msg_id: object, method: str, params: object) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}


def _inline(params: object, msg_id: object = 1) -> bytes:
    return encode(_request(msg_id, "textDocument/inlineCompletion", params))


_CONTEXT = {"triggerKind": 2}
# (name, raw bytes, the id the error reply must carry, its code)
MALFORMED: list[tuple[str, bytes, object, int]] = [
    ("params null", _inline(None, 11), 11, INVALID_PARAMS),
    ("params an array", _inline([DOC, POSITION], 12), 12, INVALID_PARAMS),
    (
        "line -1",
        _inline({"textDocument": DOC, "position": {"line": -1, "character": 0}, "context": {}}, 13),
        13,
        INVALID_PARAMS,
    ),
    (
        'character "x"',
        _inline(
            {
                "textDocument": DOC,
                "position": {"line": 0, "character": "x"},
                "context": _CONTEXT,
            },
            "fourteen",
        ),
        "fourteen",
        INVALID_PARAMS,
    ),
    (
        "inlineCompletion without context",
        _inline({"textDocument": DOC, "position": POSITION}, 15),
        15,
        INVALID_PARAMS,
    ),
    (
        "executeCommand without command",
        encode(_request(16, "workspace/executeCommand", {"arguments": []})),
        16,
        INVALID_PARAMS,
    ),
    (
        "explain with a broken argument",
        encode(
            _request(
                17, "workspace/executeCommand", {"command": "codeLlama.explain", "arguments": [1]}
            )
        ),
        17,
        INVALID_PARAMS,
    ),
    (
        "an unknown command",
        encode(_request(18, "workspace/executeCommand", {"command": "nope", "arguments": []})),
        18,
        INVALID_PARAMS,
    ),
    ("invalid JSON", frame(b'{"jsonrpc": "2.0", "id": 19, "method":'), None, PARSE_ERROR),
    ("invalid UTF-8", frame(b'{"jsonrpc": "2.0", "id": 20, "method": "\xff"}'), None, PARSE_ERROR),
    ("an empty body", frame(b""), None, PARSE_ERROR),
    (
        "a batch array",
        encode([_request(21, "codeLlama/getStatus", None)]),
        None,
        INVALID_REQUEST,
    ),
    ("a bare number", encode(42), None, INVALID_REQUEST),
    ("a bare string", encode("initialize"), None, INVALID_REQUEST),
    (
        'no "jsonrpc"',
        encode({"id": 22, "method": "codeLlama/getStatus"}),
        22,
        INVALID_REQUEST,
    ),
    (
        'a "jsonrpc" of 1.0',
        encode({"jsonrpc": "1.0", "id": 23, "method": "codeLlama/getStatus"}),
        23,
        INVALID_REQUEST,
    ),
    (
        "an id that is an object",
        encode(_request({"a": 1}, "shutdown", None)),
        None,
        INVALID_REQUEST,
    ),
    ("an id that is a boolean", encode(_request(True, "shutdown", None)), None, INVALID_REQUEST),
    ("a method that is a number", encode(_request(24, 7, None)), 24, INVALID_REQUEST),  # type: ignore[arg-type]
    ("an unknown method", encode(_request(25, "textDocument/nope", {})), 25, METHOD_NOT_FOUND),
]

# Notifications the client got wrong: logged, never answered, never popped up.
BAD_NOTIFICATIONS: list[tuple[str, object]] = [
    (
        "didChange of an unknown document",
        {
            "textDocument": {"uri": "file:///tmp/conformance/unknown.py", "version": 2},
            "contentChanges": [{"text": "x"}],
        },
    ),
    ("didChange with params null", None),
    ("didOpen with params null", None),
    ("didClose of an unknown document", {"textDocument": {"uri": "file:///nowhere.py"}}),
    ("$/cancelRequest without an id", {}),
    ("an unknown notification", {"x": 1}),
]
_NOTIFICATION_METHODS = {
    "didChange of an unknown document": "textDocument/didChange",
    "didChange with params null": "textDocument/didChange",
    "didOpen with params null": "textDocument/didOpen",
    "didClose of an unknown document": "textDocument/didClose",
    "$/cancelRequest without an id": "$/cancelRequest",
    "an unknown notification": "codeLlama/nothingLikeThis",
}


@pytest.fixture(scope="module")
def server(tiny_model: Path) -> Iterator[RawServer]:
    raw = RawServer(["--model", str(tiny_model)])
    raw.initialize()
    raw.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": URI, "languageId": "python", "version": 1, "text": TEXT}},
    )
    yield raw
    raw.close()


def _still_serving(server: RawServer) -> None:
    reply = server.call("codeLlama/getStatus")
    assert "result" in reply and reply["result"]["model"], reply


@pytest.mark.parametrize(
    ("name", "data", "msg_id", "code"), MALFORMED, ids=[c[0] for c in MALFORMED]
)
def test_every_malformed_request_is_answered(
    server: RawServer, name: str, data: bytes, msg_id: object, code: int
) -> None:
    server.send_bytes(data)
    reply = server.response(msg_id)
    assert reply["jsonrpc"] == "2.0"
    assert reply["error"]["code"] == code, (name, reply)
    assert reply["error"]["message"]
    _still_serving(server)


@pytest.mark.parametrize(
    ("name", "params"), BAD_NOTIFICATIONS, ids=[c[0] for c in BAD_NOTIFICATIONS]
)
def test_bad_notifications_are_logged_not_shown(
    server: RawServer, name: str, params: object
) -> None:
    server.notify(_NOTIFICATION_METHODS[name], params)
    _still_serving(server)
    assert server.notifications("window/showMessage") == []


def test_invalid_params_say_what_was_wrong(server: RawServer) -> None:
    reply = server.call(
        "textDocument/inlineCompletion",
        {"textDocument": DOC, "position": {"line": 0, "character": "x"}},
    )
    message = reply["error"]["message"]
    assert "textDocument/inlineCompletion" in message
    assert "context" in message and "position.character" in message


def test_positions_outside_the_document_are_invalid_params(server: RawServer) -> None:
    for position in ({"line": 99, "character": 0}, {"line": 0, "character": 999}):
        reply = server.call(
            "textDocument/inlineCompletion",
            {"textDocument": DOC, "position": position, "context": _CONTEXT},
        )
        assert reply["error"]["code"] == INVALID_PARAMS, reply
        assert "position" in reply["error"]["message"]


def test_no_popup_for_any_client_mistake(server: RawServer) -> None:
    """Runs after the others in this module: none of them may have shown a message."""
    _still_serving(server)
    assert server.notifications("window/showMessage") == []


def test_requests_before_initialize_are_refused(tiny_model: Path) -> None:
    raw = RawServer(["--model", str(tiny_model)])
    try:
        reply = raw.call(
            "textDocument/inlineCompletion", {"textDocument": DOC, "position": POSITION}
        )
        assert reply["error"]["code"] == SERVER_NOT_INITIALIZED
        raw.notify("textDocument/didOpen", None)  # dropped, not answered
        assert "result" in raw.initialize()
        second = raw.call("initialize", {"processId": None, "rootUri": None, "capabilities": {}})
        assert second["error"]["code"] == INVALID_REQUEST
        _still_serving(raw)
    finally:
        raw.close()


def test_requests_after_shutdown_are_refused_then_exit_ends_with_0(tiny_model: Path) -> None:
    raw = RawServer(["--model", str(tiny_model)])
    try:
        raw.initialize()
        assert raw.call("shutdown")["result"] is None
        for method in ("codeLlama/getStatus", "textDocument/inlineCompletion", "shutdown"):
            reply = raw.call(
                method, {"textDocument": DOC, "position": POSITION, "context": _CONTEXT}
            )
            assert reply["error"]["code"] == INVALID_REQUEST, (method, reply)
        raw.notify("exit", None)
        assert raw.exit_code() == 0
    finally:
        raw.close()


@pytest.mark.parametrize("initialized", [True, False], ids=["initialized", "never-initialized"])
def test_exit_without_shutdown_ends_with_1(tiny_model: Path, initialized: bool) -> None:
    raw = RawServer(["--model", str(tiny_model)])
    try:
        if initialized:
            raw.initialize()
        raw.send_bytes(encode({"jsonrpc": "2.0", "method": "exit"}))
        assert raw.exit_code() == 1
    finally:
        raw.close()


def test_a_vanished_client_ends_the_server(tiny_model: Path) -> None:
    raw = RawServer(["--model", str(tiny_model)])
    try:
        raw.initialize()
        raw.stdin.close()
        assert raw.exit_code() == 1
    finally:
        raw.close()


def test_members_json_rpc_does_not_define_are_ignored(server: RawServer) -> None:
    message = {"jsonrpc": "2.0", "id": 31, "method": "codeLlama/getStatus", "x": "\ud83d"}
    server.send_bytes(frame(json.dumps(message).encode()))
    assert "result" in server.response(31)
