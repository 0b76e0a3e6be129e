"""The documents, cursors and answers the tiny test model is trained on.

Tests at every level (protocol, CLI, real editors) use these, so the same
file and cursor give the same deterministic completion everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lsprotocol import types

from code_llama_ls.pipeline.explain import explanation_messages

CURSOR = "<|cursor|>"
ADD_URI = "file:///project/add.py"
ADD_FILE = f"def add(a, b):\n    return {CURSOR}\n\n\nprint(add(1, 2))\n"
ADD_MIDDLE = "a + b"

GREET_URI = "file:///project/greet.js"
GREET_FILE = f'function greet(name) {{\n  return "Hello, " + {CURSOR};\n}}\n'
GREET_MIDDLE = "name"

EXPLAINED_CODE = "def add(a, b):\n    return a + b\n"
EXPLANATION = "Adds two numbers and returns the sum."


def split_cursor(document: str) -> tuple[str, str]:
    """(text before the cursor marker, text after it)."""
    prefix, suffix = document.split(CURSOR)
    return prefix, suffix


def cursor_position(document: str) -> types.Position:
    """The LSP position (UTF-16) of the cursor marker; the files above are ASCII."""
    prefix, _ = split_cursor(document)
    lines = prefix.split("\n")
    return types.Position(line=len(lines) - 1, character=len(lines[-1]))


def explained_messages() -> Sequence[Mapping[str, str]]:
    """The chat messages the server sends to explain EXPLAINED_CODE in add.py."""
    return explanation_messages(EXPLAINED_CODE, "python", ADD_URI)
