"""The FIM families other than Code Llama through the real server, on both local backends.

Each family's tiny random-init model (`tests/fim_families.py`: StarCoder2,
DeepSeek-Coder, Qwen2.5-Coder and CodeGemma look-alikes) is served over stdio
by the transformers (torch) and the onnx (ONNX Runtime, exported once into a
cache directory under pytest's tmp dir) backends. A random model writes
gibberish, so what is checked is the prompt, not the answer: the status names
the family, a completion request is answered with the family's FIM prompt, and
the prompt inspector shows the family's tokens, its ids decoding to that text.
With a workspace open, the families with a repository format frame the other
file in it, before the FIM tokens.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.e2e.conftest import dump
from tests.e2e.lsp_client import (
    as_json,
    inline_text,
    open_document,
    plain,
    record_statuses,
    start_client,
)
from tests.fim_families import build_family_model, build_family_tokenizer
from tests.scenarios import ADD_FILE, ADD_URI, CURSOR, cursor_position, split_cursor


@dataclass(frozen=True)
class Family:
    """What the server must show of one family."""

    name: str
    """`FimFamily.name`, as the status' `prompt` starts with it."""
    prefix: str
    suffix: str
    middle: str
    bos: str = ""
    """The BOS text the tokenizer adds (in the ids, not in the inspector's text)."""
    repository_format: bool = True


FAMILIES: dict[str, Family] = {
    "starcoder": Family("StarCoder", "<fim_prefix>", "<fim_suffix>", "<fim_middle>"),
    "deepseek-coder": Family(
        "DeepSeek-Coder",
        "<｜fim▁begin｜>",
        "<｜fim▁hole｜>",
        "<｜fim▁end｜>",
        bos="<｜begin▁of▁sentence｜>",
        repository_format=False,
    ),
    "qwen-coder": Family("Qwen2.5-Coder", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
    "codegemma": Family(
        "CodeGemma", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", bos="<bos>"
    ),
}
BACKENDS = ("transformers", "onnx")
ENGINES = {"transformers": "TransformersEngine", "onnx": "OnnxEngine"}
"""The engine class each backend runs (`codeLlama/memory`'s `backend`)."""


FAMILY_PARAMS = list(FAMILIES)
SETTINGS: dict[str, object] = {
    "debounceMs": 0,
    "speculate": False,  # no suggestion written ahead: one model call per request
    "maxNewTokens": 8,  # gibberish either way; keep it short
}

HELPERS = (
    "def salutation(name, *, formal=False):\n"
    '    """The greeting for `name`: "Good day" when formal, else "Hi"."""\n'
    '    word = "Good day" if formal else "Hi"\n'
    '    return f"{word}, {name}!"\n'
)
APP_FILE = (
    "from helpers import salutation\n\n\n"
    "def welcome(user):\n"
    "    print(salutation(user.name, formal=True))\n"
    f"    return {CURSOR}\n"
)


@pytest.fixture(scope="session")
def family_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """The family's tiny model, built on first use (its directory is named for the family)."""
    built: dict[str, Path] = {}

    def model(family: str) -> Path:
        if family not in built:
            root = tmp_path_factory.mktemp(f"fim-{family}")
            tokenizer = build_family_tokenizer(family, root / "tokenizer")
            built[family] = build_family_model(family, root / family, tokenizer)
        return built[family]

    return model


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The servers' cache directory: each family's model is exported to ONNX once."""
    return tmp_path_factory.mktemp("onnx-cache")


async def _started(
    model: Path, options: dict[str, object], workspace: Path | None = None
) -> tuple[LanguageClient, list[dict[str, Any]]]:
    statuses: list[dict[str, Any]] = []
    client, _ = await start_client(
        "visual-studio-code",
        model,
        options,
        on_start=lambda c: record_statuses(c, statuses),
        workspace=workspace,
    )
    return client, statuses


async def _loaded(statuses: list[dict[str, Any]], timeout: float = 120.0) -> dict[str, Any]:
    """The first status with the model loaded ("ready" with a device); an error fails."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        for status in statuses:
            if status["state"] == "error":
                raise AssertionError(f"the model did not load: {dump(statuses)}")
            if status["state"] == "ready" and status["device"] is not None:
                return status
        await asyncio.sleep(0.02)
    raise AssertionError(f"no ready status in {timeout} s: {dump(statuses)}")


async def _show_prompt(
    client: LanguageClient, uri: str, position: types.Position
) -> dict[str, Any]:
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="codeLlama.showPrompt",
            arguments=[
                {"uri": uri, "position": {"line": position.line, "character": position.character}}
            ],
        )
    )
    report = as_json(result)
    assert isinstance(report, dict), result
    return report


def _decoded(model: Path, ids: list[int]) -> str:
    """The prompt's ids as the model's own tokenizer (tokenizer.json) reads them back."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model / "tokenizer.json"))
    return str(tokenizer.decode(ids, skip_special_tokens=False))


def _completion_lines(client: LanguageClient, uri: str, version: int) -> list[str]:
    """The pipeline's log lines for completions of `uri` at `version`."""
    return [
        m.message
        for m in client.log_messages
        if re.match(
            rf"code_llama_ls\.pipeline\.complete: completion \S+ {re.escape(uri)} v{version}: ",
            m.message,
        )
    ]


async def _logged(client: LanguageClient, uri: str, version: int) -> list[str]:
    """The completion lines, once the log has them (a log message may trail the answer)."""
    for _ in range(250):
        lines = _completion_lines(client, uri, version)
        if lines:
            return lines
        await asyncio.sleep(0.02)
    raise AssertionError(f"no completion line: {[m.message for m in client.log_messages]}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("family", FAMILY_PARAMS)
async def test_the_family_loads_completes_and_shows_its_fim_prompt(
    family: str,
    backend: str,
    family_model: Callable[[str], Path],
    onnx_cache: Path,
) -> None:
    spec = FAMILIES[family]
    model = family_model(family)
    options = {**SETTINGS, "backend": backend, "cacheDir": str(onnx_cache)}
    client, statuses = await _started(model, options)
    try:
        ready = await _loaded(statuses)
        files = "its repository format" if spec.repository_format else "comment headers"
        assert ready["prompt"] == f"{spec.name} FIM, PSM, other files as {files}", ready
        assert ready["model"] == family
        assert ready["device"] == "cpu"

        prefix, suffix = split_cursor(ADD_FILE)
        open_document(client, ADD_URI, "python", prefix + suffix)
        cursor = cursor_position(ADD_FILE)
        texts = await inline_text(client, ADD_URI, cursor)
        assert isinstance(texts, list)
        (line,) = await _logged(client, ADD_URI, 1)

        report = await _show_prompt(client, ADD_URI, cursor)
        assert report["family"] == family, dump(report)
        assert report["format"] == "fim-psm"
        documented = f"{spec.prefix}{prefix}{spec.suffix}{suffix}{spec.middle}"
        # The ids are the family's own tokens, in its documented PSM order.
        assert _decoded(model, report["ids"]) == spec.bos + documented
        # The request logged was answered with that very prompt.
        assert f": single-line (end of line), {report['tokens']} prompt tokens (0 context" in line

        status = plain(await client.protocol.send_request_async("codeLlama/getStatus", None))
        stats = plain(status["stats"])
        assert (stats["completions"], stats["modelCalls"]) == (1, 1), stats
        assert stats["promptTokens"] == report["tokens"]
        memory = as_json(await client.protocol.send_request_async("codeLlama/memory", None))
        (engine,) = memory["engines"]
        assert engine["backend"] == ENGINES[backend], engine
        if backend == "onnx":
            assert "hostProcess" in engine, "the ONNX model runs in the model host"
            assert list(onnx_cache.rglob("*.onnx")), "exported under the cache directory"

        # The inspector's text spells the family's tokens as the family does.
        assert report["text"] == documented
    finally:
        await client.shutdown_session()
        await client.stop()


def _expected_context(family: str, project: str) -> str:
    """The context before the FIM tokens, in the family's repository format."""
    if family == "qwen-coder":
        # QwenLM/Qwen2.5-Coder: examples/Qwen2.5-Coder-repolevel-fim.py
        return f"<|repo_name|>{project}\n<|file_sep|>helpers.py\n{HELPERS}\n<|file_sep|>app.py\n"
    if family == "starcoder":
        # StarCoder2 paper, section 5.1: the cursor's file's path is left out.
        return f"<repo_name>{project}<file_sep>helpers.py\n{HELPERS}<file_sep>"
    raise ValueError(family)


@pytest.mark.parametrize("family", ["qwen-coder", "starcoder"])
async def test_the_workspace_is_framed_in_the_familys_repository_format(
    family: str, family_model: Callable[[str], Path], tmp_path: Path
) -> None:
    spec = FAMILIES[family]
    project = tmp_path / "greeter"
    project.mkdir()
    (project / "helpers.py").write_text(HELPERS)
    app = project / "app.py"
    prefix, suffix = split_cursor(APP_FILE)
    app.write_text(prefix + suffix)
    client, statuses = await _started(
        family_model(family), {**SETTINGS, "backend": "transformers"}, workspace=project
    )
    try:
        await _loaded(statuses)
        open_document(client, app.as_uri(), "python", prefix + suffix)
        cursor = cursor_position(APP_FILE)
        report = await _prompt_with(client, app.as_uri(), cursor, "salutation")

        part = next(p for p in report["parts"] if p.get("symbol") == "salutation")
        assert (part["kind"], part["path"]) == ("imported definition", "helpers.py"), dump(report)
        text = report["text"]
        context = _expected_context(family, project.name)
        assert text == f"{context}{spec.prefix}{prefix}{spec.suffix}{suffix}{spec.middle}"
        # The FIM tokens come after the context, each once.
        assert text.index(HELPERS) < text.index(spec.prefix) < text.index(spec.suffix)
        assert all(text.count(token) == 1 for token in (spec.prefix, spec.suffix, spec.middle))
        assert _decoded(family_model(family), report["ids"]) == text
    finally:
        await client.shutdown_session()
        await client.stop()


async def _prompt_with(
    client: LanguageClient, uri: str, cursor: types.Position, symbol: str
) -> dict[str, Any]:
    """The prompt report once it shows `symbol`'s definition (indexing runs in the background)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60.0
    while True:
        report = await _show_prompt(client, uri, cursor)
        if any(part.get("symbol") == symbol for part in report["parts"]):
            return report
        if loop.time() > deadline:
            raise AssertionError(f"no {symbol} in the prompt: {dump(report)}")
        await asyncio.sleep(0.2)
