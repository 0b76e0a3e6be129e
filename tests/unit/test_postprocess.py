"""Golden post-processing cases (tests/data/postprocess/*.toml) and should_stop agreeing with them.

Each case is a document with a `<|cursor|>` marker, the model's raw text and
the exact ghost text expected. Optional keys: `mode` (asserted), `crlf = true`
(the document's line endings become CRLF), `tree = false` (no parse: the text
rules alone), `prompt = "left-to-right"` (the model did not see the code after
the cursor; default: a fill-in-the-middle prompt), `source` (the public report
the case comes from).
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from code_llama_ls.pipeline.postprocess import StopCheck, postprocess, should_stop
from code_llama_ls.syntax import parser_for
from code_llama_ls.syntax.cursor import CompletionMode, CursorContext, classify_cursor, scan_line
from code_llama_ls.syntax.errors import InsertionParser

CURSOR = "<|cursor|>"
DATA = Path(__file__).resolve().parent.parent / "data" / "postprocess"


def _load_cases() -> list[Any]:
    cases = []
    for path in sorted(DATA.glob("*.toml")):
        with path.open("rb") as file:
            for case in tomllib.load(file)["case"]:
                cases.append(pytest.param(case, id=f"{path.stem}: {case['name']}"))
    for path in sorted((DATA / "humaneval").glob("*.json")):
        case = _humaneval_case(json.loads(path.read_text(encoding="utf-8")))
        cases.append(pytest.param(case, id=f"humaneval: {case['name']}"))
    return cases


def _humaneval_case(record: dict[str, Any]) -> dict[str, Any]:
    """A case from the oracle benchmark's JSON (see humaneval/README.md) in the TOML shape."""
    case = {
        "name": record["name"],
        "language": record["language"],
        "mode": record["mode"],
        "document": record["prompt_tail"] + CURSOR + record["suffix_head"],
        "generated": record["emitted"],
        "expected": record["expected"],
    }
    if "known_limitation" in record:
        case["known_limitation"] = record["known_limitation"]
    return case


CASES = _load_cases()


@dataclass(frozen=True)
class _Case:
    """A golden case's cursor, as the server would see it."""

    ctx: CursorContext
    suffix: str
    parse: InsertionParser | None
    sees_suffix: bool

    def postprocess(self, generated: str) -> str:
        return postprocess(
            generated, self.ctx, self.suffix, sees_suffix=self.sees_suffix, parse=self.parse
        )

    def should_stop(self, text: str) -> bool:
        return should_stop(text, self.ctx, sees_suffix=self.sees_suffix)


def _context(case: dict[str, Any]) -> _Case:
    """Classify the case's cursor with a real parse, as `completion.complete` does."""
    document: str = case["document"]
    crlf = bool(case.get("crlf"))
    if crlf:
        document = document.replace("\n", "\r\n")
    offset = document.index(CURSOR)
    document = document.replace(CURSOR, "", 1)
    language: str | None = case.get("language")
    tree = None
    if language is not None and case.get("tree", True):
        tree = parser_for(language).parse(document.encode("utf-8"))
    ctx = classify_cursor(document, offset, tree, language)
    parse = None
    if tree is not None and language is not None:
        parse = InsertionParser(language, tree, document, offset, crlf)
    suffix = document[offset:].replace("\r\n", "\n")
    return _Case(ctx, suffix, parse, case.get("prompt", "fim") != "left-to-right")


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 30
    languages = {param.values[0].get("language") for param in CASES}
    assert {"python", "javascript", "typescript", "go", "rust", "c", "cpp", "java"} <= languages


@pytest.mark.parametrize("case", CASES)
def test_golden(case: dict[str, Any]) -> None:
    cursor = _context(case)
    if "mode" in case:
        assert cursor.ctx.mode == CompletionMode(case["mode"]), cursor.ctx.reason
    shown = cursor.postprocess(case["generated"])
    if "known_limitation" in case:  # documented, by design: tell us when it changes
        assert shown != case["expected"], f"no longer a known limitation: {case['name']}"
    else:
        assert shown == case["expected"]


@pytest.mark.parametrize("case", CASES)
def test_should_stop_agrees_with_postprocess(case: dict[str, Any]) -> None:
    """Streaming char by char and stopping when told must not change the result."""
    cursor = _context(case)
    generated: str = case["generated"]
    so_far = ""
    for char in generated:
        if cursor.should_stop(so_far):
            break
        so_far += char
    assert cursor.postprocess(so_far) == cursor.postprocess(generated)


@pytest.mark.parametrize("case", CASES)
def test_should_stop_after_any_prefix_agrees(case: dict[str, Any]) -> None:
    """Wherever should_stop first says True, every longer text gives the same result."""
    cursor = _context(case)
    generated: str = case["generated"]
    for end in range(len(generated) + 1):
        if cursor.should_stop(generated[:end]):
            expected = cursor.postprocess(generated[:end])
            for longer in range(end, len(generated) + 1):
                assert cursor.postprocess(generated[:longer]) == expected
            return


def _ctx(mode: CompletionMode, **fields: Any) -> CursorContext:
    values: dict[str, Any] = {
        "reason": "test",
        "line_prefix": "",
        "line_suffix": "",
        "indent": "",
        "block_indent_width": 0,
        "language": "python",
    }
    values.update(fields)
    return CursorContext(mode=mode, **values)


def test_none_mode_shows_nothing_and_stops_at_once() -> None:
    ctx = _ctx(CompletionMode.NONE)
    assert postprocess("x = 1", ctx, "") == ""
    assert should_stop("", ctx)


def test_single_line_stops_at_the_first_newline() -> None:
    ctx = _ctx(CompletionMode.SINGLE_LINE, line_prefix="x = ")
    assert not should_stop("foo(", ctx)
    assert should_stop("foo()\n", ctx)
    assert should_stop("\n", ctx)  # a blank first line can only give ""
    assert postprocess("\nfoo()", ctx, "\n") == ""


def test_multi_line_waits_for_a_complete_dedented_line() -> None:
    ctx = _ctx(CompletionMode.MULTI_LINE, line_prefix="def f():", block_indent_width=1)
    assert not should_stop("\n    return 1\nx", ctx)  # "x" might still become "x = 1" or ")"
    assert should_stop("\n    return 1\nx = 1\n", ctx)


def _before_return_total() -> CursorContext:
    """A blank line in a block, `    return total` the next line."""
    return _ctx(
        CompletionMode.MULTI_LINE,
        line_prefix="    ",
        indent="    ",
        block_indent_width=4,
        next_lines=("    return total",),
    )


def test_multi_line_stops_when_the_next_line_is_retyped() -> None:
    ctx = _before_return_total()
    generated = "total += 1\n    return total\n    # more"
    assert should_stop("total += 1\n    return total\n", ctx)
    assert postprocess(generated, ctx, "\n    return total\n") == "total += 1"


def test_output_is_the_model_text_trimmed_indented_or_closed() -> None:
    """Nothing new: each kept line is the model's line (or its start), perhaps re-indented,
    perhaps followed by closers of what the completion opened."""
    for param in CASES:
        case = param.values[0]
        kept = _context(case).postprocess(case["generated"])
        model_lines = case["generated"].split("\n")
        for number, line in enumerate(kept.split("\n") if kept else []):
            model_line = model_lines[number].strip()
            content = line.strip()
            if model_line.startswith(content):
                continue  # the model's line, or its start
            assert content.startswith(model_line), case["name"]
            assert set(content[len(model_line) :]) <= set(")]}\"'`"), case["name"]


def test_stop_check_judges_again_only_when_a_line_completes() -> None:
    ctx = _before_return_total()
    check = StopCheck(ctx)
    text = ""
    for chunk in ("total ", "+= 1\n", "    return", " total\n", "    # more"):
        text += chunk
        assert check(text) == should_stop(text, ctx)
    assert check(text)


def test_syntax_cut_drops_a_closer_the_document_already_has() -> None:
    document = "values = sorted(\n    <|cursor|>\n)\n"
    offset = document.index(CURSOR)
    text = document.replace(CURSOR, "", 1)
    tree = parser_for("python").parse(text.encode("utf-8"))
    ctx = classify_cursor(text, offset, tree, "python")
    parse = InsertionParser("python", tree, text, offset, False)
    assert postprocess("items, key=len)", ctx, text[offset:], parse=parse) == "items, key=len"
    assert postprocess("items, key=len)", ctx, text[offset:]) == "items, key=len)"  # no parse


# On a blank top-level line, the model indents the lines inside the list as if
# the cursor were 4 columns further right; the line that closes the list's
# bracket moves them left to the first line. A "(" in a comment must not count
# (post-processing used to take "//" for the comment of all but Python).
_COMMENTED_BRACKET = "values = [  {marker} (the first ones\n      1,\n    ]"
_ALIGNED = "values = [  {marker} (the first ones\n  1,\n]"


@pytest.mark.parametrize(
    ("language", "marker"),
    [
        ("python", "#"),
        ("ruby", "#"),
        ("shellscript", "#"),
        ("sh", "#"),
        ("javascript", "//"),
        ("rust", "//"),
        (None, "#"),
        (None, "//"),
    ],
)
def test_a_bracket_in_a_line_comment_does_not_count(language: str | None, marker: str) -> None:
    generated = _COMMENTED_BRACKET.format(marker=marker)
    assert scan_line(generated.split("\n")[0], language)[1] == "comment"
    assert postprocess(
        generated, _ctx(CompletionMode.MULTI_LINE, language=language), ""
    ) == _ALIGNED.format(marker=marker)


@pytest.mark.parametrize("language", ["python", "c", "java"])
def test_a_backtick_does_not_hide_the_brackets_after_it(language: str) -> None:
    """A backtick is no quote here (post-processing took it for one in all but Rust)."""
    generated = "label = `(\n        1\n    )"
    assert scan_line("label = `(", language) == (10, None)
    assert (
        postprocess(generated, _ctx(CompletionMode.MULTI_LINE, language=language), "")
        == "label = `(\n    1\n)"
    )


@pytest.mark.parametrize("language", ["javascript", "typescript", "tsx", "go"])
def test_a_backtick_opens_a_string_in_javascript_and_go(language: str) -> None:
    generated = "label = `(\n        1\n    )"
    assert scan_line("label = `(", language)[1] == "string"
    assert (
        postprocess(generated, _ctx(CompletionMode.MULTI_LINE, language=language), "") == generated
    )
