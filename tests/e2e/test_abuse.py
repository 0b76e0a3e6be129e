"""Bounded under abuse: a typing storm and hundreds of documents, through the real server.

A storm of 30 keystrokes a second for a minute, each with a completion
request that cancels the one before (as VS Code does), gets every request
answered and leaves memory flat. 300 documents of 20 KB, opened and closed,
leave no more than a few MiB behind. Memory is the server's resident set,
read from /proc (Linux).
"""

from __future__ import annotations

import queue
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.raw_client import Message, RawServer

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")

KEYS_PER_SECOND = 30
STORM_SECONDS = 60
URI = "file:///tmp/abuse/storm.py"
FUNCTION = "def total(values):\n    result = 0\n    for value in values:\n        "
TYPED = "result = result + value * 2  # accumulate\n        "


def resident_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _ready(raw: RawServer) -> None:
    deadline = time.monotonic() + 120
    while raw.call("codeLlama/getStatus")["result"]["state"] == "loading":
        assert time.monotonic() < deadline, "the model did not load"
        time.sleep(0.2)


def _drain(raw: RawServer, replies: dict[int, Message]) -> None:
    while True:
        try:
            message = raw.received.get_nowait()
        except queue.Empty:
            return
        if message is not None and "method" not in message and isinstance(message.get("id"), int):
            replies[message["id"]] = message


def _position(text: str) -> dict[str, int]:
    lines = text.split("\n")
    return {"line": len(lines) - 1, "character": len(lines[-1])}


def test_a_typing_storm_is_answered_in_full_and_memory_stays_flat(tiny_model: Path) -> None:
    raw = RawServer(["--model", str(tiny_model)])
    try:
        raw.initialize()
        _ready(raw)
        text, version = FUNCTION, 1
        raw.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": URI, "languageId": "python", "version": 1, "text": text}},
        )
        replies: dict[int, Message] = {}
        sent: list[int] = []
        samples: list[tuple[float, float]] = []
        began = time.monotonic()
        for key in range(KEYS_PER_SECOND * STORM_SECONDS):
            time.sleep(max(0.0, began + key / KEYS_PER_SECOND - time.monotonic()))
            _drain(raw, replies)
            if sent and sent[-1] not in replies:
                raw.notify("$/cancelRequest", {"id": sent[-1]})
            at = _position(text)
            char = TYPED[key % len(TYPED)]
            text, version = text + char, version + 1
            change = {"range": {"start": at, "end": at}, "text": char}
            raw.notify(
                "textDocument/didChange",
                {"textDocument": {"uri": URI, "version": version}, "contentChanges": [change]},
            )
            context = {"triggerKind": 2}
            params = {"textDocument": {"uri": URI}, "position": _position(text), "context": context}
            sent.append(raw.request("textDocument/inlineCompletion", params))
            if key % KEYS_PER_SECOND == 0:
                samples.append((time.monotonic() - began, resident_mib(raw.process.pid)))
        deadline = time.monotonic() + 60
        while len(replies) < len(sent) and time.monotonic() < deadline:
            time.sleep(0.1)
            _drain(raw, replies)
        missing = [msg_id for msg_id in sent if msg_id not in replies]
        assert not missing, f"{len(missing)} of {len(sent)} requests never answered"
        codes = {reply["error"]["code"] for reply in replies.values() if "error" in reply}
        assert codes <= {-32800}, codes  # cancelled, never failed
        assert "result" in replies[sent[-1]]  # the last one, never cancelled, completes
        served = raw.call("codeLlama/document", {"uri": URI})["result"]
        assert served["text"] == text
        # Flat: after the first 10 s (caches warm), no growth beyond noise.
        settled = [rss for second, rss in samples if second >= 10]
        assert max(settled) - settled[0] < 40, samples
    finally:
        raw.close()


def _module(number: int, size: int) -> str:
    """A distinct Python module of about `size` characters."""
    parts, length, n = [], 0, 0
    while length < size:
        part = (
            f"def function_{number}_{n}(alpha_{n}, beta_{n}):\n"
            f'    """Combine alpha_{n} and beta_{n} for module {number}."""\n'
            f"    total_{n} = alpha_{n} * {n + 1} + beta_{n}\n"
            f"    return [total_{n}, alpha_{n} - beta_{n}, {{'k{n}': total_{n}}}]\n\n\n"
        )
        parts.append(part)
        length += len(part)
        n += 1
    return "".join(parts)[:size]


def test_three_hundred_documents_cost_little_once_closed(tiny_model: Path) -> None:
    raw = RawServer(["--model", str(tiny_model)])
    try:
        raw.initialize()
        _ready(raw)
        uris = [f"file:///tmp/abuse/module_{n:03d}.py" for n in range(300)]
        texts = [_module(n, 20 * 1024) for n in range(300)]
        # One round first, so that what a first document costs once (grammar,
        # query compilation) is not counted.
        raw.notify(
            "textDocument/didOpen",
            {
                "textDocument": {
                    "uri": uris[0],
                    "languageId": "python",
                    "version": 1,
                    "text": texts[0],
                }
            },
        )
        raw.notify("textDocument/didClose", {"textDocument": {"uri": uris[0]}})
        raw.call("codeLlama/getStatus")
        time.sleep(3)
        before = resident_mib(raw.process.pid)
        for uri, text in zip(uris, texts, strict=True):
            raw.notify(
                "textDocument/didOpen",
                {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}},
            )
        raw.call("codeLlama/getStatus", timeout=120)
        opened = resident_mib(raw.process.pid)
        for uri in uris:
            raw.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
        assert raw.call("codeLlama/document", {"uri": uris[-1]})["error"]["code"] == -32602
        # The index forgets the documents on its own thread; then memory is released.
        deadline = time.monotonic() + 60
        while (after := resident_mib(raw.process.pid)) - before >= 50:
            assert time.monotonic() < deadline, (before, opened, after)
            time.sleep(1)
    finally:
        raw.close()
