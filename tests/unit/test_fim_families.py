"""Golden tests of the FIM families other than Code Llama: StarCoder, DeepSeek-Coder, Qwen2.5-Coder
and CodeGemma.

Each family's prompt, as the prompt module builds it from ids, is checked
against an independent reference: the family's documented prompt string
(`<|fim_prefix|>` + prefix + `<|fim_suffix|>` + suffix + `<|fim_middle|>`,
DeepSeek's `<｜fim▁begin｜>`...), encoded as the family's README does it,
by `transformers.AutoTokenizer` with its special tokens parsed and its BOS
added where the tokenizer adds one. The tokenizers are look-alikes trained
locally (`tests/fim_families.py`); the server reads them with its own
`load_tokenizer`, as it reads a real model's.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from code_llama_ls.engine.tokenizer_files import load_tokenizer
from code_llama_ls.pipeline.fim import FimMode, FimTokens
from code_llama_ls.pipeline.prompt import (
    PromptFormat,
    build_completion_prompt,
    fim_ids,
    fit_local,
)
from code_llama_ls.tokens.tokenizer import TokenizerLike, adds_dummy_space, encode_infilling
from tests.fim_families import (
    FAMILY_KEYS,
    TOKENS,
    build_family_model,
    build_family_tokenizer,
)
from tests.tiny_models import _CORPUS, build_byte_level_tokenizer

BUDGET = 4096

DOCUMENTED: dict[str, tuple[str, str, str]] = {
    "starcoder": ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),
    "deepseek-coder": ("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"),
    "qwen-coder": ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
    "codegemma": ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
}
"""Each family's prefix, suffix and middle tokens, as its README writes its prompt."""
BOS_TEXT = {"deepseek-coder": "<｜begin▁of▁sentence｜>", "codegemma": "<bos>"}
"""The BOS the tokenizer adds in front of the README's string (none for the others)."""
FILE_TOKENS: dict[str, dict[str, str]] = {
    "starcoder": {"file_start": "<file_sep>", "repo_name": "<repo_name>"},
    "deepseek-coder": {},
    "qwen-coder": {"file_start": "<|file_sep|>", "repo_name": "<|repo_name|>"},
    "codegemma": {"file_end": "<|file_separator|>"},
}
DOCUMENTED_STOPS: dict[str, tuple[str, ...]] = {
    "starcoder": ("<file_sep>", "<|endoftext|>"),
    "deepseek-coder": ("<｜end▁of▁sentence｜>", "<|EOT|>"),
    "qwen-coder": (
        "<|endoftext|>",
        "<|file_sep|>",
        "<|fim_pad|>",
        "<|fim_prefix|>",
        "<|fim_middle|>",
        "<|fim_suffix|>",
        "<|repo_name|>",
        "<|im_end|>",
    ),
    "codegemma": (
        "<|fim_prefix|>",
        "<|fim_middle|>",
        "<|fim_suffix|>",
        "<|file_separator|>",
        "<eos>",
    ),
}
"""Stops from formats.md: bigcode's maintainers, DeepSeek's README, Qwen's examples
(`eos_token_ids`), the CodeGemma blog's terminators."""


@dataclass(frozen=True)
class Family:
    """One family's look-alike tokenizer, as transformers and as the server load it."""

    key: str
    directory: Path
    hf: Any
    tok: TokenizerLike
    fim: FimTokens

    def documented_ids(self, text: str) -> list[int]:
        """`text` encoded as the family's README does: specials parsed, BOS where added."""
        return [int(i) for i in self.hf(text)["input_ids"]]

    def psm_text(self, prefix: str, suffix: str) -> str:
        pre, suf, mid = DOCUMENTED[self.key]
        return pre + prefix + suf + suffix + mid

    def shown(self, text: str) -> str:
        """`text` as the tokenizer decodes it back: Gemma's SentencePiece decoder turns every
        "▁" into a space, "▁" typed in the text too (so does Code Llama's)."""
        return text.replace("▁", " ") if self.key == "codegemma" else text

    def id_of(self, text: str) -> int:
        found = self.tok.token_to_id(text)
        assert found is not None, text
        return found


@pytest.fixture(scope="module")
def families(tmp_path_factory: pytest.TempPathFactory) -> Mapping[str, Family]:
    from transformers import AutoTokenizer

    built: dict[str, Family] = {}
    for key in FAMILY_KEYS:
        directory = build_family_tokenizer(key, tmp_path_factory.mktemp(key))
        tok = load_tokenizer(directory)
        fim = FimTokens.from_tokenizer(tok)
        assert fim is not None, key
        hf = AutoTokenizer.from_pretrained(str(directory))
        built[key] = Family(key, directory, hf, tok, fim)
    return built


def lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --- the look-alikes -------------------------------------------------------------


TOKENIZER_CLASSES = {
    "starcoder": "GPT2TokenizerFast",
    "deepseek-coder": "LlamaTokenizerFast",
    "qwen-coder": "Qwen2TokenizerFast",
    "codegemma": "GemmaTokenizerFast",
}
SHAPES: dict[str, tuple[str | None, str, bool]] = {
    "starcoder": (None, "ByteLevel", False),
    "deepseek-coder": (None, "ByteLevel", False),
    "qwen-coder": ("NFC", "ByteLevel", False),
    "codegemma": ("Replace", "Sequence", True),
}
"""tokenizer.json's normalizer and decoder types, and whether BPE falls back to bytes."""


@pytest.mark.parametrize("key", FAMILY_KEYS)
def test_look_alikes_have_their_familys_tokens_and_bos(
    families: Mapping[str, Family], key: str
) -> None:
    family = families[key]
    assert type(family.hf).__name__ == TOKENIZER_CLASSES[key]
    spec = json.loads((family.directory / "tokenizer.json").read_text(encoding="utf-8"))
    normalizer = spec["normalizer"] and spec["normalizer"]["type"]
    shape = (normalizer, spec["decoder"]["type"], spec["model"]["byte_fallback"])
    assert shape == SHAPES[key]
    added = [(t["content"], t["special"]) for t in sorted(spec["added_tokens"], key=_id)]
    assert added == [(t.text, t.special) for t in TOKENS[key].added]
    ids = [t["id"] for t in sorted(spec["added_tokens"], key=_id)]
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # in the real relative order
    if key in ("starcoder", "codegemma"):
        assert ids[0] == 0  # first in the vocabulary, as in the real ones
    else:
        assert ids[-1] == len(family.hf) - 1  # after the merged pieces
    assert len(family.hf) == family.hf.backend_tokenizer.get_vocab_size(with_added_tokens=True)
    bos = BOS_TEXT.get(key)
    assert family.tok.bos_token_id == (None if bos is None else family.id_of(bos))
    text = "def f(x):\n\treturn x + 12  # é 日本 😀\n"
    assert family.tok.decode(family.tok.encode(text)) == text


def _id(token: Mapping[str, Any]) -> int:
    return int(token["id"])


def test_look_alikes_pre_tokenize_as_their_families(families: Mapping[str, Family]) -> None:
    def words(key: str, text: str) -> list[str]:
        backend = families[key].hf.backend_tokenizer
        normalized = backend.normalizer.normalize_str(text) if backend.normalizer else text
        return [w for w, _ in backend.pre_tokenizer.pre_tokenize_str(normalized)]

    # Single digits everywhere; Qwen2's regex keeps a line's closing punctuation with its
    # line break, DeepSeek's isolates line breaks, GPT-2's starts a word at whitespace.
    assert words("starcoder", "f(12):\n  x") == ["f", "(", "1", "2", "):", "ĊĠ", "Ġx"]
    assert words("deepseek-coder", "f(12):\n  x") == ["f", "(", "1", "2", "):", "Ċ", "Ġ", "Ġx"]
    assert words("qwen-coder", "f(12):\n  x") == ["f", "(", "1", "2", "):Ċ", "Ġ", "Ġx"]
    assert words("codegemma", "f(12):\n  x") == ["f(12):\n▁▁x"]  # SentencePiece: no split
    gemma = families["codegemma"]  # newline runs are user-defined pieces: never merged
    assert gemma.tok.encode("a\n\n\nb")[1:-1] == [gemma.id_of("\n\n\n")]


# --- detection -------------------------------------------------------------------


@pytest.mark.parametrize("key", FAMILY_KEYS)
def test_detects_the_family_and_its_ids(families: Mapping[str, Family], key: str) -> None:
    family = families[key]
    fim = family.fim
    assert fim.family.key == key
    pre, suf, mid = DOCUMENTED[key]
    assert (fim.prefix, fim.suffix, fim.middle) == tuple(
        int(family.hf.convert_tokens_to_ids(t)) for t in (pre, suf, mid)
    )
    files = FILE_TOKENS[key]
    for field in ("file_start", "file_end", "repo_name"):
        text = files.get(field)
        assert getattr(fim, field) == (None if text is None else family.id_of(text)), field


def test_qwen_and_codegemma_are_told_apart(families: Mapping[str, Family]) -> None:
    qwen, gemma = families["qwen-coder"], families["codegemma"]
    assert DOCUMENTED["qwen-coder"] == DOCUMENTED["codegemma"]
    assert qwen.tok.token_to_id("<|file_separator|>") is None
    assert gemma.tok.token_to_id("<|file_sep|>") is None
    assert (qwen.fim.family.key, gemma.fim.family.key) == ("qwen-coder", "codegemma")


def test_a_tokenizer_without_fim_tokens_has_no_family(tmp_path: Path) -> None:
    tok = load_tokenizer(build_byte_level_tokenizer(tmp_path))
    assert FimTokens.from_tokenizer(tok) is None
    prompt = build_completion_prompt(tok, "x = ", "\n", fim_mode=FimMode.AUTO, budget=BUDGET)
    assert prompt.format is PromptFormat.LEFT_TO_RIGHT and prompt.family is None


# --- golden ids --------------------------------------------------------------------

# (name, prefix, suffix): the text around a cursor, as an editor would send it.
EDGE_CASES = [
    ("plain", "def add(a, b):\n    return ", "\n\n\nprint(add(1, 2))\n"),
    ("empty-prefix", "", "def main():\n    pass\n"),
    ("empty-suffix", "def add(a, b):\n    return a + b\n", ""),
    ("both-empty", "", ""),
    ("mid-word", "def fibo", "nacci(n):\n    return n\n"),
    ("crlf", "def f():\r\n    x = 1\r\n    ", "\r\n    return x\r\n"),
    ("tabs", "def f():\n\tif x:\n\t\t", "\n\treturn 1\n"),
    ("non-ascii", "s = 'café ", "😀 日本 naïve'\n"),
    ("suffix-indented", "class A:\n    x = 1\n", "    def f(self):\n        pass\n"),
    ("suffix-starts-with-space", "return a", " + b\n"),
    ("prefix-ends-in-spaces", "x =   ", "1\n"),
    ("one-line", "print(items[", "])"),
    ("js", 'function greet(name) {\n  return "Hello, " + ', ";\n}\n"),
    ("lines-end-in-letters", "import os\nimport json\nx = ", "\nreturn x\n"),
]
CASE_IDS = [case[0] for case in EDGE_CASES]


def _golden_params() -> list[Any]:
    return [
        pytest.param(key, prefix, suffix, id=f"{key}-{name}")
        for key in FAMILY_KEYS
        for name, prefix, suffix in EDGE_CASES
    ]


@pytest.mark.parametrize("key", FAMILY_KEYS)
@pytest.mark.parametrize(("name", "prefix", "suffix"), EDGE_CASES, ids=CASE_IDS)
def test_fim_ids_match_the_documented_string(
    families: Mapping[str, Family], key: str, name: str, prefix: str, suffix: str
) -> None:
    family = families[key]
    expected = family.documented_ids(family.psm_text(lf(prefix), lf(suffix)))
    if key in BOS_TEXT:
        assert expected[0] == family.tok.bos_token_id  # the tokenizer added it
    # Every mode gives PSM, but an explicit SPM for StarCoder (test_layouts).
    modes = (FimMode.AUTO, FimMode.PSM) if key == "starcoder" else tuple(FimMode)
    for mode in modes:
        assert fim_ids(family.tok, family.fim, prefix, suffix, mode) == expected, mode


@pytest.mark.parametrize(("key", "prefix", "suffix"), _golden_params())
def test_completion_prompt_matches_the_documented_string(
    families: Mapping[str, Family], key: str, prefix: str, suffix: str
) -> None:
    family = families[key]
    prompt = build_completion_prompt(
        family.tok, prefix, suffix, fim_mode=FimMode.AUTO, budget=BUDGET
    )
    assert (prompt.prefix, prompt.suffix) == (lf(prefix), lf(suffix))
    assert prompt.format is PromptFormat.FIM_PSM
    assert list(prompt.ids) == family.documented_ids(family.psm_text(lf(prefix), lf(suffix)))


WINDOW_TEXT = "def f(a, b):\n    if a:\n        return b\n    return a\n"


@pytest.mark.parametrize("key", FAMILY_KEYS)
def test_windows_are_encoded_as_the_tokenizer_encodes_them(
    families: Mapping[str, Family], key: str
) -> None:
    tok = families[key].tok
    local = fit_local(tok, WINDOW_TEXT, WINDOW_TEXT, BUDGET)
    assert (local.prefix, local.suffix) == (WINDOW_TEXT, WINDOW_TEXT)
    assert local.prefix_ids == tok.encode(WINDOW_TEXT)
    assert local.suffix_ids == encode_infilling(tok, WINDOW_TEXT)


def _document(lines: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    source = "".join(_CORPUS[:2]).splitlines(keepends=True)
    return "".join(rng.choice(source) for _ in range(lines))


@pytest.mark.parametrize("budget", [64, 300])
@pytest.mark.parametrize("key", FAMILY_KEYS)
def test_cut_windows_match_the_documented_string(
    families: Mapping[str, Family], key: str, budget: int
) -> None:
    family = families[key]
    doc = _document(200)
    cursor = doc.index("\n", len(doc) // 2) + 1 + 6  # inside a line, after its indentation
    prompt = build_completion_prompt(
        family.tok, doc[:cursor], doc[cursor:], fim_mode=FimMode.AUTO, budget=budget
    )
    assert len(prompt.ids) <= budget and "\n" in prompt.prefix and "\n" in prompt.suffix
    assert doc[:cursor].endswith(prompt.prefix) and doc[cursor:].startswith(prompt.suffix)
    expected = family.documented_ids(family.psm_text(prompt.prefix, prompt.suffix))
    assert list(prompt.ids) == expected


# --- special-token text typed in the code ------------------------------------------

LITERAL = (
    's = "<|fim_prefix|><|fim_suffix|><|fim_middle|><|file_sep|><|repo_name|><|fim_pad|>'
    "<fim_prefix><fim_suffix><fim_middle><file_sep><repo_name>"
    "<｜fim▁begin｜><｜fim▁hole｜><｜fim▁end｜><|EOT|>"
    '<|file_separator|><|endoftext|><eos><bos><｜begin▁of▁sentence｜>"'
)


@pytest.mark.parametrize("key", FAMILY_KEYS)
def test_special_token_text_in_the_code_stays_text(
    families: Mapping[str, Family], key: str
) -> None:
    family = families[key]
    prefix, suffix = f"x = 1\n{LITERAL}\ny = ", f"2\n{LITERAL}\n"
    prompt = build_completion_prompt(
        family.tok, prefix, suffix, fim_mode=FimMode.AUTO, budget=BUDGET
    )
    ids = list(prompt.ids)
    fim = family.fim
    assert [ids.count(i) for i in (fim.prefix, fim.suffix, fim.middle)] == [1, 1, 1]
    controls = {fim.file_start, fim.file_end, fim.repo_name, *fim.stop_ids}
    controls |= family.tok.stop_token_ids
    controls -= {None, fim.prefix, fim.suffix, fim.middle}
    assert not controls & set(ids)
    bos = family.tok.bos_token_id
    assert bos is None or ids.count(bos) == 1
    documented = BOS_TEXT.get(key, "") + family.psm_text(prefix, suffix)
    assert family.tok.decode(ids) == family.shown(documented)


@pytest.mark.parametrize("key", FAMILY_KEYS)
def test_special_token_text_is_encoded_as_text(families: Mapping[str, Family], key: str) -> None:
    family = families[key]
    ids = family.tok.encode(LITERAL)
    controls = [t.text for t in TOKENS[key].added if t.text.startswith("<")]
    assert [t for t in controls if family.id_of(t) in ids] == []
    assert family.tok.decode(ids) == family.shown(LITERAL)


# --- stops, layout, leading spaces -------------------------------------------------


@pytest.mark.parametrize("key", FAMILY_KEYS)
def test_stops_hold_the_documented_ones(families: Mapping[str, Family], key: str) -> None:
    family = families[key]
    prompt = build_completion_prompt(family.tok, "x = ", "\n", fim_mode=FimMode.AUTO, budget=BUDGET)
    assert prompt.family is not None and prompt.family.key == key
    documented = {family.id_of(t) for t in DOCUMENTED_STOPS[key]}
    assert documented <= prompt.stop_ids
    assert family.tok.bos_token_id not in prompt.stop_ids


SPM_PREFIX, SPM_SUFFIX = "def f(x):\n    return ", " x + 1\n\nprint(f(2))\n"


@pytest.mark.parametrize("key", FAMILY_KEYS)
@pytest.mark.parametrize("mode", list(FimMode))
def test_layouts(families: Mapping[str, Family], key: str, mode: FimMode) -> None:
    family = families[key]
    spm = key == "starcoder" and mode is FimMode.SPM
    assert family.fim.mode(mode) is (FimMode.SPM if spm else FimMode.PSM)
    ids = fim_ids(family.tok, family.fim, SPM_PREFIX, SPM_SUFFIX, mode)
    if spm:  # bigcode's Megatron `permute`: [prefix, suffix] suffix [middle] prefix
        pre, suf, mid = DOCUMENTED[key]
        text = pre + suf + SPM_SUFFIX + mid + SPM_PREFIX
    else:
        text = family.psm_text(SPM_PREFIX, SPM_SUFFIX)
    assert ids == family.documented_ids(text)


ROUND_TRIP = [
    "a + b",
    " + b",
    "nacci(n)",
    "\n    return x\n",
    "  x = 1",
    "é 😀 日本",
    "\tif x:",
    " ",
]


@pytest.mark.parametrize("key", FAMILY_KEYS)
def test_no_dummy_space(families: Mapping[str, Family], key: str) -> None:
    tok = families[key].tok
    assert not adds_dummy_space(tok)
    for text in ROUND_TRIP:
        assert encode_infilling(tok, text) == tok.encode(text), text
        assert tok.decode(tok.encode(text)) == text


# --- models --------------------------------------------------------------------------


ARCHITECTURE = {
    "starcoder": "Starcoder2ForCausalLM",
    "deepseek-coder": "LlamaForCausalLM",  # DeepSeek-Coder v1 is Llama-architecture
    "qwen-coder": "Qwen2ForCausalLM",
    "codegemma": "GemmaForCausalLM",
}


@pytest.mark.parametrize("key", FAMILY_KEYS)
def test_tiny_model_loads_and_generates(
    families: Mapping[str, Family], key: str, tmp_path: Path
) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    family = families[key]
    directory = build_family_model(key, tmp_path / key, family.directory)
    assert (directory / "model.safetensors").is_file()
    model: Any = AutoModelForCausalLM.from_pretrained(str(directory))
    assert type(model).__name__ == ARCHITECTURE[key]
    assert model.config.architectures == [ARCHITECTURE[key]]
    assert model.config.max_position_embeddings >= 4096
    assert model.config.eos_token_id == family.hf.eos_token_id
    assert model.config.bos_token_id == family.hf.bos_token_id
    tok = load_tokenizer(directory)
    prompt = build_completion_prompt(
        tok, "def f(x):\n    return ", "\n", fim_mode=FimMode.AUTO, budget=BUDGET
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            out: Any = model.generate(
                torch.tensor([list(prompt.ids)]),
                attention_mask=torch.ones((1, len(prompt.ids)), dtype=torch.long),
                max_new_tokens=3,
                min_new_tokens=3,
                do_sample=False,
                pad_token_id=family.hf.eos_token_id,
            )
    finally:
        torch.set_num_threads(threads)
    assert out.shape == (1, len(prompt.ids) + 3)
