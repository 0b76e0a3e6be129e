"""Recently edited places in the open documents: where the user's attention was.

The server records the first line of each edit as it applies didChange; the
context engine shows the newest edits of other files. One entry per
(file, nearby lines) keeps a burst of typing from crowding out the rest.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

# Edits within this many lines of an earlier one replace it.
_SAME_PLACE_LINES = 8


@dataclass(frozen=True)
class RecentEdit:
    """The place of one edit: a file, a 0-based line and when (time.monotonic())."""

    path: str
    line: int
    time: float


class RecentEdits:
    """The last `capacity` edit places, newest last; thread-safe."""

    def __init__(self, capacity: int = 16) -> None:
        self.capacity = capacity
        self._edits: OrderedDict[tuple[str, int], RecentEdit] = OrderedDict()
        self._lock = threading.Lock()

    def record(self, path: str, line: int, when: float | None = None) -> None:
        """Note an edit at `line` of `path`."""
        edit = RecentEdit(path, line, time.monotonic() if when is None else when)
        with self._lock:
            for key in [k for k in self._edits if k[0] == path]:
                if abs(key[1] - line) <= _SAME_PLACE_LINES:
                    del self._edits[key]
            self._edits[path, line] = edit
            while len(self._edits) > self.capacity:
                self._edits.popitem(last=False)

    def forget(self, path: str) -> None:
        """Drop every edit of `path` (the document was closed)."""
        with self._lock:
            for key in [k for k in self._edits if k[0] == path]:
                del self._edits[key]

    def newest_first(self) -> list[RecentEdit]:
        """The edits, newest first."""
        with self._lock:
            return list(reversed(self._edits.values()))
