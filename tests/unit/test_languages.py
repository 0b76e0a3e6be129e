"""Grammar selection by languageId/uri, and every grammar wheel loading and parsing."""

from __future__ import annotations

import threading

import pytest
import tree_sitter

from code_llama_ls.syntax import (
    LANGUAGES,
    available_languages,
    language_for,
    language_name,
    parser_for,
)

SNIPPETS = {
    "python": "def f(x):\n    return x + 1\n",
    "javascript": "function f(x) {\n  return <div>{x + 1}</div>;\n}\n",
    "typescript": "function f(x: number): number {\n  return x + 1;\n}\n",
    "tsx": "const f = (x: number) => <div>{x}</div>;\n",
    "go": "package main\n\nfunc f(x int) int {\n\treturn x + 1\n}\n",
    "rust": "fn f(x: i32) -> i32 {\n    x + 1\n}\n",
    "java": "class A {\n  int f(int x) { return x + 1; }\n}\n",
    "c": "int f(int x) {\n  return x + 1;\n}\n",
    "cpp": "template <typename T>\nT f(T x) {\n  return x + 1;\n}\n",
}

ROOTS = {
    "python": "module",
    "javascript": "program",
    "typescript": "program",
    "tsx": "program",
    "go": "source_file",
    "rust": "source_file",
    "java": "program",
    "c": "translation_unit",
    "cpp": "translation_unit",
}


def test_language_list() -> None:
    assert LANGUAGES == (
        "python",
        "javascript",
        "typescript",
        "tsx",
        "go",
        "rust",
        "java",
        "c",
        "cpp",
    )
    assert set(SNIPPETS) == set(LANGUAGES)


@pytest.mark.parametrize("name", LANGUAGES)
def test_grammar_parses_without_errors(name: str) -> None:
    tree = parser_for(name).parse(SNIPPETS[name].encode())
    assert tree.root_node.type == ROOTS[name]
    assert not tree.root_node.has_error
    assert "ERROR" not in str(tree.root_node)
    assert tree.root_node.end_byte == len(SNIPPETS[name].encode())


def test_typescript_and_tsx_differ() -> None:
    # "<T>x" is a type assertion in .ts and a JSX element start in .tsx
    source = b"let y = <number>x;\n"
    assert not parser_for("typescript").parse(source).root_node.has_error
    assert parser_for("tsx").parse(source).root_node.has_error


@pytest.mark.parametrize(
    ("language_id", "uri", "expected"),
    [
        ("python", "file:///a.txt", "python"),
        ("javascript", "file:///a.js", "javascript"),
        ("javascriptreact", "file:///a.jsx", "javascript"),
        ("typescript", "file:///a.ts", "typescript"),
        ("typescriptreact", "file:///a.tsx", "tsx"),
        ("go", "file:///a.go", "go"),
        ("rust", "file:///a.rs", "rust"),
        ("java", "file:///A.java", "java"),
        ("c", "file:///a.c", "c"),
        ("cpp", "file:///a.cpp", "cpp"),
        ("Python", "untitled:Untitled-1", "python"),
        # the languageId wins over the extension
        ("cpp", "file:///a.h", "cpp"),
        ("typescript", "file:///a.js", "typescript"),
        # unknown languageIds fall back to the extension
        ("plaintext", "file:///x/y.py", "python"),
        ("", "file:///x/y.pyi", "python"),
        ("", "file:///x/y.mjs", "javascript"),
        ("", "file:///x/y.MTS", "typescript"),
        ("", "file:///x/y.tsx", "tsx"),
        ("", "file:///x/y.h", "c"),
        ("", "file:///x/y.hpp", "cpp"),
        ("", "file:///x/y.cc", "cpp"),
        ("", "file:///c%3A/Users/me/main.rs", "rust"),
        ("", "file:///dir%20with%20space/Main.java", "java"),
        ("", "file:///x/y.py?query#frag", "python"),
        # nothing fits
        ("plaintext", "file:///notes.txt", None),
        ("markdown", "file:///README.md", None),
        ("", "untitled:Untitled-1", None),
        ("haskell", "file:///a.hs", None),
    ],
)
def test_language_name(language_id: str, uri: str, expected: str | None) -> None:
    assert language_name(language_id, uri) == expected


def test_parser_cached_per_thread() -> None:
    parser = parser_for("python")
    assert parser_for("python") is parser
    assert isinstance(parser, tree_sitter.Parser)
    assert language_for("python") is language_for("python")
    other: list[tree_sitter.Parser] = []
    thread = threading.Thread(target=lambda: other.append(parser_for("python")))
    thread.start()
    thread.join()
    assert other[0] is not parser  # a Parser must not be shared between threads
    assert other[0].language == parser.language


def test_unknown_grammar() -> None:
    with pytest.raises(ValueError, match="no tree-sitter grammar named 'cobol'"):
        parser_for("cobol")


def test_available_languages() -> None:
    assert available_languages() == {name: True for name in LANGUAGES}


def test_available_languages_reports_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    from code_llama_ls.syntax import languages

    real = languages.language_for

    def broken(name: str) -> tree_sitter.Language:
        if name == "go":
            raise ImportError("No module named 'tree_sitter_go'")
        return real(name)

    monkeypatch.setattr(languages, "language_for", broken)
    report = available_languages()
    assert report["go"] == "ImportError: No module named 'tree_sitter_go'"
    assert report["python"] is True
