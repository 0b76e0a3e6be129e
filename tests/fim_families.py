"""Tiny tokenizers and models shaped like the FIM families other than Code Llama, built locally.

Each tokenizer is a small BPE trained on `tests.tiny_models._CORPUS` with its
family's real pre-tokenization, normalizer, decoder and special tokens (their
real texts, in their real order relative to each other), saved by
transformers, so that both `transformers.AutoTokenizer` and the server's
`load_tokenizer` read it:

- starcoder: StarCoder2's byte-level BPE (single digits, GPT-2's regex), no BOS.
- deepseek-coder: DeepSeek-Coder v1's byte-level BPE (its own split regexes),
  BOS added by the tokenizer, FIM tokens with full-width bars (U+FF5C).
- qwen-coder: Qwen2.5-Coder's byte-level BPE (NFC, Qwen2's regex), no BOS.
- codegemma: Gemma's SentencePiece-style BPE (byte fallback, no dummy
  prefix, newline runs as user-defined tokens), BOS added.

Where a real tokenizer registers a token as an added token that is not
"special" (Qwen's, DeepSeek's and CodeGemma's FIM tokens, Gemma's newline
runs), so does its look-alike. The models are random-init two-layer models
of each family's architecture, for loading checks only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.tiny_models import _CORPUS, save_with_tokenizer

FAMILY_KEYS = ("starcoder", "deepseek-coder", "qwen-coder", "codegemma")
"""The families built here, by their `FimFamily.key`."""

QWEN2_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"""
    r""" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
"""Qwen2's pre-tokenizer regex (transformers' `Qwen2Converter`)."""
DEEPSEEK_SPLITS = (r"[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", r"[一-龥ࠀ-一가-퟿]+")
"""DeepSeek-Coder's isolated splits, in order, before single digits and ByteLevel."""
SPIECE = "▁"
GEMMA_NEWLINE_RUNS = 8
"""Newline runs ("\\n" to "\\n" * 8) registered as user-defined tokens (Gemma has 31)."""
# SentencePiece's word split for training: a piece never spans "▁" in its middle,
# digits are single, whitespace other than "▁" stands alone.
_SP_WORDS = r"▁+(?=▁)|▁?\p{L}+|▁?\p{N}|▁?[^\p{L}\p{N}▁\s]+|▁+|\s"


@dataclass(frozen=True)
class Special:
    """An added token: its text and whether the real tokenizer marks it special."""

    text: str
    special: bool = True


@dataclass(frozen=True)
class FamilyTokens:
    """A family's added tokens (in id order) and which of them the tokenizer names."""

    added: tuple[Special, ...]
    bos: str | None
    eos: str
    unk: str | None = None
    pad: str | None = None
    add_bos: bool = False


STARCODER_TOKENS = FamilyTokens(
    added=tuple(
        Special(t)
        for t in (
            "<|endoftext|>",
            "<fim_prefix>",
            "<fim_middle>",
            "<fim_suffix>",
            "<fim_pad>",
            "<repo_name>",
            "<file_sep>",
        )
    ),
    bos="<|endoftext|>",
    eos="<|endoftext|>",
    unk="<|endoftext|>",
)
DEEPSEEK_TOKENS = FamilyTokens(
    added=(
        Special("<｜begin▁of▁sentence｜>"),
        Special("<｜end▁of▁sentence｜>"),
        Special("<｜fim▁hole｜>", special=False),
        Special("<｜fim▁begin｜>", special=False),
        Special("<｜fim▁end｜>", special=False),
        Special("<pad>"),
        Special("<|User|>", special=False),
        Special("<|Assistant|>", special=False),
        Special("<|EOT|>"),
    ),
    bos="<｜begin▁of▁sentence｜>",
    eos="<｜end▁of▁sentence｜>",
    pad="<｜end▁of▁sentence｜>",
    add_bos=True,
)
QWEN_TOKENS = FamilyTokens(
    added=(
        Special("<|endoftext|>"),
        Special("<|im_start|>"),
        Special("<|im_end|>"),
        Special("<|fim_prefix|>", special=False),
        Special("<|fim_middle|>", special=False),
        Special("<|fim_suffix|>", special=False),
        Special("<|fim_pad|>", special=False),
        Special("<|repo_name|>", special=False),
        Special("<|file_sep|>", special=False),
    ),
    bos=None,
    eos="<|endoftext|>",
    pad="<|endoftext|>",
)
CODEGEMMA_TOKENS = FamilyTokens(
    added=(
        Special("<pad>"),
        Special("<eos>"),
        Special("<bos>"),
        Special("<unk>"),
        Special("<|fim_prefix|>", special=False),
        Special("<|fim_middle|>", special=False),
        Special("<|fim_suffix|>", special=False),
        Special("<|file_separator|>", special=False),
        Special("<start_of_turn>"),
        Special("<end_of_turn>"),
        *(Special("\n" * n, special=False) for n in range(1, GEMMA_NEWLINE_RUNS + 1)),
    ),
    bos="<bos>",
    eos="<eos>",
    unk="<unk>",
    pad="<pad>",
    add_bos=True,
)
TOKENS: dict[str, FamilyTokens] = {
    "starcoder": STARCODER_TOKENS,
    "deepseek-coder": DEEPSEEK_TOKENS,
    "qwen-coder": QWEN_TOKENS,
    "codegemma": CODEGEMMA_TOKENS,
}

ARCHITECTURES = {
    "starcoder": "Starcoder2ForCausalLM",
    "deepseek-coder": "LlamaForCausalLM",
    "qwen-coder": "Qwen2ForCausalLM",
    "codegemma": "GemmaForCausalLM",
}
"""The model class of each family (DeepSeek-Coder v1 is Llama-architecture)."""


def build_family_tokenizer(family: str, directory: Path, *, vocab_size: int = 800) -> Path:
    """Train and save a small tokenizer shaped like `family`'s; returns `directory`."""
    builders = {
        "starcoder": _starcoder,
        "deepseek-coder": _deepseek,
        "qwen-coder": _qwen,
        "codegemma": _codegemma,
    }
    if family not in builders:
        raise ValueError(f"unknown family {family!r}: one of {', '.join(FAMILY_KEYS)}")
    backend = builders[family](vocab_size)
    directory.mkdir(parents=True, exist_ok=True)
    _wrap(family, backend).save_pretrained(str(directory))
    return directory


def _added(tokens: Sequence[Special]) -> list[Any]:
    from tokenizers import AddedToken

    return [AddedToken(t.text, special=t.special, normalized=False) for t in tokens]


def _byte_level_trained(
    pre_tokenizer: Any,
    vocab_size: int,
    *,
    normalizer: Any = None,
    leading: Sequence[Special] = (),
    trailing: Sequence[Special] = (),
) -> Any:
    """A byte-level BPE trained on the corpus: `leading` special tokens take the first ids
    (the trainer's special tokens), `trailing` ones come after the merged pieces."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        show_progress=False,
        special_tokens=_added(leading),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_CORPUS, trainer)  # registers `leading` as special tokens
    for token, spec in zip(_added(trailing), trailing, strict=True):
        (tok.add_special_tokens if spec.special else tok.add_tokens)([token])
    return tok


def _starcoder(vocab_size: int) -> Any:
    """bigcode's `train_bpe_tokenizer.py`: single digits, then GPT-2's ByteLevel regex."""
    from tokenizers import pre_tokenizers

    pre = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    return _byte_level_trained(pre, vocab_size, leading=STARCODER_TOKENS.added)


def _deepseek(vocab_size: int) -> Any:
    """DeepSeek-Coder's chain: four isolated splits, single digits, ByteLevel without regex;
    BOS added by a template, its specials after the merged pieces (ids 32013-32021)."""
    from tokenizers import Regex, pre_tokenizers, processors

    pre = pre_tokenizers.Sequence(
        [
            *(pre_tokenizers.Split(Regex(p), behavior="isolated") for p in DEEPSEEK_SPLITS),
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok = _byte_level_trained(pre, vocab_size, trailing=DEEPSEEK_TOKENS.added)
    bos = str(DEEPSEEK_TOKENS.bos)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))]
    )
    return tok


def _qwen(vocab_size: int) -> Any:
    """transformers' `Qwen2Converter`: NFC, Qwen2's regex, ByteLevel without regex."""
    from tokenizers import Regex, normalizers, pre_tokenizers, processors

    pre = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok = _byte_level_trained(
        pre, vocab_size, normalizer=normalizers.NFC(), trailing=QWEN_TOKENS.added
    )
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def _codegemma(vocab_size: int) -> Any:
    """transformers' `GemmaConverter`: BPE with byte fallback over "▁"-for-space text, no
    dummy prefix; ids: <pad> <eos> <bos> <unk>, FIM and turn tokens, newline runs, the 256
    byte tokens, then the merged pieces."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    normalizer = normalizers.Replace(" ", SPIECE)
    trainer_tok = Tokenizer(models.BPE(unk_token="<unk>"))
    trainer_tok.normalizer = normalizer
    trainer_tok.pre_tokenizer = pre_tokenizers.Split(Regex(_SP_WORDS), behavior="isolated")
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=1, show_progress=False, initial_alphabet=[SPIECE]
    )
    trainer_tok.train_from_iterator(_CORPUS, trainer)
    trained = json.loads(trainer_tok.to_str())["model"]

    vocab: dict[str, int] = {}
    for spec in CODEGEMMA_TOKENS.added:
        vocab[spec.text] = len(vocab)
    for byte in range(256):
        vocab[f"<0x{byte:02X}>"] = len(vocab)
    for piece, _ in sorted(trained["vocab"].items(), key=lambda item: item[1]):
        if piece not in vocab and "\n" not in piece and "\r" not in piece:
            vocab[piece] = len(vocab)
    merges = [
        (left, right)
        for left, right in trained["merges"]
        if left in vocab and right in vocab and left + right in vocab
    ]
    tok = Tokenizer(
        models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True)
    )
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizers.Split(" ", "merged_with_previous")
    tok.decoder = decoders.Sequence(
        [decoders.Replace(SPIECE, " "), decoders.ByteFallback(), decoders.Fuse()]
    )
    for token, spec in zip(_added(CODEGEMMA_TOKENS.added), CODEGEMMA_TOKENS.added, strict=True):
        (tok.add_special_tokens if spec.special else tok.add_tokens)([token])
    return tok


def _wrap(family: str, backend: Any) -> Any:
    """The family's transformers tokenizer class around `backend` (its BOS rule set)."""
    from transformers import (
        GemmaTokenizerFast,
        GPT2TokenizerFast,
        LlamaTokenizerFast,
        Qwen2TokenizerFast,
    )

    spec = TOKENS[family]
    names = {"bos_token": spec.bos, "eos_token": spec.eos, "unk_token": spec.unk}
    if spec.pad is not None:
        names["pad_token"] = spec.pad
    common: dict[str, Any] = {"tokenizer_object": backend, "clean_up_tokenization_spaces": False}
    if family == "starcoder":
        return GPT2TokenizerFast(**common, **names, add_prefix_space=False)
    if family == "deepseek-coder":
        return LlamaTokenizerFast(
            **common, **names, add_bos_token=True, add_eos_token=False, legacy=True
        )
    if family == "qwen-coder":
        return Qwen2TokenizerFast(**common, **names)
    return GemmaTokenizerFast(**common, **names, add_bos_token=True, add_eos_token=False)


def build_family_model(family: str, directory: Path, tokenizer_dir: Path, *, seed: int = 0) -> Path:
    """A random-init tiny model of `family`'s architecture, with its tokenizer files copied
    next to it (safetensors); returns `directory`."""
    import torch
    from transformers import AutoTokenizer

    hf_tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    torch.manual_seed(seed)
    model = _model(family, _shape(hf_tok))
    return save_with_tokenizer(model, directory, tokenizer_dir)


def _shape(hf_tok: Any) -> dict[str, Any]:
    """Config fields every family shares: sizes, ids from the tokenizer, a long context."""
    return {
        "vocab_size": len(hf_tok),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": 16384,
        "bos_token_id": hf_tok.bos_token_id,
        "eos_token_id": hf_tok.eos_token_id,
        "pad_token_id": hf_tok.pad_token_id,
    }


_CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "starcoder": ("Starcoder2Config", {"num_key_value_heads": 2}),
    "deepseek-coder": ("LlamaConfig", {"num_key_value_heads": 4, "rope_theta": 100_000.0}),
    # Grouped-query attention, tied embeddings, as Qwen2.5-Coder's small models.
    "qwen-coder": ("Qwen2Config", {"num_key_value_heads": 2, "tie_word_embeddings": True}),
    # One key/value head, as CodeGemma 2B; Gemma's default head_dim (256) is not hidden/heads.
    "codegemma": ("GemmaConfig", {"num_key_value_heads": 1, "head_dim": 16}),
}
"""Each family's config class and the fields that differ from `_shape`'s."""


def _model(family: str, shape: dict[str, Any]) -> Any:
    import transformers

    if family not in _CONFIGS:
        raise ValueError(f"unknown family {family!r}: one of {', '.join(FAMILY_KEYS)}")
    config_class, extra = _CONFIGS[family]
    config = getattr(transformers, config_class)(**shape, **extra)
    return getattr(transformers, ARCHITECTURES[family])(config)
