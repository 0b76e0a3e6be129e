"""Tests of the prefix-KV LRU: which entry is reused, cropping, eviction, and the off switch.

The caches here are plain lists standing for key/value tensors: `PrefixKvCache`
never looks inside them, it only asks the backend's `crop`.
"""

from __future__ import annotations

import random

import pytest

from code_llama_ls.engine.prefix_cache import PrefixKvCache, common_prefix_length


def _crop(cache: list[int], length: int) -> list[int]:
    del cache[length:]
    return cache


def _kept(ids: list[int]) -> list[int]:
    return list(ids)  # a "cache" holding exactly `ids`


def test_common_prefix_length_matches_a_plain_scan() -> None:
    rng = random.Random(0)
    for _ in range(500):
        a = [rng.randrange(3) for _ in range(rng.randrange(12))]
        b = a[: rng.randrange(len(a) + 1)] + [rng.randrange(3) for _ in range(rng.randrange(5))]
        expected = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
        if expected is None:
            expected = min(len(a), len(b))
        assert common_prefix_length(a, b) == expected
        assert common_prefix_length(b, a) == expected


def test_take_reuses_the_longest_shared_prefix_and_crops_to_it() -> None:
    lru: PrefixKvCache[list[int]] = PrefixKvCache(entries=4)
    lru.put([1, 2, 3, 4, 5], _kept([1, 2, 3, 4, 5]))
    lru.put([1, 2, 9], _kept([1, 2, 9]))
    cache, reused = lru.take([1, 2, 3, 4, 7, 8], _crop)
    assert (cache, reused) == ([1, 2, 3, 4], 4)
    assert lru.kept_ids == [[1, 2, 9]]  # the taken entry belongs to the caller now


def test_a_whole_prompt_in_the_cache_leaves_its_last_token_to_compute() -> None:
    lru: PrefixKvCache[list[int]] = PrefixKvCache(entries=2)
    lru.put([1, 2, 3], _kept([1, 2, 3]))
    assert lru.take([1, 2, 3], _crop) == ([1, 2], 2)


def test_nothing_shared_takes_nothing_and_keeps_the_entries() -> None:
    lru: PrefixKvCache[list[int]] = PrefixKvCache(entries=2)
    lru.put([1, 2], _kept([1, 2]))
    assert lru.take([5, 6], _crop) == (None, 0)
    assert lru.kept_ids == [[1, 2]]


def test_least_recently_used_entries_go_first() -> None:
    lru: PrefixKvCache[list[int]] = PrefixKvCache(entries=2)
    for ids in ([1, 1], [2, 2], [3, 3]):
        lru.put(ids, _kept(ids))
    assert lru.kept_ids == [[2, 2], [3, 3]]
    cache, _ = lru.take([2, 2, 5], _crop)
    assert cache is not None
    lru.put([2, 2, 5], [*cache, 5])
    assert lru.kept_ids == [[3, 3], [2, 2, 5]]


def test_an_entry_that_starts_a_newer_one_is_dropped() -> None:
    lru: PrefixKvCache[list[int]] = PrefixKvCache(entries=4)
    lru.put([1, 2], _kept([1, 2]))
    lru.put([1, 2, 3], _kept([1, 2, 3]))
    assert lru.kept_ids == [[1, 2, 3]]


def test_total_tokens_are_capped_but_the_newest_entry_stays() -> None:
    lru: PrefixKvCache[list[int]] = PrefixKvCache(entries=4, max_tokens=5)
    lru.put([1, 1, 1], _kept([1, 1, 1]))
    lru.put([2, 2, 2], _kept([2, 2, 2]))
    assert lru.kept_ids == [[2, 2, 2]]
    lru.put([3] * 9, _kept([3] * 9))
    assert lru.kept_ids == [[3] * 9]


def test_zero_entries_keeps_nothing() -> None:
    lru: PrefixKvCache[list[int]] = PrefixKvCache(entries=0)
    lru.put([1, 2, 3], _kept([1, 2, 3]))
    assert lru.take([1, 2, 3, 4], _crop) == (None, 0)
    assert lru.kept_ids == []
    with pytest.raises(ValueError):
        PrefixKvCache(entries=-1)


def test_stats_count_lookups_hits_and_reused_tokens() -> None:
    lru: PrefixKvCache[list[int]] = PrefixKvCache(entries=2)
    lru.take([1, 2], _crop)
    lru.put([1, 2, 3], _kept([1, 2, 3]))
    lru.take([1, 2, 3, 4], _crop)
    stats = lru.stats()
    assert (stats.lookups, stats.hits, stats.reused_tokens) == (2, 1, 3)
