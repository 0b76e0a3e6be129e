"""Shared pieces of the real-editor tests: where tools and artefacts go, how editors start us.

The editors themselves (Neovim from PyPI, code-server + Chromium) are
installed by the tests' own scripts into the tools cache, so a fresh
machine needs nothing by hand.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def tools_dir() -> Path:
    """Where editor installs are cached between runs (`CODE_LLAMA_LS_TOOLS` overrides)."""
    if env := os.environ.get("CODE_LLAMA_LS_TOOLS"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "code-llama-ls-tools"


def server_argv() -> list[str]:
    """The real server, started the way an editor starts it: this interpreter's package."""
    return [sys.executable, "-m", "code_llama_ls", "serve"]


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Screenshots and logs the editor tests leave behind (`build/editor-artifacts`)."""
    path = Path(os.environ.get("CODE_LLAMA_LS_ARTIFACTS", REPO / "build" / "editor-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path
