"""Tree-sitter for the rest of the server: grammars by document language, and parsers."""

from __future__ import annotations

from code_llama_ls.syntax.languages import (
    LANGUAGES,
    available_languages,
    language_for,
    language_name,
    parser_for,
)

__all__ = [
    "LANGUAGES",
    "available_languages",
    "language_for",
    "language_name",
    "parser_for",
]
