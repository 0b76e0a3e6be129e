"""Adapt a transformers tokenizer to the server's `TokenizerLike` seam.

Fast tokenizers are driven through their Rust backend directly: the Python
wrapper re-applies truncation/padding state on every call and routes text
containing `<FILL_ME>` through CodeLlama's FIM path, which swaps the
normalizer while it encodes and so is not thread-safe. The prompt builder
assembles FIM layouts itself, at token level.

This adapter is the one door to the tokenizer: every text it is given is
first made `tokenizable` (a lone surrogate, which JSON lets a client send,
becomes U+FFFD), so prompts, context and chats never reach Rust with text
it refuses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from code_llama_ls.engine.tokenizer_files import (
    TokenizerFacts,
    as_ids,
    prepared_backend,
    stop_ids,
)
from code_llama_ls.errors import ModelLoadError
from code_llama_ls.tokens.tokenizer import tokenizable

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


class TransformersTokenizer(TokenizerFacts):
    """`TokenizerLike` over a transformers `PreTrainedTokenizerBase`."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        generation_eos: int | Sequence[int] | None = None,
    ) -> None:
        """Wrap `tokenizer`; `generation_eos` is the model's `generation_config.eos_token_id`."""
        self._tok = tokenizer
        shared = getattr(tokenizer, "backend_tokenizer", None) if tokenizer.is_fast else None
        self._backend: Any = None
        if shared is not None:
            from tokenizers import Tokenizer

            # A private copy: transformers resets flags on the shared backend
            # during its own calls (the chat template, for one).
            self._backend = prepared_backend(Tokenizer.from_str(shared.to_str()))
        self._vocab: dict[str, int] | None = None
        # Measured here, while the model loads, not on the first completion (~40 ms for 49k).
        vocab = self._backend.get_vocab() if self._backend is not None else self._vocabulary()
        self._max_token_chars = max(map(len, vocab), default=1)
        self._bos_token_id = self._detect_bos()
        self._stop_token_ids = self._collect_stop_ids(generation_eos)

    @property
    def hf_tokenizer(self) -> PreTrainedTokenizerBase:
        """The wrapped transformers tokenizer (for saving or inspection)."""
        return self._tok

    @property
    def model_max_length(self) -> int | None:
        """The tokenizer's own limit on input length, if it has one."""
        limit = getattr(self._tok, "model_max_length", None)
        return limit if isinstance(limit, int) else None

    def encode(self, text: str) -> list[int]:
        """Ids of `text` without special tokens (a Llama tokenizer adds its dummy space)."""
        text = tokenizable(text)
        if self._backend is not None:
            return list(self._backend.encode(text, add_special_tokens=False).ids)
        return list(self._tok.encode(text, add_special_tokens=False))

    def decode(self, ids: Sequence[int]) -> str:
        """Text of `ids`, special tokens included, no clean-up of spaces."""
        if self._backend is not None:
            return str(self._backend.decode(list(ids), skip_special_tokens=False))
        return str(
            self._tok.decode(
                list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False
            )
        )

    def token_to_id(self, token: str) -> int | None:
        """The id of one vocabulary entry, or None (never the unk id) when absent."""
        if self._backend is not None:
            found = self._backend.token_to_id(token)
            return None if found is None else int(found)
        return self._vocabulary().get(token)

    def apply_chat_template(self, messages: Sequence[Mapping[str, str]]) -> list[int] | None:
        """Ids of the chat prompt ready for the assistant's reply, or None without a template."""
        if not getattr(self._tok, "chat_template", None):
            return None
        conversation = [
            {key: tokenizable(value) for key, value in message.items()} for message in messages
        ]
        ids: Any = self._tok.apply_chat_template(
            conversation, add_generation_prompt=True, tokenize=True
        )
        return [int(i) for i in ids]

    def __len__(self) -> int:
        return len(self._tok)

    def _vocabulary(self) -> dict[str, int]:
        if self._vocab is None:
            self._vocab = dict(self._tok.get_vocab())
        return self._vocab

    def _detect_bos(self) -> int | None:
        bos = self._tok.bos_token_id
        if bos is None:
            return None
        ids = self._tok("a").input_ids
        return int(bos) if ids and ids[0] == bos else None

    def _collect_stop_ids(self, generation_eos: int | Sequence[int] | None) -> frozenset[int]:
        eos = self._tok.eos_token_id
        special = set(self._tok.all_special_tokens)
        special.update(self._tok.added_tokens_encoder)
        return stop_ids([*as_ids(eos), *as_ids(generation_eos)], special, self.token_to_id)


def load_hf_tokenizer(source: str | Path, *, gguf_file: str | None = None) -> TransformersTokenizer:
    """transformers' tokenizer of a model (directory, cached hub id or GGUF) and its EOS ids.

    For what `tokenizer_files.FileTokenizer` cannot read: a SentencePiece
    `tokenizer.model` without `tokenizer.json`, or a GGUF file.

    Nothing is downloaded; a missing or broken tokenizer is a ModelLoadError.
    """
    import transformers

    auto_tokenizer: Any = transformers.AutoTokenizer
    try:
        hf_tokenizer = auto_tokenizer.from_pretrained(
            str(source), local_files_only=True, gguf_file=gguf_file
        )
    except (OSError, ValueError, KeyError) as exc:
        first_line = str(exc).strip().split("\n", 1)[0]
        raise ModelLoadError(f"Could not load the tokenizer of {source}: {first_line}") from exc
    eos: Any = None
    if gguf_file is None:
        try:
            generation = transformers.GenerationConfig.from_pretrained(
                str(source), local_files_only=True
            )
            eos = generation.eos_token_id
        except (OSError, ValueError):
            eos = None
    return TransformersTokenizer(hf_tokenizer, as_ids(eos) or None)


def hf_config(source: str | Path, *, gguf_file: str | None = None) -> dict[str, Any]:
    """A model's config as transformers reads it (also from a GGUF header), or {}."""
    import transformers

    auto_config: Any = transformers.AutoConfig
    try:
        config = auto_config.from_pretrained(
            str(source), local_files_only=True, gguf_file=gguf_file
        )
    except (OSError, ValueError, KeyError):
        return {}
    return dict(config.to_dict())
