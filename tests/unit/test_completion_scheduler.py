"""Tests of the caches above the model and of when the scheduler runs it.

The model's jobs are a fake whose `complete` writes a known text token by
token, as the server's real one streams; what is tested is the scheduling:
typed-through answers, joining a generation in flight, supersession,
debounce, and cancellation reaching the work. The real model behind the
same scheduler is tested end to end in tests/e2e.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from code_llama_ls.cancel import CancelToken
from code_llama_ls.pipeline.request import Completion, CompletionOptions, CompletionRequest
from code_llama_ls.pipeline.time_budget import TimeBudget
from code_llama_ls.serving.reuse import Suggestion, TypedThrough
from code_llama_ls.serving.scheduler import CompletionScheduler
from code_llama_ls.serving.status import ServerStatus
from code_llama_ls.serving.typing_pace import TypingPace
from code_llama_ls.syntax.cursor import CompletionMode
from code_llama_ls.text.documents import DocumentStore, TextChange

URI = "file:///work/example.py"
BEFORE = "def add(a, b):\n    return "
AFTER = "\n\nprint(add(1, 2))\n"
ANSWER = "a + b"
CACHED = CompletionOptions(reuse=True, debounce_ms=0)
UNCACHED = CompletionOptions(reuse=False, debounce_ms=0)


class FakeModel:
    """Model jobs whose completion writes ANSWER one character per `step_s`, honouring the
    cancel token."""

    def __init__(self, step_s: float = 0.01) -> None:
        self.step_s = step_s
        self.calls: list[tuple[str, CancelToken]] = []
        self.cancelled = 0

    async def complete(
        self,
        request: CompletionRequest,
        token: CancelToken,
        on_text: Callable[[str], None],
        waited_s: float,
    ) -> Completion:
        self.calls.append((request.snapshot.text[: request.offset], token))
        text = ""
        for char in ANSWER:
            if token.cancelled:
                self.cancelled += 1
                break
            await asyncio.sleep(self.step_s)
            text += char
            on_text(text)
        return Completion(text, CompletionMode.SINGLE_LINE, "test", "stop", 10, 4)


def _request(
    store: DocumentStore,
    typed: str = "",
    version: int = 1,
    *,
    options: CompletionOptions,
    invoked: bool = False,
) -> CompletionRequest:
    text = BEFORE + typed + AFTER
    if URI in store:
        snapshot = store.change(URI, version, [TextChange(None, text)])
    else:
        snapshot = store.open(URI, "python", version, text)
    return CompletionRequest(snapshot, len(BEFORE + typed), options, invoked=invoked)


@pytest.fixture()
def store() -> DocumentStore:
    return DocumentStore()


def test_suggestion_rest_after_typing_its_start() -> None:
    shown = Suggestion(BEFORE, AFTER, ANSWER)
    assert shown.rest_after(BEFORE, AFTER) == ANSWER
    assert shown.rest_after(BEFORE + "a +", AFTER) == " b"
    assert shown.rest_after(BEFORE + "a - ", AFTER) is None  # typed something else
    assert shown.rest_after(BEFORE + ANSWER, AFTER) is None  # typed all of it
    assert shown.rest_after(BEFORE + "a", AFTER + "x") is None  # the rest of the file changed
    typed = TypedThrough()
    typed.remember(URI, shown)
    assert typed.lookup(URI, BEFORE + "a", AFTER) == " + b"
    typed.remember(URI, Suggestion(BEFORE, AFTER, ""))
    assert typed.lookup(URI, BEFORE, AFTER) is None


async def test_typing_through_a_suggestion_needs_no_model(store: DocumentStore) -> None:
    model = FakeModel(step_s=0)
    scheduler = CompletionScheduler(model, ServerStatus("test"))  # type: ignore[arg-type]
    first = await scheduler.complete(_request(store, options=CACHED))
    assert first is not None and first.text == ANSWER
    again = await scheduler.complete(_request(store, "a +", 2, options=CACHED))
    assert again is not None and again.text == " b"
    assert len(model.calls) == 1
    stats = scheduler.stats.to_json()
    assert (stats["typedThroughHits"], stats["modelCalls"], stats["prefilledTokens"]) == (1, 1, 6)


async def test_without_the_cache_every_request_runs_the_model(store: DocumentStore) -> None:
    model = FakeModel(step_s=0)
    scheduler = CompletionScheduler(model, ServerStatus("test"))  # type: ignore[arg-type]
    await scheduler.complete(_request(store, options=UNCACHED))
    await scheduler.complete(_request(store, "a +", 2, options=UNCACHED))
    assert len(model.calls) == 2


async def test_a_request_typed_along_the_generation_joins_it(store: DocumentStore) -> None:
    model = FakeModel(step_s=0.02)
    scheduler = CompletionScheduler(model, ServerStatus("test"))  # type: ignore[arg-type]
    first = asyncio.ensure_future(scheduler.complete(_request(store, options=CACHED)))
    while not scheduler.in_flight.joinable(URI, BEFORE + "a", AFTER) or not model.calls:
        await asyncio.sleep(0.005)
    while scheduler.in_flight.joinable(URI, BEFORE, AFTER).streamed == "":  # type: ignore[union-attr]
        await asyncio.sleep(0.005)
    second = await scheduler.complete(_request(store, "a", 2, options=CACHED))
    assert second is not None and second.text == " + b"
    assert (await first) is not None
    assert len(model.calls) == 1 and model.cancelled == 0
    assert scheduler.stats.in_flight_hits == 1


async def test_a_request_elsewhere_cancels_the_generation_in_flight(
    store: DocumentStore,
) -> None:
    model = FakeModel(step_s=0.02)
    scheduler = CompletionScheduler(model, ServerStatus("test"))  # type: ignore[arg-type]
    first = asyncio.ensure_future(scheduler.complete(_request(store, options=CACHED)))
    while not model.calls:
        await asyncio.sleep(0.005)
    second = await scheduler.complete(_request(store, "x", 2, options=CACHED))
    assert await first is None  # superseded
    assert second is not None and second.text == ANSWER
    assert model.cancelled == 1 and len(model.calls) == 2


async def test_a_cancelled_request_leaves_its_generation_a_grace_then_cancels_it(
    store: DocumentStore,
) -> None:
    model = FakeModel(step_s=0.05)
    scheduler = CompletionScheduler(model, ServerStatus("test"))  # type: ignore[arg-type]
    request = asyncio.ensure_future(scheduler.complete(_request(store, options=CACHED)))
    while not model.calls:
        await asyncio.sleep(0.005)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    token = model.calls[0][1]
    assert not token.cancelled  # the next request may still join it
    await asyncio.sleep(0.15)
    assert token.cancelled


async def test_without_the_cache_cancelling_the_request_cancels_the_model_at_once(
    store: DocumentStore,
) -> None:
    model = FakeModel(step_s=0.05)
    scheduler = CompletionScheduler(model, ServerStatus("test"))  # type: ignore[arg-type]
    request = asyncio.ensure_future(scheduler.complete(_request(store, options=UNCACHED)))
    while not model.calls:
        await asyncio.sleep(0.005)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    await asyncio.sleep(0.01)
    assert model.calls[0][1].cancelled


async def test_debounce_drops_requests_overtaken_by_typing(store: DocumentStore) -> None:
    model = FakeModel(step_s=0)
    scheduler = CompletionScheduler(model, ServerStatus("test"))  # type: ignore[arg-type]
    slow = CompletionOptions(reuse=False, debounce_ms=100)
    first = asyncio.ensure_future(scheduler.complete(_request(store, options=slow)))
    await asyncio.sleep(0.02)
    second = await scheduler.complete(_request(store, "a", 2, options=slow))
    assert await first is None
    assert second is not None
    assert [before for before, _ in model.calls] == [BEFORE + "a"]


async def test_an_invoked_request_is_not_debounced(store: DocumentStore) -> None:
    model = FakeModel(step_s=0)
    scheduler = CompletionScheduler(model, ServerStatus("test"))  # type: ignore[arg-type]
    slow = CompletionOptions(reuse=False, debounce_ms=5000)
    done = await asyncio.wait_for(
        scheduler.complete(_request(store, options=slow, invoked=True)), timeout=2
    )
    assert done is not None


async def test_model_errors_reach_every_waiting_request(store: DocumentStore) -> None:
    class Broken:
        async def complete(self, *args: object) -> Completion:
            raise RuntimeError("no model")

    scheduler = CompletionScheduler(Broken(), ServerStatus("test"))  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="no model"):
        await scheduler.complete(_request(store, options=CACHED))
    assert scheduler.in_flight.joinable(URI, BEFORE, AFTER) is None


def test_typing_pace_waits_for_one_and_a_half_typical_gaps() -> None:
    pace = TypingPace()
    assert pace.delay_s(URI, 120) == pytest.approx(0.12)  # nothing learnt yet: the cap
    for i in range(20):
        pace.edited(URI, i * 0.05)  # 50 ms between keystrokes
    assert pace.delay_s(URI, 120) == pytest.approx(0.075)
    pace.edited(URI, 100.0)  # a pause is not a typing speed
    assert pace.delay_s(URI, 120) == pytest.approx(0.075)
    for i in range(20):
        pace.edited(URI, 200 + i * 0.5)
    assert pace.delay_s(URI, 120) == pytest.approx(0.12)  # slow typing: the cap
    assert pace.delay_s(URI, 0) == 0


def _spent_budget() -> TimeBudget:
    """A budget of 1 ms whose first token came and went."""
    budget = TimeBudget(1)
    assert not budget("")  # the first token: it gets half the budget
    time.sleep(0.002)
    return budget


def test_time_budget_keeps_the_lines_completed_when_it_ends() -> None:
    unbounded = TimeBudget(0)
    assert not unbounded("x = 1\ny")
    assert unbounded.cut("x = 1\ny") == "x = 1\ny"
    spent = _spent_budget()
    assert spent("x = 1\ny = ")
    assert spent.cut("x = 1\ny = ") == "x = 1"


def test_time_budget_keeps_the_whole_words_of_an_unfinished_first_line() -> None:
    budget = _spent_budget()
    assert not budget("value")  # nothing whole to show yet: one more token
    assert budget("value = compute(first, sec")
    assert budget.cut("value = compute(first, sec") == "value = compute(first,"
    run_on = _spent_budget()
    looping = "zb_line" + "_on_line" * 4  # a model repeating itself inside one word
    assert run_on(looping)
    assert run_on.cut(looping) == ""


def test_time_budget_gives_the_first_tokens_half_of_it_after_a_slow_prompt() -> None:
    budget = TimeBudget(200, started=time.perf_counter() - 10)  # the prompt took 10 s
    assert not budget("value = ")  # the first token: 100 ms more
    assert not budget("value = compute(")
    time.sleep(0.12)
    assert budget("value = compute(first, ")


def test_time_budget_ends_before_a_token_that_would_finish_past_it() -> None:
    budget = TimeBudget(100)
    assert not budget("value")  # the first token, at once
    time.sleep(0.06)
    # 60 ms in, tokens take 60 ms: the next would end at 120 ms, past the 100 ms budget.
    assert budget("value = ")


# --- writing ahead (speculative) -----------------------------------------------------

AHEAD = CompletionOptions(reuse=True, debounce_ms=0, speculate=True)


async def _until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def test_the_suggestion_after_an_accept_is_written_ahead_and_answers_at_once(
    store: DocumentStore,
) -> None:
    model = FakeModel(step_s=0)
    scheduler = CompletionScheduler(model, ServerStatus("test"))  # type: ignore[arg-type]
    first = await scheduler.complete(_request(store, options=AHEAD))
    assert first is not None and first.text == ANSWER
    await _until(lambda: len(model.calls) == 2 and not scheduler.in_flight.get(URI))
    assert model.calls[1][0] == BEFORE + ANSWER, "written for the document with it accepted"
    request = _request(store, ANSWER, 2, options=AHEAD)  # the accept
    scheduler.edited(URI, request.snapshot.text)
    after = await scheduler.complete(request)
    assert after is not None and after.text == ANSWER and after.finish_reason == "cache"
    stats = scheduler.stats.to_json()
    assert (stats["writtenAhead"], stats["aheadHits"], stats["modelCalls"]) == (1, 1, 2)


async def test_without_the_setting_nothing_is_written_ahead(store: DocumentStore) -> None:
    model = FakeModel(step_s=0)
    scheduler = CompletionScheduler(model, ServerStatus("test"))  # type: ignore[arg-type]
    await scheduler.complete(_request(store, options=CACHED))
    await asyncio.sleep(0.3)
    assert len(model.calls) == 1 and scheduler.stats.written_ahead == 0


async def test_a_keystroke_cancels_writing_ahead_but_the_accept_joins_it(
    store: DocumentStore,
) -> None:
    model = FakeModel(step_s=0.05)
    scheduler = CompletionScheduler(model, ServerStatus("test"))  # type: ignore[arg-type]
    await scheduler.complete(_request(store, options=AHEAD))
    await _until(lambda: len(model.calls) == 2)
    request = _request(store, ANSWER, 2, options=AHEAD)
    scheduler.edited(URI, request.snapshot.text)  # the accept: it goes on
    assert not model.calls[1][1].cancelled
    joined = await scheduler.complete(request)
    assert joined is not None and joined.text == ANSWER
    assert scheduler.stats.ahead_hits == 1 and len(model.calls) == 2

    await _until(lambda: len(model.calls) == 3)  # and again after that one
    scheduler.edited(URI, BEFORE + ANSWER + "x" + AFTER)  # any other keystroke
    assert model.calls[2][1].cancelled
    await _until(lambda: scheduler.stats.ahead_cancelled == 1)


async def test_a_generation_the_user_waits_for_cancels_writing_ahead(
    store: DocumentStore,
) -> None:
    model = FakeModel(step_s=0.05)
    scheduler = CompletionScheduler(model, ServerStatus("test"))  # type: ignore[arg-type]
    await scheduler.complete(_request(store, options=AHEAD))
    await _until(lambda: len(model.calls) == 2)
    other = DocumentStore().open("file:///work/other.py", "python", 1, BEFORE + AFTER)
    done = await scheduler.complete(CompletionRequest(other, len(BEFORE), CACHED))
    assert done is not None and done.text == ANSWER
    assert model.calls[1][1].cancelled
    await _until(lambda: scheduler.stats.ahead_cancelled == 1)


async def test_an_accept_joining_a_write_ahead_that_finds_nothing_gets_nothing(
    store: DocumentStore,
) -> None:
    """Nothing to suggest after the accept is an answer: no second generation for it."""

    class NothingAfterTheAnswer(FakeModel):
        async def complete(
            self,
            request: CompletionRequest,
            token: CancelToken,
            on_text: Callable[[str], None],
            waited_s: float,
        ) -> Completion:
            done = await super().complete(request, token, on_text, waited_s)
            if request.snapshot.text[: request.offset].endswith(ANSWER):
                return Completion("", CompletionMode.SINGLE_LINE, "test", "stop", 10, 4)
            return done

    model = NothingAfterTheAnswer(step_s=0.05)
    scheduler = CompletionScheduler(model, ServerStatus("test"))  # type: ignore[arg-type]
    await scheduler.complete(_request(store, options=AHEAD))
    await _until(lambda: len(model.calls) == 2)  # writing ahead, still running
    request = _request(store, ANSWER, 2, options=AHEAD)
    scheduler.edited(URI, request.snapshot.text)
    joined = await scheduler.complete(request)
    assert joined is not None and joined.text == "" and joined.finish_reason == "cache"
    assert len(model.calls) == 2 and scheduler.stats.ahead_hits == 1
