"""The server's copy of a document never drifts from the editor's, under random edits.

Thousands of random incremental edits (multi-line, astral characters, CRLF,
lone CR, form feed, U+2028, ranges past line ends and past the end) go to
the real server over stdio, in UTF-16 and in UTF-8, several per didChange;
after every batch the server's text, read back with `codeLlama/document`,
must equal the independent reference's (`tests/lsp_reference.py`).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.e2e.raw_client import RawServer
from tests.lsp_reference import EditMaker, apply

URI = "file:///tmp/fuzz/doc.py"
START = "def f(x):\r\n    return x\n\ttab\r\nend 😀\u2028next\fform\rcr"
BATCHES = 150
EDITS_PER_BATCH = (1, 12)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8"])
def test_random_edits_keep_the_servers_text_equal_to_the_editors(
    tiny_model: Path, encoding: str
) -> None:
    raw = RawServer(["--model", str(tiny_model)])
    try:
        offered = ["utf-8", "utf-16"] if encoding == "utf-8" else ["utf-16"]
        reply = raw.initialize({"general": {"positionEncodings": offered}})
        assert reply["result"]["capabilities"]["positionEncoding"] == encoding
        raw.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": URI, "languageId": "python", "version": 1, "text": START}},
        )
        rng = random.Random(f"fuzz-{encoding}")
        maker = EditMaker(rng, encoding)
        text, version, edits = START, 1, 0
        for _ in range(BATCHES):
            changes = []
            for _ in range(rng.randint(*EDITS_PER_BATCH)):
                change = maker.change(text)
                changes.append(change)
                text = apply(text, change, encoding)
            version += 1
            edits += len(changes)
            raw.notify(
                "textDocument/didChange",
                {"textDocument": {"uri": URI, "version": version}, "contentChanges": changes},
            )
            served = raw.call("codeLlama/document", {"uri": URI})["result"]
            assert served["version"] == version
            assert served["text"] == text, f"drift after {edits} edits; last batch: {changes}"
        assert edits > 900
        assert raw.notifications("window/showMessage") == []
    finally:
        raw.close()
