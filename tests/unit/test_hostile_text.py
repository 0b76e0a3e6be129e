"""Documents that are legal but hostile: lone surrogates, and megabyte-long minified lines.

A lone surrogate ("\\ud83d", which JSON allows) reaches the model as U+FFFD,
positions unchanged; completions, the prompt report and explanations answer
as they do for U+FFFD itself, and never send a surrogate back. A 1 MB line
costs no more than the prompt can show: a cursor on it gets nothing before
anything is encoded, and a cursor beside it encodes at most what the budget
can use. Behaviour is asserted through what the tokenizer was given, never
through timings.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from code_llama_ls.cancel import CancelToken
from code_llama_ls.context.builder import ContextBuilder
from code_llama_ls.context.index import WorkspaceIndex
from code_llama_ls.context.outline import outline_file
from code_llama_ls.engine.remote_api import Dialect, parse_event
from code_llama_ls.engine.tokenizer_files import FileTokenizer
from code_llama_ls.engine.transformers_engine import TransformersEngine
from code_llama_ls.pipeline.complete import PreparedPrompt, complete, prepare_prompt
from code_llama_ls.pipeline.explain import ExplainOptions, ExplainRequest, explain
from code_llama_ls.pipeline.fim import FimMode
from code_llama_ls.pipeline.prompt import completion_overhead, fit_local, normalize_newlines
from code_llama_ls.pipeline.reach import reach_end, reach_start
from code_llama_ls.pipeline.request import Completion, CompletionOptions, CompletionRequest
from code_llama_ls.syntax.cursor import MAX_LINE_CHARS, MINIFIED_LINE, CompletionMode
from code_llama_ls.text.documents import DocumentStore, Snapshot
from code_llama_ls.tokens.tokenizer import REPLACEMENT, max_chars, tokenizable
from code_llama_ls.tools.prompt_report import prompt_report
from tests.scenarios import ADD_FILE, CURSOR
from tests.tiny_models import (
    CODE_LLAMA_INSTRUCT_TEMPLATE,
    TokenizerOnlyEngine,
    build_byte_level_tokenizer,
    build_code_llama_tokenizer,
)

SURROGATE = "\ud83d"
ADD_URI = "file:///project/add.py"


def _valid(text: str) -> bool:
    """Whether an editor can take `text`: it encodes as UTF-8 (no lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --- the boundary ------------------------------------------------------------------------


def test_tokenizable_replaces_each_lone_surrogate_by_one_code_point() -> None:
    ascii_text = "def f():\n    return 1\n"
    assert tokenizable(ascii_text) is ascii_text
    assert tokenizable("é 😀 中") == "é 😀 中"
    mixed = f"a{SURROGATE}b\udc00\udfff"
    assert tokenizable(mixed) == f"a{REPLACEMENT}b{REPLACEMENT}{REPLACEMENT}"
    assert len(tokenizable(mixed)) == len(mixed)


@pytest.fixture(scope="module")
def code_llama_tok(tmp_path_factory: pytest.TempPathFactory) -> FileTokenizer:
    return FileTokenizer(build_code_llama_tokenizer(tmp_path_factory.mktemp("tok")))


@pytest.fixture(scope="module")
def byte_level_tok(tmp_path_factory: pytest.TempPathFactory) -> FileTokenizer:
    return FileTokenizer(build_byte_level_tokenizer(tmp_path_factory.mktemp("bpe")))


def test_the_tokenizer_reads_a_lone_surrogate_as_u_fffd(
    code_llama_tok: FileTokenizer, byte_level_tok: FileTokenizer
) -> None:
    for tok in (code_llama_tok, byte_level_tok):
        assert tok.encode(f"x = '{SURROGATE}'") == tok.encode(f"x = '{REPLACEMENT}'")
        assert _valid(tok.decode(tok.encode(f"x = '{SURROGATE}'")))


def test_a_chat_template_reads_a_lone_surrogate_as_u_fffd(tmp_path: Path) -> None:
    directory = build_code_llama_tokenizer(tmp_path, chat_template=CODE_LLAMA_INSTRUCT_TEMPLATE)
    tok = FileTokenizer(directory)
    chat = [{"role": "user", "content": f"explain '{SURROGATE}'"}]
    fffd = [{"role": "user", "content": f"explain '{REPLACEMENT}'"}]
    assert tok.apply_chat_template(chat) == tok.apply_chat_template(fffd) is not None


def test_max_token_chars_is_the_longest_vocabulary_entry(
    code_llama_tok: FileTokenizer,
) -> None:
    vocab = json.loads((code_llama_tok.directory / "tokenizer.json").read_text())["model"]["vocab"]
    longest = max(map(len, vocab))
    assert code_llama_tok.max_token_chars == longest
    text = "".join(random.Random(0).choice("ab \n{}()x=1") for _ in range(5000))
    assert len(code_llama_tok.encode(text)) * longest >= len(text)


def test_remote_text_never_carries_a_lone_surrogate() -> None:
    event = {"choices": [{"text": f"x{SURROGATE}"}]}
    assert parse_event(Dialect.OPENAI, event).text == f"x{REPLACEMENT}"
    tgi = {"token": {"text": SURROGATE, "id": 5, "special": False}}
    assert parse_event(Dialect.TGI, tgi).text == REPLACEMENT


def test_outline_of_text_with_a_lone_surrogate_keeps_its_definitions() -> None:
    text = f"def f():\n    return '{SURROGATE}'\n\n\ndef g():\n    pass\n"
    outline = outline_file(text, "python")
    assert [(d.name, d.start_line) for d in outline.definitions] == [("f", 0), ("g", 4)]


# --- completions, the prompt report and explanations with the tiny model -------------------


@pytest.fixture(scope="module")
def engine(tiny_model: Path) -> TransformersEngine:
    return TransformersEngine.from_pretrained(tiny_model, device="cpu")


def _open(text: str, uri: str = ADD_URI) -> tuple[Snapshot, int]:
    """A snapshot of `text` without its CURSOR marker, and the cursor's offset."""
    offset = text.index(CURSOR)
    return DocumentStore().open(uri, "python", 1, text.replace(CURSOR, "")), offset


OPTIONS = CompletionOptions(FimMode.SPM, max_new_tokens=16, context_tokens=1536 + 16)

PLACES = {
    "alone": f"{SURROGATE}{CURSOR}",
    "alone, on the next line": f"{CURSOR}\n{SURROGATE}",
    "before the cursor": ADD_FILE.replace(CURSOR, f"{SURROGATE} {CURSOR}"),
    "after the cursor": ADD_FILE.replace(CURSOR, f"{CURSOR} {SURROGATE}"),
    "in the suffix": ADD_FILE.replace("print(add(1, 2))", f"print(add(1, 2))  # {SURROGATE}"),
    "in the prefix": f"# {SURROGATE}\udc00\n{ADD_FILE}",
    "in a string": ADD_FILE.replace(CURSOR, f"'{SURROGATE}' + {CURSOR}"),
}


def _run(engine: TransformersEngine, text: str) -> tuple[Completion, PreparedPrompt]:
    snapshot, offset = _open(text)
    completion = complete(CompletionRequest(snapshot, offset, OPTIONS), engine, CancelToken())
    return completion, prepare_prompt(CompletionRequest(snapshot, offset, OPTIONS), engine)


@pytest.mark.parametrize("place", PLACES)
def test_a_lone_surrogate_completes_as_u_fffd_does(engine: TransformersEngine, place: str) -> None:
    text = PLACES[place]
    completion, prepared = _run(engine, text)
    fffd = text.replace(SURROGATE, REPLACEMENT).replace("\udc00", REPLACEMENT)
    expected, expected_prepared = _run(engine, fffd)
    assert (completion.text, completion.mode) == (expected.text, expected.mode)
    assert _valid(completion.text)
    assert prepared.prompt is not None and expected_prepared.prompt is not None
    assert prepared.prompt.ids == expected_prepared.prompt.ids
    report = prompt_report(prepared, engine.name)
    assert report["ids"] == list(prepared.prompt.ids)
    assert _valid(report["text"]) and REPLACEMENT in report["text"]


def test_a_lone_surrogate_in_workspace_context(engine: TransformersEngine, tmp_path: Path) -> None:
    """A snippet of another open document holding a surrogate reaches the model as U+FFFD."""
    helper = tmp_path / "helper.py"
    app = tmp_path / "app.py"

    def prepared_with(char: str) -> tuple[Completion, PreparedPrompt]:
        index = WorkspaceIndex()
        helper_text = f"def shout(x):\n    return x + '{char}'\n"
        assert index.update(str(helper), "python", helper_text, is_open=True)
        builder = ContextBuilder(index)
        snapshot, offset = _open(f"print(shout({CURSOR}))\n", app.as_uri())
        completion = complete(
            CompletionRequest(snapshot, offset, OPTIONS), engine, CancelToken(), context=builder
        )
        return completion, prepare_prompt(
            CompletionRequest(snapshot, offset, OPTIONS), engine, builder
        )

    completion, prepared = prepared_with(SURROGATE)
    expected, expected_prepared = prepared_with(REPLACEMENT)
    assert SURROGATE in prepared.context.text  # the snippet is the document's own text
    assert prepared.prompt is not None and expected_prepared.prompt is not None
    assert prepared.prompt.ids == expected_prepared.prompt.ids
    assert completion.text == expected.text and _valid(completion.text)
    assert _valid(prompt_report(prepared, engine.name)["text"])


def test_an_explanation_of_text_with_a_lone_surrogate(engine: TransformersEngine) -> None:
    def explained(char: str) -> tuple[str, int]:
        text = f"def add(a, b):\n    return a + b  # {char}\n"
        snapshot = DocumentStore().open(ADD_URI, "python", 1, text)
        request = ExplainRequest(snapshot, 0, len(text), ExplainOptions(max_new_tokens=16))
        result = explain(request, engine, CancelToken())
        return result.markdown, result.prompt_tokens

    markdown, tokens = explained(SURROGATE)
    assert (markdown, tokens) == explained(REPLACEMENT)
    assert _valid(markdown)


# --- megabyte lines ------------------------------------------------------------------------


class CountingTokenizer:
    """A tokenizer that records the length of every text it is asked to encode."""

    def __init__(self, inner: FileTokenizer) -> None:
        self.inner = inner
        self.encoded: list[int] = []

    @property
    def bos_token_id(self) -> int | None:
        return self.inner.bos_token_id

    @property
    def stop_token_ids(self) -> frozenset[int]:
        return self.inner.stop_token_ids

    @property
    def max_token_chars(self) -> int:
        return self.inner.max_token_chars

    def encode(self, text: str) -> list[int]:
        self.encoded.append(len(text))
        return self.inner.encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        return self.inner.decode(ids)

    def token_to_id(self, token: str) -> int | None:
        return self.inner.token_to_id(token)

    def apply_chat_template(self, messages: Sequence[Mapping[str, str]]) -> list[int] | None:
        return self.inner.apply_chat_template(messages)


BUDGET = 2048
BIG_OPTIONS = CompletionOptions(FimMode.SPM, max_new_tokens=64, context_tokens=BUDGET + 64)


def _minified(size: int) -> str:
    """`size` characters of one-line minified JavaScript."""
    rng = random.Random(7)
    parts, total, k = [], 0, 0
    while total < size:
        k += 1
        a, b, c = rng.sample("abcdefghnoprstuvw", 3)
        part = rng.choice(
            [
                f"function {a}{k}({b},{c}){{return {b}+{c}*{k}}}",
                f"var {a}{k}={b}.map(function({c}){{return {c}.id}});",
                f'if({a}&&{b}.length>{k}){{{c}.push("x{k}")}}',
            ]
        )
        parts.append(part)
        total += len(part)
    return "".join(parts)[:size]


@pytest.fixture(scope="module")
def minified() -> str:
    return _minified(1_000_000 - 100)


def _engine(tok: FileTokenizer) -> TokenizerOnlyEngine:
    return TokenizerOnlyEngine(CountingTokenizer(tok))


def _js(text: str, uri: str = "file:///project/app.min.js") -> Snapshot:
    return DocumentStore().open(uri, "javascript", 1, text)


@pytest.mark.parametrize("where", [0, 500_000, -1])
def test_a_cursor_on_a_minified_line_gets_nothing_before_any_encoding(
    code_llama_tok: FileTokenizer, minified: str, where: int
) -> None:
    engine = _engine(code_llama_tok)
    snapshot = _js(minified)
    offset = len(minified) if where == -1 else where
    prepared = prepare_prompt(CompletionRequest(snapshot, offset, BIG_OPTIONS), engine)  # type: ignore[arg-type]
    assert (prepared.cursor.mode, prepared.cursor.reason) == (CompletionMode.NONE, MINIFIED_LINE)
    assert prepared.prompt is None and engine.tokenizer.encoded == []
    completion = complete(CompletionRequest(snapshot, offset, BIG_OPTIONS), engine, CancelToken())  # type: ignore[arg-type]
    assert (completion.text, completion.reason) == ("", MINIFIED_LINE)
    assert engine.tokenizer.encoded == []


def test_a_long_line_of_ordinary_code_still_completes(
    code_llama_tok: FileTokenizer,
) -> None:
    line = "values = [" + ", ".join(str(i) for i in range(80)) + ", "
    assert 300 < len(line) < MAX_LINE_CHARS
    snapshot = DocumentStore().open("file:///project/v.py", "python", 1, line + "]\n")
    prepared = prepare_prompt(
        CompletionRequest(snapshot, len(line), BIG_OPTIONS), _engine(code_llama_tok)
    )  # type: ignore[arg-type]
    assert prepared.cursor.mode is CompletionMode.SINGLE_LINE
    assert prepared.prompt is not None and prepared.local is not None
    assert prepared.local.prefix == line


@pytest.mark.parametrize("tokenizer", ["code_llama_tok", "byte_level_tok"])
@pytest.mark.parametrize("with_context", [False, True])
def test_a_cursor_beside_a_minified_line_encodes_at_most_what_the_budget_can_use(
    request: pytest.FixtureRequest,
    minified: str,
    tmp_path: Path,
    tokenizer: str,
    with_context: bool,
) -> None:
    tok: FileTokenizer = request.getfixturevalue(tokenizer)
    head = "function main() {\n  var x = 1;\n"
    tail = "\n  return x;\n}\n"
    for text, offset in [
        (minified + "\n" + head, len(minified) + 1 + len(head)),  # below the line
        (head + "\n" + minified + tail, len(head)),  # above it
    ]:
        engine = _engine(tok)
        builder = None
        if with_context:
            index = WorkspaceIndex()
            uri = (tmp_path / "app.js").as_uri()
            assert not index.update(str(tmp_path / "app.js"), "javascript", text, is_open=True)
            builder = ContextBuilder(index)
        else:
            uri = "file:///project/app.js"
        snapshot = _js(text, uri)
        prepared = prepare_prompt(CompletionRequest(snapshot, offset, BIG_OPTIONS), engine, builder)  # type: ignore[arg-type]
        assert prepared.prompt is not None and prepared.local is not None
        assert len(prepared.prompt.ids) <= prepared.budget
        assert minified[:100] not in prepared.local.prefix + prepared.local.suffix
        # Nothing longer than the reach was encoded; in all, a few small encodes of the short
        # lines (the minified line is out of the window), not a megabyte.
        assert max(engine.tokenizer.encoded) <= max_chars(tok, prepared.budget)
        assert sum(engine.tokenizer.encoded) < 5_000, engine.tokenizer.encoded


def _document(lines: int, seed: int) -> str:
    """Python-looking lines, some blank, some indented, some long."""
    rng = random.Random(seed)
    out = []
    for i in range(lines):
        roll = rng.random()
        if roll < 0.1:
            out.append("")
        elif roll < 0.15:
            out.append("    x = " + " + ".join(f"v{j}" for j in range(rng.randint(50, 150))))
        else:
            out.append("    " * rng.randint(0, 2) + f"value_{i} = compute({i}, {rng.random():.3f})")
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("tokenizer", ["code_llama_tok", "byte_level_tok"])
@pytest.mark.parametrize("seed", range(4))
def test_the_reach_cut_leaves_the_local_window_exactly_as_on_the_whole_text(
    request: pytest.FixtureRequest, tokenizer: str, seed: int
) -> None:
    """With a small budget, most of a long document is out of reach: windows are unchanged."""
    tok: FileTokenizer = request.getfixturevalue(tokenizer)
    newline = "\r\n" if seed % 2 else "\n"
    text = _document(3000, seed).replace("\n", newline)
    rng = random.Random(seed)
    snapshot = DocumentStore().open("file:///project/doc.py", "python", 1, text)
    # A blank line (a left-to-right prompt heals its "\n"), then anywhere.
    blank = text.index(newline * 2, len(text) // 3) + len(newline)
    for offset in [blank, *(rng.randrange(len(text) // 4, len(text)) for _ in range(8))]:
        options = CompletionOptions(FimMode.SPM, max_new_tokens=16, context_tokens=96 + 16)
        prepared = prepare_prompt(CompletionRequest(snapshot, offset, options), _engine(tok))  # type: ignore[arg-type]
        if prepared.prompt is None:
            continue
        available = prepared.budget - completion_overhead(tok)
        whole = fit_local(
            tok,
            normalize_newlines(text[:offset]),
            normalize_newlines(text[offset:]),
            available,
        )
        assert prepared.local == whole


@pytest.mark.parametrize("tokenizer", ["code_llama_tok", "byte_level_tok"])
def test_a_cursor_below_a_line_out_of_reach_is_prompted_as_on_the_whole_text(
    request: pytest.FixtureRequest, tokenizer: str
) -> None:
    """The cut leaves only blank lines before the cursor: healing still sees a document above."""
    tok: FileTokenizer = request.getfixturevalue(tokenizer)
    long_line = "x = " + " + ".join(f"value_{i}" for i in range(400))  # over the reach
    options = CompletionOptions(FimMode.SPM, max_new_tokens=16, context_tokens=96 + 16)
    for text in (f"{long_line}\n\n", f"{long_line}\n\n    ", f"{long_line}\n  \n\n"):
        snapshot = DocumentStore().open("file:///project/doc.py", "python", 1, text)
        prepared = prepare_prompt(CompletionRequest(snapshot, len(text), options), _engine(tok))  # type: ignore[arg-type]
        available = prepared.budget - completion_overhead(tok)
        assert max_chars(tok, available) < len(long_line)
        assert prepared.local == fit_local(tok, text, "", available)


def test_reach_cuts_fall_at_line_starts() -> None:
    text = "aaaa\nbbbb\r\ncccc\rdddd\neeee"
    cursor = text.index("dddd") + 2
    assert reach_start(text, cursor, 100) == 0
    assert text[reach_start(text, cursor, 6) :].startswith("dddd")  # after a lone "\r"
    assert text[reach_start(text, cursor, 12) :].startswith("cccc")  # after "\r\n"
    assert reach_start(text, cursor, 2) == cursor - 2  # no line break in range: mid-line
    assert reach_end(text, 0, 100) == len(text)
    assert text[: reach_end(text, 0, 12)].endswith("bbbb\r\n")
    assert text[: reach_end(text, 0, 16)].endswith("cccc\r")
    assert reach_end(text, 0, 3) == 3
