"""The real server over stdio runs the ONNX model in its model host process, and ends it.

The server is started as editors start it (`python -m code_llama_ls serve`,
`initialize` sent at once). The tiny model runs on the onnx backend, so
the host loads it: the completion comes from the host, `codeLlama/memory`
reports the host's process, and the host ends when the server does, by
`exit` or by being killed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from code_llama_ls.launch import HOST_PROCESS_NAME
from tests.e2e.raw_client import RawServer
from tests.scenarios import ADD_FILE, ADD_MIDDLE, ADD_URI, cursor_position, split_cursor


def children(pid: int) -> list[int]:
    """Child processes of `pid` (Linux)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(child) for child in text)
    return found


def process_name(pid: int) -> bytes:
    return Path(f"/proc/{pid}/comm").read_bytes().strip()


def ended(pid: int, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        except FileNotFoundError:
            return True
        if state == "Z":  # ended, waiting for its parent to read its status
            return True
        time.sleep(0.05)
    return False


def serve_tiny_model(tiny_model: Path, tmp_path: Path) -> tuple[RawServer, int]:
    server = RawServer(
        ["--model", str(tiny_model), "--backend", "onnx", "--cache-dir", str(tmp_path)],
        stderr_path=tmp_path / "stderr.log",
    )
    server.initialize({"textDocument": {"inlineCompletion": {}}}, onnxWeights="fp32", debounceMs=0)
    server.wait_for(
        lambda m: (
            m.get("method") == "codeLlama/status"
            and m["params"].get("device") is not None
            and m["params"].get("state") == "ready"
        ),
        timeout=300,
    )
    # Forked from the server's first interpreter, and named for `top`.
    (host,) = [
        pid for pid in children(server.process.pid) if process_name(pid) == HOST_PROCESS_NAME
    ]
    return server, host


def test_completions_come_from_the_host_which_ends_with_the_server(
    tiny_model: Path, tmp_path: Path
) -> None:
    server, host = serve_tiny_model(tiny_model, tmp_path)
    try:
        text = "".join(split_cursor(ADD_FILE))
        server.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": ADD_URI, "languageId": "python", "version": 1, "text": text}},
        )
        cursor = cursor_position(ADD_FILE)
        reply = server.call(
            "textDocument/inlineCompletion",
            {
                "textDocument": {"uri": ADD_URI},
                "position": {"line": cursor.line, "character": cursor.character},
                "context": {"triggerKind": 1},
            },
            timeout=120,
        )
        texts = [item["insertText"] for item in reply["result"]["items"]]
        # Invoked: the alternatives too, their first tokens chosen by the host's engine.
        assert texts[0] == ADD_MIDDLE and 2 <= len(texts) <= 3 and len(set(texts)) == len(texts)
        memory = server.call("codeLlama/memory")["result"]
        (engine,) = memory["engines"]
        assert engine["hostProcess"]["pid"] == host
        assert engine["hostProcess"]["rssBytes"] > 0
        assert engine["prefixCache"]["entries"] == 1, "the completion's prefix is kept in the host"

        server.call("shutdown")
        server.notify("exit", None)
        assert server.exit_code() == 0
        assert ended(host), "the model host outlived the server"
    finally:
        server.close()


def test_a_killed_server_leaves_no_host_behind(tiny_model: Path, tmp_path: Path) -> None:
    server, host = serve_tiny_model(tiny_model, tmp_path)
    try:
        os.kill(server.process.pid, 9)
        assert ended(host), "the model host outlived the killed server"
    finally:
        server.close()
