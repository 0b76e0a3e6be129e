"""The tokenizer seam: what prompts and post-processing need from a model's tokenizer.

Only `engine` knows transformers; it hands the rest of the server an object
that satisfies `TokenizerLike`. Everything here is plain Python so that
prompts can be built and tested without torch. Also here: what text a
tokenizer can take (`tokenizable`), and how many characters a number of
tokens can stand for at most (`max_chars`), so that callers never encode
more of a document than a token budget can use.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Generic, Protocol, TypeVar

from code_llama_ls.errors import PromptError

T = TypeVar("T")


class TokenizerLike(Protocol):
    """The model's own tokenizer, as the prompt builder sees it.

    A tokenizer may also have an int attribute `max_token_chars`: the most
    characters of text one of its tokens stands for (see `max_chars`).
    """

    @property
    def bos_token_id(self) -> int | None:
        """Id of the beginning-of-sequence token, if the model has one."""
        ...

    @property
    def stop_token_ids(self) -> frozenset[int]:
        """Ids that end a generation (EOS, end-of-turn, ...)."""
        ...

    def encode(self, text: str) -> list[int]:
        """Encode text as the tokenizer normally does, without BOS/EOS.

        A SentencePiece-style (Llama) tokenizer adds its dummy leading space
        here, exactly as Meta's `Tokenizer.encode(s, bos=False, eos=False)`.
        """
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """Decode ids to text, skipping nothing (special tokens included)."""
        ...

    def token_to_id(self, token: str) -> int | None:
        """The id of one vocabulary entry, or None when it is not in the vocabulary."""
        ...

    def apply_chat_template(self, messages: Sequence[Mapping[str, str]]) -> list[int] | None:
        """Ids of a chat prompt ready for the assistant's reply, or None without a template."""
        ...


# Any surrogate code point. In a str, one is always lone: Python joins a valid
# pair into one code point, but JSON's "\ud83d" escape (and an edit that
# splits a pair) leaves one alone.
_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def tokenizable(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD, which a tokenizer can take.

    Rust strings (the `tokenizers` library) cannot hold a lone surrogate.
    U+FFFD, like a surrogate, is one code point and one UTF-16 unit and
    takes 3 UTF-8 bytes (the document's tree encodes surrogates with
    'surrogatepass'), so offsets computed on the original text stay valid
    for the replaced one. ASCII text (the usual case) is known in O(1) to
    hold none; other text costs one scan in C.
    """
    if text.isascii():
        return text
    return _SURROGATE.sub(REPLACEMENT, text)


DEFAULT_MAX_TOKEN_CHARS = 128
"""`max_token_chars` of a tokenizer that does not say (SmolLM2's longest token is 81)."""


def max_chars(tokenizer: TokenizerLike, tokens: int) -> int:
    """A number of characters that surely encodes to more than `tokens` ids.

    No token stands for more than `max_token_chars` characters, so text this
    long needs more ids than `tokens`: a window of a document can be cut to
    this length before any encoding without changing which part of it fits
    a budget of `tokens`. The margin covers windows that fitting code grows
    a few ids past the budget before cutting them back.
    """
    per_token = getattr(tokenizer, "max_token_chars", None)
    if not isinstance(per_token, int) or per_token <= 0:
        per_token = DEFAULT_MAX_TOKEN_CHARS
    return (max(tokens, 0) + 16) * per_token


# A character that no tokenizer merges with what follows it. Meta's reference
# encodes infilling text as encode("☺" + s)[2:] for the same reason.
SENTINEL = "☺"


def decode_continuation(tokenizer: TokenizerLike, ids: Sequence[int]) -> str:
    """Decode generated ids as a continuation of earlier text.

    A Llama tokenizer's decoder drops the leading space of the first piece
    (its dummy prefix), which is wrong for text that continues a prompt: the
    space belongs to the code. Decoding behind a sentinel keeps it, as Meta's
    `decode_infilling` does.
    """
    if not ids:
        return ""
    sentinel_ids = tokenizer.encode(SENTINEL)
    head = tokenizer.decode(sentinel_ids)
    text = tokenizer.decode([*sentinel_ids, *ids])
    if text.startswith(head):
        return text[len(head) :]
    return tokenizer.decode(ids)


def encode_infilling(tokenizer: TokenizerLike, text: str) -> list[int]:
    """Encode text that continues earlier text: no SentencePiece dummy leading space.

    Meta's reference is `sp.encode("☺" + s)[2:]`; here the ids of the
    sentinel alone are stripped, after checking that they really are the
    head of the sentinel+text encoding (a tokenizer that merges the sentinel
    with what follows cannot encode continuation text this way). A
    tokenizer that adds no dummy space (byte-level BPE, Gemma's) encodes
    the text as it is: the same ids, without the sentinel's cost or risk.
    """
    if not text:
        return []
    if not adds_dummy_space(tokenizer):
        return tokenizer.encode(text)
    return _behind_sentinel(tokenizer, text)


class PerTokenizer(Generic[T]):
    """A value computed once per tokenizer and kept while the tokenizer lives; computed on
    every call for a tokenizer that takes no weak reference or no hash."""

    def __init__(self, compute: Callable[[TokenizerLike], T]) -> None:
        self._compute = compute
        self._values: weakref.WeakKeyDictionary[TokenizerLike, T] = weakref.WeakKeyDictionary()

    def __call__(self, tokenizer: TokenizerLike) -> T:
        try:
            return self._values[tokenizer]
        except KeyError:
            value = self._values[tokenizer] = self._compute(tokenizer)
            return value
        except TypeError:
            return self._compute(tokenizer)

    def values(self) -> list[T]:
        """The values kept now (RuntimeError if another thread adds one meanwhile)."""
        return list(self._values.values())


_DUMMY_PROBES = ("x", "return x", "\n    pass")


def adds_dummy_space(tokenizer: TokenizerLike) -> bool:
    """Whether `tokenizer` encodes text differently at the start of a prompt than after other
    text (SentencePiece's dummy prefix, a ByteLevel `add_prefix_space`); probed once."""
    return _dummy_space(tokenizer)


def _probe_dummy_space(tokenizer: TokenizerLike) -> bool:
    try:
        return any(
            tokenizer.encode(probe) != _behind_sentinel(tokenizer, probe) for probe in _DUMMY_PROBES
        )
    except PromptError:  # the sentinel merges: there is no telling, so no continuation
        return False


_dummy_space = PerTokenizer(_probe_dummy_space)


def _behind_sentinel(tokenizer: TokenizerLike, text: str) -> list[int]:
    head = tokenizer.encode(SENTINEL)
    ids = tokenizer.encode(SENTINEL + text)
    if ids[: len(head)] != head:
        raise PromptError(
            f"cannot encode text without a leading space: this tokenizer merges {SENTINEL!r} "
            f"with the text after it (ids {ids[: len(head) + 1]} do not start with {head})"
        )
    return ids[len(head) :]
