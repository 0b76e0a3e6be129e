"""Helpers for end-to-end tests of the real server over stdio (pytest-lsp)."""

from __future__ import annotations

import json
import sys
from typing import Any

from lsprotocol import types
from pytest_lsp import client_capabilities


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
