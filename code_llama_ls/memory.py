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

Both apply on Linux with glibc only; elsewhere these do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
import subprocess
import sys
from collections.abc import Callable

log = logging.getLogger(__name__)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None
    return trim


def release_free_memory() -> bool:
    """Hand the allocator's free pages back to the system; whether the C library could."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    log.debug("returned free heap pages to the system")
    return True


def use_system_allocator() -> None:
    """Restart this program (same pid, same pipes) with pymalloc off, where trimming works.

    Call it first thing in the program's entry, before heavy imports: it
    re-runs `sys.argv` as it was started (`python -m code_llama_ls` or the
    `code-llama-ls` script). Nothing happens when the allocator was chosen
    already (by the user, or by this restart), or without glibc.
    """
    if "PYTHONMALLOC" in os.environ or _malloc_trim() is None or not sys.executable:
        return
    script = sys.argv[0]
    entry = ["-m", "code_llama_ls"] if script.endswith("__main__.py") else [script]
    flags = subprocess._args_from_interpreter_flags()  # type: ignore[attr-defined]
    command = [sys.executable, *flags, *entry, *sys.argv[1:]]
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, command, {**os.environ, "PYTHONMALLOC": "malloc"})
    except OSError as exc:  # run on with pymalloc: only memory is at stake
        log.warning("could not restart with the system allocator: %s", exc)
