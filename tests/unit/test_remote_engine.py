"""The remote backend against servers answering as vLLM and TGI document their APIs.

llama.cpp's real server is exercised end to end in tests/e2e; vLLM and TGI
need a GPU, so their request and answer shapes are checked here against a
scripted server (`tests/scripted_http.py`) with the tiny Code Llama
tokenizer on the client side.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from code_llama_ls.cancel import CancelToken
from code_llama_ls.config import RemoteServer, Settings
from code_llama_ls.engine.base import GenerationParams, ServedModel
from code_llama_ls.engine.remote_api import ServerKind
from code_llama_ls.engine.remote_engine import EngineMismatchError, RemoteEngine, RemoteSettings
from code_llama_ls.engine.remote_http import EngineHttpError, HttpSettings
from code_llama_ls.engine.tokenizer_files import load_tokenizer
from code_llama_ls.errors import ConfigError, EngineUnreachableError
from code_llama_ls.tokens.tokenizer import TokenizerLike
from tests.llama_server import free_port
from tests.scripted_http import Reply, Request, ScriptedServer, as_tgi, as_vllm, openai_chunks

MODEL = "codellama/CodeLlama-7b-hf"


@pytest.fixture(scope="module")
def tokenizer(tiny_model: Path) -> TokenizerLike:
    return load_tokenizer(tiny_model)


def engine_for(
    url: str,
    tokenizer: TokenizerLike,
    *,
    token: str | None = None,
    served_model: str | None = None,
) -> RemoteEngine:
    http = HttpSettings(url, token=token, retries=2, backoff_s=0.01)
    remote = RemoteSettings(http, served_model=served_model)
    return RemoteEngine(remote, tokenizer, name="tiny", local_context_length=4096)


def collect(seen: list[str]) -> Callable[[str], bool]:
    def on_text(text: str) -> bool:
        seen.append(text)
        return False

    return on_text


def params(tokenizer: TokenizerLike, max_new_tokens: int = 16) -> GenerationParams:
    return GenerationParams(max_new_tokens, tokenizer.stop_token_ids)


def test_vllm_gets_token_ids_stop_ids_and_its_context_length(
    tokenizer: TokenizerLike,
) -> None:
    with ScriptedServer() as server:
        as_vllm(server, MODEL, max_model_len=2048)
        server.route("POST", "/v1/completions", lambda _: Reply(events=openai_chunks(["a", "b"])))
        engine = engine_for(server.url, tokenizer)
        info = engine.connect()
        prompt = [1, *tokenizer.encode("def f():")]
        seen: list[str] = []
        result = engine.generate(prompt, params(tokenizer), CancelToken(), collect(seen))

    assert info.kind is ServerKind.VLLM
    assert engine.context_length == 2048 and engine.name == MODEL
    body = server.requests[-1].body
    assert body["prompt"] == prompt, "vLLM takes the prompt builder's ids as they are"
    assert body["model"] == MODEL and body["temperature"] == 0.0 and body["stream"] is True
    assert body["stop_token_ids"] == sorted(tokenizer.stop_token_ids)
    assert result.text == "ab" and result.finish_reason == "length"
    assert seen == ["a", "ab"], "text is streamed as it arrives"


def test_connect_returns_the_served_model(tokenizer: TokenizerLike) -> None:
    with ScriptedServer() as server:
        as_vllm(server, MODEL, max_model_len=2048)
        engine = engine_for(server.url, tokenizer)
        assert engine.server is None, "nothing is asked before connect"
        served = engine.connect()

    assert isinstance(served, ServedModel)
    assert (served.model, served.context_length) == (MODEL, 2048)
    assert engine.server == served
    assert served.describe() == f"vllm serving {MODEL}, 2048 tokens of context"


def test_tgi_gets_text_that_its_tokenizer_reads_back_and_stops_at_client_stop_ids(
    tokenizer: TokenizerLike,
) -> None:
    eos = min(tokenizer.stop_token_ids)
    events = [
        {"token": {"id": 5, "text": "x = ", "special": False}},
        {"token": {"id": 6, "text": "1", "special": False}},
        {"token": {"id": eos, "text": "</s>", "special": True}},
        {"token": {"id": 7, "text": "never", "special": False}},
    ]
    with ScriptedServer() as server:
        as_tgi(server, MODEL, max_total_tokens=1024)
        server.route("POST", "/generate_stream", lambda _: Reply(events=events))
        engine = engine_for(server.url, tokenizer)
        info = engine.connect()
        prompt = [1, *tokenizer.encode("def f():\n    ")]
        result = engine.generate(prompt, params(tokenizer), CancelToken())

    assert info.kind is ServerKind.TGI and engine.context_length == 1024
    body = server.requests[-1].body
    assert body["inputs"] == tokenizer.decode(prompt[1:]), "BOS is the server's to add"
    assert body["parameters"]["do_sample"] is False
    assert result.text == "x = 1" and result.finish_reason == "stop"


def test_a_server_tokenizing_differently_is_a_clear_mismatch(
    tokenizer: TokenizerLike,
) -> None:
    with ScriptedServer() as server:
        as_vllm(server, MODEL, max_model_len=2048)
        server.answer("POST", "/tokenize", {"tokens": [1, 2, 3]})
        with pytest.raises(EngineMismatchError, match="tokenizer differs"):
            engine_for(server.url, tokenizer).connect()
        server.answer("POST", "/tokenize", {"tokens": engine_probe_ids(tokenizer)})
        engine_for(server.url, tokenizer).connect()
        with pytest.raises(EngineMismatchError, match="not 'other/model'"):
            engine_for(server.url, tokenizer, served_model="other/model").connect()


def engine_probe_ids(tokenizer: TokenizerLike) -> list[int]:
    from code_llama_ls.engine.remote_engine import PROBE_CODE

    bos = tokenizer.bos_token_id
    return ([] if bos is None else [bos]) + tokenizer.encode(PROBE_CODE)


def test_busy_server_is_retried_with_backoff_then_reported(
    tokenizer: TokenizerLike,
) -> None:
    answers = iter([503, 429, 200])

    def busy_then_ok(_: Request) -> Reply:
        status = next(answers)
        if status != 200:
            return Reply(status, {"error": {"message": "busy"}}, headers={"Retry-After": "0"})
        return Reply(events=openai_chunks(["ok"]))

    with ScriptedServer() as server:
        as_vllm(server, MODEL, 2048)
        server.route("POST", "/v1/completions", busy_then_ok)
        engine = engine_for(server.url, tokenizer)
        assert engine.generate([1, 5], params(tokenizer), CancelToken()).text == "ok"

        server.answer("POST", "/v1/completions", {"error": {"message": "overloaded"}}, 503)
        with pytest.raises(EngineHttpError, match="HTTP 503: overloaded"):
            engine.generate([1, 5], params(tokenizer), CancelToken())
        posts = [r for r in server.requests if r.path == "/v1/completions"]
        assert len(posts) == 3 + 3, "two retries after the first answer, then the error"


def test_token_is_sent_as_bearer_and_never_logged(
    tokenizer: TokenizerLike, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "s3cret-token-value"
    caplog.set_level(logging.DEBUG)
    with ScriptedServer() as server:
        as_vllm(server, MODEL, 2048)
        server.answer("POST", "/v1/completions", {"error": "bad request"}, 400)
        engine = engine_for(server.url, tokenizer, token=secret)
        with pytest.raises(EngineHttpError) as raised:
            engine.generate([1, 5], params(tokenizer), CancelToken())
    assert all(r.headers.get("Authorization") == f"Bearer {secret}" for r in server.requests)
    assert secret not in caplog.text and secret not in str(raised.value)
    assert secret not in repr(engine.settings)
    settings = Settings().with_values({"remoteToken": secret}, "test")
    assert secret not in repr(settings) and settings.engine.remote.auth_token == secret


def test_token_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODE_LLAMA_LS_REMOTE_TOKEN", "from-env")
    assert Settings().engine.remote.auth_token == "from-env"
    assert RemoteServer(token="explicit").auth_token == "explicit"


@pytest.mark.timeout(15)
def test_cancel_interrupts_a_blocked_read(tokenizer: TokenizerLike) -> None:
    # One event, then 20 s of silence: only shutting the socket down ends the
    # wait before the test's timeout.
    slow = Reply(events=openai_chunks(["first", "second"]), event_pause_s=20)
    with ScriptedServer() as server:
        as_vllm(server, MODEL, 2048)
        server.route("POST", "/v1/completions", lambda _: slow)
        token = CancelToken()

        def cancel_soon(text: str) -> bool:
            threading.Timer(0.2, token.cancel).start()
            return False

        engine = engine_for(server.url, tokenizer)
        result = engine.generate([1, 5], params(tokenizer), token, cancel_soon)
    assert result.finish_reason == "cancelled" and result.text == "first"


def test_cancel_closes_the_connection_so_the_server_stops(
    tokenizer: TokenizerLike,
) -> None:
    steady = Reply(events=openai_chunks(["x"] * 200), event_pause_s=0.05)
    with ScriptedServer() as server:
        as_vllm(server, MODEL, 2048)
        server.route("POST", "/v1/completions", lambda _: steady)
        token = CancelToken()

        def cancel_at_once(text: str) -> bool:
            token.cancel()
            return False

        result = engine_for(server.url, tokenizer).generate(
            [1, 5], params(tokenizer, 200), token, cancel_at_once
        )
        assert result.finish_reason == "cancelled" and result.text == "x"
        assert server.stream_closed_early.wait(10), "the server saw the client go"


def test_unreachable_server_fails_fast_then_is_asked_again(
    tokenizer: TokenizerLike,
) -> None:
    engine = engine_for(f"http://127.0.0.1:{free_port()}", tokenizer)
    with pytest.raises(EngineUnreachableError, match="connection refused"):
        engine.generate([1, 5], params(tokenizer), CancelToken())
    with pytest.raises(EngineUnreachableError):  # within the retry pause: no network
        engine.generate([1, 5], params(tokenizer), CancelToken())


def test_too_long_prompt_says_which_setting_to_change(tokenizer: TokenizerLike) -> None:
    with ScriptedServer() as server:
        as_vllm(server, MODEL, 2048)
        server.answer(
            "POST",
            "/v1/completions",
            {"error": {"message": "This model's maximum context length is 2048 tokens"}},
            400,
        )
        with pytest.raises(Exception, match="contextTokens"):
            engine_for(server.url, tokenizer).generate([1, 5], params(tokenizer), CancelToken())


def test_tls_is_verified_by_default_and_a_ca_file_is_honoured(
    tokenizer: TokenizerLike, tmp_path: Path
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    with ScriptedServer(tls=(cert, key)) as server:
        as_vllm(server, MODEL, 2048)
        with pytest.raises(EngineUnreachableError, match="certificate verification failed"):
            engine_for(server.url, tokenizer).connect()
        http = HttpSettings(server.url, ca_file=str(cert))
        trusted = RemoteEngine(
            RemoteSettings(http), tokenizer, name="tiny", local_context_length=4096
        )
        assert trusted.connect().kind is ServerKind.VLLM


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"remoteUrl": "gpu-box:8000"}, "remoteUrl"),
        ({"remoteApi": "grpc"}, "remoteApi"),
        ({"remotePrompt": "bytes"}, "remotePrompt"),
        ({"remoteTimeoutMs": 0}, "remoteTimeoutMs"),
    ],
)
def test_remote_settings_are_validated(values: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        Settings().with_values(values, "test")
