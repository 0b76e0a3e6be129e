"""A model that cannot load, through the real server over stdio.

For each bad `--model` (a GGUF file cut short in its header or in its
tensors, a file that is not GGUF, a directory of pickle weights, a path that
does not exist) the user sees one error message naming the file and what is
wrong, the status turns red with the same words, completions answer at once
with nothing, and the server keeps serving and shuts down cleanly.

"No retry per keystroke" is checked from outside: once the error is shown,
the bad model is swapped for a different bad one. A server that loaded again
on the next request would fail differently and show a second message.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.e2e.lsp_client import (
    insert_text,
    open_document,
    plain,
    record_statuses,
    start_client,
    wait_for_state,
)
from tests.tiny_models import gguf_data_start, write_tiny_gguf

URI = "file:///work/app.py"
TEXT = "def add(a, b):\n    return a + b\n\n\ndef main():\n    \n"
KEYSTROKES = 5


@dataclass(frozen=True)
class BadModel:
    """A bad `model` setting: how to make it, and what the message must say about it."""

    make: Callable[[Path], Path]
    problem: str
    """Words the message must hold (after the path)."""


def _cut_gguf(at: Callable[[Path], int]) -> Callable[[Path], Path]:
    def make(root: Path) -> Path:
        whole = write_tiny_gguf(root / "whole.gguf")
        cut = root / "codellama-7b.Q4_K_M.gguf"
        cut.write_bytes(whole.read_bytes()[: at(whole)])
        whole.unlink()
        return cut

    return make


def _garbage_gguf(root: Path) -> Path:
    bad = root / "codellama-7b.gguf"
    bad.write_bytes(b"this is not a model, just text\n" * 64)
    return bad


def _pickle_dir(root: Path) -> Path:
    directory = root / "CodeLlama-7b-pickles"
    directory.mkdir()
    (directory / "config.json").write_text('{"model_type": "llama"}')
    (directory / "pytorch_model.bin").write_bytes(b"\x80\x02}q\x00.")
    return directory


def _missing(root: Path) -> Path:
    return root / "models" / "codellama-7b.Q4_K_M.gguf"


BAD_MODELS = {
    # A header cut short: the gguf reader's IndexError before this was fixed.
    "gguf-cut-in-header": BadModel(_cut_gguf(lambda whole: 40), "is truncated: 40 bytes"),
    "gguf-cut-in-tensors": BadModel(
        _cut_gguf(lambda whole: gguf_data_start(whole) + 100), "its header and tensors need"
    ),
    "garbage-gguf": BadModel(_garbage_gguf, "is not a GGUF file: it starts with 'this is '"),
    "pickle-directory": BadModel(_pickle_dir, "holds only PyTorch pickle weights"),
    "missing-path": BadModel(_missing, "does not exist"),
}


def _swap(model: Path) -> None:
    """Replace the bad model by another bad one, which a new load would report differently."""
    if model.is_dir():
        shutil.rmtree(model)
    elif model.exists():
        model.unlink()
    else:
        model.parent.mkdir(parents=True, exist_ok=True)
        model.write_bytes(b"<!DOCTYPE html><html>not the model</html>")


def _errors(client: LanguageClient) -> list[str]:
    return [m.message for m in client.messages if m.type == types.MessageType.Error]


def _load_attempts(client: LanguageClient) -> list[str]:
    """The engine holder's "loading model PATH" log lines (forwarded as window/logMessage)."""
    return [m.message for m in client.log_messages if "loading model /" in m.message]


async def _until(condition: Callable[[], bool], seconds: float = 60) -> None:
    for _ in range(int(seconds * 100)):
        if condition():
            return
        await asyncio.sleep(0.01)


async def _type_and_complete(client: LanguageClient, version: int, character: int) -> Any:
    """One keystroke (a space at the end of the last line), then an automatic inline request."""
    line = TEXT.count("\n") - 1
    insert_text(client, URI, version, types.Position(line, character), "x")
    return await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            position=types.Position(line, character + 1),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Automatic
            ),
        )
    )


@pytest.mark.parametrize("case", list(BAD_MODELS))
async def test_a_model_that_cannot_load_is_one_message_a_red_status_and_no_retry(
    case: str, tmp_path: Path
) -> None:
    bad = BAD_MODELS[case]
    model = bad.make(tmp_path)
    statuses: list[dict[str, Any]] = []
    client, _ = await start_client(
        "visual-studio-code",
        model,
        on_start=lambda client: record_statuses(client, statuses),
    )
    try:
        # One popup naming the file and the problem; a red status saying the same.
        status = await wait_for_state(statuses, "error")
        await _until(lambda: bool(_errors(client)), seconds=10)
        shown = _errors(client)
        assert len(shown) == 1, shown
        assert str(model) in shown[0] and bad.problem in shown[0], shown[0]
        assert status["message"] is not None and status["message"] in shown[0], status
        assert not any(s["state"] == "ready" for s in statuses), statuses

        # Keystrokes: each gets an answer with nothing in it, and no new load.
        _swap(model)
        open_document(client, URI, "python", TEXT)
        indent = len(TEXT.rsplit("\n", 2)[-2])
        for keystroke in range(KEYSTROKES):
            answer = await _type_and_complete(client, 2 + keystroke, indent + keystroke)
            assert isinstance(answer, types.InlineCompletionList), answer
            assert list(answer.items) == []
        await asyncio.sleep(0.3)  # room for any late message
        assert _errors(client) == shown
        assert {s["message"] for s in statuses if s["state"] == "error"} == {status["message"]}
        assert len(_load_attempts(client)) == 1, _load_attempts(client)

        # Still serving: the status request answers with the same error.
        asked = plain(await client.protocol.send_request_async("codeLlama/getStatus", None))
        assert (asked["state"], asked["message"]) == ("error", status["message"])

        # Changed settings are a new attempt, with their own message.
        elsewhere = tmp_path / "elsewhere" / "model.gguf"
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"codeLlama": {"model": str(elsewhere)}})
        )
        await _until(lambda: len(_errors(client)) > 1, seconds=10)
        assert len(_errors(client)) == 2 and str(elsewhere) in _errors(client)[1], _errors(client)
        assert len(_load_attempts(client)) == 2, _load_attempts(client)
    finally:
        await client.shutdown_session()
        await client.stop()
    # A clean exit after `shutdown` and `exit`: the process was alive to the end.
    assert client._server is not None and client._server.returncode == 0
