"""Cursor classification: data-driven cases (tests/data/cursor/*.toml) and edge cases."""

from __future__ import annotations

import tomllib
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from code_llama_ls.syntax import parser_for
from code_llama_ls.syntax.cursor import (
    CompletionMode,
    CursorContext,
    classify_cursor,
    indent_width,
    scan_line,
)

CURSOR = "<|cursor|>"
DATA = Path(__file__).resolve().parent.parent / "data" / "cursor"
LANGUAGES = ("python", "javascript", "typescript", "tsx", "go", "rust", "java", "c", "cpp")


def _load_cases() -> list[Any]:
    cases = []
    for path in sorted(DATA.glob("*.toml")):
        with path.open("rb") as file:
            for case in tomllib.load(file)["case"]:
                cases.append(pytest.param(case, id=f"{path.stem}: {case['name']}"))
    return cases


def _classify(document: str, language: str | None, *, tree: bool = True) -> CursorContext:
    offset = document.index(CURSOR)
    document = document.replace(CURSOR, "", 1)
    parsed = None
    if language is not None and tree:
        parsed = parser_for(language).parse(document.encode("utf-8"))
    return classify_cursor(document, offset, parsed, language)


@pytest.mark.parametrize("case", _load_cases())
def test_case(case: dict[str, Any]) -> None:
    document: str = case["document"]
    if case.get("crlf"):
        document = document.replace("\n", "\r\n")
    ctx = _classify(document, case.get("language"), tree=case.get("tree", True))
    assert (ctx.mode.value, ctx.reason) == (case["mode"], case["reason"])
    for field in ("block_indent_width", "line_prefix", "line_suffix", "indent", "next_line"):
        if field in case:
            assert getattr(ctx, field) == case[field], field


def test_mode_values_are_the_wire_strings() -> None:
    assert [mode.value for mode in CompletionMode] == ["none", "single-line", "multi-line"]
    assert CompletionMode("multi-line") is CompletionMode.MULTI_LINE


def test_offset_is_clamped() -> None:
    text = "x = 1\n"
    assert classify_cursor(text, 99, None, "python").line_prefix == ""
    assert classify_cursor(text, -5, None, "python").mode is CompletionMode.NONE


def test_cursor_inside_crlf_belongs_to_the_line_end() -> None:
    text = "x = \r\ny = 2\r\n"
    ctx = classify_cursor(text, 5, None, "python")  # between "\r" and "\n"
    assert (ctx.line_prefix, ctx.line_suffix, ctx.next_line) == ("x = ", "", "y = 2")


def test_lone_carriage_returns_end_lines() -> None:
    text = "def f():\r    \rx = 1\r"
    tree = parser_for("python").parse(text.encode())
    ctx = classify_cursor(text, 13, tree, "python")
    assert (ctx.mode, ctx.reason, ctx.line_prefix, ctx.next_line) == (
        CompletionMode.MULTI_LINE,
        "empty block body",
        "    ",
        "x = 1",
    )


SAMPLES = {
    "python": 'import os\n\n\nclass A:\n    """Doc."""\n\n    def f(self, x):  # c\n'
    '        if x:\n            return {"k": [1, 2]}\n        s = f"{x!r}"\n\n\n'
    "def g(\n    a,\n):\n    pass\n",
    "javascript": "// c\nfunction f(a) {\n  if (a) {\n    return `t ${a}`;\n  }\n"
    "  /* b */\n  return [1, 'x'];\n}\n",
    "typescript": "interface P { x: number }\nconst f = (p: P): number => {\n  return p.x;\n};\n",
    "tsx": 'const C = () => (\n  <div className="a">\n'
    "    {items.map((i) => <b>{i}</b>)}\n  </div>\n);\n",
    "go": 'package main\n\nfunc main() {\n\tswitch x {\n\tcase 1:\n\t\ts := "a"\n\t}\n}\n',
    "rust": "/// d\nfn f<'a>(x: &'a str) -> &'a str {\n"
    '    match x {\n        _ => "y",\n    }\n}\n',
    "java": "class A {\n    @Override\n    public String toString() {\n"
    '        return "a";\n    }\n}\n',
    "c": "#include <stdio.h>\nint main(void)\n{\n    char c = 'a'; /* x */\n    return 0;\n}\n",
    "cpp": 'namespace n {\nclass P {\n public:\n  int x;\n};\nauto s = R"(raw)";\n}\n',
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_offset_classifies_consistently(language: str) -> None:
    """At every offset, with and without a tree: no crash, and the line split is exact."""
    text = SAMPLES[language]
    tree = parser_for(language).parse(text.encode())
    for offset in range(len(text) + 1):
        for parsed in (tree, None):
            ctx = classify_cursor(text, offset, parsed, language)
            line_start = text.rfind("\n", 0, offset) + 1
            line_end = text.find("\n", offset)
            line = text[line_start : line_end if line_end >= 0 else len(text)]
            assert ctx.line_prefix + ctx.line_suffix == line
            assert ctx.line_prefix == text[line_start:offset]
            assert line.startswith(ctx.indent) and not ctx.indent.strip()
            if ctx.mode is CompletionMode.MULTI_LINE:
                assert not ctx.line_suffix.strip()
            else:
                assert ctx.block_indent_width == 0


def _asciified(text: str) -> str:
    """Same length and the same word/non-word characters, in ASCII."""
    return "".join(
        ch if ch.isascii() else ("x" if unicodedata.category(ch)[0] in "LN" else "~") for ch in text
    )


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("python", '# café ☕\ndef naïve(x):\n    s = "😀 é"  # ü\n    if x:\n\n        return s'),
        ("javascript", "// ☕\nconst s = `😀 ${naïve}`;\nfunction é() {\n  return '🍵';\n}\n"),
        ("rust", '/// 😀\nfn f() {\n    let s = "é"; // ü\n}\n'),
    ],
)
def test_non_ascii_text_classifies_like_its_ascii_twin(language: str, text: str) -> None:
    """Tree positions in non-ASCII text (by point) agree with ASCII text (by byte)."""
    twin = _asciified(text)
    tree, twin_tree = (parser_for(language).parse(t.encode()) for t in (text, twin))
    for offset in range(len(text) + 1):
        ctx = classify_cursor(text, offset, tree, language)
        twin_ctx = classify_cursor(twin, offset, twin_tree, language)
        assert (ctx.mode, ctx.reason, ctx.block_indent_width) == (
            twin_ctx.mode,
            twin_ctx.reason,
            twin_ctx.block_indent_width,
        ), offset


def test_indent_width_counts_characters() -> None:
    assert indent_width("    x") == 4
    assert indent_width("\t\tx") == 2
    assert indent_width(" \t x") == 3
    assert indent_width("   ") == 3
    assert indent_width("x") == 0


@pytest.mark.parametrize(
    ("line", "language", "expected"),
    [
        ('x = "a # b"  # c', "python", (13, "comment")),
        ("s = '''abc", "python", (10, "string")),
        ('a = "x\\"y"', "javascript", (10, None)),
        ("let s = `t", "javascript", (10, "string")),
        ("x = 1; /* a */ y = 2; // z", "c", (22, "comment")),
        ("#include <a.h>", "c", (14, None)),
        ("fn f<'a>(x: &'a str) {", "rust", (22, None)),
        ("x = 1 # y", None, (6, "comment")),
    ],
)
def test_scan_line(line: str, language: str | None, expected: tuple[int, str | None]) -> None:
    assert scan_line(line, language) == expected
