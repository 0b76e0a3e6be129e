"""The ring of yanks and the snippets it proposes: what is kept, in which order, what the
local window already shows, and how a yank is rendered in the context."""

from __future__ import annotations

import pytest

from code_llama_ls.context.builder import ContextBuilder, CursorRequest
from code_llama_ls.context.index import WorkspaceIndex
from code_llama_ls.context.sources import Source, yank_candidates
from code_llama_ls.context.yanks import MAX_LINES, YankRing
from tests.tiny_models import TokenizerAdapter, build_code_llama_tokenizer


@pytest.fixture(scope="module")
def tok(tmp_path_factory: pytest.TempPathFactory) -> TokenizerAdapter:
    from transformers import AutoTokenizer

    directory = build_code_llama_tokenizer(tmp_path_factory.mktemp("tokenizer"))
    return TokenizerAdapter(AutoTokenizer.from_pretrained(str(directory)))


CODE = "def scale(values, factor):\n    return [value * factor for value in values]\n"


def test_small_yanks_are_skipped_and_big_ones_cut() -> None:
    ring = YankRing()
    assert not ring.add("factor")
    assert not ring.add("   \n\t\n")
    assert ring.add(CODE)
    long = "".join(f"line_{i} = {i}\n" for i in range(200))
    assert ring.add(long)
    assert len(ring.newest_first()[0].record.lines) == MAX_LINES
    assert ring.newest_first()[1].text == CODE


def test_the_ring_keeps_the_newest_and_moves_a_repeated_yank_to_the_front() -> None:
    ring = YankRing(capacity=2)
    for i in range(3):
        ring.add(f"value_{i} = compute({i}, {i})\n")
    assert [y.text for y in ring.newest_first()] == [
        "value_2 = compute(2, 2)\n",
        "value_1 = compute(1, 1)\n",
    ]
    ring.add("  value_1 = compute(1, 1)  \n\n")  # the same code, yanked again
    assert ring.newest_first()[0].text == "  value_1 = compute(1, 1)\n"
    assert len(ring) == 2


def test_newer_yanks_score_higher_and_those_in_the_local_window_are_left_out() -> None:
    ring = YankRing()
    ring.add(CODE, "/p/a.py", "python", when=0.0)
    ring.add("total = sum(scale(values, 2))\n", None, "python", when=100.0)
    found = yank_candidates(ring.newest_first(), "print(1)\n", now=200.0)
    assert [c.source for c in found] == [Source.YANKED, Source.YANKED]
    assert found[0].score > found[1].score
    local = "x = 1\n    total =  sum(scale(values, 2))\n"  # the same code, spaced otherwise
    assert len(yank_candidates(ring.newest_first(), local, now=200.0)) == 1


def test_a_yank_is_rendered_under_a_header_naming_where_it_came_from(
    tok: TokenizerAdapter,
) -> None:
    builder = ContextBuilder(WorkspaceIndex())
    builder.yanks.add(CODE, "/project/lib/helpers.py", "python")
    text = "def add(a, b):\n    return a + b\n"
    request = CursorRequest("file:///project/app.py", "python", 1, text, len(text) - 6, (0, 1))
    context = builder.build(tok, request, 400)
    assert "# yanked from /project/lib/helpers.py\n" + CODE in context.text
    kinds = {block.kind for block in context.blocks}
    assert Source.YANKED.value in kinds
    assert "context_yanks_ms" in context.timings_ms
