"""Finding and ending the processes an editor leaves below it (servers, helpers, browsers).

Editors start language servers and helpers that may leave their process
group, so the tests walk /proc to find every descendant and make sure none
outlives a test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def descendants(pid: int) -> list[int]:
    """Process ids below `pid` (from /proc), also those that left its process group."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found.extend(kids)
        todo.extend(kids)
    return found


def alive(pid: int) -> bool:
    """Whether `pid` is running (a zombie is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_gone(pids: list[int], timeout: float) -> bool:
    """Wait up to `timeout` s for `pids` to end (they need not be our children)."""
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def reap(pids: list[int], timeout: float = 5.0) -> None:
    """Wait for processes to end, then kill whatever is left."""
    if wait_gone(pids, timeout):
        return
    for pid in pids:
        if alive(pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
