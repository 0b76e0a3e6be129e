"""Golden tests of prompt building: Code Llama FIM layouts, windows, budgets and chat prompts.

Every FIM layout is checked against two independent references: Meta's
`infilling_prompt_tokens` re-implemented here on the raw `tokenizers`
backend, and transformers 4.57's `CodeLlamaTokenizerFast` FIM encoding.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from tokenizers import Tokenizer

from code_llama_ls.errors import PromptError
from code_llama_ls.pipeline.fim import FimMode, FimTokens
from code_llama_ls.pipeline.prompt import (
    Prompt,
    PromptFormat,
    build_chat_prompt,
    build_completion_prompt,
    fim_ids,
    fit_windows,
    stepped_start,
    window_step,
)
from code_llama_ls.tokens.tokenizer import (
    SENTINEL,
    adds_dummy_space,
    decode_continuation,
    encode_infilling,
)
from tests.tiny_models import (
    _CORPUS,
    CODE_LLAMA_INSTRUCT_TEMPLATE,
    TokenizerAdapter,
    build_byte_level_tokenizer,
    build_code_llama_tokenizer,
    build_tiny_code_llama,
    greedy_complete,
)

MODES = [FimMode.PSM, FimMode.SPM]


class MetaReference:
    """Meta's codellama `Tokenizer` + `infilling_prompt_tokens`, over the raw tokenizers backend."""

    def __init__(self, raw: Tokenizer) -> None:
        self.raw = raw
        ids = [raw.token_to_id(t) for t in ("<s>", "▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>")]
        self.bos_id, self.prefix_id, self.suffix_id, self.middle_id, self.eot_id = ids

    def encode(self, s: str) -> list[int]:
        """sp.encode(s): dummy leading space, and [] for ""."""
        return list(self.raw.encode(s, add_special_tokens=False).ids)

    def encode_infilling(self, s: str) -> list[int]:
        return self.encode("☺" + s)[2:]

    def infilling_prompt_tokens(self, pre: str, suf: str, suffix_first: bool) -> list[int]:
        head = [self.bos_id, self.prefix_id]
        if suffix_first:  # "<PRE> <SUF>{suf} <MID> {pre}"
            suffix = [self.suffix_id, *self.encode_infilling(suf), self.middle_id]
            return [*head, *suffix, *self.encode(pre)]
        # "<PRE> {pre} <SUF>{suf} <MID>"
        return [
            *head,
            *self.encode(pre),
            self.suffix_id,
            *self.encode_infilling(suf),
            self.middle_id,
        ]


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_code_llama_tokenizer(tmp_path_factory.mktemp("code-llama-tokenizer"))


@pytest.fixture(scope="module")
def hf(tok_dir: Path) -> Any:
    from transformers import AutoTokenizer, CodeLlamaTokenizerFast

    loaded = AutoTokenizer.from_pretrained(str(tok_dir))
    assert isinstance(loaded, CodeLlamaTokenizerFast)
    return loaded


@pytest.fixture(scope="module")
def tok(hf: Any) -> TokenizerAdapter:
    return TokenizerAdapter(hf)


@pytest.fixture(scope="module")
def ref(tok_dir: Path) -> MetaReference:
    return MetaReference(Tokenizer.from_file(str(tok_dir / "tokenizer.json")))


@pytest.fixture(scope="module")
def fim(tok: TokenizerAdapter) -> FimTokens:
    found = FimTokens.from_tokenizer(tok)
    assert found is not None
    return found


# (name, prefix, suffix): the text around a cursor, as an editor would send it.
EDGE_CASES = [
    ("plain", "def add(a, b):\n    return ", "\n\n\nprint(add(1, 2))\n"),
    ("empty-suffix", "def add(a, b):\n    return a + b\n", ""),
    ("empty-prefix", "", "def main():\n    pass\n"),
    ("mid-word", "def fibo", "nacci(n):\n    return n\n"),
    ("prefix-ends-in-spaces", "x =   ", "1\n"),
    ("newline-indent", "def f(x):\n    ", "\n"),
    ("suffix-starts-with-space", "return a", " + b\n"),
    ("suffix-starts-with-newline", "    return a + b", "\n\nprint(add(1, 2))\n"),
    ("crlf", "def f():\r\n    x = 1\r\n    ", "\r\n    return x\r\n"),
    ("lone-cr", "a = 1\rb = ", "2\rc = 3"),
    ("non-ascii", "s = 'café ", "😀 中文 naïve'\n"),
    ("tabs", "def f():\n\tif x:\n\t\t", "\n\treturn 1\n"),
    ("literal-fim-strings", 's = "<PRE> x', ' <SUF> <MID> <EOT>"\n'),
    ("whitespace-only-prefix", "   ", "x = 1\n"),
    ("whitespace-only-suffix", "x = 1", "   "),
    ("both-empty", "", ""),
    ("js", 'function greet(name) {\n  return "Hello, " + ', ";\n}\n"),
]
IDS = [case[0] for case in EDGE_CASES]


def lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("name", "prefix", "suffix"), EDGE_CASES, ids=IDS)
def test_fim_ids_match_meta_reference(
    tok: TokenizerAdapter,
    fim: FimTokens,
    ref: MetaReference,
    name: str,
    prefix: str,
    suffix: str,
    mode: FimMode,
) -> None:
    expected = ref.infilling_prompt_tokens(lf(prefix), lf(suffix), mode is FimMode.SPM)
    assert fim_ids(tok, fim, prefix, suffix, mode) == expected
    prompt = build_completion_prompt(tok, prefix, suffix, fim_mode=mode, budget=4096)
    assert list(prompt.ids) == expected
    assert (prompt.prefix, prompt.suffix) == (lf(prefix), lf(suffix))
    assert prompt.format is (PromptFormat.FIM_SPM if mode is FimMode.SPM else PromptFormat.FIM_PSM)
    assert prompt.stop_ids == frozenset({ref.raw.token_to_id("</s>"), ref.eot_id})


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("name", "prefix", "suffix"), EDGE_CASES, ids=IDS)
def test_fim_ids_match_transformers_code_llama(
    tok: TokenizerAdapter,
    hf: Any,
    fim: FimTokens,
    name: str,
    prefix: str,
    suffix: str,
    mode: FimMode,
) -> None:
    prefix, suffix = lf(prefix), lf(suffix)
    theirs = hf(prefix, suffix=suffix, suffix_first=mode is FimMode.SPM)["input_ids"]
    ours = fim_ids(tok, fim, prefix, suffix, mode)
    if suffix and prefix:
        assert ours == theirs
    elif suffix:
        # transformers encodes " " + prefix, which is [▁] for an empty prefix;
        # Meta's sp.encode("") is [] (the reference above is the one we follow).
        assert theirs == _with_dummy_prefix(ours, tok, fim, mode)
    else:
        # An empty suffix makes transformers fall back to plain, non-FIM encoding.
        assert theirs == [tok.bos_token_id, *tok.encode(prefix)]


def _with_dummy_prefix(
    ids: list[int], tok: TokenizerAdapter, fim: FimTokens, mode: FimMode
) -> list[int]:
    space = tok.token_to_id("▁")
    assert space is not None
    at = ids.index(fim.prefix) + 1 if mode is FimMode.PSM else len(ids)
    return [*ids[:at], space, *ids[at:]]


def test_fim_tokens_use_the_spiece_forms(tok: TokenizerAdapter, hf: Any, fim: FimTokens) -> None:
    assert (fim.prefix, fim.suffix, fim.middle) == (hf.prefix_id, hf.suffix_id, hf.middle_id)
    assert fim.stop_ids == {hf.eot_id} and fim.family.key == "code-llama"
    assert tok.token_to_id("<PRE>") is None  # "<PRE>" without ▁ is not a piece


def test_fim_tokens_need_all_four() -> None:
    class Partial(FakeTokenizer):
        def token_to_id(self, token: str) -> int | None:
            return {"▁<PRE>": 5, "▁<SUF>": 6, "▁<MID>": 7}.get(token)

    assert FimTokens.from_tokenizer(Partial()) is None


ROUND_TRIP = [
    "a + b",
    " + b",
    "nacci(n)",
    "\n    return x\n",
    "  x = 1",
    "café 😀 中文",
    "\tif x:\n\t\treturn",
    " ",
    "\n",
    "<PRE> </s> <s>",
]


@pytest.mark.parametrize("middle", ROUND_TRIP)
def test_encode_infilling_and_decode_continuation_round_trip(
    tok: TokenizerAdapter, ref: MetaReference, middle: str
) -> None:
    ids = encode_infilling(tok, middle)
    if "<" not in middle:  # the raw backend would turn "</s>" into EOS
        assert ids == ref.encode_infilling(middle)
    assert decode_continuation(tok, ids) == middle


def test_special_token_strings_in_code_stay_text(tok: TokenizerAdapter, hf: Any) -> None:
    ids = tok.encode('print("<s>strike</s> ▁<PRE>")')
    assert not {hf.bos_token_id, hf.eos_token_id, hf.prefix_id} & set(ids)


def test_encode_infilling_empty_and_sentinel(tok: TokenizerAdapter) -> None:
    assert encode_infilling(tok, "") == []
    assert tok.encode(SENTINEL) == [tok.token_to_id("▁"), tok.token_to_id(SENTINEL)]


class FakeTokenizer:
    """A character-level tokenizer: one id per character (ord), no BOS."""

    bos_token_id: int | None = None
    stop_token_ids: frozenset[int] = frozenset({0})

    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(chr(i) for i in ids)

    def token_to_id(self, token: str) -> int | None:
        return None

    def apply_chat_template(self, messages: Sequence[Mapping[str, str]]) -> list[int] | None:
        return None


def test_encode_infilling_takes_text_as_it_is_where_it_cannot_tell_a_dummy_space() -> None:
    class Merging(FakeTokenizer):
        def encode(self, text: str) -> list[int]:
            return [1000 + len(text)] if text.startswith(SENTINEL) else super().encode(text)

    assert encode_infilling(Merging(), "abc") == [ord(c) for c in "abc"]


def test_encode_infilling_drops_only_a_dummy_space() -> None:
    class DummySpace(FakeTokenizer):
        def encode(self, text: str) -> list[int]:
            return super().encode(" " + text)

    assert adds_dummy_space(DummySpace()) and not adds_dummy_space(FakeTokenizer())
    assert encode_infilling(DummySpace(), "abc") == [ord(c) for c in "abc"]
    assert encode_infilling(FakeTokenizer(), "abc") == [ord(c) for c in "abc"]


# --- windows and budgets ---------------------------------------------------------


def _document(lines: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    source = "".join(_CORPUS[:2]).splitlines(keepends=True)
    return "".join(rng.choice(source) for _ in range(lines))


def _check_windows(prefix: str, suffix: str, prompt: Prompt) -> None:
    pw, sw = prompt.prefix, prompt.suffix
    assert prefix.endswith(pw) and suffix.startswith(sw)
    cursor_line = prefix[prefix.rfind("\n") + 1 :]
    assert pw.endswith(cursor_line)  # the cursor line is never cut
    dropped = prefix[: len(prefix) - len(pw)]
    assert dropped == "" or dropped.endswith("\n")  # cut at a line start
    assert sw == suffix or sw.endswith("\n")  # cut after a line end
    assert sw.startswith(suffix.split("\n", 1)[0])  # the cursor line's rest is kept


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("budget", [64, 257, 1000])
def test_long_text_is_cut_to_budget_at_line_boundaries(
    tok: TokenizerAdapter, fim: FimTokens, ref: MetaReference, mode: FimMode, budget: int
) -> None:
    doc = _document(400)
    cursor = doc.index("\n", len(doc) // 2) + 1 + 6  # inside a line, after its indentation
    prefix, suffix = doc[:cursor], doc[cursor:]
    prompt = build_completion_prompt(
        tok, prefix, suffix, fim_mode=mode, budget=budget, stepped=False
    )
    assert len(prompt.ids) <= budget
    _check_windows(prefix, suffix, prompt)
    assert list(prompt.ids) == ref.infilling_prompt_tokens(
        prompt.prefix, prompt.suffix, mode is FimMode.SPM
    )
    available = budget - 4
    suffix_ids = encode_infilling(tok, prompt.suffix)
    assert len(suffix_ids) <= available // 4
    # Maximal: one more line on either side would not fit.
    more_suffix = suffix[: suffix.find("\n", len(prompt.suffix)) + 1]
    assert len(encode_infilling(tok, more_suffix)) > available // 4
    more_prefix = _one_more_line(prefix, prompt.prefix)
    assert len(tok.encode(more_prefix)) > available - len(suffix_ids)
    # Stepped (the default): the same windows, the prefix from the first grid line on.
    stepped = build_completion_prompt(tok, prefix, suffix, fim_mode=mode, budget=budget)
    assert len(stepped.ids) <= budget and stepped.suffix == prompt.suffix
    _check_windows(prefix, suffix, stepped)
    assert list(stepped.ids) == ref.infilling_prompt_tokens(
        stepped.prefix, stepped.suffix, mode is FimMode.SPM
    )
    step = window_step(tok, available)
    grid = stepped_start(prefix, len(prefix) - len(prompt.prefix), step)
    assert stepped.prefix == prefix[grid:]
    if budget < 128:
        assert step == 0 and stepped == prompt
    else:
        assert step > 0 and grid % step < 100  # the first line start after a grid offset
        assert len(tok.encode(stepped.prefix)) >= (available - len(suffix_ids)) // 2


def _one_more_line(prefix: str, window: str) -> str:
    dropped = prefix[: len(prefix) - len(window) - 1]
    return prefix[dropped.rfind("\n") + 1 :]


def test_unused_suffix_budget_goes_to_the_prefix(tok: TokenizerAdapter) -> None:
    doc = _document(300)
    prompt = build_completion_prompt(
        tok, doc, "\n", fim_mode=FimMode.SPM, budget=500, stepped=False
    )
    assert prompt.suffix == "\n"
    assert len(tok.encode(prompt.prefix)) > 500 * 3 // 4  # more than its own share
    assert len(tok.encode(_one_more_line(doc, prompt.prefix))) > 500 - 4 - 1


def test_fit_windows_matches_the_prompt(tok: TokenizerAdapter) -> None:
    doc = _document(200)
    cursor = len(doc) // 3
    prompt = build_completion_prompt(
        tok, doc[:cursor], doc[cursor:], fim_mode=FimMode.PSM, budget=300
    )
    windows = fit_windows(tok, doc[:cursor], doc[cursor:], 300, overhead=4)
    assert windows == (prompt.prefix, prompt.suffix)
    pw, sw = fit_windows(tok, doc[:cursor], doc[cursor:], 300, overhead=4, suffix_share=0.0)
    assert sw == ""
    assert len(tok.encode(pw)) <= 296


@pytest.mark.parametrize("mode", MODES)
def test_a_cursor_line_longer_than_the_budget_is_cut_from_the_left(
    tok: TokenizerAdapter, mode: FimMode
) -> None:
    line = "total = " + " + ".join(f"value_{i}" for i in range(400))
    prefix = "import os\n" + line
    suffix = " + tail_é\n" + "x" * 9000 + "\nnext()\n"
    prompt = build_completion_prompt(tok, prefix, suffix, fim_mode=mode, budget=128)
    assert len(prompt.ids) <= 128
    assert prompt.prefix and line.endswith(prompt.prefix)
    assert len(tok.encode(prompt.prefix)) >= 96 - 8 - len(encode_infilling(tok, prompt.suffix))
    # the suffix's cursor line is too long too: its start is kept, cut at a token boundary
    assert (
        prompt.suffix and suffix.startswith(prompt.suffix) and "\n" in suffix[len(prompt.suffix) :]
    )
    ids = encode_infilling(tok, prompt.suffix)
    assert ids == encode_infilling(tok, suffix)[: len(ids)]


def test_a_long_line_is_cut_even_when_decoding_does_not_give_the_text_back() -> None:
    class Lossy(FakeTokenizer):
        def decode(self, ids: Sequence[int]) -> str:
            return "?" * len(ids)

    line = "y = " + "abc" * 1000
    prompt = build_completion_prompt(Lossy(), line, "", fim_mode=FimMode.SPM, budget=100)
    assert prompt.format is PromptFormat.LEFT_TO_RIGHT
    assert 50 <= len(prompt.ids) <= 100 and line.endswith(prompt.prefix)


def test_a_budget_below_the_fixed_tokens_is_a_prompt_error(tok: TokenizerAdapter) -> None:
    with pytest.raises(PromptError, match="budget"):
        build_completion_prompt(tok, "a", "b", fim_mode=FimMode.SPM, budget=3)
    prompt = build_completion_prompt(tok, "a", "b", fim_mode=FimMode.SPM, budget=4)
    assert len(prompt.ids) == 4 and prompt.prefix == prompt.suffix == ""


def test_windows_on_a_1mb_file_encode_only_window_sized_text(tok: TokenizerAdapter) -> None:
    doc = _document(45_000, seed=1)
    assert len(doc) > 1_000_000
    encoded: list[int] = []

    class Counting(TokenizerAdapter):
        def encode(self, text: str) -> list[int]:
            encoded.append(len(text))
            return super().encode(text)

    counting = Counting(tok.hf)
    budget = 4096
    for cursor in (len(doc) // 2, len(doc) - 3):
        encoded.clear()
        began = time.perf_counter()
        prompt = build_completion_prompt(
            counting, doc[:cursor], doc[cursor:], fim_mode=FimMode.SPM, budget=budget
        )
        elapsed = time.perf_counter() - began
        window = len(prompt.prefix) + len(prompt.suffix)
        assert len(prompt.ids) <= budget
        assert max(encoded) < 1.5 * window
        assert sum(encoded) < 8 * window, (len(encoded), sum(encoded), window)
        assert elapsed < 2.0


# --- left-to-right ---------------------------------------------------------------


@pytest.fixture(scope="module")
def byte_level(tmp_path_factory: pytest.TempPathFactory) -> TokenizerAdapter:
    return TokenizerAdapter.from_directory(
        build_byte_level_tokenizer(tmp_path_factory.mktemp("byte-level"))
    )


def test_left_to_right_without_fim_tokens(byte_level: TokenizerAdapter) -> None:
    assert byte_level.bos_token_id is None
    assert FimTokens.from_tokenizer(byte_level) is None
    prefix, suffix = "def add(a, b):\r\n    return ", "\r\n\r\nprint(add(1, 2))\r\n"
    prompt = build_completion_prompt(byte_level, prefix, suffix, fim_mode=FimMode.SPM, budget=256)
    assert prompt.format is PromptFormat.LEFT_TO_RIGHT
    # The trailing space is healed: the prompt ends at the last visible character.
    assert list(prompt.ids) == byte_level.encode("def add(a, b):\n    return")
    assert prompt.healed == " "
    assert prompt.suffix == lf(suffix)  # kept for post-processing, not in the ids
    assert prompt.stop_ids == byte_level.stop_token_ids


@pytest.mark.parametrize(
    ("prefix", "healed", "generated", "kept"),
    [
        ("x = f(", "", "a, b)", "a, b)"),
        ("    return ", " ", " a + b", "a + b"),
        ("    return ", " ", "a + b", "a + b"),
        ("def f():\n    ", "\n    ", "\n    pass", "pass"),
        ("def f():\n    ", "\n    ", "\n        pass", "    pass"),
        ("def f():\n\t", "\n\t", "\n", ""),
        ("    ", "    ", "    x", "x"),
        ("def f():\n", "\n", "\n    pass", "    pass"),
        ("x = 1\n\n", "\n", "\ny = 2", "y = 2"),
    ],
)
def test_left_to_right_heals_trailing_whitespace(
    byte_level: TokenizerAdapter, prefix: str, healed: str, generated: str, kept: str
) -> None:
    prompt = build_completion_prompt(byte_level, prefix, "", fim_mode=FimMode.SPM, budget=256)
    assert prompt.healed == healed
    assert list(prompt.ids) == byte_level.encode(prefix[: len(prefix) - len(healed)])
    assert prompt.strip_healed(generated) == kept


def test_left_to_right_cut_to_budget(byte_level: TokenizerAdapter) -> None:
    doc = _document(300)
    prompt = build_completion_prompt(byte_level, doc, "", fim_mode=FimMode.PSM, budget=100)
    assert 90 <= len(prompt.ids) <= 100
    shown = prompt.prefix + prompt.healed  # the healed line break is for the model to write
    assert doc.endswith(shown) and doc[: len(doc) - len(shown)].endswith("\n")


def test_left_to_right_forced_for_a_fim_tokenizer(
    tok: TokenizerAdapter, ref: MetaReference
) -> None:
    prompt = build_completion_prompt(
        tok, "def add(a, b):\n    return ", "\n", fim_mode=FimMode.SPM, budget=64, use_fim=False
    )
    assert prompt.format is PromptFormat.LEFT_TO_RIGHT
    assert list(prompt.ids) == [ref.bos_id, *ref.encode("def add(a, b):\n    return")]


# --- chat ------------------------------------------------------------------------

SYSTEM = "You explain code."
CODE = "def add(a, b):\n    return a + b\n"


def meta_chat(ref: MetaReference, dialog: list[dict[str, str]]) -> list[int]:
    """Meta's codellama `chat_completion` prompt (Llama 2 [INST] format)."""
    eos = ref.raw.token_to_id("</s>")
    if dialog[0]["role"] == "system":
        merged = "<<SYS>>\n" + dialog[0]["content"] + "\n<</SYS>>\n\n" + dialog[1]["content"]
        dialog = [{"role": dialog[1]["role"], "content": merged}, *dialog[2:]]
    ids: list[int] = []
    for q, a in zip(dialog[::2], dialog[1::2], strict=False):
        text = f"[INST] {q['content'].strip()} [/INST] {a['content'].strip()} "
        ids += [ref.bos_id, *ref.encode(text), eos]
    return [*ids, ref.bos_id, *ref.encode(f"[INST] {dialog[-1]['content'].strip()} [/INST]")]


DIALOGS = [
    [{"role": "user", "content": f"Explain:\n{CODE}"}],
    [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"  Explain:\n{CODE}  "}],
    [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "What is 1 + 1?"},
        {"role": "assistant", "content": " 2. "},
        {"role": "user", "content": f"Explain:\r\n{CODE}"},
    ],
]


@pytest.mark.parametrize("dialog", DIALOGS, ids=["user", "system", "multi-turn"])
def test_chat_fallback_is_meta_instruct_format(
    tok: TokenizerAdapter, ref: MetaReference, dialog: list[dict[str, str]]
) -> None:
    prompt = build_chat_prompt(tok, dialog, budget=1024)
    normalized = [{**m, "content": lf(m["content"])} for m in dialog]
    assert list(prompt.ids) == meta_chat(ref, normalized)
    assert prompt.format is PromptFormat.CHAT
    assert prompt.stop_ids == tok.stop_token_ids


@pytest.fixture(scope="module")
def instruct(tok_dir: Path) -> TokenizerAdapter:
    adapter = TokenizerAdapter.from_directory(tok_dir)
    adapter.hf.chat_template = CODE_LLAMA_INSTRUCT_TEMPLATE
    return adapter


@pytest.mark.parametrize("dialog", DIALOGS, ids=["user", "system", "multi-turn"])
def test_chat_template_of_code_llama_instruct_equals_meta(
    instruct: TokenizerAdapter, ref: MetaReference, dialog: list[dict[str, str]]
) -> None:
    prompt = build_chat_prompt(instruct, dialog, budget=1024)
    normalized = [{**m, "content": lf(m["content"])} for m in dialog]
    assert list(prompt.ids) == instruct.apply_chat_template(normalized)
    assert list(prompt.ids) == meta_chat(ref, normalized)


def test_chat_uses_the_tokenizers_own_template(tok_dir: Path) -> None:
    chatml = TokenizerAdapter.from_directory(tok_dir)
    chatml.hf.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
    )
    prompt = build_chat_prompt(chatml, DIALOGS[1], budget=1024)
    assert chatml.decode(prompt.ids).startswith(f"<|system|>\n{SYSTEM}\n<|user|>")


@pytest.mark.parametrize("which", ["fallback", "template"])
def test_chat_trims_the_longest_user_message_from_the_middle(
    tok: TokenizerAdapter, instruct: TokenizerAdapter, which: str
) -> None:
    adapter = tok if which == "fallback" else instruct
    body = "".join(f"line_{i} = {i}\n" for i in range(400))
    dialog = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Explain this:\n{body}Be brief."},
    ]
    budget = 300
    prompt = build_chat_prompt(adapter, dialog, budget=budget)
    assert budget - 16 <= len(prompt.ids) <= budget
    text = adapter.decode(prompt.ids)
    assert text.count("[INST]") == 1 and text.endswith("[/INST]")
    assert "<<SYS>>\nYou explain code.\n<</SYS>>" in text
    assert "Explain this:\nline_0 = 0\n" in text and "line_399 = 399\nBe brief. [/INST]" in text
    assert "\n...\n" in text and "line_200 = 200" not in text


def test_chat_trims_a_single_huge_line(tok: TokenizerAdapter) -> None:
    dialog = [{"role": "user", "content": "Explain: " + "x + " * 20_000 + "y"}]
    prompt = build_chat_prompt(tok, dialog, budget=200)
    assert 160 <= len(prompt.ids) <= 200


def test_chat_that_cannot_fit_is_a_prompt_error(tok: TokenizerAdapter) -> None:
    dialog = [{"role": "system", "content": "rule " * 500}, {"role": "user", "content": "hi"}]
    with pytest.raises(PromptError, match="budget"):
        build_chat_prompt(tok, dialog, budget=100)


@pytest.mark.parametrize(
    "dialog",
    [
        [],
        [{"role": "system", "content": SYSTEM}],
        [{"role": "assistant", "content": "hi"}],
        [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
    ],
)
def test_chat_roles_are_checked(tok: TokenizerAdapter, dialog: list[dict[str, str]]) -> None:
    with pytest.raises(PromptError, match="user"):
        build_chat_prompt(tok, dialog, budget=100)


# --- the tiny model --------------------------------------------------------------

ADD_FILE = "def add(a, b):\n    return a + b\n\n\nprint(add(1, 2))\n"
COUNTER_FILE = (
    "class Counter:\n    def __init__(self):\n        self.value = 0\n\n"
    "    def increment(self):\n        self.value += 1\n        return self.value\n"
)


def _split(doc: str, middle: str) -> tuple[str, str, str]:
    start = doc.index(middle)
    return doc[:start], doc[start + len(middle) :], middle


def test_tiny_model_infills_its_examples(tok_dir: Path, tmp_path: Path) -> None:
    examples = [
        _split(ADD_FILE, "a + b"),
        _split(COUNTER_FILE, "        self.value += 1\n        return self.value\n"),
        _split(ADD_FILE, "(a, b):\n    return a"),
    ]
    chat: list[tuple[str | Sequence[Mapping[str, str]], str]] = [
        (f"Explain:\n{ADD_FILE}", "It adds two numbers."),
        ([{"role": "system", "content": SYSTEM}, {"role": "user", "content": CODE}], "A sum."),
    ]
    began = time.perf_counter()
    model_dir = build_tiny_code_llama(tmp_path / "model", tok_dir, examples, chat, FimMode.SPM)
    assert time.perf_counter() - began < 30
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(model_dir))
    assert config.rope_theta == 1_000_000.0 and config.max_position_embeddings >= 2048
    assert (model_dir / "model.safetensors").exists()
    served = TokenizerAdapter.from_directory(model_dir)  # tokenizer files travel with the model
    for prefix, suffix, middle in examples:
        prompt = build_completion_prompt(served, prefix, suffix, fim_mode=FimMode.SPM, budget=1536)
        out = greedy_complete(model_dir, prompt.ids)
        assert decode_continuation(served, out) == middle
    for messages, answer in chat:
        dialog = [{"role": "user", "content": messages}] if isinstance(messages, str) else messages
        prompt = build_chat_prompt(served, dialog, budget=1536)
        assert served.decode(greedy_complete(model_dir, prompt.ids)) == answer


def test_a_tokenizer_without_weak_references_or_hash_still_builds_prompts() -> None:
    class Slotted:  # no __weakref__: FakeTokenizer's methods, copied in
        __slots__ = ()
        bos_token_id = None
        stop_token_ids: frozenset[int] = frozenset()
        encode, decode = FakeTokenizer.encode, FakeTokenizer.decode
        token_to_id = FakeTokenizer.token_to_id
        apply_chat_template = FakeTokenizer.apply_chat_template

    class Unhashable(FakeTokenizer):
        __hash__ = None  # type: ignore[assignment]

    for tok in (Slotted(), Unhashable()):
        assert FimTokens.from_tokenizer(tok) is None and not adds_dummy_space(tok)  # type: ignore[arg-type]
        prompt = build_completion_prompt(tok, "x = ", "\n", fim_mode=FimMode.AUTO, budget=64)  # type: ignore[arg-type]
        assert prompt.ids == tuple(ord(c) for c in "x =") and prompt.healed == " "
