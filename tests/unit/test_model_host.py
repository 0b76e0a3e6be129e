"""The model host: a real host process running a tiny ONNX model, seen through `HostedEngine`.

Each test starts a real `python -m code_llama_ls.host.model_host` the way
the server does (`spawn_model_host`, `take_over`, `configure`) and compares
what it answers with the same engine in this process.
"""

from __future__ import annotations

import io
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from code_llama_ls.cancel import CancelToken
from code_llama_ls.cli import serving_settings
from code_llama_ls.engine.base import Engine, GenerationParams, ProgressCallback
from code_llama_ls.engine.onnx_engine import OnnxEngine
from code_llama_ls.errors import GenerationError
from code_llama_ls.host.hosted_engine import HostedEngine, HostingLoader, ModelHost
from code_llama_ls.launch import (
    hosts_model,
    initialization_options,
    read_first_message,
    spawn_model_host,
)
from code_llama_ls.launch import settings_for_host as launch_settings
from code_llama_ls.lsp.transport import StdinReader

pytest.importorskip("onnxruntime")
pytest.importorskip("optimum.exporters.onnx")

FP32 = {"onnxWeights": "fp32"}


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("host-onnx-cache")


def arguments(model: Path, cache_root: Path, *extra: str) -> list[str]:
    return ["--model", str(model), "--backend", "onnx", "--cache-dir", str(cache_root), *extra]


@pytest.fixture
def start_host() -> Iterator[Callable[..., ModelHost]]:
    started: list[ModelHost] = []

    def start(serve_arguments: list[str], options: object = FP32) -> ModelHost:
        assert spawn_model_host(), "the host did not start"
        host = ModelHost.take_over()
        assert host is not None
        host.configure(serving_settings(serve_arguments, options))
        started.append(host)
        return host

    yield start
    for host in started:
        host.close()


def never_here(settings: Any, on_progress: ProgressCallback | None) -> Engine:
    raise AssertionError("the model was loaded in the server, not in the host")


def wait_until(condition: Callable[[], bool], timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def hosted(host: ModelHost, serve_arguments: list[str], options: object = FP32) -> HostedEngine:
    progress: list[str] = []
    engine = HostingLoader(host, never_here)(
        serving_settings(serve_arguments, options).engine,
        lambda message, _: progress.append(message),
    )
    assert isinstance(engine, HostedEngine)
    assert any("ONNX Runtime" in line for line in progress), progress
    assert any(line.startswith("warming up") for line in progress), progress
    return engine


def test_the_host_generates_what_the_engine_generates_in_the_server(
    tiny_model: Path, cache_root: Path, start_host: Callable[..., ModelHost]
) -> None:
    serve = arguments(tiny_model, cache_root)
    engine = hosted(start_host(serve), serve)
    here = OnnxEngine.from_model_dir(tiny_model, cache_root=cache_root, weights="fp32")
    assert (engine.name, engine.device, engine.dtype) == (here.name, here.device, here.dtype)
    assert engine.context_length == here.context_length
    prompt = here.tokenizer.encode("def add(a, b):\n    return")
    assert engine.tokenizer.encode("def add(a, b):\n    return") == prompt
    params = GenerationParams(12, engine.tokenizer.stop_token_ids)
    streamed: list[str] = []
    hosted_generation = engine.generate(
        prompt, params, CancelToken(), on_text=lambda text: streamed.append(text) is not None
    )
    local = here.generate(prompt, params, CancelToken())
    assert hosted_generation.token_ids == local.token_ids
    assert hosted_generation.text == local.text
    assert hosted_generation.finish_reason == local.finish_reason
    assert streamed and streamed[-1] == local.text[: len(streamed[-1])]
    # The host kept the prefix: asking again reuses it, as one process would.
    again = engine.generate(prompt, params, CancelToken())
    assert again.cached_tokens > 0 and again.token_ids == local.token_ids


def test_verdicts_and_cancels_reach_the_generation(
    babbling_model: Path, cache_root: Path, start_host: Callable[..., ModelHost]
) -> None:
    serve = arguments(babbling_model, cache_root)
    engine = hosted(start_host(serve), serve)
    prompt = engine.tokenizer.encode("def babble():")
    params = GenerationParams(200, frozenset())
    seen: list[str] = []

    def third_token_ends_it(text: str) -> bool:
        seen.append(text)
        return len(seen) == 3

    stopped = engine.generate(prompt, params, CancelToken(), on_text=third_token_ends_it)
    assert stopped.finish_reason == "callback"
    assert len(stopped.token_ids) == 3

    cancel = CancelToken()
    count = 0

    def cancel_after_five(text: str) -> bool:
        nonlocal count
        count += 1
        if count == 5:
            threading.Thread(target=cancel.cancel).start()
        return False

    cancelled = engine.generate(prompt, params, cancel, on_text=cancel_after_five)
    assert cancelled.finish_reason == "cancelled"
    assert 5 <= len(cancelled.token_ids) < 200

    before = CancelToken()
    before.cancel()
    assert engine.generate(prompt, params, before).finish_reason == "cancelled"

    def raises(text: str) -> bool:
        raise ValueError("the server's own check failed")

    with pytest.raises(ValueError, match="own check"):
        engine.generate(prompt, params, CancelToken(), on_text=raises)
    # The host was told to stop and serves on.
    assert engine.generate(prompt, GenerationParams(2, frozenset()), CancelToken()).token_ids


def test_the_host_reports_its_memory(
    tiny_model: Path, cache_root: Path, start_host: Callable[..., ModelHost]
) -> None:
    serve = arguments(tiny_model, cache_root)
    host = start_host(serve)
    usage = hosted(host, serve).memory_usage()
    assert usage["hostProcess"]["pid"] == host.pid
    assert usage["hostProcess"]["rssBytes"] > 0
    assert usage["weightsBytes"] > 0
    assert usage["prefixCache"]["entries"] == 0
    assert usage["backend"] == "OnnxEngine"


def test_other_settings_load_in_the_server_and_the_host_ends(
    tiny_model: Path, babbling_model: Path, cache_root: Path, start_host: Callable[..., ModelHost]
) -> None:
    host = start_host(arguments(babbling_model, cache_root))
    loaded_here: list[Any] = []

    def here(settings: Any, on_progress: ProgressCallback | None) -> Engine:
        loaded_here.append(settings)
        return OnnxEngine.from_model_dir(Path(settings.model), cache_root=cache_root)

    wanted = serving_settings(arguments(tiny_model, cache_root), FP32)
    engine = HostingLoader(host, here)(wanted.engine, None)
    assert isinstance(engine, OnnxEngine) and loaded_here == [wanted.engine]
    assert wait_until(lambda: host.gone), "the unused host did not end"


def test_a_host_declines_models_onnx_does_not_run(
    tiny_model: Path, cache_root: Path, start_host: Callable[..., ModelHost]
) -> None:
    serve = ["--model", str(tiny_model), "--backend", "transformers"]
    host = start_host(serve)
    marker = object()
    engine = HostingLoader(host, lambda settings, progress: marker)(  # type: ignore[arg-type,return-value]
        serving_settings(serve, None).engine, None
    )
    assert engine is marker
    assert wait_until(lambda: host.gone)


def test_a_host_that_dies_fails_its_request_then_the_model_loads_in_the_server(
    tiny_model: Path, cache_root: Path, start_host: Callable[..., ModelHost]
) -> None:
    serve = arguments(tiny_model, cache_root)
    host = start_host(serve)
    engine = hosted(host, serve)
    engine.when_gone(
        lambda: OnnxEngine.from_model_dir(tiny_model, cache_root=cache_root, weights="fp32")
    )
    prompt = engine.tokenizer.encode("def add(a, b):")
    params = GenerationParams(4, frozenset())
    first = engine.generate(prompt, params, CancelToken())

    def killed_midway(text: str) -> bool:  # as the kernel's OOM killer would
        os.kill(host.pid, signal.SIGKILL)
        return False

    with pytest.raises(GenerationError, match="model process ended"):
        engine.generate(prompt, params, CancelToken(), on_text=killed_midway)
    assert wait_until(lambda: host.gone)
    assert engine.generate(prompt, params, CancelToken()).token_ids == first.token_ids


class _IdleHost:
    """A host that is never asked for anything but to close."""

    gone = False

    def close(self) -> None:
        pass


def test_a_hosted_engine_has_nothing_to_connect_to() -> None:
    info = {"name": "tiny", "device": "cpu", "dtype": "float32", "context_length": 64}
    engine = HostedEngine(_IdleHost(), info, object())  # type: ignore[arg-type]
    assert engine.connect() is None, "the host runs a local (ONNX) model"


def test_the_first_message_is_read_whole_and_only_it() -> None:
    body = b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":'
    body += b'{"initializationOptions":{"a":1}}}'
    first = b"Content-Length: %d\r\nContent-Type: x\r\n\r\n" % len(body) + body
    following = b"Content-Length: 2\r\n\r\n{}"
    read, write = os.pipe()
    os.write(write, first + following)
    with os.fdopen(read, "rb") as stream:
        assert read_first_message(stream, 1.0) == (first, body)
        assert stream.read(len(following)) == following
    os.close(write)
    assert initialization_options(body) == ({"a": 1},)
    assert initialization_options(b'{"method": "initialized"}') is None
    assert initialization_options(b"not json") is None


def test_nothing_is_read_from_a_silent_editor() -> None:
    read, write = os.pipe()
    with os.fdopen(read, "rb") as stream:
        assert read_first_message(stream, 0.05) is None
    os.close(write)


async def test_the_transport_reads_what_was_read_ahead_first() -> None:
    reader = StdinReader(io.BytesIO(b"{}more"), already_read=b"Header: 1\r\n\r\n{")
    try:
        assert await reader.readline() == b"Header: 1\r\n"
        assert await reader.readline() == b"\r\n"
        assert await reader.readexactly(3) == b"{{}"
        assert await reader.readexactly(4) == b"more"
    finally:
        reader.close()


def test_a_host_starts_only_for_an_editor_on_stdio_with_a_second_core(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"")))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert hosts_model([])
    assert hosts_model(["--model", "m"])
    assert not hosts_model(["--tcp"])
    assert not hosts_model(["--help"])
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert not hosts_model([])


def test_settings_the_cli_refuses_start_no_host_and_print_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert launch_settings(["--no-such-flag"], None) is None
    assert capsys.readouterr().err == "", "the CLI prints the usage once, later"
    # Options the server would refuse are left out, as it leaves them out.
    kept = launch_settings(["--max-new-tokens", "7"], {"maxNewTokens": "many"})
    assert kept is not None and kept.completion.max_new_tokens == 7
    assert launch_settings([], {"maxNewTokens": 9}).completion.max_new_tokens == 9  # type: ignore[union-attr]


def test_the_server_learns_what_the_host_read_of_the_tokenizer(
    tiny_model: Path, cache_root: Path, start_host: Callable[..., ModelHost]
) -> None:
    serve = arguments(tiny_model, cache_root)
    engine = hosted(start_host(serve), serve)
    told = engine.tokenizer._max_token_chars  # type: ignore[attr-defined]
    here = OnnxEngine.from_model_dir(tiny_model, cache_root=cache_root, weights="fp32")
    assert told is not None, "the server would list the vocabulary on its first request"
    assert told == here.tokenizer.max_token_chars  # type: ignore[attr-defined]
