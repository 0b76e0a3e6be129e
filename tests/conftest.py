"""Session fixtures shared by all tests: tiny Code Llama-shaped models built locally.

The model is overfit on a few whole files split at a cursor (see
`tests/scenarios.py`), so a client that builds its prompt from the document
gets a deterministic answer only if the prompt is exactly the Code Llama
layout the model was trained on.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.scenarios import (
    ADD_FILE,
    ADD_MIDDLE,
    EXPLANATION,
    GREET_FILE,
    GREET_MIDDLE,
    explained_messages,
    split_cursor,
)
from tests.tiny_models import (
    build_babbling_code_llama,
    build_code_llama_tokenizer,
    build_tiny_code_llama,
)


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
