"""The loaded engines, by the settings that load them: loaded once, warmed up, failures
remembered (model thread); and `load_engine_for`, the one place settings meet the engine."""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from code_llama_ls.config import EngineSettings
from code_llama_ls.engine.base import Engine, ProgressCallback, warm_up
from code_llama_ls.engine.loading import model_label
from code_llama_ls.engine.model_files import load_failure
from code_llama_ls.errors import ModelLoadError

if TYPE_CHECKING:
    from code_llama_ls.engine.remote_engine import RemoteSettings

log = logging.getLogger(__name__)

EngineLoader = Callable[[EngineSettings, ProgressCallback | None], Engine]
"""Loads the engine for some settings, reporting progress (model thread)."""


def load_engine_for(settings: EngineSettings, on_progress: ProgressCallback | None) -> Engine:
    """Load the engine the settings describe."""
    from code_llama_ls.engine.loading import load_engine
    from code_llama_ls.engine.prefix_cache import MIB

    return load_engine(
        settings.model,
        device=settings.device,
        backend=settings.backend,
        dtype=settings.dtype,
        trust_remote_code=settings.trust_remote_code,
        cache_dir=settings.cache_path,
        prefix_cache_entries=settings.prefix_cache_entries,
        prefix_cache_bytes=settings.prefix_cache_mib * MIB,
        onnx_weights=settings.onnx_weights,
        remote=remote_settings(settings),
        on_progress=on_progress,
    )


def remote_settings(settings: EngineSettings) -> RemoteSettings | None:
    """How to reach the inference server, when the settings name one."""
    remote = settings.remote
    if remote.url is None:  # before the imports: urllib3 alone takes 0.5 s
        return None
    from code_llama_ls.engine.remote_engine import RemoteSettings
    from code_llama_ls.engine.remote_http import HttpSettings

    http = HttpSettings(
        remote.url,
        token=remote.auth_token,
        connect_timeout_s=remote.connect_timeout_ms / 1000,
        read_timeout_s=remote.timeout_ms / 1000,
        ca_file=remote.ca_file,
    )
    return RemoteSettings(
        http, api=remote.api, served_model=remote.model, prompt_format=remote.prompt
    )


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

    def __init__(self, loader: EngineLoader) -> None:
        self._loader = loader
        self._engines: dict[EngineSettings, Engine] = {}
        self._errors: dict[EngineSettings, ModelLoadError] = {}
        self._lock = threading.Lock()

    def get(self, settings: EngineSettings, on_progress: ProgressCallback | None = None) -> Engine:
        """The engine for `settings`, loading it on first use (model thread only).

        Raises ModelLoadError, the remembered one when loading these settings
        failed before.
        """
        with self._lock:
            engine, error = self._engines.get(settings), self._errors.get(settings)
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
                self._errors[settings] = _again(error)
            raise error from error.__cause__
        warm_up(engine, on_progress)
        log.info("model ready: %s on %s", engine.name, engine.device)
        with self._lock:
            self._engines[settings] = engine
        return engine

    def loaded(self, settings: EngineSettings) -> Engine | None:
        """The engine for `settings` if it is loaded now (no loading; any thread)."""
        with self._lock:
            return self._engines.get(settings)

    def keep_only(self, *wanted: EngineSettings) -> None:
        """Forget engines and errors for any settings other than `wanted`."""
        keys = set(wanted)
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
