"""Prefix-KV reuse across requests: a small LRU of key/value caches keyed by token ids.

Typing at the cursor extends the prompt (SPM puts the growing prefix last,
cross-file context first), so the next prompt usually shares all but its
last few tokens with one seen before. `take` hands out the kept cache with
the longest common token prefix, cropped to it, so only the tokens after it
are computed; `put` keeps the cache of what was just fed. Several entries
let an explanation, another file or another place in the same file come
and go without evicting the cache of the place being typed at.

Backend-neutral: a cache is any object and cropping is the backend's
(`DynamicCache.crop` for torch, array slices for ONNX Runtime). A taken
cache belongs to the caller until it is put back (it is mutated in place by
torch), so an entry is never shared between two generations.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

C = TypeVar("C")

DEFAULT_ENTRIES = 4
"""Entries kept by default: the place being typed at, an explanation, two other places."""


@dataclass
class _Entry(Generic[C]):
    ids: list[int]
    cache: C


@dataclass(frozen=True)
class PrefixCacheStats:
    """Counters since the cache was made (for status and benchmarks)."""

    lookups: int
    hits: int
    reused_tokens: int


class PrefixKvCache(Generic[C]):
    """Up to `entries` caches (least recently used evicted), at most `max_tokens` in all.

    `entries=0` turns reuse off: every prompt is computed in full (the naive
    baseline). At least one prompt token is always left to compute: its
    logits give the first generated token (a fully cached prompt has none).
    """

    def __init__(self, entries: int = DEFAULT_ENTRIES, max_tokens: int | None = None) -> None:
        if entries < 0:
            raise ValueError(f"entries must be >= 0, got {entries}")
        self.entries = entries
        self.max_tokens = max_tokens
        self._kept: list[_Entry[C]] = []  # least recently used first
        self._lock = threading.Lock()
        self._lookups = self._hits = self._reused = 0

    def take(self, prompt: list[int], crop: Callable[[C, int], C]) -> tuple[C | None, int]:
        """The kept cache sharing the longest prefix with `prompt`, cropped to it, and its length.

        (None, 0) when no entry shares a token. The entry leaves the LRU: put
        the cache back (`put`) after feeding it, or drop it.
        """
        with self._lock:
            self._lookups += 1
            best, reuse = None, 0
            for entry in self._kept:
                shared = min(common_prefix_length(entry.ids, prompt), len(prompt) - 1)
                if shared > reuse:
                    best, reuse = entry, shared
            if best is None:
                return None, 0
            self._kept.remove(best)
            self._hits += 1
            self._reused += reuse
        cache = best.cache if reuse == len(best.ids) else crop(best.cache, reuse)
        return cache, reuse

    def put(self, ids: Sequence[int], cache: C) -> None:
        """Keep `cache`, which holds the keys/values of exactly `ids`, as the most recent entry."""
        if self.entries == 0 or not ids:
            return
        kept = list(ids)
        with self._lock:
            # An entry whose ids start the new ones holds nothing the new one lacks.
            self._kept = [e for e in self._kept if not _starts_with(kept, e.ids)]
            self._kept.append(_Entry(kept, cache))
            while len(self._kept) > self.entries or (
                len(self._kept) > 1
                and self.max_tokens is not None
                and sum(len(e.ids) for e in self._kept) > self.max_tokens
            ):
                self._kept.pop(0)

    def clear(self) -> None:
        """Forget every entry (frees their memory)."""
        with self._lock:
            self._kept.clear()

    @property
    def kept_ids(self) -> list[list[int]]:
        """The ids of each kept entry, least recently used first (for tests and status)."""
        with self._lock:
            return [list(e.ids) for e in self._kept]

    def stats(self) -> PrefixCacheStats:
        """Lookups, hits and tokens reused so far."""
        with self._lock:
            return PrefixCacheStats(self._lookups, self._hits, self._reused)


def common_prefix_length(a: list[int], b: list[int]) -> int:
    """How many leading ids `a` and `b` share."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:  # the usual case (typing extends the prompt), compared in C
        return n
    low, high = 0, n  # a[:low] == b[:low] and a[:high] != b[:high]
    while high - low > 1:
        middle = (low + high) // 2
        if a[low:middle] == b[low:middle]:
            low = middle
        else:
            high = middle
    return low


def _starts_with(ids: list[int], prefix: list[int]) -> bool:
    return len(prefix) <= len(ids) and ids[: len(prefix)] == prefix
