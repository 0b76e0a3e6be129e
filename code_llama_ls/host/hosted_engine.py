"""The model host seen from the language server: started first, loaded beside it, used as an Engine.

`launch.spawn_model_host` forks the model host (`engine.model_host`) first
thing, and the server sends it the settings (the command line's with
the editor's `initializationOptions`) before it imports pygls. `HostingLoader` is the
server's engine loader: for the settings the host was started with it
hands out a `HostedEngine` once the host is loaded, and for anything else
(other settings, a host that declined, failed or ended) it loads the model
in this process as before.

Prompts are built here, so the server reads the model's tokenizer itself,
from the export the host names ("located"), while the host opens the
session. A `HostedEngine` runs each generation in the host: the host
streams each token's text, this side answers with `on_text`'s verdict, and
a cancel is sent on at once. Should the host end (killed, out of memory),
the request in flight fails with a clear error and the next one loads the
model in this process.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import socket
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from code_llama_ls.cancel import CancelToken
from code_llama_ls.engine.base import (
    BranchesOneByOne,
    Engine,
    Generation,
    GenerationParams,
    ProgressCallback,
    ServedModel,
)
from code_llama_ls.errors import GenerationError
from code_llama_ls.host import HOST_ENVIRONMENT
from code_llama_ls.host.channel import Channel, Message
from code_llama_ls.tokens.tokenizer import TokenizerLike

if TYPE_CHECKING:
    from code_llama_ls.config import EngineSettings, Settings

log = logging.getLogger(__name__)

MEMORY_TIMEOUT_S = 0.5
"""How long a memory report (answered on the event loop) waits for the host's part."""
_GONE: Message = ("gone",)


class ModelHost:
    """One model host process and the reader thread that sorts its messages.

    Started in two steps, so that it can start before the server restarts
    itself with the system allocator (`memory.use_system_allocator`) and
    load while that happens: `launch.spawn_model_host` starts the process
    and leaves its pid and socket in the environment; `take_over`, in the
    restarted server (or the same one), picks them up, and `configure`
    sends the settings.
    """

    def __init__(self, pid: int, channel: Channel) -> None:
        self._pid = pid
        self._channel = channel
        self._exit_code: int | None = None
        self._key: EngineSettings | None = None
        self._loading: queue.Queue[Message] = queue.Queue()
        self._tokenizer: TokenizerLike | None = None
        self._calls: dict[int, queue.Queue[Message]] = {}
        self._calls_lock = threading.Lock()
        self._ids = itertools.count(1)
        self.gone = False
        threading.Thread(target=self._read, name="model-host-reader", daemon=True).start()

    @classmethod
    def take_over(cls) -> ModelHost | None:
        """The host `launch.spawn_model_host` started for this process, if any (taken out of
        the environment)."""
        value = os.environ.pop(HOST_ENVIRONMENT, "")
        pid_text, _, fd_text = value.partition(":")
        if not (pid_text.isdigit() and fd_text.isdigit()):
            return None
        fd = int(fd_text)
        try:
            connection = socket.socket(fileno=fd)
            os.set_inheritable(fd, False)
        except OSError:
            return None
        return cls(int(pid_text), Channel(connection))

    def configure(self, settings: Settings) -> None:
        """Tell the host the settings to load the model for (`cli.serving_settings`)."""
        self._key = settings.engine
        self._channel.send(("settings", settings))

    @property
    def pid(self) -> int:
        """The host's process id."""
        return self._pid

    def engine_settings(self) -> EngineSettings | None:
        """The engine settings the host loads for (None before `configure`)."""
        return self._key

    def engine(self, on_progress: ProgressCallback | None) -> HostedEngine | None:
        """The loaded model, after passing on the host's progress; None if the host cannot."""
        while True:
            message = self._loading.get()
            kind = message[0]
            if kind == "progress":
                if on_progress is not None:
                    on_progress(message[1], message[2])
            elif kind == "loaded":  # after "located": the reader read the tokenizer then
                if self._tokenizer is not None:
                    return HostedEngine(self, message[1], self._tokenizer)
                log.warning("the model host's tokenizer could not be read: the model loads here")
                self.close()
                return None
            else:
                log.info("the model host did not load the model (%s): it loads here", message)
                self.close()
                return None

    def generate(
        self,
        prompt_ids: Sequence[int],
        params: GenerationParams,
        cancel: CancelToken,
        on_text: Callable[[str], bool] | None,
    ) -> Generation:
        """One generation in the host (see `Engine.generate`)."""
        request_id = next(self._ids)
        answers: queue.Queue[Message] = queue.Queue()
        with self._calls_lock:
            if self.gone:
                raise GenerationError(self._gone_message())
            self._calls[request_id] = answers
        ids = [int(i) for i in prompt_ids]
        self._channel.send(("generate", request_id, ids, params, on_text is not None))
        # After "generate": a cancel the host reads first would find nothing to stop.
        forget_cancel = cancel.on_cancel(lambda: self._channel.send(("cancel", request_id)))
        failure: BaseException | None = None
        try:
            while True:
                message = answers.get()
                kind = message[0]
                if kind == "text":
                    stop = True
                    try:
                        stop = failure is not None or bool(on_text and on_text(message[2]))
                    except Exception as exc:  # the host still waits for its verdict
                        failure = exc
                    finally:
                        self._channel.send(("verdict", request_id, stop))
                elif kind == "done":
                    if failure is not None:
                        raise failure
                    result: Generation = message[2]
                    return result
                elif kind == "failed":
                    raise message[2]
                else:
                    raise GenerationError(self._gone_message())
        finally:
            forget_cancel()
            with self._calls_lock:
                self._calls.pop(request_id, None)

    def next_token_choices(self, prompt_ids: Sequence[int], count: int) -> tuple[int, ...]:
        """The host engine's `count` likeliest first tokens after `prompt_ids` (in turn with
        the generations); none when the host is gone."""
        request_id = next(self._ids)
        answers: queue.Queue[Message] = queue.Queue()
        with self._calls_lock:
            if self.gone:
                return ()
            self._calls[request_id] = answers
        try:
            self._channel.send(("choices", request_id, [int(i) for i in prompt_ids], count))
            message = answers.get()
        finally:
            with self._calls_lock:
                self._calls.pop(request_id, None)
        if message[0] == "failed":
            raise message[2]
        return tuple(message[2]) if message[0] == "choices" else ()

    def memory(self) -> dict[str, Any]:
        """What the host holds (its process, the weights, the kept KV caches)."""
        request_id = next(self._ids)
        answers: queue.Queue[Message] = queue.Queue()
        with self._calls_lock:
            self._calls[request_id] = answers
        try:
            self._channel.send(("memory", request_id))
            message = answers.get(timeout=MEMORY_TIMEOUT_S)
        except queue.Empty:
            return {"hostProcess": {"pid": self._pid, "error": "no answer"}}
        finally:
            with self._calls_lock:
                self._calls.pop(request_id, None)
        return dict(message[2]) if message[0] == "memory" else {}

    def close(self) -> None:
        """Stop the host (it frees its memory at once)."""
        self._channel.send(("exit",))
        self._channel.close()

    def _read(self) -> None:
        while (message := self._channel.receive()) is not None:
            kind = message[0]
            if kind == "located":
                self._read_tokenizer(message[1])
            elif kind in ("text", "done", "failed", "memory", "choices"):
                with self._calls_lock:
                    answers = self._calls.get(message[1])
                if answers is not None:
                    answers.put(message)
            else:  # progress, loaded, declined, load-failed
                self._loading.put(message)
        with self._calls_lock:
            self.gone = True
            waiting = list(self._calls.values())
        for answers in [*waiting, self._loading]:
            answers.put(_GONE)
        try:
            _, status = os.waitpid(self._pid, 0)  # no zombie
            self._exit_code = os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            pass
        log.info("the model host ended (exit code %s)", self._exit_code)

    def _read_tokenizer(self, export_dir: str) -> None:
        """Read the tokenizer the prompts are built with (on this thread, while the host loads)."""
        from pathlib import Path

        from code_llama_ls.engine.tokenizer_files import FileTokenizer

        try:
            self._tokenizer = FileTokenizer(Path(export_dir))
        except Exception:
            log.warning("reading the tokenizer in %s failed", export_dir, exc_info=True)

    def _gone_message(self) -> str:
        return (
            f"The model process ended (exit code {self._exit_code}), perhaps out of memory: "
            "the next request loads the model in the server."
        )


class HostedEngine(BranchesOneByOne):
    """An `Engine` whose model runs in the model host; the tokenizer is read here."""

    def __init__(self, host: ModelHost, info: dict[str, Any], tokenizer: TokenizerLike) -> None:
        self._host = host
        self.name: str = info["name"]
        self.device: str = info["device"]
        self.dtype: str = info["dtype"]
        self.context_length: int = info["context_length"]
        self.tokenizer = tokenizer
        learn = getattr(tokenizer, "learn_max_token_chars", None)
        if learn is not None and isinstance(info.get("max_token_chars"), int):
            learn(info["max_token_chars"])  # the host read it: not again on the first request
        self._load_here: Callable[[], Engine] | None = None
        self._here: Engine | None = None
        # Dropped (other settings) once no request holds it: the host ends and frees its memory.
        weakref.finalize(self, host.close)

    def when_gone(self, load_here: Callable[[], Engine]) -> None:
        """How to load the model in this process should the host end."""
        self._load_here = load_here

    def generate(
        self,
        prompt_ids: Sequence[int],
        params: GenerationParams,
        cancel: CancelToken,
        on_text: Callable[[str], bool] | None = None,
    ) -> Generation:
        """Generate in the host; after the host ended, in this process."""
        if self._host.gone and self._load_here is not None:
            if self._here is None:
                log.warning("the model process ended: loading %s in the server", self.name)
                self._here = self._load_here()
            return self._here.generate(prompt_ids, params, cancel, on_text)
        return self._host.generate(prompt_ids, params, cancel, on_text)

    def next_token_choices(self, prompt_ids: Sequence[int], count: int) -> tuple[int, ...]:
        """The host's engine's choices; after the host ended, this process's."""
        if self._host.gone and self._here is not None:
            return self._here.next_token_choices(prompt_ids, count)
        return self._host.next_token_choices(prompt_ids, count)

    def connect(self) -> ServedModel | None:
        """None: the host runs a local model (it hosts the ONNX backend only), as does
        this process should the host end."""
        return None

    def memory_usage(self) -> dict[str, Any]:
        """The host's report of its engine and process (merged into `codeLlama/memory`)."""
        if self._host.gone:
            return {"hostProcess": None}
        return self._host.memory()

    def close(self) -> None:
        """End the host: its memory goes back to the system."""
        self._host.close()


class HostingLoader:
    """The server's engine loader: the host's model for the settings it started with."""

    def __init__(
        self,
        host: ModelHost | None,
        load_here: Callable[[EngineSettings, ProgressCallback | None], Engine],
    ) -> None:
        self._host = host
        self._load_here = load_here

    def __call__(self, settings: EngineSettings, on_progress: ProgressCallback | None) -> Engine:
        host, self._host = self._host, None  # one start: later loads happen here
        if host is not None:
            if host.engine_settings() == settings:
                engine = host.engine(on_progress)
                if engine is not None:
                    log.info("%s runs in the model host (pid %d)", engine.name, host.pid)
                    engine.when_gone(lambda: self._load_here(settings, None))
                    return engine
            else:
                log.info("the settings changed since the model host started: it loads here")
                host.close()
        return self._load_here(settings, on_progress)
