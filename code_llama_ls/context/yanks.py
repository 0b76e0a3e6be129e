"""Text the user yanked (Neovim) or copied (VS Code): what they are about to paste or adapt.

The clients send each yank (`codeLlama/didYank`); the ring keeps the last
few, each as a small file of its own lines, so that the assembler can
show one like any other snippet (`sources.yank_candidates` scores them).
Thread-safe: yanks arrive on the event loop, prompts are built on the
model worker.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from code_llama_ls.context.index import IndexedFile

CAPACITY = 8
"""Yanks kept, newest last."""
MAX_LINES = 64
"""Lines of a yank kept (the first ones): a bigger yank is a file moved, not a snippet."""
MAX_CHARS = 16_000
"""Characters of a yank read at most; the clients send no more either."""
MIN_CHARS = 12
"""Fewer characters than this (spaces aside) is a word, not code worth a place in the prompt."""
PATH_PREFIX = "yank:"
"""How yanks are named among the context's files (never a real path)."""


@dataclass(frozen=True)
class Yank:
    """One yank: its lines as a file, where it came from, and when (time.monotonic())."""

    record: IndexedFile
    source_path: str | None
    time: float

    @property
    def text(self) -> str:
        """The yanked lines, each ending with a line break."""
        return "".join(line + "\n" for line in self.record.lines)


class YankRing:
    """The last `capacity` yanks worth showing; a yank made again moves to the front."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._yanks: OrderedDict[str, Yank] = OrderedDict()  # by text, oldest first
        self._names = itertools.count(1)
        self._lock = threading.Lock()

    def add(
        self,
        text: str,
        source_path: str | None = None,
        language: str | None = None,
        when: float | None = None,
    ) -> bool:
        """Keep `text`; False when it is too small to be worth it."""
        lines = text[:MAX_CHARS].replace("\r\n", "\n").replace("\r", "\n").split("\n")
        while lines and not lines[-1].strip():
            lines.pop()
        while lines and not lines[0].strip():
            lines.pop(0)
        kept = "\n".join(line.rstrip() for line in lines[:MAX_LINES])
        if len("".join(kept.split())) < MIN_CHARS:
            return False
        record = IndexedFile.build(f"{PATH_PREFIX}{next(self._names)}", language or "", kept)
        yank = Yank(record, source_path, time.monotonic() if when is None else when)
        with self._lock:
            self._yanks.pop(kept, None)
            self._yanks[kept] = yank
            while len(self._yanks) > self.capacity:
                self._yanks.popitem(last=False)
        return True

    def newest_first(self) -> list[Yank]:
        """The yanks kept, newest first."""
        with self._lock:
            return list(reversed(self._yanks.values()))

    def __len__(self) -> int:
        return len(self._yanks)
