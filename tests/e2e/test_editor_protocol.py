"""The extras the editor clients rely on (extensions/PROTOCOL.md), over the real server.

Status notifications and the `codeLlama/getStatus` request, explanations
reported on the client's own work-done token, and a separate explanation
model.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.e2e.conftest import server_command
from tests.e2e.lsp_client import (
    inline_text,
    open_document,
    plain,
    range_json,
    record_statuses,
    start_client,
    wait_for_state,
)
from tests.scenarios import (
    ADD_FILE,
    ADD_MIDDLE,
    ADD_URI,
    EXPLAINED_CODE,
    EXPLANATION,
    cursor_position,
    split_cursor,
)


async def started_with_status(
    model: Path, options: dict[str, object] | None = None
) -> tuple[LanguageClient, list[dict[str, Any]]]:
    """A client that records every `codeLlama/status` it is sent."""
    statuses: list[dict[str, Any]] = []
    client, _ = await start_client(
        "visual-studio-code", model, options, on_start=lambda c: record_statuses(c, statuses)
    )
    return client, statuses


async def test_status_goes_loading_ready_generating_ready_with_latency(tiny_model: Path) -> None:
    client, statuses = await started_with_status(tiny_model)
    try:
        ready = await wait_for_state(statuses, "ready")
        assert statuses[0]["state"] == "loading"
        assert statuses[0]["message"] == "loading model"
        assert ready["device"] == "cpu"
        assert ready["model"] == "model"  # the tiny model's directory name
        assert ready["lastCompletionMs"] is None
        assert ready["prompt"] == "Code Llama FIM, SPM, other files as comment headers"

        open_document(client, ADD_URI, "python", "".join(split_cursor(ADD_FILE)))
        assert await inline_text(client, ADD_URI, cursor_position(ADD_FILE)) == [ADD_MIDDLE]
        states = [s["state"] for s in statuses]
        assert states[-2:] == ["generating", "ready"], states
        assert isinstance(statuses[-1]["lastCompletionMs"], float)
        assert statuses[-1]["lastCompletionMs"] > 0

        asked = plain(await client.protocol.send_request_async("codeLlama/getStatus", None))
        stats = plain(asked.pop("stats"))
        acceptance = plain(plain(asked.pop("acceptance"))["total"])
        assert asked == statuses[-1]
        assert (acceptance["offered"], acceptance["shown"]) == (1, 0)
        assert stats["completions"] == stats["modelCalls"] == 1
        assert stats["prefilledTokens"] == stats["promptTokens"] > 0
    finally:
        await client.shutdown_session()
        await client.stop()


async def test_unloadable_model_is_an_error_status(tmp_path: Path) -> None:
    client, statuses = await started_with_status(tmp_path / "no-such-model")
    try:
        error = await wait_for_state(statuses, "error")
        assert "no-such-model" in error["message"]
    finally:
        await client.shutdown_session()
        await client.stop()


async def test_explanation_reports_on_the_clients_token(tiny_model: Path) -> None:
    client, _ = await start_client("neovim", tiny_model)
    try:
        open_document(client, ADD_URI, "python", EXPLAINED_CODE)
        token = "client-made-token"
        client.progress_reports[token] = []
        result = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="codeLlama.explain",
                arguments=[{"uri": ADD_URI, "range": range_json(0, 0, 0, 0)}],
                work_done_token=token,
            )
        )
        assert result == EXPLANATION
        values = client.progress_reports[token]
        assert isinstance(values[0], types.WorkDoneProgressBegin)
        assert values[0].title == "Explaining selection"
        assert isinstance(values[-1], types.WorkDoneProgressEnd)
        messages = [v.message for v in values if isinstance(v, types.WorkDoneProgressReport)]
        assert messages[-1] == EXPLANATION
        # No second, server-made progress for the same explanation.
        assert not any(
            isinstance(v[0], types.WorkDoneProgressBegin) and v[0].title == "Explaining selection"
            for t, v in client.progress_reports.items()
            if t != token and v
        )
    finally:
        await client.shutdown_session()
        await client.stop()


async def test_explain_model_writes_explanations(tiny_model: Path, babbling_model: Path) -> None:
    # The babbling model can only babble; the explanation must come from the tiny one.
    client, statuses = await started_with_status(
        babbling_model, {"codeLlama": {"explainModel": str(tiny_model), "maxNewTokens": 4}}
    )
    try:
        await wait_for_state(statuses, "ready")
        open_document(client, ADD_URI, "python", EXPLAINED_CODE)
        result = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="codeLlama.explain",
                arguments=[{"uri": ADD_URI, "range": range_json(0, 0, 2, 0)}],
            )
        )
        assert result == EXPLANATION
    finally:
        await client.shutdown_session()
        await client.stop()


def test_a_request_without_params_is_answered(tiny_model: Path) -> None:
    # JSON-RPC allows leaving `params` out; pygls alone answers nothing then.
    messages = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}},
        {"jsonrpc": "2.0", "method": "initialized", "params": {}},
        {"jsonrpc": "2.0", "id": 2, "method": "codeLlama/getStatus"},
        {"jsonrpc": "2.0", "id": 3, "method": "shutdown"},
        {"jsonrpc": "2.0", "method": "exit"},
    ]
    stdin = b"".join(_frame(message) for message in messages)
    done = subprocess.run(
        server_command("--model", str(tiny_model)), input=stdin, capture_output=True, timeout=120
    )
    replies = _unframe(done.stdout)
    status = next(r for r in replies if r.get("id") == 2)
    assert status["result"]["state"] in ("loading", "ready"), status
    assert any(r.get("id") == 3 and "result" in r for r in replies), replies


def _frame(message: dict[str, object]) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def _unframe(stream: bytes) -> list[dict[str, Any]]:
    replies = []
    while stream:
        header, _, rest = stream.partition(b"\r\n\r\n")
        fields = dict(line.split(b": ", 1) for line in header.split(b"\r\n"))
        length = int(fields[b"Content-Length"])
        replies.append(json.loads(rest[:length]))
        stream = rest[length:]
    return replies
