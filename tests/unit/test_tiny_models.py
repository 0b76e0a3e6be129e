"""The test tokenizers mirror the real ones they stand in for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.tiny_models import (
    CODE_LLAMA_INSTRUCT_TEMPLATE,
    FIM_PIECES,
    TokenizerAdapter,
    build_code_llama_tokenizer,
)


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_code_llama_tokenizer(
        tmp_path_factory.mktemp("instruct-tokenizer"), chat_template=CODE_LLAMA_INSTRUCT_TEMPLATE
    )


def test_tokenizer_json_has_code_llamas_shape(tok_dir: Path) -> None:
    spec = json.loads((tok_dir / "tokenizer.json").read_text(encoding="utf-8"))
    assert spec["normalizer"]["normalizers"] == [
        {"type": "Prepend", "prepend": "▁"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
    ]
    assert spec["pre_tokenizer"] is None
    assert [d["type"] for d in spec["decoder"]["decoders"]] == [
        "Replace",
        "ByteFallback",
        "Fuse",
        "Strip",
    ]
    model = spec["model"]
    assert model["type"] == "BPE" and model["byte_fallback"] and model["fuse_unk"]
    vocab = model["vocab"]
    assert [vocab["<unk>"], vocab["<s>"], vocab["</s>"]] == [0, 1, 2]
    assert [vocab[f"<0x{b:02X}>"] for b in (0, 10, 255)] == [3, 13, 258]
    assert all(piece in vocab for piece in FIM_PIECES)
    assert "\n" not in vocab and "\t" not in vocab  # byte-fallback tokens, as in Llama


def test_loads_as_code_llama_fast_with_bos_and_fim(tok_dir: Path) -> None:
    tok = TokenizerAdapter.from_directory(tok_dir)
    assert type(tok.hf).__name__ == "CodeLlamaTokenizerFast"
    assert tok.bos_token_id == 1 and tok.stop_token_ids == frozenset({2})
    assert tok.hf.prefix_id == tok.token_to_id("▁<PRE>")
    assert tok.hf.eot_id == tok.token_to_id("▁<EOT>")
    assert tok.decode(tok.encode("  a\n\tb é😀")) == "  a\n\tb é😀"
    assert tok.apply_chat_template([{"role": "user", "content": "hi"}]) == [
        1,
        *tok.encode("[INST] hi [/INST]"),
    ]
