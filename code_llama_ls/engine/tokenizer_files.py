"""A model's tokenizer read straight from its files, without transformers.

`tokenizer.json` is loaded by the `tokenizers` library (Rust) and driven
directly; `tokenizer_config.json`, `special_tokens_map.json`,
`generation_config.json` and `chat_template.jinja` are read as JSON and
text. The chat template is rendered with jinja2 the way transformers 4.57
renders it (`_compile_jinja_template`, `apply_chat_template`): a sandboxed
environment with `trim_blocks` and `lstrip_blocks`, its `tojson`,
`raise_exception` and `strftime_now`, the special tokens as variables, and
the rendered text encoded without added special tokens. Tests check the ids
against transformers' on the default model and a Code Llama - Instruct
tokenizer.

This keeps torch and transformers (about 5 s of imports and 300 MB) out of
the ONNX Runtime and remote backends. A model directory without
`tokenizer.json` (a SentencePiece `tokenizer.model` only) and GGUF files
still go through transformers (`hf_tokenizer.py`), which can convert them.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from code_llama_ls.errors import ModelLoadError
from code_llama_ls.tokens.tokenizer import tokenizable

if TYPE_CHECKING:
    import jinja2
    from tokenizers import Tokenizer

    from code_llama_ls.tokens.tokenizer import TokenizerLike

TOKENIZER_FILE = "tokenizer.json"
DECODING_FILE = "tokenizer.decoding.json"
"""`tokenizer.json` without its BPE merges (`write_decoding_file`), for a process that
only decodes: read in 45 instead of 110 ms (SmolLM2's 49k merges), decoding the same."""
END_OF_TURN_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>")
"""End-of-turn markers of common chat formats (ChatML, GPT-2/StarCoder, Llama 3)."""

FALLBACK_CONTEXT = 2048
"""Tokens assumed when neither the model config nor the tokenizer says."""
_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")
_SPECIAL_TOKEN_KEYS = (
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
)
_MAX_LENGTH_UNSET = 1_000_000  # transformers writes ~1e30 for "no limit"


def prepared_backend(backend: Tokenizer) -> Tokenizer:
    """`backend` set up for prompt building: no saved truncation or padding, specials as text.

    "</s>" or "<|im_end|>" typed in the user's code is text, as in
    SentencePiece, never a control token that ends the prompt. That holds
    for added tokens flagged special; FIM and file tokens often are not
    (Qwen's `<|fim_prefix|>`, DeepSeek's `<｜fim▁begin｜>`, CodeGemma's
    `<|file_separator|>`), so every added token shaped like a control token
    (`<...>` without white space) is flagged special here, its id kept.
    Other added tokens (Gemma's runs of line breaks) still match as usual.
    """
    from tokenizers import AddedToken

    backend.no_truncation()
    backend.no_padding()
    backend.encode_special_tokens = True
    unflagged = [
        AddedToken(
            token.content,
            special=True,
            single_word=token.single_word,
            lstrip=token.lstrip,
            rstrip=token.rstrip,
            normalized=token.normalized,
        )
        for token in backend.get_added_tokens_decoder().values()
        if not token.special and _CONTROL_SHAPED.fullmatch(token.content)
    ]
    if unflagged:
        backend.add_special_tokens(unflagged)
    return backend


_CONTROL_SHAPED = re.compile(r"<[^\s<>]+>")


def stop_ids(
    eos_ids: Iterable[int], added_tokens: Iterable[str], token_to_id: Callable[[str], int | None]
) -> frozenset[int]:
    """EOS ids plus the end-of-turn tokens the tokenizer registers as added (special) tokens.

    Only registered tokens count: then one can never be part of ordinary
    text, and a model that has it uses it to end a turn.
    """
    stops = set(eos_ids)
    registered = set(added_tokens)
    for token in END_OF_TURN_TOKENS:
        token_id = token_to_id(token)
        if token_id is not None and token in registered:
            stops.add(token_id)
    return frozenset(stops)


def as_ids(value: object) -> list[int]:
    """An EOS setting (an id, a list of ids, or nothing) as a list; anything else is none."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if isinstance(value, list) and all(isinstance(i, int) for i in value):
        return list(value)
    return []


class TokenizerFacts:
    """What both tokenizer adapters learn once when loaded, as `TokenizerLike` properties."""

    _bos_token_id: int | None
    _stop_token_ids: frozenset[int]
    _max_token_chars: int | None

    @property
    def bos_token_id(self) -> int | None:
        """The BOS id, only when the tokenizer adds it by default (Llama does; GPT-2 does not)."""
        return self._bos_token_id

    @property
    def stop_token_ids(self) -> frozenset[int]:
        """EOS, the generation config's EOS ids, and end-of-turn tokens the model uses."""
        return self._stop_token_ids

    @property
    def max_token_chars(self) -> int:
        """The most characters one token stands for: its longest vocabulary entry's length.

        Entries are spelled one character per byte (byte-level BPE) or per
        character (SentencePiece; its byte tokens "<0x0A>" stand for less),
        so no token covers more text than its entry is long.
        """
        if self._max_token_chars is None:
            self._max_token_chars = max(map(len, self.vocabulary()), default=1)
        return self._max_token_chars

    def vocabulary(self) -> Iterable[str]:
        """Every entry of the vocabulary (`max_token_chars` reads it when not told)."""
        raise NotImplementedError

    def learn_max_token_chars(self, count: int) -> None:
        """Take `max_token_chars` from another reader of the same files (the model host),
        instead of listing the vocabulary on first use (30 ms of the first request)."""
        self._max_token_chars = count


def write_decoding_file(directory: Path) -> bool:
    """Write `DECODING_FILE` for `directory`'s BPE `tokenizer.json`, once; whether it was
    written (not for other models, nor when it exists or cannot be written)."""
    target = directory / DECODING_FILE
    if target.exists():
        return False
    temporary = directory / f".{DECODING_FILE}.{os.getpid()}.tmp"
    try:
        data = json.loads((directory / TOKENIZER_FILE).read_text(encoding="utf-8"))
        model = data.get("model") if isinstance(data, dict) else None
        if not isinstance(model, dict) or model.get("type") != "BPE" or not model.get("merges"):
            return False
        model["merges"] = []
        temporary.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        os.replace(temporary, target)  # whole or not at all, whoever reads it
    except (OSError, ValueError):
        temporary.unlink(missing_ok=True)
        return False
    return True


class FileTokenizer(TokenizerFacts):
    """`TokenizerLike` over a model directory's `tokenizer.json` and its side files."""

    def __init__(self, directory: Path, *, decoding: bool = False) -> None:
        """Read the tokenizer files of `directory`; ModelLoadError when they are unusable.

        `decoding`: for a process that decodes ids and encodes no prompt (the
        model host, given prompts as ids): `DECODING_FILE` is read where there
        is one. Ids decode to the same text; text encodes to other ids (no
        merges), whose decoding is that text all the same.
        """
        from tokenizers import Tokenizer

        self.directory = directory
        source = directory / TOKENIZER_FILE
        if decoding and (directory / DECODING_FILE).is_file():
            source = directory / DECODING_FILE
        try:
            loaded = Tokenizer.from_file(str(source))
        except Exception as exc:  # the Rust side raises plain Exception
            raise ModelLoadError(
                f"Could not load the tokenizer of {directory}: {_first_line(exc)}"
            ) from exc
        config = read_json(directory / "tokenizer_config.json")
        specials_file = read_json(directory / "special_tokens_map.json")
        generation = read_json(directory / "generation_config.json")
        # tokenizer_config.json wins over special_tokens_map.json, as in transformers.
        self._specials = _special_tokens({**specials_file, **config})
        self.chat_template = _chat_template(directory, config)
        self.model_max_length = _model_max_length(config)
        self._text = prepared_backend(loaded)
        self._chat_backend: Tokenizer | None = None
        self._chat_lock = threading.Lock()
        self._compiled: jinja2.Template | None = None
        self._size = int(self._text.get_vocab_size(with_added_tokens=True))
        self._max_token_chars: int | None = None  # on first use: listing the vocabulary takes 30 ms
        self._bos_token_id = self._detect_bos(config)
        eos = self._id_of(self._specials.get("eos_token"))
        self._stop_token_ids = stop_ids(
            [*([] if eos is None else [eos]), *as_ids(generation.get("eos_token_id"))],
            (token.content for token in self._text.get_added_tokens_decoder().values()),
            self.token_to_id,
        )

    def vocabulary(self) -> Iterable[str]:
        """Every entry of the vocabulary, added tokens included."""
        vocab: dict[str, int] = self._text.get_vocab()
        return vocab.keys()

    def encode(self, text: str) -> list[int]:
        """Ids of `text` without special tokens (a Llama tokenizer adds its dummy space)."""
        return list(self._text.encode(tokenizable(text), add_special_tokens=False).ids)

    def decode(self, ids: Sequence[int]) -> str:
        """Text of `ids`, special tokens included, no clean-up of spaces."""
        return str(self._text.decode(list(ids), skip_special_tokens=False))

    def token_to_id(self, token: str) -> int | None:
        """The id of one vocabulary entry, or None (never the unk id) when absent."""
        found = self._text.token_to_id(token)
        return None if found is None else int(found)

    def apply_chat_template(self, messages: Sequence[Mapping[str, str]]) -> list[int] | None:
        """Ids of the chat prompt ready for the assistant's reply, or None without a template.

        Raises jinja2's TemplateError when the template refuses the messages
        (its `raise_exception`), as transformers does.
        """
        if not self.chat_template:
            return None
        conversation = [
            {key: tokenizable(value) for key, value in message.items()} for message in messages
        ]
        text = self.render_chat(conversation)
        with self._chat_lock:
            if self._chat_backend is None:
                # The rendered chat's control tokens are tokens: a copy that
                # reads specials as specials, as transformers' tokenizer does.
                from tokenizers import Tokenizer

                chat = Tokenizer.from_str(self._text.to_str())
                chat.encode_special_tokens = False
                self._chat_backend = chat
            backend = self._chat_backend
        return list(backend.encode(text, add_special_tokens=False).ids)

    def render_chat(self, conversation: Sequence[Mapping[str, Any]]) -> str:
        """The chat template's text for `conversation`, with the generation prompt."""
        with self._chat_lock:
            if self._compiled is None:
                self._compiled = compile_chat_template(str(self.chat_template))
            template = self._compiled
        return str(
            template.render(
                messages=list(conversation),
                tools=None,
                documents=None,
                add_generation_prompt=True,
                **self._specials,
            )
        )

    def __len__(self) -> int:
        return self._size

    def _id_of(self, token: object) -> int | None:
        return self.token_to_id(token) if isinstance(token, str) else None

    def _detect_bos(self, config: Mapping[str, Any]) -> int | None:
        bos = self._id_of(self._specials.get("bos_token"))
        if bos is None:
            return None
        add_bos = config.get("add_bos_token")
        if isinstance(add_bos, bool):  # Llama's tokenizers rebuild their template from it
            return bos if add_bos else None
        ids = self._text.encode("a", add_special_tokens=True).ids
        return bos if ids and ids[0] == bos else None


def compile_chat_template(source: str) -> jinja2.Template:
    """A chat template compiled as transformers compiles it (`_compile_jinja_template`)."""
    import jinja2
    import jinja2.ext
    import jinja2.nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class GenerationTag(jinja2.ext.Extension):
        """`{% generation %}...{% endgeneration %}`: transformers marks assistant text with it."""

        tags = {"generation"}  # noqa: RUF012 (jinja2 declares it an instance variable)

        def parse(self, parser: Any) -> jinja2.nodes.Node:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
            call = self.call_method("_render", [], [], None, None)
            return jinja2.nodes.CallBlock(call, [], [], body).set_lineno(lineno)

        def _render(self, caller: Callable[[], str]) -> str:
            return caller()

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(
        value: Any,
        ensure_ascii: bool = False,
        indent: int | None = None,
        separators: tuple[str, str] | None = None,
        sort_keys: bool = False,
    ) -> str:
        # jinja2's own tojson escapes HTML characters; transformers' does not.
        return json.dumps(
            value,
            ensure_ascii=ensure_ascii,
            indent=indent,
            separators=separators,
            sort_keys=sort_keys,
        )

    def strftime_now(format: str) -> str:
        return datetime.now().strftime(format)

    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[GenerationTag, jinja2.ext.loopcontrols],
    )
    environment.filters["tojson"] = tojson
    environment.globals["raise_exception"] = raise_exception
    environment.globals["strftime_now"] = strftime_now
    return environment.from_string(source)


def load_tokenizer(source: str | Path, *, gguf_file: str | None = None) -> TokenizerLike:
    """The tokenizer of a model: from its files when it has `tokenizer.json`, else transformers'.

    Nothing is downloaded; a missing or broken tokenizer is a ModelLoadError.
    """
    directory = Path(source)
    if gguf_file is None and (directory / TOKENIZER_FILE).is_file():
        return FileTokenizer(directory)
    from code_llama_ls.engine.hf_tokenizer import load_hf_tokenizer

    return load_hf_tokenizer(source, gguf_file=gguf_file)


def context_length_from(config: Mapping[str, Any], tokenizer: object) -> int:
    """Tokens a model attends to, from its config fields, else its tokenizer's limit."""
    for key in _CONTEXT_KEYS:
        value = config.get(key)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < _MAX_LENGTH_UNSET:
        return limit
    return FALLBACK_CONTEXT


def local_context_length(
    source: str | Path, tokenizer: object, *, gguf_file: str | None = None
) -> int:
    """The context length in a model's config (read without loading weights)."""
    if gguf_file is None and Path(source).is_dir():
        return context_length_from(read_json(Path(source) / "config.json"), tokenizer)
    from code_llama_ls.engine.hf_tokenizer import hf_config

    return context_length_from(hf_config(source, gguf_file=gguf_file), tokenizer)


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from `path`, or {} when it is missing or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _special_tokens(config: Mapping[str, Any]) -> dict[str, Any]:
    """`special_tokens_map` as transformers gives it to chat templates: the set ones, as text."""
    specials: dict[str, Any] = {}
    for key in _SPECIAL_TOKEN_KEYS:
        text = _token_text(config.get(key))
        if text is not None:
            specials[key] = text
    extra = config.get("additional_special_tokens")
    if isinstance(extra, list):
        texts = [t for t in map(_token_text, extra) if t is not None]
        if texts:
            specials["additional_special_tokens"] = texts
    return specials


def _token_text(value: object) -> str | None:
    """A token as tokenizer_config.json writes it: a string or an AddedToken object."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return str(value["content"])
    return None


def _chat_template(directory: Path, config: Mapping[str, Any]) -> str | None:
    """`chat_template.jinja` (transformers' current layout), else the config's template."""
    try:
        return (directory / "chat_template.jinja").read_text(encoding="utf-8")
    except OSError:
        pass
    template = config.get("chat_template")
    if isinstance(template, str):
        return template
    if isinstance(template, list):  # named templates: transformers uses "default"
        for entry in template:
            if isinstance(entry, dict) and entry.get("name") == "default":
                found = entry.get("template")
                return found if isinstance(found, str) else None
    return None


def _model_max_length(config: Mapping[str, Any]) -> int | None:
    value = config.get("model_max_length")
    if isinstance(value, int | float) and 0 < value < _MAX_LENGTH_UNSET:
        return int(value)
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
