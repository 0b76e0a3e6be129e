"""Golden post-processing cases (tests/data/postprocess/*.toml) and should_stop agreeing with them.

Each case is a document with a `<|cursor|>` marker, the model's raw text and
the exact ghost text expected. Optional keys: `mode` (asserted), `crlf = true`
(the document's line endings become CRLF), `tree = false` (no parse: the text
rules alone).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from code_llama_ls.postprocess import postprocess, should_stop
from code_llama_ls.syntax import parser_for
from code_llama_ls.syntax.cursor import CompletionMode, CursorContext, classify_cursor

CURSOR = "<|cursor|>"
DATA = Path(__file__).resolve().parent.parent / "data" / "postprocess"


def _load_cases() -> list[Any]:
    cases = []
    for path in sorted(DATA.glob("*.toml")):
        with path.open("rb") as file:
            for case in tomllib.load(file)["case"]:
                cases.append(pytest.param(case, id=f"{path.stem}: {case['name']}"))
    return cases


CASES = _load_cases()


def _context(case: dict[str, Any]) -> tuple[CursorContext, str]:
    """Classify the case's cursor with a real parse; also return the LF suffix."""
    document: str = case["document"]
    if case.get("crlf"):
        document = document.replace("\n", "\r\n")
    offset = document.index(CURSOR)
    document = document.replace(CURSOR, "", 1)
    language: str | None = case.get("language")
    tree = None
    if language is not None and case.get("tree", True):
        tree = parser_for(language).parse(document.encode("utf-8"))
    ctx = classify_cursor(document, offset, tree, language)
    return ctx, document[offset:].replace("\r\n", "\n")


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 30
    languages = {param.values[0].get("language") for param in CASES}
    assert {"python", "javascript", "typescript", "go", "rust", "c", "cpp", "java"} <= languages


@pytest.mark.parametrize("case", CASES)
def test_golden(case: dict[str, Any]) -> None:
    ctx, suffix = _context(case)
    if "mode" in case:
        assert ctx.mode == CompletionMode(case["mode"]), ctx.reason
    assert postprocess(case["generated"], ctx, suffix) == case["expected"]


@pytest.mark.parametrize("case", CASES)
def test_should_stop_agrees_with_postprocess(case: dict[str, Any]) -> None:
    """Streaming char by char and stopping when told must not change the result."""
    ctx, suffix = _context(case)
    generated: str = case["generated"]
    so_far = ""
    for char in generated:
        if should_stop(so_far, ctx):
            break
        so_far += char
    assert postprocess(so_far, ctx, suffix) == postprocess(generated, ctx, suffix)


@pytest.mark.parametrize("case", CASES)
def test_should_stop_after_any_prefix_agrees(case: dict[str, Any]) -> None:
    """Wherever should_stop first says True, every longer text gives the same result."""
    ctx, suffix = _context(case)
    generated: str = case["generated"]
    for end in range(len(generated) + 1):
        if should_stop(generated[:end], ctx):
            expected = postprocess(generated[:end], ctx, suffix)
            for longer in range(end, len(generated) + 1):
                assert postprocess(generated[:longer], ctx, suffix) == expected
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


def test_multi_line_stops_when_the_next_line_is_retyped() -> None:
    ctx = _ctx(
        CompletionMode.MULTI_LINE,
        line_prefix="    ",
        indent="    ",
        block_indent_width=4,
        next_line="    return total",
    )
    generated = "total += 1\n    return total\n    # more"
    assert should_stop("total += 1\n    return total\n", ctx)
    assert postprocess(generated, ctx, "\n    return total\n") == "total += 1"


def test_output_is_always_a_prefix_of_the_model_text_or_a_trimmed_copy() -> None:
    """Never add text: each kept line is a line (or line start) the model wrote."""
    for param in CASES:
        case = param.values[0]
        ctx, suffix = _context(case)
        kept = postprocess(case["generated"], ctx, suffix)
        model_lines = case["generated"].split("\n")
        for number, line in enumerate(kept.split("\n") if kept else []):
            assert model_lines[number].startswith(line), case["name"]
