"""Request lifecycle: one model worker, cancellation, supersession, the loaded engine.

All model work (loading, generating) runs on a single worker thread so the
LSP event loop stays free to answer document sync, `initialize` and
`shutdown` at once. Cancellation is cooperative: a `CancelToken` checked
before work starts and by the engine between tokens. A newer completion
request for a document cancels the older one.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from code_llama_ls.config import Settings
from code_llama_ls.engine.base import CancelToken, Engine, ProgressCallback, warm_up
from code_llama_ls.engine.loading import model_label
from code_llama_ls.engine.model_files import load_failure
from code_llama_ls.errors import CodeLlamaLsError, ModelLoadError
from code_llama_ls.memory import IDLE_RELEASE_S, ReleaseWhenIdle

T = TypeVar("T")

log = logging.getLogger(__name__)


class RequestCancelled(CodeLlamaLsError):
    """The request was cancelled before its model work began."""


class ModelWorker:
    """Runs model work in order on one thread and awaits it from the event loop.

    Once the model thread has been idle for `idle_release_s`, the memory its
    work freed (a generation's old key/value arrays, a prefill's activations)
    goes back to the system (`memory.ReleaseWhenIdle`): tens to hundreds of
    MB that the C allocator would otherwise keep.
    """

    def __init__(self, idle_release_s: float = IDLE_RELEASE_S) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self._release = ReleaseWhenIdle(idle_release_s)

    async def run(self, work: Callable[[], T], cancel: CancelToken) -> T:
        """Run `work` on the model thread; cancelling the awaiting task cancels the token."""
        self._release.started()  # queued work counts: no release before it has run
        future = self._executor.submit(self._run, work, cancel)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            cancel.cancel()
            raise

    def shutdown(self) -> None:
        """Stop taking work; queued work is dropped, running work finishes its token."""
        self._release.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _run(self, work: Callable[[], T], cancel: CancelToken) -> T:
        try:
            return _unless_cancelled(work, cancel)
        finally:
            self._release.finished()


def _unless_cancelled(work: Callable[[], T], cancel: CancelToken) -> T:
    if cancel.cancelled:
        raise RequestCancelled("cancelled before it started")
    return work()


class Supersession:
    """Tracks the latest request per key; starting a newer one cancels the older."""

    def __init__(self) -> None:
        self._latest: dict[str, CancelToken] = {}
        self._lock = threading.Lock()

    def begin(self, key: str) -> CancelToken:
        """A token for a new request on `key`, cancelling the previous one."""
        token = CancelToken()
        with self._lock:
            previous = self._latest.get(key)
            self._latest[key] = token
        if previous is not None:
            previous.cancel()
        return token

    def end(self, key: str, token: CancelToken) -> None:
        """Forget `token` if it is still the latest for `key`."""
        with self._lock:
            if self._latest.get(key) is token:
                del self._latest[key]

    def cancel(self, key: str) -> None:
        """Cancel the request in flight on `key` and forget the key (a closed document)."""
        with self._lock:
            token = self._latest.pop(key, None)
        if token is not None:
            token.cancel()

    def cancel_all(self) -> None:
        """Cancel every request in flight (shutdown)."""
        with self._lock:
            tokens = list(self._latest.values())
            self._latest.clear()
        for token in tokens:
            token.cancel()


class EngineHolder:
    """The loaded engines (completion and explanation models), by the settings that shape them.

    `get` runs on the model thread. A loaded engine runs one short
    generation before it is handed out: ONNX Runtime and torch allocate and
    pick kernels on their first run, and torch's GPU fast path compiles its
    decode step, which the user's first keystroke would otherwise wait for.
    A failed load, whatever the loader
    raised, is a ModelLoadError naming the model, remembered for the same
    settings: each later request answers with the same clear error at once
    instead of retrying a slow failure (and re-reading the model's files) per
    keystroke. `keep_only` drops engines and errors that the current settings
    no longer use, so a changed model frees its memory and is tried afresh.
    """

    def __init__(self, loader: Callable[[Settings, ProgressCallback | None], Engine]) -> None:
        self._loader = loader
        self._engines: dict[tuple[object, ...], Engine] = {}
        self._errors: dict[tuple[object, ...], ModelLoadError] = {}
        self._lock = threading.Lock()

    def get(self, settings: Settings, on_progress: ProgressCallback | None = None) -> Engine:
        """The engine for `settings`, loading it on first use (model thread only).

        Raises ModelLoadError, the remembered one when loading these settings
        failed before.
        """
        key = settings.engine_key()
        with self._lock:
            engine, error = self._engines.get(key), self._errors.get(key)
        if error is not None:
            raise _again(error)
        if engine is not None:
            return engine
        label = model_label(settings.model)
        log.info("loading model %s", label)
        try:
            engine = self._loader(settings, on_progress)
        except Exception as exc:  # any backend failure: one clear message, never a crash
            error = load_failure(label, exc)
            if error is exc:  # a failure the loader explains itself
                log.debug("loading %s failed", label, exc_info=exc)
            else:
                log.error("loading %s failed", label, exc_info=exc)
                error.__cause__ = exc
            # What is kept holds no frames: they would keep the loader's locals
            # (a half-loaded model, after running out of memory) alive.
            _forget_frames(error.__cause__)
            with self._lock:
                self._errors[key] = _again(error)
            raise error from error.__cause__
        warm_up(engine, on_progress)
        log.info("model ready: %s on %s", engine.name, engine.device)
        with self._lock:
            self._engines[key] = engine
        return engine

    def loaded(self, settings: Settings) -> Engine | None:
        """The engine for `settings` if it is loaded now (no loading; any thread)."""
        with self._lock:
            return self._engines.get(settings.engine_key())

    def keep_only(self, *wanted: Settings) -> None:
        """Forget engines and errors for any settings other than `wanted`."""
        keys = {settings.engine_key() for settings in wanted}
        with self._lock:
            self._engines = {k: v for k, v in self._engines.items() if k in keys}
            self._errors = {k: v for k, v in self._errors.items() if k in keys}


def _again(error: ModelLoadError) -> ModelLoadError:
    """A copy of `error` without a traceback: each raise of a remembered error has its own."""
    try:
        again = copy.copy(error)  # the message and attributes, not the traceback or the chain
    except TypeError:  # a subclass whose __init__ does not take its args back
        again = ModelLoadError(str(error))
    again.__cause__ = error.__cause__
    return again


def _forget_frames(exc: BaseException | None) -> None:
    """Drop the tracebacks along `exc`'s chain of causes (they are logged already)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc.__traceback__ = None
        exc = exc.__cause__ or exc.__context__


class TypingPace:
    """How fast the user types, per document, and how long to wait for a pause.

    Each edit's time is recorded; the gaps between edits under a second
    (typing, not thinking) feed a moving average. A completion request waits
    1.5 typical gaps, at most `max_ms`, for the next keystroke: a fast typist's
    request is dropped before it costs model time, and one after a pause
    waits only as long as a keystroke would have taken to arrive.
    """

    TYPING_GAP_S = 1.0
    """Gaps longer than this are pauses, not typing speed."""
    SMOOTHING = 0.3
    """Weight of the newest gap in the moving average."""

    def __init__(self) -> None:
        self._last_edit: dict[str, float] = {}
        self._typical_gap: dict[str, float] = {}

    def edited(self, uri: str, now: float) -> None:
        """Record an edit of `uri` at monotonic time `now` (seconds)."""
        last = self._last_edit.get(uri)
        self._last_edit[uri] = now
        if last is None or not 0 <= now - last < self.TYPING_GAP_S:
            return
        gap = now - last
        typical = self._typical_gap.get(uri)
        self._typical_gap[uri] = (
            gap if typical is None else typical + self.SMOOTHING * (gap - typical)
        )

    def delay_s(self, uri: str, max_ms: int) -> float:
        """Seconds a completion request for `uri` should wait for the next keystroke."""
        cap = max_ms / 1000
        typical = self._typical_gap.get(uri)
        return cap if typical is None else min(cap, 1.5 * typical)

    def forget(self, uri: str) -> None:
        """Drop what was learnt about `uri` (document closed)."""
        self._last_edit.pop(uri, None)
        self._typical_gap.pop(uri, None)
