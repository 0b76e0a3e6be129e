"""The tokenizer read from its files (no transformers) gives transformers' ids, exactly.

Checked on a Code Llama - Instruct-shaped tokenizer (SentencePiece-style BPE,
BOS added, the Llama 2 [INST] chat template) and a byte-level BPE one with a
ChatML template; the default model's tokenizer is checked in
`test_default_model.py`. Also: the ONNX Runtime and remote backends load
without importing torch or transformers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
import pytest
from transformers import AutoTokenizer

from code_llama_ls.engine.hf_tokenizer import TransformersTokenizer, load_hf_tokenizer
from code_llama_ls.engine.tokenizer_files import (
    DECODING_FILE,
    FileTokenizer,
    context_length_from,
    load_tokenizer,
    local_context_length,
    write_decoding_file,
)
from code_llama_ls.tokens.tokenizer import decode_continuation
from tests.tiny_models import (
    CODE_LLAMA_INSTRUCT_TEMPLATE,
    build_byte_level_tokenizer,
    build_code_llama_tokenizer,
)

CHATML_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# jinja2 features transformers' environment has: loop controls, its tojson
# (no HTML escaping), the {% generation %} tag, whitespace control.
FEATURES_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}\n"
    "  {% if message['role'] == 'skip' %}{% continue %}{% endif %}\n"
    "  {% generation %}{{ message['role'] | upper }}: {{ message | tojson }}{% endgeneration %}\n"
    "{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)

TEXTS = [
    "def add(a, b):\n    return a + b\n",
    "  leading spaces\tand\ttabs\r\nand CRLF",
    "unicode: héllo wörld ☺ 你好 🐍",
    "specials as text: <s> </s> <|im_end|> ▁<PRE>",
    "",
    " ",
    "\n\n\n",
]

CONVERSATIONS: list[list[dict[str, str]]] = [
    [{"role": "user", "content": "Explain `x += 1`."}],
    [
        {"role": "system", "content": "You explain code."},
        {"role": "user", "content": "What does this do?\n```py\nprint('<s>')\n```"},
    ],
    [
        {"role": "user", "content": "  padded  "},
        {"role": "assistant", "content": "An answer."},
        {"role": "user", "content": "Thanks: é ☺ 🐍 </s>"},
    ],
]


def _hf(directory: Path) -> Any:
    return AutoTokenizer.from_pretrained(str(directory), local_files_only=True)


def _hf_chat(hf: Any, messages: Sequence[Mapping[str, str]]) -> list[int]:
    ids = hf.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=True)
    return [int(i) for i in ids]


@pytest.fixture(scope="module")
def instruct_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_code_llama_tokenizer(
        tmp_path_factory.mktemp("instruct"), chat_template=CODE_LLAMA_INSTRUCT_TEMPLATE
    )


@pytest.fixture(scope="module")
def chatml_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = build_byte_level_tokenizer(tmp_path_factory.mktemp("chatml"))
    hf = _hf(directory)
    hf.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    hf.chat_template = CHATML_TEMPLATE
    hf.save_pretrained(str(directory))
    return directory


@pytest.mark.parametrize("fixture", ["instruct_dir", "chatml_dir"])
def test_ids_bos_stops_and_size_equal_transformers(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    directory: Path = request.getfixturevalue(fixture)
    mine = FileTokenizer(directory)
    theirs = load_hf_tokenizer(directory)
    for text in TEXTS:
        assert mine.encode(text) == theirs.encode(text), text
        ids = theirs.encode(text)
        assert mine.decode(ids) == theirs.decode(ids)
    assert mine.bos_token_id == theirs.bos_token_id
    assert mine.stop_token_ids == theirs.stop_token_ids
    assert len(mine) == len(theirs)
    assert mine.max_token_chars == theirs.max_token_chars
    assert mine.token_to_id("<s>") == theirs.token_to_id("<s>")
    assert mine.token_to_id("no such token") is None


@pytest.mark.parametrize("fixture", ["instruct_dir", "chatml_dir"])
def test_the_decoding_file_decodes_as_the_whole_tokenizer(
    fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    directory = tmp_path / "model"
    shutil.copytree(request.getfixturevalue(fixture), directory)
    whole = FileTokenizer(directory)
    assert FileTokenizer(directory, decoding=True).directory == directory  # no file yet
    assert write_decoding_file(directory)
    assert not write_decoding_file(directory), "written once"
    data = json.loads((directory / DECODING_FILE).read_text(encoding="utf-8"))
    assert data["model"]["merges"] == []
    decoding = FileTokenizer(directory, decoding=True)
    for text in TEXTS:
        ids = whole.encode(text)
        assert decoding.decode(ids) == whole.decode(ids), text
        assert decode_continuation(decoding, ids) == decode_continuation(whole, ids), text
        # Without merges text encodes to other ids, which decode to it all the same.
        assert decoding.decode(decoding.encode(text)) == whole.decode(ids), text
    assert decoding.max_token_chars == whole.max_token_chars
    assert decoding.stop_token_ids == whole.stop_token_ids
    assert decoding.bos_token_id == whole.bos_token_id
    assert len(decoding) == len(whole)
    assert FileTokenizer(directory).encode(TEXTS[0]) == whole.encode(TEXTS[0]), "prompts: merges"


def test_no_decoding_file_where_it_would_not_help_or_cannot_be_written(tmp_path: Path) -> None:
    unigram = tmp_path / "unigram"
    unigram.mkdir()
    (unigram / "tokenizer.json").write_text(json.dumps({"model": {"type": "Unigram"}}))
    assert not write_decoding_file(unigram)
    assert not write_decoding_file(tmp_path / "missing")
    assert not (unigram / DECODING_FILE).exists()
    assert not list(unigram.glob(".*.tmp")), "no temporary left behind"


def test_code_llama_instruct_chat_ids_equal_transformers(instruct_dir: Path) -> None:
    mine, hf = FileTokenizer(instruct_dir), _hf(instruct_dir)
    assert mine.bos_token_id == 1
    for conversation in CONVERSATIONS:
        ids = mine.apply_chat_template(conversation)
        assert ids == _hf_chat(hf, conversation)
        assert ids is not None and ids[0] == 1  # the template writes BOS itself


def test_chatml_chat_ids_equal_transformers(chatml_dir: Path) -> None:
    mine, hf = FileTokenizer(chatml_dir), _hf(chatml_dir)
    end_of_turn = mine.token_to_id("<|im_end|>")
    assert end_of_turn is not None and end_of_turn in mine.stop_token_ids
    for conversation in CONVERSATIONS:
        ids = mine.apply_chat_template(conversation)
        assert ids == _hf_chat(hf, conversation)
        assert ids is not None and ids.count(end_of_turn) == len(conversation) + (
            conversation[0]["role"] != "system"
        )


def test_template_features_render_as_in_transformers(tmp_path: Path) -> None:
    directory = build_code_llama_tokenizer(tmp_path, chat_template=FEATURES_TEMPLATE)
    mine, hf = FileTokenizer(directory), _hf(directory)
    conversation = [
        {"role": "user", "content": "a <b> & 'c'"},
        {"role": "skip", "content": "never shown"},
        {"role": "assistant", "content": "é"},
    ]
    text = mine.render_chat(conversation)
    assert "never shown" not in text and "\"a <b> & 'c'\"" in text and '"é"' in text
    assert text == hf.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
    assert mine.apply_chat_template(conversation) == _hf_chat(hf, conversation)


def test_a_template_that_refuses_raises_as_transformers_does(instruct_dir: Path) -> None:
    wrong_order = [{"role": "assistant", "content": "first"}]
    with pytest.raises(jinja2.TemplateError, match="alternate"):
        FileTokenizer(instruct_dir).apply_chat_template(wrong_order)
    with pytest.raises(jinja2.TemplateError, match="alternate"):
        _hf(instruct_dir).apply_chat_template(wrong_order, add_generation_prompt=True)


def test_no_template_means_no_chat(tmp_path: Path) -> None:
    directory = build_code_llama_tokenizer(tmp_path)
    assert FileTokenizer(directory).apply_chat_template([{"role": "user", "content": "x"}]) is None


def test_a_template_file_wins_over_the_config(instruct_dir: Path, tmp_path: Path) -> None:
    directory = tmp_path / "tok"
    directory.mkdir()
    for path in instruct_dir.iterdir():
        (directory / path.name).write_bytes(path.read_bytes())
    (directory / "chat_template.jinja").write_text("{{ 'FILE' }}", encoding="utf-8")
    assert FileTokenizer(directory).render_chat([]) == "FILE"
    assert _hf(directory).chat_template == "{{ 'FILE' }}"


def test_a_broken_tokenizer_file_is_a_clear_error(tmp_path: Path) -> None:
    from code_llama_ls.errors import ModelLoadError

    (tmp_path / "tokenizer.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelLoadError, match="Could not load the tokenizer"):
        FileTokenizer(tmp_path)


def test_load_tokenizer_needs_transformers_only_without_tokenizer_json(
    instruct_dir: Path, tmp_path: Path
) -> None:
    assert isinstance(load_tokenizer(instruct_dir), FileTokenizer)
    # Only a SentencePiece-era layout (no tokenizer.json) goes through transformers.
    slow = tmp_path / "slow"
    slow.mkdir()
    from code_llama_ls.errors import ModelLoadError

    with pytest.raises(ModelLoadError):
        load_tokenizer(slow)
    assert isinstance(load_hf_tokenizer(instruct_dir), TransformersTokenizer)


def test_context_length_comes_from_the_config_then_the_tokenizer(instruct_dir: Path) -> None:
    tok = FileTokenizer(instruct_dir)
    assert context_length_from({"max_position_embeddings": 16384}, tok) == 16384
    config = json.loads((instruct_dir / "tokenizer_config.json").read_text())
    expected = config.get("model_max_length")
    fallback = expected if isinstance(expected, int) and expected < 1_000_000 else 2048
    assert context_length_from({}, tok) == fallback
    assert local_context_length(instruct_dir, tok) == fallback  # no config.json there


LEAN_LOAD = """
import sys
from pathlib import Path
from code_llama_ls.engine.base import GenerationParams
from code_llama_ls.cancel import CancelToken
from code_llama_ls.engine.onnx_engine import OnnxEngine
from code_llama_ls.engine.remote_engine import RemoteSettings, load_remote_engine
from code_llama_ls.engine.remote_http import HttpSettings

model, cache = Path(sys.argv[1]), Path(sys.argv[2])
engine = OnnxEngine.from_model_dir(model, cache_root=cache, weights="fp32", threads=1)
out = engine.generate(
    engine.tokenizer.encode("def add(a, b):"), GenerationParams(3, frozenset()), CancelToken()
)
remote = load_remote_engine(model, "tiny", RemoteSettings(HttpSettings("http://127.0.0.1:9")))
assert remote.tokenizer.encode("x") == engine.tokenizer.encode("x")
heavy = sorted(m for m in ("torch", "transformers", "optimum") if m in sys.modules)
print("heavy:", heavy, len(out.token_ids))
"""


def test_onnx_and_remote_backends_import_neither_torch_nor_transformers(
    tiny_model: Path, tmp_path: Path
) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("optimum.exporters.onnx")
    from code_llama_ls.engine.onnx_engine import OnnxEngine

    OnnxEngine.from_model_dir(tiny_model, cache_root=tmp_path, weights="fp32", threads=1)
    done = subprocess.run(
        [sys.executable, "-c", LEAN_LOAD, str(tiny_model), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "heavy: [] 3" in done.stdout, done.stdout + done.stderr
