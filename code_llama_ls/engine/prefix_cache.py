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

Entries are bounded by bytes (`max_bytes`), not only by count: a kept cache
costs its key/value arrays, tens of KiB per token (SmolLM2-135M in fp32:
45 KiB per token, 93 MiB for a 2,112-token prompt and answer), so four
entries counted could hold 370 MiB. A cache's size is what keeps its memory
alive (`cache_nbytes`): a cropped view pins its whole base array. While
the user types, each keystroke's cache shares all but its last tokens with
the one before: an older entry the new one covers but for a few tokens is
dropped (`REDUNDANT_TAIL`), so the budget holds distinct places rather than
copies of the one being typed at.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

C = TypeVar("C")

MIB = 1 << 20
DEFAULT_ENTRIES = 4
"""Entries kept by default: the place being typed at, an explanation, two other places."""
DEFAULT_BUDGET_MIB = 192
"""Bytes kept by default: two places at the CPU prompt cap (2,048 + 64 tokens of
SmolLM2-135M's fp32 keys/values are 93 MiB): the one being typed at and one more."""
REDUNDANT_TAIL = 0.125
"""An older entry is dropped when a new one shares all but this share of its tokens:
keeping it could save recomputing only those few."""

SizeOf = Callable[[Any], int]
"""The bytes a cache keeps alive."""


@dataclass
class _Entry(Generic[C]):
    ids: list[int]
    cache: C
    nbytes: int


@dataclass(frozen=True)
class PrefixCacheStats:
    """Counters since the cache was made (for status and benchmarks)."""

    lookups: int
    hits: int
    reused_tokens: int


@dataclass(frozen=True)
class PrefixCacheUsage:
    """What the cache holds now (for `codeLlama/memory`)."""

    entries: int
    tokens: int
    bytes: int
    max_entries: int
    max_bytes: int | None

    def to_json(self) -> dict[str, int | None]:
        """camelCase keys, as the protocol reports them."""
        return {
            "entries": self.entries,
            "tokens": self.tokens,
            "bytes": self.bytes,
            "maxEntries": self.max_entries,
            "budgetBytes": self.max_bytes,
        }


class PrefixKvCache(Generic[C]):
    """Up to `entries` caches (least recently used evicted) of at most `max_bytes` in all.

    `entries=0` turns reuse off: every prompt is computed in full (the naive
    baseline). At least one prompt token is always left to compute: its
    logits give the first generated token (a fully cached prompt has none).
    `max_tokens` and `max_bytes` (None: no bound) never evict the newest
    entry: the place being typed at is kept even when it alone is larger.
    `size_of` measures a cache's bytes (`cache_nbytes` knows numpy and torch).
    """

    def __init__(
        self,
        entries: int = DEFAULT_ENTRIES,
        max_tokens: int | None = None,
        *,
        max_bytes: int | None = DEFAULT_BUDGET_MIB * MIB,
        size_of: SizeOf | None = None,
    ) -> None:
        if entries < 0:
            raise ValueError(f"entries must be >= 0, got {entries}")
        if max_bytes is not None and max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.entries = entries
        self.max_tokens = max_tokens
        self.max_bytes = max_bytes
        self._size_of: SizeOf = size_of if size_of is not None else cache_nbytes
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
        nbytes = self._size_of(cache)  # outside the lock: it walks the cache's arrays
        with self._lock:
            # An entry the new one covers (all of its ids, or all but a few)
            # holds next to nothing the new one lacks.
            self._kept = [e for e in self._kept if not _covered(e.ids, kept)]
            self._kept.append(_Entry(kept, cache, nbytes))
            self._evict()

    def set_budget(self, max_bytes: int | None) -> None:
        """Bound the entries by `max_bytes` from now on (None: by count only); evicts at once."""
        if max_bytes is not None and max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        with self._lock:
            self.max_bytes = max_bytes
            self._evict()

    def _evict(self) -> None:
        """Drop least recently used entries until every bound holds (the newest stays)."""
        while len(self._kept) > self.entries or (
            len(self._kept) > 1
            and (
                (
                    self.max_tokens is not None
                    and sum(len(e.ids) for e in self._kept) > self.max_tokens
                )
                or (
                    self.max_bytes is not None
                    and sum(e.nbytes for e in self._kept) > self.max_bytes
                )
            )
        ):
            self._kept.pop(0)

    def clear(self) -> None:
        """Forget every entry (frees their memory)."""
        with self._lock:
            self._kept.clear()

    def usage(self) -> PrefixCacheUsage:
        """Entries, tokens and bytes held now, and the bounds."""
        with self._lock:
            return PrefixCacheUsage(
                entries=len(self._kept),
                tokens=sum(len(e.ids) for e in self._kept),
                bytes=sum(e.nbytes for e in self._kept),
                max_entries=self.entries,
                max_bytes=self.max_bytes,
            )

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


def _covered(old: list[int], new: list[int]) -> bool:
    """Whether `new` shares all of `old` but at most REDUNDANT_TAIL of its tokens.

    Reuse from `old` could then beat reuse from `new` by those few tokens only.
    """
    unshared = len(old) - common_prefix_length(old, new)
    return unshared <= int(len(old) * REDUNDANT_TAIL)


def cache_nbytes(cache: object) -> int:
    """The bytes `cache` keeps alive: its arrays' buffers, each counted once.

    Knows numpy arrays (a view counts its whole base: a cropped cache pins
    the array it was cut from), torch tensors (their storage), lists and
    tuples of them, and transformers' caches (`DynamicCache.layers` with
    `keys` and `values`, or the older `key_cache` and `value_cache`).
    Anything else counts 0.
    """
    seen: set[tuple[str, int]] = set()
    total = 0
    for array in _arrays(cache):
        key, size = _buffer(array)
        if key not in seen:
            seen.add(key)
            total += size
    return total


def _arrays(cache: object) -> Iterator[object]:
    if cache is None:
        return
    if isinstance(cache, list | tuple):
        for item in cache:
            yield from _arrays(item)
        return
    layers = getattr(cache, "layers", None)
    if isinstance(layers, list | tuple):
        for layer in layers:
            yield from _arrays(getattr(layer, "keys", None))
            yield from _arrays(getattr(layer, "values", None))
        return
    keys = getattr(cache, "key_cache", None)
    if isinstance(keys, list | tuple):
        yield from _arrays(keys)
        yield from _arrays(getattr(cache, "value_cache", None))
        return
    if hasattr(cache, "nbytes") or hasattr(cache, "untyped_storage"):
        yield cache


def _buffer(array: Any) -> tuple[tuple[str, int], int]:
    """(a key naming the memory `array` keeps alive, its size in bytes)."""
    storage = getattr(array, "untyped_storage", None)
    if storage is not None:  # a torch tensor: views share their storage
        buffer = storage()
        return ("torch", buffer.data_ptr()), int(buffer.nbytes())
    root = array
    while getattr(root, "base", None) is not None and hasattr(root.base, "nbytes"):
        root = root.base  # a numpy view: the array that owns the memory
    return ("array", id(root)), int(root.nbytes)
