"""The prefix window's start moves in steps while the user types, so the prompt's head survives.

A real file (the keystroke replay's `textwrap.py`) is typed again line by
line, and for a stretch character by character; every prompt must fit its
budget, and the prefix window's start (hence the prompt's first tokens, the
part the engine's prefix-KV cache keeps) may move only once per step of the
grid, not once per typed line as the largest window that fits does.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from code_llama_ls.pipeline import reach
from code_llama_ls.pipeline.complete import prepare_prompt
from code_llama_ls.pipeline.fim import FimMode
from code_llama_ls.pipeline.prompt import (
    MIN_STEPPED_LIMIT,
    Prompt,
    build_completion_prompt,
    completion_overhead,
    stepped_start,
    window_step,
)
from code_llama_ls.pipeline.reach import MIN_STEPPED_REACH, reach_start
from code_llama_ls.pipeline.request import CompletionOptions, CompletionRequest
from code_llama_ls.text.documents import DocumentStore
from code_llama_ls.tokens.tokenizer import max_chars
from tests.tiny_models import (
    TokenizerAdapter,
    TokenizerOnlyEngine,
    build_byte_level_tokenizer,
    build_code_llama_tokenizer,
)

SOURCE = Path(__file__).resolve().parents[2] / "benchmarks/data/keystroke_replay/textwrap.py.txt"
BUDGET = 512
TYPED_LINES = 200


@pytest.fixture(scope="module")
def source() -> str:
    return SOURCE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def code_llama(tmp_path_factory: pytest.TempPathFactory) -> TokenizerAdapter:
    return TokenizerAdapter.from_directory(
        build_code_llama_tokenizer(tmp_path_factory.mktemp("code-llama"))
    )


@pytest.fixture(scope="module")
def byte_level(tmp_path_factory: pytest.TempPathFactory) -> TokenizerAdapter:
    return TokenizerAdapter.from_directory(
        build_byte_level_tokenizer(tmp_path_factory.mktemp("byte-level"))
    )


def _line_ends(text: str, lines: int) -> list[int]:
    """Offsets of the ends (before "\\n") of the first `lines` lines."""
    ends, at = [], -1
    for _ in range(lines):
        at = text.index("\n", at + 1)
        ends.append(at)
    return ends


def _typed(source: str, lines: int) -> Iterator[tuple[str, str]]:
    """(prefix, suffix) as each of the first `lines` lines is typed, the rest of the file after."""
    rest = "\n" + source[_line_ends(source, lines)[-1] + 1 :]
    for end in _line_ends(source, lines):
        yield source[:end], rest


def _start(prefix: str, prompt: Prompt) -> int:
    """Where the prompt's prefix window starts in `prefix`."""
    shown = prompt.prefix + prompt.healed
    assert prefix.endswith(shown)
    return len(prefix) - len(shown)


def _moves(starts: list[int]) -> int:
    return sum(a != b for a, b in itertools.pairwise(starts))


def _common(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


@pytest.mark.parametrize(
    ("tokenizer", "use_fim", "mode"),
    [
        ("code_llama", False, FimMode.SPM),  # left-to-right: BOS + the prefix window
        ("code_llama", True, FimMode.PSM),
        ("code_llama", True, FimMode.SPM),
        ("byte_level", True, FimMode.SPM),  # no FIM pieces and no BOS: left-to-right
    ],
)
def test_typing_line_by_line_moves_the_window_start_once_per_step(
    request: pytest.FixtureRequest, source: str, tokenizer: str, use_fim: bool, mode: FimMode
) -> None:
    tok: TokenizerAdapter = request.getfixturevalue(tokenizer)
    starts: dict[bool, list[int]] = {True: [], False: []}
    prompts: list[Prompt] = []
    for prefix, suffix in _typed(source, TYPED_LINES):
        for stepped in (True, False):
            prompt = build_completion_prompt(
                tok, prefix, suffix, fim_mode=mode, budget=BUDGET, use_fim=use_fim, stepped=stepped
            )
            assert len(prompt.ids) <= BUDGET
            starts[stepped].append(_start(prefix, prompt))
            if stepped:
                prompts.append(prompt)
    full = [i for i, start in enumerate(starts[False]) if start > 0]
    assert len(full) > TYPED_LINES * 3 // 4, "the budget must fill early for this test to mean much"
    # The largest window loses a line at its start for most lines typed (not blank ones).
    assert _moves(starts[False]) >= len(full) // 2
    # Stepped: a move about once per step (a quarter of the budget: 5-6 lines of this file).
    assert _moves(starts[True]) <= len(full) // 4 + 1
    assert all(s >= u for s, u in zip(starts[True], starts[False], strict=True))
    # Between moves, most of each prompt is the next one's head: the prefix-KV cache keeps it.
    pairs = list(itertools.pairwise(prompts[full[0] :]))  # once the budget is full
    kept = sum(_common(a.ids, b.ids) >= len(a.ids) // 2 for a, b in pairs)
    assert kept >= len(pairs) - _moves(starts[True][full[0] :])


def test_typing_character_by_character_keeps_the_start_between_grid_jumps(
    code_llama: TokenizerAdapter, source: str
) -> None:
    """Every keystroke of 40 lines, left-to-right (the default model's layout)."""
    first, last = _line_ends(source, 120)[79], _line_ends(source, 120)[-1]
    rest = "\n" + source[last + 1 :]
    starts, heads = [], set()
    keys = 0
    for cursor in range(first, last + 1):
        prefix = source[:cursor]
        prompt = build_completion_prompt(
            code_llama, prefix, rest, fim_mode=FimMode.SPM, budget=BUDGET, use_fim=False
        )
        assert len(prompt.ids) <= BUDGET
        starts.append(_start(prefix, prompt))
        heads.add(prompt.ids[:64])
        keys += 1
    moves = _moves(starts)
    assert 1 <= moves <= 40 // 4 + 1, (moves, keys)
    assert len(heads) == moves + 1  # the prompt's head changes exactly where the start moves
    step = window_step(code_llama, BUDGET - completion_overhead(code_llama, use_fim=False))
    for start in set(starts):
        line = source.rfind("\n", 0, start - 1) + 1
        assert start // step > line // step  # each start is the first line after a grid offset


def test_a_small_budget_keeps_the_largest_window(code_llama: TokenizerAdapter, source: str) -> None:
    budget = MIN_STEPPED_LIMIT  # less the fixed tokens: under the limit
    assert window_step(code_llama, budget - 1) == 0
    for prefix, suffix in list(_typed(source, 60))[30:]:
        for mode in FimMode:
            stepped = build_completion_prompt(
                code_llama, prefix, suffix, fim_mode=mode, budget=budget
            )
            largest = build_completion_prompt(
                code_llama, prefix, suffix, fim_mode=mode, budget=budget, stepped=False
            )
            assert stepped == largest


def test_stepped_start_picks_the_first_line_after_a_grid_offset() -> None:
    text = "".join(f"line {i:02}\n" for i in range(30)) + "cursor"  # lines of 8 characters
    step = 20  # grid offsets 0, 20, 40, ...: grid lines start at 0, 24, 40, 64, 80, ...
    assert stepped_start(text, 0, step) == 0
    assert stepped_start(text, 8, step) == 24
    assert stepped_start(text, 16, step) == 24
    assert stepped_start(text, 24, step) == 24
    assert stepped_start(text, 32, step) == 40
    assert stepped_start(text, 40, step) == 40
    assert stepped_start(text, 48, step) == 64
    assert stepped_start(text, 48, 0) == 48  # no grid
    assert stepped_start(text, 50, step) == 50  # not a line start: a cut cursor line
    cursor_line = text.rindex("\n") + 1
    assert stepped_start(text, cursor_line - 8, 1000) == cursor_line - 8  # no grid line in range


def test_the_reach_start_moves_in_steps() -> None:
    text = "".join(f"{i:05} " + "x" * 30 + "\n" for i in range(2000))
    chars = 4000
    assert chars >= MIN_STEPPED_REACH
    starts = [reach_start(text, offset, chars) for offset in range(10_000, 30_000, 7)]
    for offset, start in zip(range(10_000, 30_000, 7), starts, strict=True):
        assert start == 0 or text[start - 1] == "\n"
        # Back at least as far as the first line start `chars` back, at most 1.5 * `chars`.
        assert offset - chars * 3 // 2 <= start <= text.index("\n", offset - chars - 1) + 1
    assert _moves(starts) <= (30_000 - 10_000) // (chars // 2) + 1
    # A short reach starts exactly `chars` back, at the first line start after it.
    assert reach_start(text, 5000, 100) == text.index("\n", 4900 - 1) + 1


class KnownLongest(TokenizerAdapter):
    """The tiny tokenizer, saying how long its longest token is (a reach of 14 * the budget)."""

    max_token_chars = 14


@pytest.fixture
def unstepped_reach(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reach, "MIN_STEPPED_REACH", 1 << 60)


def _server_starts(tok: TokenizerAdapter, text: str, cursors: list[int]) -> list[int]:
    """The prefix window's start in the document, for a completion at each cursor."""
    engine = TokenizerOnlyEngine(tok)
    options = CompletionOptions(FimMode.SPM, max_new_tokens=16, context_tokens=400 + 16)
    store = DocumentStore()
    starts = []
    for version, cursor in enumerate(cursors, 1):
        snapshot = store.open("file:///project/long.py", "python", version, text)
        prepared = prepare_prompt(CompletionRequest(snapshot, cursor, options), engine)  # type: ignore[arg-type]
        assert prepared.prompt is not None and prepared.local is not None
        assert len(prepared.prompt.ids) <= prepared.budget
        shown = prepared.local.prefix + prepared.local.healed
        assert text[:cursor].endswith(shown)
        starts.append(cursor - len(shown))
    return starts


@pytest.mark.parametrize("stepped_reach", [True, False])
def test_in_a_file_longer_than_the_reach_the_start_still_moves_in_steps(
    request: pytest.FixtureRequest, code_llama: TokenizerAdapter, source: str, stepped_reach: bool
) -> None:
    """Through `prepare_prompt`: the reach is cut, and its cut moves in steps too."""
    if not stepped_reach:
        request.getfixturevalue("unstepped_reach")
    tok = KnownLongest(code_llama.hf)
    assert max(map(len, tok._vocab)) <= tok.max_token_chars
    text = source * 2
    chars = max_chars(tok, 400 - completion_overhead(tok))
    first = text.index("\n", chars * 2)  # well past the reach
    cursors = [first + 1 + end for end in _line_ends(text[first + 1 :], 60)]
    starts = _server_starts(tok, text, cursors)
    assert all(start > 0 for start in starts)
    if stepped_reach:
        assert _moves(starts) <= 60 // 3 + 1
    else:  # the grid counted from a reach that follows the cursor moves about once a line
        assert _moves(starts) >= 60 // 2
