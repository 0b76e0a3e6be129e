"""Fixtures for end-to-end tests: a tiny Code Llama-shaped model and the real server over stdio.

The model is overfit on a few whole files split at a cursor, so the server,
building its own prompt from the document, gets a deterministic answer
only if its prompt is exactly the Code Llama layout the model was trained
on.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import client_capabilities

from code_llama_ls.explain import explanation_messages
from tests.tiny_models import (
    build_babbling_code_llama,
    build_code_llama_tokenizer,
    build_tiny_code_llama,
)

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


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Code Llama-shaped model that infills ADD_FILE and GREET_FILE and explains add()."""
    root = tmp_path_factory.mktemp("tiny-code-llama")
    tokenizer_dir = build_code_llama_tokenizer(root / "tokenizer")
    examples = [
        (*split_cursor(ADD_FILE), ADD_MIDDLE),
        (*split_cursor(GREET_FILE), GREET_MIDDLE),
    ]
    return build_tiny_code_llama(
        root / "model",
        tokenizer_dir,
        examples,
        chat_examples=[(explained_messages(), EXPLANATION)],
    )


@pytest.fixture(scope="session")
def babbling_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Code Llama-shaped model whose generation never stops by itself."""
    root = tmp_path_factory.mktemp("babbling-code-llama")
    tokenizer_dir = build_code_llama_tokenizer(root / "tokenizer")
    return build_babbling_code_llama(root / "model", tokenizer_dir)


def capabilities(editor: str) -> types.ClientCapabilities:
    """Real editors' capabilities, with LSP 3.18 inline completion as their current releases send.

    pytest-lsp ships captures of VS Code 1.65 and Neovim 0.11; vscode-languageclient
    11 and Neovim 0.12 add `textDocument.inlineCompletion`.
    """
    caps = client_capabilities(editor)
    if caps.text_document is not None:
        caps.text_document.inline_completion = types.InlineCompletionClientCapabilities(
            dynamic_registration=False
        )
    return caps


EDITORS = ["visual-studio-code", "neovim"]


def server_command(*flags: str) -> list[str]:
    """The real CLI, as an editor would start it."""
    return [sys.executable, "-m", "code_llama_ls", "serve", *flags]


def dump(value: Any) -> str:
    """Readable JSON for assertion messages."""
    return json.dumps(value, indent=1, default=str)
