"""The prefix-KV cache bounded by bytes: what an entry costs, what is evicted, what is kept.

Caches here are lists of numpy arrays shaped like ONNX Runtime's past
keys/values ([1, heads, length, dim]), so `cache_nbytes` measures them as it
does the real ones; one test uses transformers' DynamicCache.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from code_llama_ls.cancel import CancelToken
from code_llama_ls.engine.base import GenerationParams
from code_llama_ls.engine.greedy import KvEngine
from code_llama_ls.engine.prefix_cache import PrefixKvCache, cache_nbytes

HEADS, DIM = 2, 4
PER_TOKEN = 2 * HEADS * DIM * 4  # a key and a value array, float32


def _cache(length: int) -> list[np.ndarray[Any, Any]]:
    """Keys and values of one layer for `length` positions."""
    return [np.zeros((1, HEADS, length, DIM), np.float32) for _ in range(2)]


def _crop(cache: list[np.ndarray[Any, Any]], length: int) -> list[np.ndarray[Any, Any]]:
    return [array[:, :, :length, :] for array in cache]  # views, as the ONNX backend crops


def _ids(place: int, length: int) -> list[int]:
    return [place * 1000 + i for i in range(length)]


def test_an_entry_costs_its_arrays() -> None:
    assert cache_nbytes(_cache(10)) == 10 * PER_TOKEN
    assert cache_nbytes([]) == 0
    assert cache_nbytes([1, 2, 3]) == 0  # not arrays: nothing measured


def test_a_cropped_cache_costs_its_whole_base_array() -> None:
    base = _cache(100)
    cropped = _crop(base, 10)
    assert cache_nbytes(cropped) == 100 * PER_TOKEN  # the views pin the base
    assert cache_nbytes([*cropped, *base]) == 100 * PER_TOKEN  # one buffer counted once
    assert cache_nbytes([a.copy() for a in cropped]) == 10 * PER_TOKEN


def test_entries_are_evicted_least_recently_used_first_until_under_the_byte_budget() -> None:
    lru: PrefixKvCache[Any] = PrefixKvCache(entries=8, max_bytes=25 * PER_TOKEN)
    for place in (1, 2, 3):
        lru.put(_ids(place, 10), _cache(10))
    assert lru.kept_ids == [_ids(2, 10), _ids(3, 10)]  # 30 tokens' worth > 25
    usage = lru.usage()
    assert (usage.entries, usage.tokens, usage.bytes) == (2, 20, 20 * PER_TOKEN)
    assert usage.to_json()["budgetBytes"] == 25 * PER_TOKEN


def test_the_newest_entry_stays_even_when_it_alone_is_over_the_budget() -> None:
    lru: PrefixKvCache[Any] = PrefixKvCache(entries=8, max_bytes=5 * PER_TOKEN)
    lru.put(_ids(1, 4), _cache(4))
    lru.put(_ids(2, 50), _cache(50))
    assert lru.kept_ids == [_ids(2, 50)]
    assert lru.usage().bytes == 50 * PER_TOKEN


def test_a_cropped_entry_put_back_counts_its_base() -> None:
    lru: PrefixKvCache[Any] = PrefixKvCache(entries=8, max_bytes=150 * PER_TOKEN)
    lru.put(_ids(1, 100), _cache(100))
    cache, reused = lru.take([*_ids(1, 10), 7], _crop)
    assert reused == 10 and cache is not None
    lru.put(_ids(1, 10), cache)  # still views of the 100-position arrays
    assert lru.usage().bytes == 100 * PER_TOKEN
    lru.put(_ids(2, 60), _cache(60))  # 160 > 150: the cropped entry goes, base and all
    assert lru.kept_ids == [_ids(2, 60)]


def test_lowering_the_budget_evicts_at_once() -> None:
    lru: PrefixKvCache[Any] = PrefixKvCache(entries=8, max_bytes=None)
    for place in (1, 2, 3):
        lru.put(_ids(place, 10), _cache(10))
    assert len(lru.kept_ids) == 3
    lru.set_budget(10 * PER_TOKEN)
    assert lru.kept_ids == [_ids(3, 10)]
    with pytest.raises(ValueError):
        lru.set_budget(-1)


def test_typing_keeps_one_entry_per_place_not_one_per_keystroke() -> None:
    """Each keystroke's prompt shares all but its last tokens with the one before."""
    lru: PrefixKvCache[Any] = PrefixKvCache(entries=4, max_bytes=None)
    other = _ids(9, 80)
    lru.put(other, _cache(80))
    typed = _ids(1, 100)
    for key in range(5):
        prompt = [*typed, 500 + key]  # the last token differs keystroke to keystroke
        answer = [*prompt, 600 + key, 601 + key]  # with the generated tokens fed
        lru.put(answer, _cache(len(answer)))
    assert lru.kept_ids == [other, [*typed, 504, 604, 605]]


def test_an_entry_differing_early_is_kept() -> None:
    lru: PrefixKvCache[Any] = PrefixKvCache(entries=4, max_bytes=None)
    first = _ids(1, 100)
    second = [*first[:50], *_ids(2, 50)]  # half shared: another place
    lru.put(first, _cache(100))
    lru.put(second, _cache(100))
    assert lru.kept_ids == [first, second]


def test_dynamic_cache_layers_are_measured_by_their_storage() -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    cache = transformers.DynamicCache()
    for layer in range(3):
        keys = torch.zeros((1, HEADS, 20, DIM))
        cache.update(keys, keys.clone(), layer)
    assert cache_nbytes(cache) == 3 * 20 * PER_TOKEN
    cache.crop(5)  # views of the same storage
    assert cache_nbytes(cache) == 3 * 20 * PER_TOKEN


class _ArrayModel:
    """A `KvModel` whose cache is one layer of zero arrays and which always answers id 7."""

    def empty_cache(self) -> list[np.ndarray[Any, Any]]:
        return _cache(0)

    def crop(self, cache: list[np.ndarray[Any, Any]], length: int) -> list[np.ndarray[Any, Any]]:
        return _crop(cache, length)

    def forward(
        self, cache: list[np.ndarray[Any, Any]], ids: list[int], start: int
    ) -> tuple[list[np.ndarray[Any, Any]], int]:
        grown = [
            np.concatenate([a, np.zeros((1, HEADS, len(ids), DIM), np.float32)], 2) for a in cache
        ]
        return grown, 7


class _Tokenizer:
    bos_token_id = None
    stop_token_ids = frozenset({2})
    max_token_chars = 1

    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(chr(i) for i in ids)

    def token_to_id(self, token: str) -> int | None:
        return None

    def apply_chat_template(self, messages: Any) -> list[int] | None:
        return None


def test_the_engine_reports_and_bounds_its_kept_caches_by_bytes() -> None:
    engine: KvEngine[Any] = KvEngine(
        _ArrayModel(),
        _Tokenizer(),  # type: ignore[arg-type]
        name="arrays",
        context_length=1000,
        prefix_cache_entries=4,
        prefix_cache_bytes=150 * PER_TOKEN,
    )
    params = GenerationParams(3, frozenset())
    engine.generate(_ids(1, 100), params, CancelToken())
    usage = engine.prefix_cache_usage()
    # The prompt and the generated tokens but the last were fed.
    assert (usage.entries, usage.tokens, usage.bytes) == (1, 102, 102 * PER_TOKEN)
    engine.generate(_ids(2, 100), params, CancelToken())
    assert engine.prefix_cache_usage().entries == 1  # two would be 204 tokens' worth
    engine.set_prefix_cache_budget(None)
    engine.generate(_ids(3, 100), params, CancelToken())
    assert engine.prefix_cache_usage().entries == 2
