"""Giving memory that was freed back to the operating system.

Closing documents frees their text, trees and index entries, yet the
server's resident memory stayed high (`benchmarks/stress.py`, 300 documents
of 20 KB opened and closed), for two reasons:

- CPython's small-object allocator (pymalloc) returns a 1 MiB arena to the
  system only when every object in it is dead, and a few long-lived objects
  scattered among a document's trees and index entries pin most arenas:
  about 190 MiB stayed resident while 4 MiB of Python objects were alive.
  The server therefore runs with `PYTHONMALLOC=malloc` (`use_system_allocator`),
  measured no slower on the completion path.
- glibc's malloc keeps freed pages for reuse: `malloc_trim(0)`
  (`release_free_memory`, under a millisecond) hands them back. With both,
  12 MiB stayed.

One more setting keeps the model fast rather than small: glibc serves
blocks above a threshold (128 KiB at start) with fresh `mmap` pages, and
each decode step allocates its layers' grown keys/values (0.5 MiB a layer at
600 tokens), so every step faulted in new zero pages: 29 ms a token instead
of 21 until glibc's own adjustment caught up. `keep_large_blocks_on_heap`
raises the threshold to where glibc's adjustment ends anyway (32 MiB);
`release_free_memory` still hands the freed pages back.

All of this applies on Linux with glibc only; elsewhere it does nothing.

Start-up garbage, on every platform: building lsprotocol's 554 attrs
classes leaves about 17,000 objects in reference cycles, and the cyclic
garbage collector ran 135 times while the server imported its modules (70 ms
of a start). Serving turns it off for the start (`launch.main`) and
`settle_start_up_garbage` collects once when the start is over, then moves
what survived out of every later collection (`gc.freeze`): the imported
modules, never garbage, are no longer walked by each full collection either.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import logging


def _log() -> logging.Logger:
    """This module's logger (logging is imported only when needed: 8 ms of a start)."""
    import logging

    return logging.getLogger(__name__)


# mallopt parameters (malloc.h) and the ceiling glibc's dynamic threshold stops at on 64 bits.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018 - glibc only (musl has none)
    except (OSError, AttributeError):
        return None
    return libc


def keep_large_blocks_on_heap() -> bool:
    """Serve blocks up to 32 MiB from the heap, not fresh mmap pages; whether glibc took it."""
    libc = _libc()
    if libc is None:
        return False
    taken: int = libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)
    # What glibc's own adjustment sets beside it: the heap's top is trimmed past twice that.
    trimmed: int = libc.mallopt(_M_TRIM_THRESHOLD, 2 * _MMAP_THRESHOLD_MAX)
    return taken == 1 and trimmed == 1


START_UP_S = 3.0
"""How long after its start a server collects its start-up garbage (`settle_start_up_garbage`)."""


def settle_start_up_garbage() -> None:
    """Collect the start's garbage, keep the survivors out of later collections, collect
    as usual from now on. Call it once, when the start is over (start-up ran without
    the collector: `gc.disable`)."""
    gc.collect()
    gc.freeze()
    gc.enable()
    release_free_memory()


def release_free_memory() -> bool:
    """Hand the allocator's free pages back to the system; whether the C library could."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    _log().debug("returned free heap pages to the system")
    return True


IDLE_RELEASE_S = 1.0
"""How long model work must have stopped before the memory it freed goes back."""


class ReleaseWhenIdle:
    """Returns freed memory to the system once work has stopped for `delay_s` (any thread).

    Not at once: `malloc_trim` takes 6-10 ms and holds the allocator's locks,
    so run before each answer it delayed every completion, and run right
    after it, the next keystroke's answer from the cache (p50 5 to 14 ms in
    the keystroke replay). While the user types there is no pause that long;
    after typing, there is. `started` and `finished` bracket each piece of
    work (they may overlap: the release waits for the last).
    """

    def __init__(self, delay_s: float = IDLE_RELEASE_S) -> None:
        self._delay_s = delay_s
        self._working = 0
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def started(self) -> None:
        """Work began (or was queued): no release until it is finished."""
        with self._lock:
            self._working += 1
            self._cancel()

    def finished(self) -> None:
        """Work ended: release after `delay_s` unless more work starts."""
        with self._lock:
            self._working -= 1
            if self._working == 0:
                self._cancel()
                self._timer = threading.Timer(self._delay_s, self._release_if_idle)
                self._timer.daemon = True
                self._timer.start()

    def close(self) -> None:
        """No release is pending any more."""
        with self._lock:
            self._cancel()

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _release_if_idle(self) -> None:
        with self._lock:
            if self._working:  # work came in the meantime
                return
            self._timer = None
        release_free_memory()


def system_allocator_environment() -> dict[str, str]:
    """What a Python process's environment needs for `use_system_allocator`'s allocator
    (nothing where it is chosen already or without glibc)."""
    if "PYTHONMALLOC" in os.environ or _libc() is None:
        return {}
    return {"PYTHONMALLOC": "malloc"}


def use_system_allocator() -> None:
    """Restart this program (same pid, same pipes) with pymalloc off, where trimming works.

    Call it first thing in the program's entry, before heavy imports: it
    re-runs `sys.argv` as it was started (`python -m code_llama_ls` or the
    `code-llama-ls` script). Nothing happens when the allocator was chosen
    already (by the user, or by this restart), or without glibc.
    """
    if not system_allocator_environment() or not sys.executable:
        return
    script = sys.argv[0]
    entry = ["-m", "code_llama_ls"] if script.endswith("__main__.py") else [script]
    flags = subprocess._args_from_interpreter_flags()  # type: ignore[attr-defined]
    command = [sys.executable, *flags, *entry, *sys.argv[1:]]
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, command, {**os.environ, **system_allocator_environment()})
    except OSError as exc:  # run on with pymalloc: only memory is at stake
        _log().warning("could not restart with the system allocator: %s", exc)


# /proc/self/status fields reported, and their JSON keys (values in kB there).
_PROC_FIELDS = {
    "VmRSS": "rssBytes",
    "VmHWM": "peakRssBytes",
    "RssAnon": "rssAnonBytes",
    "RssFile": "rssFileBytes",
}


def process_memory(status_file: Path = Path("/proc/self/status")) -> dict[str, int]:
    """The process's resident memory now and at its peak, in bytes (Linux; else the peak)."""
    found: dict[str, int] = {}
    try:
        text = status_file.read_text(encoding="ascii", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        name, _, value = line.partition(":")
        key = _PROC_FIELDS.get(name)
        parts = value.split()
        if key is not None and parts and parts[0].isdigit():
            found[key] = int(parts[0]) * 1024
    if "rssBytes" not in found:
        found.update(_peak_from_rusage())
    return found


def _peak_from_rusage() -> dict[str, int]:
    try:
        import resource
    except ImportError:  # Windows
        return {}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kB, macOS bytes.
    return {"peakRssBytes": int(peak if sys.platform == "darwin" else peak * 1024)}
