"""When completions are generated: caches first, then debounce, then one job per document.

A completion request is answered, cheapest first, by:
1. the suggestion being typed through (`TypedThrough`), at once;
2. the suggestion written ahead for the place an accept leads to, at once;
3. the generation in flight for the same place, when what the user typed
   since agrees with what the model wrote (`InFlight`), a generation
   writing ahead included;
   (none of these when the user invoked a request for alternatives: those
   have not been written);
4. a new generation, after waiting for typing to pause (`TypingPace`); it
   cancels the document's previous one (`Supersession`) and any writing
   ahead.

Writing ahead (llama.vim's "speculative FIM", setting `speculate`): once a
suggestion is answered and typing pauses, the suggestion that would follow
it, were it accepted, is written at low priority: any keystroke but the
accept cancels it, as does any new generation; accepting it is then
answered from what was written. It keeps the time budget: an accept that
comes while it is written waits for it, as for any generation.

A generation is a job of the document, not of the request that started it:
requests wait for it shielded, so a client that cancels its stale request
(VS Code does on every keystroke) does not kill a generation the next
request can use. A job nobody waits for is cancelled after a short grace
(the client's next request may still join it), so `$/cancelRequest` still
reaches the model. With the completion cache off, a job belongs to its one
request and is cancelled with it at once.

Event loop only; the model work itself is `ModelJobs.complete`, shown as
"generating" in the server's status while it runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass

from code_llama_ls.errors import RequestCancelled
from code_llama_ls.pipeline.request import Completion, CompletionRequest
from code_llama_ls.serving.jobs import ModelJobs
from code_llama_ls.serving.reuse import (
    Generating,
    InFlight,
    Suggestion,
    TypedThrough,
    WrittenAhead,
)
from code_llama_ls.serving.status import ServerStatus
from code_llama_ls.serving.supersession import Supersession
from code_llama_ls.serving.typing_pace import TypingPace
from code_llama_ls.syntax.cursor import CompletionMode

log = logging.getLogger(__name__)

CACHED = "cache"
"""The finish reason of an answer from a suggestion already made (typed through or in
flight): it continues that suggestion."""
AHEAD_PAUSE_S = 0.1
"""The least pause after a suggestion before the one after it is written ahead."""
UNWAITED_GRACE_S = 0.1
"""How long a job nobody waits for runs on, in case the next request joins it."""


@dataclass
class SchedulerStats:
    """Counters for status and benchmarks."""

    completions: int = 0
    model_calls: int = 0
    typed_through_hits: int = 0
    in_flight_hits: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    written_ahead: int = 0
    """Generations started to write ahead (also counted in `model_calls`)."""
    ahead_hits: int = 0
    """Requests answered by a suggestion written ahead, or joining one being written."""
    ahead_cancelled: int = 0
    """Generations written ahead that a keystroke or a waited-for request cancelled."""

    def to_json(self) -> dict[str, int]:
        """camelCase counters, plus the tokens that were prefilled."""
        return {
            "completions": self.completions,
            "modelCalls": self.model_calls,
            "typedThroughHits": self.typed_through_hits,
            "inFlightHits": self.in_flight_hits,
            "writtenAhead": self.written_ahead,
            "aheadHits": self.ahead_hits,
            "aheadCancelled": self.ahead_cancelled,
            "promptTokens": self.prompt_tokens,
            "cachedTokens": self.cached_tokens,
            "prefilledTokens": self.prompt_tokens - self.cached_tokens,
        }


class CompletionScheduler:
    """Decides, per request, whether to answer from a cache, join a job, or start one."""

    def __init__(self, jobs: ModelJobs, status: ServerStatus) -> None:
        self._jobs = jobs
        self._status = status
        self.supersession = Supersession()
        self.typed_through = TypedThrough()
        self.ahead = WrittenAhead()
        self.in_flight: InFlight[Completion] = InFlight()
        self.pace = TypingPace()
        self.stats = SchedulerStats()
        self._tasks: set[asyncio.Task[None]] = set()
        self._edits: dict[str, int] = {}
        self._writing_ahead: dict[str, Generating[Completion]] = {}

    def edited(self, uri: str, text: str | None = None) -> None:
        """The user changed `uri` (didChange) to `text`: learn the typing pace, and stop
        writing ahead unless the change is the accept it writes for."""
        self.pace.edited(uri, time.monotonic())
        self._edits[uri] = self._edits.get(uri, 0) + 1
        ahead = self._writing_ahead.get(uri)
        if ahead is not None and text != ahead.before + ahead.after:
            ahead.token.cancel()

    def closed(self, uri: str) -> None:
        """`uri` was closed: cancel its work and forget it."""
        self.supersession.cancel(uri)
        self.typed_through.forget(uri)
        self.ahead.forget(uri)
        self.pace.forget(uri)
        self._edits.pop(uri, None)

    def cancel_all(self) -> None:
        """Cancel every generation (shutdown)."""
        self.supersession.cancel_all()

    async def complete(self, request: CompletionRequest) -> Completion | None:
        """The completion for a request; None when superseded or cancelled.

        Errors of the model work (ModelLoadError, GenerationError,
        PromptError) propagate.
        """
        self.stats.completions += 1
        snapshot, options = request.snapshot, request.options
        uri = snapshot.uri
        before, after = snapshot.text[: request.offset], snapshot.text[request.offset :]
        # The user asking for alternatives wants more than the suggestion already made.
        if options.reuse and not (request.invoked and request.candidates > 1):
            rest = self.typed_through.lookup(uri, before, after)
            if rest is not None:
                self.stats.typed_through_hits += 1
                self._write_ahead_later(request, rest)  # in case typing stopped the last one
                return _from_cache(rest, "typed through the suggestion shown")
            rest = self.ahead.lookup(uri, before, after)
            if rest is not None:
                self.stats.ahead_hits += 1
                self._write_ahead_later(request, rest)
                return _from_cache(rest, "written ahead for the suggestion accepted")
            running = self.in_flight.joinable(uri, before, after)
            if running is not None:
                done = await self._wait(running, options.reuse)
                rest = None if done is None else _rest_of(running, done.text, before, after)
                if rest is not None:
                    if running.ahead:
                        self.stats.ahead_hits += 1
                        self._write_ahead_later(request, rest)
                    else:
                        self.stats.in_flight_hits += 1
                    return _from_cache(rest, "continued the generation in flight")
                # It wrote something else than what was typed since: generate anew.
        self._stop_writing_ahead()
        delay = 0.0 if request.invoked else self.pace.delay_s(uri, options.debounce_ms)
        token = self.supersession.begin(uri)
        if delay > 0:
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                self.supersession.end(uri, token)
                raise
        if token.cancelled:  # a newer request for the document came during the wait
            self.supersession.end(uri, token)
            return None
        running = self.in_flight.start(uri, before, after, token)
        self._start_job(request, running, delay)  # the job ends the supersession
        return await self._wait(running, options.reuse)

    def _start_job(
        self, request: CompletionRequest, running: Generating[Completion], debounced_s: float
    ) -> None:
        uri = request.snapshot.uri

        async def job() -> None:
            try:
                self.stats.model_calls += 1
                completion = await self._generate(request, running, debounced_s)
            except RequestCancelled:  # superseded before the model began: nothing to report
                self._count_cancelled(running)
                running.finish(None)
                return
            except Exception as exc:  # the waiting requests report it
                running.fail(exc)
                return
            finally:
                self.in_flight.end(uri, running)
                self.supersession.end(uri, running.token)
                if self._writing_ahead.get(uri) is running:
                    del self._writing_ahead[uri]
            self.stats.prompt_tokens += completion.prompt_tokens
            self.stats.cached_tokens += completion.cached_tokens
            if running.token.cancelled:
                self._count_cancelled(running)
                running.finish(None)
                return
            made = Suggestion(running.before, running.after, completion.text)
            if running.ahead:
                self.ahead.remember(uri, made)
            else:
                self.typed_through.remember(uri, made)
                self._write_ahead_later(request, completion.text)
            running.finish(completion)

        task = asyncio.ensure_future(job())
        self._tasks.add(task)  # a reference, so the task is not collected while it runs
        task.add_done_callback(self._tasks.discard)

    def _count_cancelled(self, running: Generating[Completion]) -> None:
        if running.ahead:
            self.stats.ahead_cancelled += 1

    def _write_ahead_later(self, request: CompletionRequest, text: str) -> None:
        """Once typing pauses, write what follows `text` accepted at the request's cursor."""
        options = request.options
        if not (options.speculate and options.reuse and text):
            return
        uri = request.snapshot.uri
        edits = self._edits.get(uri, 0)
        delay = max(self.pace.delay_s(uri, options.debounce_ms), AHEAD_PAUSE_S)
        asyncio.get_running_loop().call_later(delay, self._write_ahead, request, text, edits)

    def _write_ahead(self, request: CompletionRequest, text: str, edits: int) -> None:
        uri = request.snapshot.uri
        if self._edits.get(uri, 0) != edits or self.in_flight.get(uri) is not None:
            return  # typed since, or the model writes for this document already
        snapshot = request.snapshot.with_insertion(request.offset, text)
        offset = request.offset + len(text)
        before, after = snapshot.text[:offset], snapshot.text[offset:]
        if self.ahead.lookup(uri, before, after) is not None:
            return  # written already
        accepted = dataclasses.replace(
            request,
            snapshot=snapshot,
            offset=offset,
            invoked=False,
            candidates=1,
            id=f"{request.id}+",
        )
        running = self.in_flight.start(uri, before, after, self.supersession.begin(uri))
        running.ahead = True
        self._writing_ahead[uri] = running
        self.stats.written_ahead += 1
        self._start_job(accepted, running, 0.0)

    def _stop_writing_ahead(self) -> None:
        """A generation the user waits for comes first: cancel all writing ahead."""
        for running in self._writing_ahead.values():
            running.token.cancel()

    async def _generate(
        self, request: CompletionRequest, running: Generating[Completion], debounced_s: float
    ) -> Completion:
        """Run the model for `request`, the status showing it busy meanwhile."""
        token = running.token
        began = time.perf_counter()
        with self._status.generating():
            completion = await self._jobs.complete(request, token, running.saw, debounced_s)
            if not (token.cancelled or running.ahead):
                self._status.last_completion_ms = (time.perf_counter() - began) * 1000
        return completion

    async def _wait(self, running: Generating[Completion], cached: bool) -> Completion | None:
        """The job's result, shielded: cancelling the request cancels the job only when
        nobody else waits for it, at once without the completion cache, else after a grace."""
        running.waiters += 1
        try:
            return await asyncio.shield(running.result)
        finally:
            running.waiters -= 1
            if running.waiters == 0 and not running.result.done():
                grace = UNWAITED_GRACE_S if cached else 0.0
                asyncio.get_running_loop().call_later(grace, _cancel_unwaited, running)


def _cancel_unwaited(running: Generating[Completion]) -> None:
    if running.waiters == 0:
        running.token.cancel()


def _rest_of(running: Generating[Completion], text: str, before: str, after: str) -> str | None:
    """What a generation's `text` answers at (before, after) (`Suggestion.answer_at`)."""
    return Suggestion(running.before, running.after, text).answer_at(before, after)


def _from_cache(text: str, reason: str) -> Completion:
    mode = CompletionMode.MULTI_LINE if "\n" in text else CompletionMode.SINGLE_LINE
    return Completion(text, mode, reason, finish_reason=CACHED)
