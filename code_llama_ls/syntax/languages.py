"""Which tree-sitter grammar serves a document, and parsers for it.

Grammars come from the per-language wheels (tree-sitter-python, ...), each
imported only when a document of that language first needs it, so the server
starts without loading nine shared libraries.
"""

from __future__ import annotations

import importlib
import posixpath
import threading
from functools import cache
from urllib.parse import unquote, urlsplit

import tree_sitter

__all__ = [
    "LANGUAGES",
    "available_languages",
    "language_for",
    "language_name",
    "parser_for",
]

# Canonical name -> (grammar module, function returning the language pointer).
_GRAMMARS: dict[str, tuple[str, str]] = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "java": ("tree_sitter_java", "language"),
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
}

LANGUAGES: tuple[str, ...] = tuple(_GRAMMARS)
"""Every canonical language name this package can parse."""

# LSP languageIds (VS Code's, which Neovim's filetypes mostly match).
_LANGUAGE_IDS: dict[str, str] = {
    "python": "python",
    "javascript": "javascript",
    "javascriptreact": "javascript",  # tree-sitter-javascript parses JSX
    "jsx": "javascript",
    "typescript": "typescript",
    "typescriptreact": "tsx",
    "tsx": "tsx",
    "go": "go",
    "rust": "rust",
    "java": "java",
    "c": "c",
    "cpp": "cpp",
    "cuda-cpp": "cpp",
}

_EXTENSIONS: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".pyw": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".c++": "cpp",
    ".hh": "cpp",
    ".hpp": "cpp",
    ".hxx": "cpp",
    ".h++": "cpp",
    ".ipp": "cpp",
    ".tpp": "cpp",
    ".cu": "cpp",
    ".cuh": "cpp",
}


def language_name(language_id: str, uri: str) -> str | None:
    """The canonical grammar name for a document, or None when no grammar fits.

    The client's languageId decides; the uri's file extension is the fallback
    for languageIds this table does not know (e.g. "plaintext", or empty).
    """
    name = _LANGUAGE_IDS.get(language_id.lower())
    if name is not None:
        return name
    path = unquote(urlsplit(uri).path)
    return _EXTENSIONS.get(posixpath.splitext(path)[1].lower())


@cache
def language_for(name: str) -> tree_sitter.Language:
    """The tree-sitter Language `name` (cached); its grammar wheel is imported on first use.

    Raises ValueError for an unknown name and ImportError when the wheel is
    missing or broken.
    """
    try:
        module_name, function = _GRAMMARS[name]
    except KeyError:
        raise ValueError(
            f"no tree-sitter grammar named {name!r}; known: {', '.join(LANGUAGES)}"
        ) from None
    module = importlib.import_module(module_name)
    return tree_sitter.Language(getattr(module, function)())


class _ThreadParsers(threading.local):
    """One parser per language per thread: a tree_sitter.Parser is not thread-safe."""

    def __init__(self) -> None:
        self.parsers: dict[str, tree_sitter.Parser] = {}


_parsers = _ThreadParsers()


def parser_for(name: str) -> tree_sitter.Parser:
    """A parser for language `name`, cached per thread (raises as language_for does)."""
    parser = _parsers.parsers.get(name)
    if parser is None:
        parser = tree_sitter.Parser(language_for(name))
        _parsers.parsers[name] = parser
    return parser


def available_languages() -> dict[str, bool | str]:
    """For `doctor`: each language -> True when its grammar loads, else the error text."""
    result: dict[str, bool | str] = {}
    for name in LANGUAGES:
        try:
            language_for(name)
        except Exception as exc:  # report any failure; doctor must not crash
            result[name] = f"{type(exc).__name__}: {exc}"
        else:
            result[name] = True
    return result
