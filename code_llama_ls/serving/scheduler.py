"""When completions are generated: caches first, then debounce, then one job per document.

A completion request is answered, cheapest first, by:
1. the suggestion being typed through (`TypedThrough`), at once;
2. the generation in flight for the same place, when what the user typed
   since agrees with what the model wrote (`InFlight`);
   (neither when the user invoked a request for alternatives: those have
   not been written);
3. a new generation, after waiting for typing to pause (`TypingPace`); it
   cancels the document's previous one (`Supersession`).

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
import logging
import time
from dataclasses import dataclass

from code_llama_ls.errors import RequestCancelled
from code_llama_ls.pipeline.request import Completion, CompletionRequest
from code_llama_ls.serving.jobs import ModelJobs
from code_llama_ls.serving.reuse import Generating, InFlight, Suggestion, TypedThrough
from code_llama_ls.serving.status import ServerStatus
from code_llama_ls.serving.supersession import Supersession
from code_llama_ls.serving.typing_pace import TypingPace
from code_llama_ls.syntax.cursor import CompletionMode

log = logging.getLogger(__name__)

CACHED = "cache"
"""The finish reason of an answer from a suggestion already made (typed through or in
flight): it continues that suggestion."""
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

    def to_json(self) -> dict[str, int]:
        """camelCase counters, plus the tokens that were prefilled."""
        return {
            "completions": self.completions,
            "modelCalls": self.model_calls,
            "typedThroughHits": self.typed_through_hits,
            "inFlightHits": self.in_flight_hits,
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
        self.in_flight: InFlight[Completion] = InFlight()
        self.pace = TypingPace()
        self.stats = SchedulerStats()
        self._tasks: set[asyncio.Task[None]] = set()

    def edited(self, uri: str) -> None:
        """The user changed `uri` (didChange): learn the typing pace."""
        self.pace.edited(uri, time.monotonic())

    def closed(self, uri: str) -> None:
        """`uri` was closed: cancel its work and forget it."""
        self.supersession.cancel(uri)
        self.typed_through.forget(uri)
        self.pace.forget(uri)

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
                return _from_cache(rest, "typed through the suggestion shown")
            running = self.in_flight.joinable(uri, before, after)
            if running is not None:
                done = await self._wait(running, options.reuse)
                rest = None if done is None else _rest_of(running, done.text, before, after)
                if rest is not None:
                    self.stats.in_flight_hits += 1
                    return _from_cache(rest, "continued the generation in flight")
                # It wrote something else than what was typed since: generate anew.
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
                running.finish(None)
                return
            except Exception as exc:  # the waiting requests report it
                running.fail(exc)
                return
            finally:
                self.in_flight.end(uri, running)
                self.supersession.end(uri, running.token)
            self.stats.prompt_tokens += completion.prompt_tokens
            self.stats.cached_tokens += completion.cached_tokens
            if running.token.cancelled:
                running.finish(None)
                return
            self.typed_through.remember(
                uri, Suggestion(running.before, running.after, completion.text)
            )
            running.finish(completion)

        task = asyncio.ensure_future(job())
        self._tasks.add(task)  # a reference, so the task is not collected while it runs
        task.add_done_callback(self._tasks.discard)

    async def _generate(
        self, request: CompletionRequest, running: Generating[Completion], debounced_s: float
    ) -> Completion:
        """Run the model for `request`, the status showing it busy meanwhile."""
        token = running.token
        began = time.perf_counter()
        with self._status.generating():
            completion = await self._jobs.complete(request, token, running.saw, debounced_s)
            if not token.cancelled:
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
    return Suggestion(running.before, running.after, text).rest_after(before, after)


def _from_cache(text: str, reason: str) -> Completion:
    mode = CompletionMode.MULTI_LINE if "\n" in text else CompletionMode.SINGLE_LINE
    return Completion(text, mode, reason, finish_reason=CACHED)
