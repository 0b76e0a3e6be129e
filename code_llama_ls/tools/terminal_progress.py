"""Progress of long work (the first run's conversion, a model load) on the command line.

The engine reports `(message, fraction)`: a stage is a message, and a new
message ends the stage before it; a None fraction is a stage of unknown
length. On a terminal each stage gets one tqdm bar (a timer for a stage of
unknown length), redrawn twice a second so a long stage without reports
still shows its time going by. Elsewhere (pipes, CI logs) each stage gets
one line when it starts and one when it ends, not a line per percentage.
A stage reported once, already complete ("loaded X"), is one line in both.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import threading
import time
from types import TracebackType
from typing import Any, TextIO

BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {elapsed}"
TIMER_FORMAT = "{desc}: {elapsed}"
REDRAW_INTERVAL_S = 0.5


class TerminalProgress:
    """A `ProgressCallback` writing to `stream`; use it as a context manager.

    `bars`: tqdm bars (default: when `stream` is a terminal) or plain lines.
    Callable from any thread. On a terminal, log records written to stderr
    while it is open go through tqdm, so they do not break a bar.
    """

    def __init__(self, stream: TextIO | None = None, *, bars: bool | None = None) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._bars = _is_terminal(self._stream) if bars is None else bars
        self._lock = threading.Lock()
        self._stage: str | None = None  # the open stage
        self._finished: str | None = None  # the last stage that reached 1.0
        self._began = 0.0
        self._bar: Any = None  # the open stage's tqdm bar
        self._closed = threading.Event()
        self._redraw: threading.Thread | None = None
        self._exits = contextlib.ExitStack()

    def __enter__(self) -> TerminalProgress:
        if self._bars:
            from tqdm.contrib.logging import (  # type: ignore[import-untyped]
                logging_redirect_tqdm,
            )

            self._exits.enter_context(logging_redirect_tqdm())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close(finished=exc_type is None)

    def __call__(self, message: str, fraction: float | None) -> None:
        if not message:
            return
        complete = fraction is not None and fraction >= 1.0
        with self._lock:
            if self._closed.is_set():
                return
            if message != self._stage:
                self._end_stage(finished=True)
                if complete and message == self._finished:
                    return  # the end of a stage reported twice
                self._start_stage(message, fraction)
            elif fraction is not None:
                self._advance(fraction)
            if complete:
                self._end_stage(finished=True)
                self._finished = message

    def note(self, line: str) -> None:
        """Write one line of its own, above the open bar on a terminal."""
        with self._lock:
            self._write(line)

    def close(self, *, finished: bool = True) -> None:
        """End the open stage: as finished, or as cut short (no "done" line, the bar kept)."""
        with self._lock:
            if self._closed.is_set():
                return
            self._end_stage(finished=finished)
            self._closed.set()
        if self._redraw is not None:
            self._redraw.join()
        self._exits.close()

    def _start_stage(self, message: str, fraction: float | None) -> None:
        if fraction is not None and fraction >= 1.0:  # begun and ended in one report
            self._write(message)
            return
        self._stage, self._began = message, time.monotonic()
        if not self._bars:
            self._write(f"{message} ...")
            return
        self._bar = _tqdm()(
            desc=message,
            total=None if fraction is None else 100,
            file=self._stream,
            bar_format=TIMER_FORMAT if fraction is None else BAR_FORMAT,
            leave=True,
            **_width(self._stream),
        )
        if fraction is not None:
            self._advance(fraction)
            self._bar.refresh()  # a stage may begin part done
        if self._redraw is None:
            self._redraw = threading.Thread(
                target=self._redraw_open_bar, name="code-llama-ls progress", daemon=True
            )
            self._redraw.start()

    def _advance(self, fraction: float) -> None:
        bar = self._bar
        if bar is None:
            return
        if bar.total is None:  # a stage of unknown length that now knows it
            bar.total, bar.bar_format = 100, BAR_FORMAT
        bar.update(max(0.0, min(fraction, 1.0)) * 100 - bar.n)

    def _end_stage(self, *, finished: bool) -> None:
        stage, bar = self._stage, self._bar
        self._stage, self._bar = None, None
        if stage is None:
            return
        if bar is not None:
            if finished and bar.total is not None:
                bar.update(bar.total - bar.n)
            bar.close()
        elif finished:
            self._write(f"{stage}: done in {time.monotonic() - self._began:.1f} s")

    def _write(self, line: str) -> None:
        if self._bars:
            _tqdm().write(line, file=self._stream)
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def _redraw_open_bar(self) -> None:
        while not self._closed.wait(REDRAW_INTERVAL_S):
            with self._lock:
                if self._bar is not None:
                    self._bar.refresh()


def _tqdm() -> Any:
    from tqdm import tqdm  # type: ignore[import-untyped]  # imported when used: 0.1 s

    return tqdm


def _width(stream: Any) -> dict[str, Any]:
    """tqdm's size: the terminal's as it changes, or $COLUMNS x $LINES (else 80 x 24).

    A pseudo-terminal without a size (`script`, some CI runners) reports 0 x 0,
    where tqdm would draw nothing at all.
    """
    with contextlib.suppress(AttributeError, OSError, ValueError):
        if min(os.get_terminal_size(stream.fileno())) > 0:
            return {"dynamic_ncols": True}
    columns, lines = shutil.get_terminal_size()
    return {"ncols": columns, "nrows": lines}


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
