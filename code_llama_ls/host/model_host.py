"""The model host: a process beside the language server that loads the ONNX model and generates.

Why a process: a server start was 1.5 s on a 2-core laptop, because
everything ran one after another under one GIL: Python and pygls starting
(0.55 s), ONNX Runtime's import and session (0.5 s), the tokenizer (0.15 s),
a warm-up generation. The server forks this host first thing
(`launch.spawn_model_host`; the settings follow with the editor's
`initialize` options), and the two start side by side on two cores.
Serving, it also keeps the model's decode loop off the GIL that the
editor's keystrokes need.

Only the ONNX backend is hosted (the CPU default); for any other settings
the host says "declined" and exits, and the server loads the model itself
as before. Messages (`host_channel`), server to host: settings (first: the
server's own, `cli.serving_settings`), generate, choices (the likeliest
first tokens, for alternative suggestions), verdict, cancel, memory, exit.
Host to server: progress, located (the export's directory, whose tokenizer
the server reads meanwhile), loaded, declined, load-failed, then per
request: text, done, failed, choices, memory.

A generation streams each token's text and waits for the server's verdict
(its stop checks and time budget decide, exactly as in one process); a
cancel reaches the generation before its next token. The host exits when
the server's end of the socket closes, whatever the server was doing.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pickle
import queue
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from code_llama_ls.cancel import CancelToken
from code_llama_ls.engine.base import GenerationParams, warm_up
from code_llama_ls.engine.tokenizer_files import write_decoding_file
from code_llama_ls.host.channel import Channel
from code_llama_ls.memory import (
    ReleaseWhenIdle,
    keep_large_blocks_on_heap,
    process_memory,
    settle_start_up_garbage,
)

if TYPE_CHECKING:
    from code_llama_ls.config import Settings

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the server on socket FD (`argv`: [FD]); forked, or `python -m
    code_llama_ls.host.model_host FD`."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    # Ctrl-C in a terminal reaches the whole group: the host ends with its server instead.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    channel = Channel(socket.socket(fileno=int(arguments[0])))
    # Started before the server's restart and its reading of `initialize`:
    # what any ONNX load needs is imported while the settings are on their way.
    import code_llama_ls.config  # noqa: F401  (the settings arrive pickled)
    from code_llama_ls.logs import configure_logging

    if importlib.util.find_spec("onnxruntime") is not None:
        import onnxruntime  # type: ignore[import-untyped]  # noqa: F401
    first = channel.receive()
    if first is None or first[0] != "settings":
        return 1
    settings = first[1]
    configure_logging(settings.log_level)
    keep_large_blocks_on_heap()
    return ModelHost(channel, settings).run()


class ModelHost:
    """Loads the model, then runs generations in order on the main thread."""

    def __init__(self, channel: Channel, settings: Settings) -> None:
        self._channel = channel
        self._settings = settings
        self._engine: Any = None
        self._jobs: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._verdicts: queue.Queue[tuple[int, bool]] = queue.Queue()
        self._tokens: dict[int, CancelToken] = {}
        self._lock = threading.Lock()
        self._release = ReleaseWhenIdle()  # as the server's model thread does

    def run(self) -> int:
        """Load, say so, then serve until the server's end closes."""
        threading.Thread(target=self._read, name="host-reader", daemon=True).start()
        if not self._load():
            return 0
        settle_start_up_garbage()  # forked with the collector off (`launch.main`)
        # For the next start (once per export): the host only decodes.
        directory = getattr(self._engine.tokenizer, "directory", None)
        if directory is not None:
            threading.Thread(
                target=write_decoding_file, args=(directory,), name="decoding-file", daemon=True
            ).start()
        while True:
            kind, *job = self._jobs.get()
            self._release.started()
            try:
                if kind == "generate":
                    self._generate(*job)
                else:
                    self._choices(*job)
            finally:
                self._release.finished()

    def _load(self) -> bool:
        """Load and warm the model up, then say "loaded"; False when the server loads it."""
        from code_llama_ls.engine.loading import load_onnx, onnx_source
        from code_llama_ls.engine.prefix_cache import MIB

        settings = self._settings.engine

        def progress(message: str, fraction: float | None) -> None:
            self._channel.send(("progress", message, fraction))

        try:
            source = onnx_source(
                settings.model,
                backend=settings.backend,
                device=settings.device,
                cache_dir=settings.cache_path,
                on_progress=progress,
            )
        except Exception as exc:  # the server loads it itself and reports what is wrong
            self._channel.send(("declined", str(exc)))
            return False
        if source is None:
            self._channel.send(("declined", "another backend runs this model"))
            return False
        try:
            engine = load_onnx(
                source,
                settings.cache_path,
                settings.prefix_cache_entries,
                settings.prefix_cache_mib * MIB,
                progress,
                settings.onnx_weights,
                on_exported=lambda path: self._channel.send(("located", str(path))),
                decoding_tokenizer=True,  # the server builds the prompts
            )
        except Exception as exc:
            log.debug("the model host could not load the model", exc_info=True)
            self._channel.send(("load-failed", str(exc)))
            return False
        warm_up(engine, progress)
        info = {
            "name": engine.name,
            "device": engine.device,
            "dtype": engine.dtype,
            "context_length": engine.context_length,
            # Read here: the server need not list the vocabulary on its first request.
            "max_token_chars": getattr(engine.tokenizer, "max_token_chars", None),
        }
        self._engine = engine  # before "loaded": the server may ask about its memory at once
        self._channel.send(("loaded", info))
        return True

    def _read(self) -> None:
        """The reader thread: jobs to the main thread, cancels and verdicts at once."""
        while (message := self._channel.receive()) is not None:
            kind = message[0]
            if kind == "generate":
                with self._lock:
                    self._tokens[message[1]] = CancelToken()
                self._jobs.put(message)
            elif kind == "choices":
                self._jobs.put(message)
            elif kind == "cancel":
                with self._lock:
                    token = self._tokens.get(message[1])
                if token is not None:
                    token.cancel()
            elif kind == "verdict":
                self._verdicts.put((message[1], message[2]))
            elif kind == "memory":
                self._channel.send(("memory", message[1], self._memory()))
            elif kind == "exit":
                break
        os._exit(0)  # the server is gone or done: nothing here is worth finishing

    def _generate(
        self, request_id: int, prompt_ids: list[int], params: GenerationParams, streams: bool
    ) -> None:
        with self._lock:
            cancel = self._tokens[request_id]

        def on_text(text: str) -> bool:
            self._channel.send(("text", request_id, text))
            while True:
                answered, stop = self._verdicts.get()
                if answered == request_id:
                    return stop

        try:
            generation = self._engine.generate(
                prompt_ids, params, cancel, on_text=on_text if streams else None
            )
        except Exception as exc:
            self._channel.send(("failed", request_id, _portable(exc)))
        else:
            self._channel.send(("done", request_id, generation))
        finally:
            with self._lock:
                self._tokens.pop(request_id, None)

    def _choices(self, request_id: int, prompt_ids: list[int], count: int) -> None:
        try:
            choices = self._engine.next_token_choices(prompt_ids, count)
        except Exception as exc:
            self._channel.send(("failed", request_id, _portable(exc)))
        else:
            self._channel.send(("choices", request_id, list(choices)))

    def _memory(self) -> dict[str, Any]:
        from code_llama_ls.engine.usage import engine_memory

        engine = self._engine
        report = {} if engine is None else engine_memory(engine, "completion")
        report.pop("role", None)
        report["hostProcess"] = {"pid": os.getpid(), **process_memory()}
        return report


def _portable(exc: Exception) -> Exception:
    """`exc` if it survives pickling, else a GenerationError with its message."""
    from code_llama_ls.errors import GenerationError

    exc.__traceback__ = None
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return GenerationError(f"{type(exc).__name__}: {exc}")
    return exc


if __name__ == "__main__":
    sys.exit(main())
