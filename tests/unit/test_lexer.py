"""The one lexical table (`syntax.lexer`) that `cursor.scan_line` and post-processing read.

Post-processing's own uses of it are tested in test_postprocess.py
(`test_a_bracket_in_a_line_comment_does_not_count` and the backtick tests).
"""

from __future__ import annotations

import pytest

from code_llama_ls.syntax.cursor import scan_line
from code_llama_ls.syntax.lexer import UNKNOWN, LexicalRules, rules_for


@pytest.mark.parametrize(
    ("language", "quotes", "comments"),
    [
        ("python", "\"'", ("#",)),
        ("ruby", "\"'", ("#",)),
        ("shellscript", "\"'", ("#",)),
        ("javascript", "\"'`", ("//",)),
        ("typescript", "\"'`", ("//",)),
        ("go", "\"'`", ("//",)),
        ("rust", '"', ("//",)),
        ("c", "\"'", ("//",)),
        ("java", "\"'", ("//",)),
        (None, "\"'", ("#", "//")),
    ],
)
def test_rules_for(language: str | None, quotes: str, comments: tuple[str, ...]) -> None:
    rules = rules_for(language)
    assert rules.quotes == quotes
    assert rules.line_comments == comments
    assert rules.block_comments == ("//" in comments)
    assert rules.triple_quotes == (language == "python")


def test_unknown_language_allows_either_comment_and_a_made_up_name_is_c_like() -> None:
    assert rules_for(None) is UNKNOWN
    assert rules_for("kotlin") == rules_for("c")


def test_tokens_find_what_a_bracket_counter_needs() -> None:
    def tokens(rules: LexicalRules, line: str) -> list[str]:
        return rules.tokens.findall(line)

    line = 'f(a["k"], `b`) # c // d \\'
    assert tokens(rules_for("python"), line) == [*'([""])', "#", "\\"]
    assert tokens(rules_for("javascript"), line) == [*'([""]``)', "//", "\\"]
    assert tokens(rules_for(None), line) == [*'([""])', "#", "//", "\\"]
    assert tokens(rules_for("rust"), "x: &'a [u8] // y") == ["[", "]", "//"]


@pytest.mark.parametrize(
    ("line", "language", "expected"),
    [
        ("x = 1  # (y", "ruby", (7, "comment")),
        ("echo $HOME # (y", "shellscript", (11, "comment")),
        ("x = 1 // (y", "ruby", (11, None)),
        ("label = `(", "python", (10, None)),
        ("label = `(", "javascript", (10, "string")),
        ("x = 1 # y // z", None, (6, "comment")),
        ("x = 1 // y # z", None, (6, "comment")),
    ],
)
def test_scan_line_reads_the_table(
    line: str, language: str | None, expected: tuple[int, str | None]
) -> None:
    assert scan_line(line, language) == expected
