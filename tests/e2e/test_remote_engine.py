"""The remote backend against a real llama.cpp server (llama-cpp-python's) on 127.0.0.1.

The server serves the default model's GGUF (SmolLM2-135M, Q4_1); the
language server loads only that model's tokenizer. These tests cover what a
team sees: completions and explanations streamed from the shared engine,
prompts that the server reads back as the exact ids the prompt builder made,
cancellation that reaches the server, and a server that goes down and comes
back mid-session.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from code_llama_ls.cancel import CancelToken
from code_llama_ls.config import EngineSettings, RemoteServer
from code_llama_ls.engine.base import GenerationParams
from code_llama_ls.engine.remote_api import ServerKind, prompt_text, tokenize_remote
from code_llama_ls.engine.remote_engine import RemoteEngine
from code_llama_ls.pipeline.complete import prepare_prompt
from code_llama_ls.pipeline.request import CompletionOptions, CompletionRequest
from code_llama_ls.text.documents import DocumentStore
from tests.e2e.lsp_client import inline_text, open_document, range_json, start_client
from tests.llama_server import LlamaCppServer, free_port

# A test dependency (pyproject's `test` extra): missing, these tests fail, never skip.
importlib.import_module("llama_cpp.server")

SOURCE = '''"""Shapes."""
import math


class Circle:
    def __init__(self, radius: float) -> None:
        self.radius = radius

    def area(self) -> float:
        return math.pi * self.radius ** 2

    def describe(self) -> str:
        return f"Circle(r={self.radius}) — é, 日本, emoji 🎉"


def total_area(shapes):
    \t# a tab, a CRLF line\r
    return sum(s.area() for s in shapes)
'''
URI = "file:///team/shapes.py"


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaCppServer]:
    from code_llama_ls.engine import find_default_gguf

    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with LlamaCppServer(find_default_gguf(), log, context=8192) as server:
        yield server


@pytest.fixture(scope="module")
def engine(llama_server: LlamaCppServer) -> RemoteEngine:
    from code_llama_ls.serving.engines import load_engine_for

    settings = EngineSettings(backend="remote", remote=RemoteServer(url=llama_server.url))
    loaded = load_engine_for(settings, None)
    assert isinstance(loaded, RemoteEngine)
    return loaded


def test_connect_says_what_the_server_serves(engine: RemoteEngine) -> None:
    info = engine.connect()
    assert info.kind is ServerKind.LLAMA_CPP_PYTHON
    assert info.model is not None and info.model.endswith(".gguf")
    assert not info.accepts_token_ids, "llama-cpp-python's server takes text prompts"


def test_prompts_sent_as_text_are_read_back_as_the_prompt_builders_ids(
    engine: RemoteEngine,
) -> None:
    """Real prompts at line ends of a file with unicode, tabs and CRLF round-trip exactly."""
    engine.connect()
    info = engine.server
    assert info is not None
    store = DocumentStore()
    snapshot = store.open(URI, "python", 1, SOURCE)
    options = CompletionOptions(context_tokens=1024)
    checked = 0
    line_ends = [i for i, char in enumerate(SOURCE) if char == "\n"]
    for offset in line_ends:
        prepared = prepare_prompt(CompletionRequest(snapshot, offset, options), engine)
        if prepared.prompt is None:
            continue
        ids = list(prepared.prompt.ids)
        assert tokenize_remote(engine._client, info, prompt_text(engine.tokenizer, ids)) == ids
        checked += 1
    assert checked >= len(line_ends) // 2


def test_completion_streams_from_the_server(engine: RemoteEngine) -> None:
    prompt = engine.tokenizer.encode("def fibonacci(n):\n    ")
    seen: list[str] = []

    def on_text(text: str) -> bool:
        seen.append(text)
        return False

    params = GenerationParams(24, engine.tokenizer.stop_token_ids)
    first = engine.generate(prompt, params, CancelToken(), on_text)
    assert first.text.strip() and first.finish_reason in ("length", "stop")
    assert len(seen) > 1 and all(first.text.startswith(part) for part in seen)
    # The same prompt again reuses the server's KV cache. Its text may differ
    # from the cold run's: llama.cpp's numerics depend on the batch shape, and
    # this small Q4_1 model has near-ties.
    assert engine.generate(prompt, params, CancelToken()).text.strip()


def test_cancel_closes_the_stream_and_the_server_stops_generating(
    engine: RemoteEngine, llama_server: LlamaCppServer
) -> None:
    prompt = engine.tokenizer.encode("# A long list of numbers:\n1, 2, 3,")
    before = llama_server.log_text().count("Disconnected from client")
    token = CancelToken()

    def cancel_on_first_text(text: str) -> bool:
        token.cancel()
        return False

    params = GenerationParams(2000, engine.tokenizer.stop_token_ids)
    result = engine.generate(prompt, params, token, cancel_on_first_text)
    assert result.finish_reason == "cancelled"
    deadline = time.monotonic() + 30
    while llama_server.log_text().count("Disconnected from client") == before:
        assert time.monotonic() < deadline, llama_server.log_text()[-2000:]
        time.sleep(0.1)
    # The server is free again: a short request is answered.
    short = GenerationParams(4, engine.tokenizer.stop_token_ids)
    assert engine.generate(prompt, short, CancelToken()).finish_reason == "length"


def error_messages(client: LanguageClient) -> list[str]:
    return [m.message for m in client.messages if m.type == types.MessageType.Error]


def messages_of(client: LanguageClient, kind: types.MessageType) -> list[str]:
    return [m.message for m in client.messages if m.type == kind]


async def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def complete_until(
    client: LanguageClient, position: types.Position, want: bool, timeout_s: float = 60
) -> list[str]:
    """Ask for completions until some come (`want`) or none do."""
    deadline = time.monotonic() + timeout_s
    while True:
        texts = await inline_text(client, URI, position)
        if bool(texts) == want or time.monotonic() > deadline:
            return texts
        await asyncio.sleep(0.2)


async def test_editor_gets_a_message_when_the_server_goes_down_then_recovers(
    tmp_path: Path,
) -> None:
    from code_llama_ls.engine import find_default_gguf

    server = LlamaCppServer(find_default_gguf(), tmp_path / "server.log", context=8192)
    server.start()
    options = {
        "backend": "remote",
        "remoteUrl": server.url,
        "contextTokens": 1024,
        "maxNewTokens": 16,
        "debounceMs": 0,
        # Every request asks the model: a cached suggestion would hide the outage.
        "completionCache": False,
    }
    client, _ = await start_client("neovim", "", options)
    try:
        text = "def fibonacci(n: int) -> int:\n    "
        open_document(client, URI, "python", text)
        position = types.Position(1, 4)
        assert await complete_until(client, position, want=True), error_messages(client)
        # Sent once the server has said what it serves, maybe after the first answer.
        await wait_until(
            lambda: any(
                "no fill-in-the-middle tokens" in m
                for m in messages_of(client, types.MessageType.Warning)
            ),
            "the warning that the served model cannot infill",
        )

        server.stop()
        assert await inline_text(client, URI, position) == []
        await wait_until(lambda: bool(error_messages(client)), "an error message")
        assert any("cannot reach the inference server" in m for m in error_messages(client))

        server.start()
        assert await complete_until(client, position, want=True), error_messages(client)
        infos = messages_of(client, types.MessageType.Info)
        assert any("answers again" in m for m in infos), infos
    finally:
        server.stop()
        await client.shutdown_session()
        await client.stop()


async def test_unreachable_server_at_start_is_a_message_and_the_editor_keeps_working() -> None:
    options = {"backend": "remote", "remoteUrl": f"http://127.0.0.1:{free_port()}"}
    client, _ = await start_client("visual-studio-code", "", options)
    try:
        await wait_until(lambda: bool(error_messages(client)), "an error message")
        assert "cannot reach the inference server" in error_messages(client)[0]
        open_document(client, URI, "python", "x = ")
        assert await inline_text(client, URI, types.Position(0, 4)) == []
    finally:
        await client.shutdown_session()
        await client.stop()


async def test_explanation_streams_from_the_server(llama_server: LlamaCppServer) -> None:
    options = {"backend": "remote", "remoteUrl": llama_server.url, "explainMaxNewTokens": 48}
    client, _ = await start_client("visual-studio-code", "", options)
    try:
        open_document(client, URI, "python", SOURCE)
        result = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="codeLlama.explain",
                arguments=[{"uri": URI, "range": range_json(8, 0, 10, 0)}],
            )
        )
        assert isinstance(result, str) and result.strip(), error_messages(client)
        reports = [
            value.message
            for values in client.progress_reports.values()
            if values
            and isinstance(values[0], types.WorkDoneProgressBegin)
            and values[0].title == "Explaining selection"
            for value in values
            if isinstance(value, types.WorkDoneProgressReport)
        ]
        assert reports, "no text was reported while the explanation was written"
        assert all(message is not None and result.startswith(message) for message in reports)
        assert not error_messages(client)
    finally:
        await client.shutdown_session()
        await client.stop()
