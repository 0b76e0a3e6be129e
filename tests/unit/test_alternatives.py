"""Alternative suggestions: the likeliest other beginnings, continued greedily, post-processed,
distinct; and when a request gets them."""

from __future__ import annotations

from pathlib import Path

import pytest

from code_llama_ls.cancel import CancelToken
from code_llama_ls.engine.transformers_engine import TransformersEngine
from code_llama_ls.pipeline.complete import complete
from code_llama_ls.pipeline.fim import FimMode
from code_llama_ls.pipeline.request import CompletionOptions, CompletionRequest
from code_llama_ls.text.documents import DocumentStore
from tests.scenarios import ADD_FILE, ADD_MIDDLE, ADD_URI, CURSOR

OPTIONS = CompletionOptions(FimMode.SPM, max_new_tokens=16, context_tokens=1536 + 16)


@pytest.fixture(scope="module")
def engine(tiny_model: Path) -> TransformersEngine:
    return TransformersEngine.from_pretrained(tiny_model, device="cpu")


def _request(candidates: int, text: str = ADD_FILE) -> CompletionRequest:
    snapshot = DocumentStore().open(ADD_URI, "python", 1, text.replace(CURSOR, ""))
    return CompletionRequest(snapshot, text.index(CURSOR), OPTIONS, candidates=candidates)


def test_alternatives_are_distinct_non_empty_and_after_the_best(
    engine: TransformersEngine,
) -> None:
    completion = complete(_request(4), engine, CancelToken())
    assert completion.text == ADD_MIDDLE, "the best suggestion is the greedy one, as alone"
    others = completion.alternatives
    assert 1 <= len(others) <= 3
    assert all(text.strip() for text in others)
    assert len({ADD_MIDDLE, *others}) == 1 + len(others)
    assert "alternatives_ms" in completion.timings_ms
    again = complete(_request(4), engine, CancelToken())
    assert again.alternatives == others, "deterministic: the same beginnings, greedy after"


def test_one_candidate_writes_no_alternative(engine: TransformersEngine) -> None:
    completion = complete(_request(1), engine, CancelToken())
    assert (completion.text, completion.alternatives) == (ADD_MIDDLE, ())
    assert "alternatives_ms" not in completion.timings_ms


def test_a_cancelled_request_writes_no_alternative(engine: TransformersEngine) -> None:
    cancel = CancelToken()
    cancel.cancel()
    assert complete(_request(3), engine, cancel).alternatives == ()


def test_alternatives_keep_the_documents_line_breaks(engine: TransformersEngine) -> None:
    crlf = ADD_FILE.replace("\n", "\r\n")
    completion = complete(_request(4, crlf), engine, CancelToken())
    for text in completion.alternatives:
        assert "\n" not in text.replace("\r\n", "")


@pytest.mark.parametrize(
    ("invoked", "device", "while_typing", "expected"),
    [
        (True, "cpu", None, 3),
        (False, "cpu", None, 1),
        (False, "cuda:0", None, 3),
        (False, None, None, 1),
        (False, "cpu", True, 3),
        (False, "cuda:0", False, 1),
        (True, "cuda:0", False, 3),
    ],
)
def test_who_gets_the_alternatives(
    invoked: bool, device: str | None, while_typing: bool | None, expected: int
) -> None:
    options = CompletionOptions(candidates=3, candidates_while_typing=while_typing)
    assert options.candidates_for(invoked=invoked, device=device) == expected
