"""What holds memory per document, and its bounds: trees, the workspace index, shown suggestions.

Trees are kept for the documents touched last only; a dropped tree is
parsed again when asked for, equal to a fresh parse. Closing a document
frees its text, tree and index entries. `memory_report` sums it all up.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from code_llama_ls.config import Settings
from code_llama_ls.context.builder import ContextBuilder
from code_llama_ls.context.index import IndexedFile, WorkspaceIndex
from code_llama_ls.engine.prefix_cache import DEFAULT_BUDGET_MIB, PrefixKvCache
from code_llama_ls.errors import ConfigError
from code_llama_ls.serving.reuse import Suggestion, TypedThrough
from code_llama_ls.syntax import parser_for
from code_llama_ls.text.documents import DocumentStore, TextChange
from code_llama_ls.tools.memory_report import memory_report, process_memory


def _module(n: int, functions: int = 20) -> str:
    return "".join(
        f"def function_{n}_{i}(value_{i}, other_{n}):\n    return helper_{i}(value_{i}) + {i}\n\n"
        for i in range(functions)
    )


def _uri(n: int) -> str:
    return f"file:///tmp/memory/mod_{n}.py"


def _fresh_parse(text: str) -> str:
    return str(parser_for("python").parse(text.encode()).root_node)


def test_closing_documents_frees_their_text_and_trees() -> None:
    store = DocumentStore()
    for n in range(5):
        store.open(_uri(n), "python", 1, _module(n))
    usage = store.usage()
    assert (usage.documents, usage.trees) == (5, 5)
    assert usage.text_bytes >= sum(len(_module(n)) for n in range(5))
    assert usage.tree_bytes_estimate > 0
    for n in range(5):
        store.close(_uri(n))
    usage = store.usage()
    assert (usage.documents, usage.trees, usage.text_bytes, usage.tree_text_bytes) == (0, 0, 0, 0)


def test_only_the_documents_touched_last_keep_their_trees() -> None:
    store = DocumentStore(max_trees=2)
    for n in range(4):
        store.open(_uri(n), "python", 1, _module(n))
    assert store.usage().trees == 2
    held = [store.get(_uri(n)).trees.holds_tree for n in range(4)]
    assert held == [False, False, True, True]
    # Editing an old document makes it the newest; the oldest holder loses its tree.
    store.change(_uri(0), 2, [TextChange(((0, 0), (0, 0)), "# edited\n")])
    held = [store.get(_uri(n)).trees.holds_tree for n in range(4)]
    assert held == [True, False, False, True]
    edited = store.get(_uri(0))
    assert edited.tree is not None
    assert str(edited.tree.root_node) == _fresh_parse(edited.text)


def test_a_dropped_tree_is_parsed_again_when_asked_for() -> None:
    store = DocumentStore(max_trees=1)
    store.open(_uri(0), "python", 1, _module(0))
    tree = store.get(_uri(0)).tree
    store.open(_uri(1), "python", 1, _module(1))
    old = store.get(_uri(0))
    assert not old.trees.holds_tree
    assert tree is not None and tree.root_node.child_count > 0  # a handed-out tree stays valid
    again = old.tree
    assert again is not None and str(again.root_node) == _fresh_parse(old.text)
    # Parsed again, the document counts as touched: it keeps the tree, the other drops its.
    assert old.trees.holds_tree and not store.get(_uri(1)).trees.holds_tree
    assert store.usage().trees == 1


def test_a_document_without_its_tree_is_edited_into_a_fresh_parse() -> None:
    store = DocumentStore(max_trees=1)
    store.open(_uri(0), "python", 1, _module(0))
    store.open(_uri(1), "python", 1, _module(1))
    snap = store.change(_uri(0), 2, [TextChange(((1, 4), (1, 10)), "yield")])
    assert snap.tree is not None and str(snap.tree.root_node) == _fresh_parse(snap.text)


def test_tree_text_bytes_are_bounded_but_the_newest_tree_stays() -> None:
    big = _module(0, functions=200)
    store = DocumentStore(max_tree_bytes=len(big) // 2)
    store.open(_uri(0), "python", 1, _module(1))
    store.open(_uri(1), "python", 1, big)
    assert [store.get(_uri(n)).trees.holds_tree for n in range(2)] == [False, True]


def test_trees_are_read_and_dropped_from_two_threads() -> None:
    store = DocumentStore(max_trees=1)
    texts = [_module(n, functions=5) for n in range(4)]
    for n, text in enumerate(texts):
        store.open(_uri(n), "python", 1, text)
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(50):
                for n in range(4):
                    tree = store.get(_uri(n)).tree
                    assert tree is not None and not tree.root_node.has_error
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    for version in range(2, 100):
        n = version % 4
        store.change(_uri(n), version, [TextChange(((0, 0), (0, 0)), "")])
    reader.join()
    assert not errors
    assert store.usage().trees <= 2  # the newest, and at most one parsed again meanwhile


def test_closing_an_open_document_outside_the_workspace_empties_the_index() -> None:
    index = WorkspaceIndex()
    for n in range(3):
        index.update(f"/tmp/memory/mod_{n}.py", "python", _module(n), is_open=True)
    usage = index.usage()
    assert (usage.files, usage.open_files) == (3, 3)
    assert usage.identifiers > 0 and usage.postings > 0 and usage.approx_bytes > 0
    assert usage.lines == index.total_lines > 0
    for n in range(3):
        index.close(f"/tmp/memory/mod_{n}.py", "python")
    usage = index.usage()
    empty = (usage.files, usage.open_files, usage.lines, usage.text_bytes, usage.identifiers)
    assert empty == (0, 0, 0, 0, 0)
    assert (usage.postings, usage.approx_bytes) == (0, 0)


def test_the_index_refuses_files_past_its_memory_bound() -> None:
    measure = WorkspaceIndex()
    measure.update("/a.py", "python", _module(0))
    index = WorkspaceIndex(max_memory=measure.usage().approx_bytes * 3 // 2)
    assert index.update("/a.py", "python", _module(0))
    assert not index.update("/b.py", "python", _module(1))
    assert len(index) == 1


def test_window_masks_say_which_windows_hold_each_identifier() -> None:
    text = "\n".join(f"alpha_{i} = beta" if i < 25 else f"gamma_{i} = beta" for i in range(40))
    record = IndexedFile.build("/w.py", "python", text)
    windows = len(record.window_sizes)
    assert windows == 3  # lines 0-19, 10-29, 20-39
    assert record.words["beta"] == 0b111
    assert record.words["alpha_0"] == 0b001
    assert record.words["gamma_39"] == 0b100
    assert record.window_sizes[0] == 21  # alpha_0..alpha_19 and beta


def test_shown_suggestions_are_kept_for_the_last_documents_only() -> None:
    shown = TypedThrough(max_documents=2)
    for n in range(3):
        shown.remember(_uri(n), Suggestion("x" * 10, "y" * 5, "text"))
    assert len(shown) == 2
    assert shown.lookup(_uri(0), "x" * 10, "y" * 5) is None
    assert shown.lookup(_uri(2), "x" * 10 + "t", "y" * 5) == "ext"
    assert shown.text_chars() == 2 * 19


class _Engine:
    name = "fake"
    device = "cpu"
    dtype = "float32"

    def __init__(self) -> None:
        self.kept: PrefixKvCache[Any] = PrefixKvCache(max_bytes=1 << 20)
        self.kept.put([1, 2, 3], [np.zeros(1000, np.float32)])

    def prefix_cache_usage(self) -> Any:
        return self.kept.usage()

    def memory_usage(self) -> dict[str, int]:
        return {"weightsBytes": 5000}


def test_the_memory_report_names_each_holder() -> None:
    store = DocumentStore()
    store.open(_uri(0), "python", 1, _module(0))
    index = WorkspaceIndex()
    index.update("/tmp/memory/mod_0.py", "python", _module(0), is_open=True)
    engine = _Engine()
    report = memory_report(
        engines=[("completion", engine), ("explanation", engine)],  # type: ignore[list-item]
        documents=store,
        index=index,
        context=ContextBuilder(index),
        typed_through=TypedThrough(),
    )
    assert report["process"]["rssBytes"] > 0
    assert len(report["engines"]) == 1  # one engine serving both is reported once
    held = report["engines"][0]
    assert held["weightsBytes"] == 5000
    assert held["prefixCache"] == {
        "entries": 1,
        "tokens": 3,
        "bytes": 4000,
        "maxEntries": 4,
        "budgetBytes": 1 << 20,
    }
    assert report["documents"]["documents"] == 1 and report["documents"]["trees"] == 1
    assert report["workspaceIndex"]["files"] == 1
    assert report["contextCaches"] == {"encodedSnippets": 0, "outlines": 0, "yanks": 0}
    assert report["completionCache"] == {
        "typedThrough": 0,
        "typedThroughChars": 0,
        "inFlight": 0,
        "writtenAheadChars": 0,
    }
    assert set(report["pieceCaches"]) == {"tokenizers", "entries", "chars"}
    expected = (
        5000
        + 4000
        + report["documents"]["textBytes"]
        + report["documents"]["lineIndexBytes"]
        + report["documents"]["treeBytesEstimate"]
        + report["workspaceIndex"]["approxBytes"]
    )
    assert report["accountedBytes"] == expected


def test_process_memory_reads_proc_status(tmp_path: Any) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nRssAnon:\t 512 kB\n")
    assert process_memory(status) == {
        "peakRssBytes": 2 << 20,
        "rssBytes": 1 << 20,
        "rssAnonBytes": 512 << 10,
    }


def test_the_prefix_cache_budget_is_a_setting_in_mib() -> None:
    settings = Settings()
    assert settings.engine.prefix_cache_mib == DEFAULT_BUDGET_MIB == 192
    changed = settings.with_values({"prefix_cache_mib": 64}, "config file")  # snake_case too
    assert changed.engine.prefix_cache_mib == 64
    assert changed.engine != settings.engine
    with pytest.raises(ConfigError, match="prefixCacheMib"):
        settings.with_values({"prefixCacheMib": -1}, "t")


async def test_the_model_thread_returns_freed_memory_once_its_queue_is_empty(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    from code_llama_ls import memory
    from code_llama_ls.cancel import CancelToken
    from code_llama_ls.serving.worker import ModelWorker

    released: list[int] = []
    monkeypatch.setattr(memory, "release_free_memory", lambda: released.append(1) or True)
    worker = ModelWorker(idle_release_s=0.02)
    gate = threading.Event()
    try:
        # Three jobs queued at once: memory goes back after the last, not after each.
        jobs = [
            asyncio.ensure_future(worker.run(lambda i=i: gate.wait(5) and i, CancelToken()))
            for i in range(3)
        ]
        await asyncio.sleep(0.05)
        assert released == []
        gate.set()
        assert await asyncio.gather(*jobs) == [0, 1, 2]
        await asyncio.sleep(0.05)
        assert released == [1]
        await worker.run(lambda: None, CancelToken())
        await asyncio.sleep(0.05)
        assert released == [1, 1]
    finally:
        worker.shutdown()


async def test_freed_memory_goes_back_only_after_a_pause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio
    import time

    from code_llama_ls import memory
    from code_llama_ls.cancel import CancelToken
    from code_llama_ls.serving.worker import ModelWorker

    released: list[float] = []
    monkeypatch.setattr(
        memory, "release_free_memory", lambda: released.append(time.monotonic()) or True
    )
    worker = ModelWorker(idle_release_s=0.3)
    try:
        # Keystrokes 0.1 s apart: never a pause of 0.3 s, so nothing is released.
        for _ in range(5):
            assert await worker.run(lambda: 42, CancelToken()) == 42
            await asyncio.sleep(0.1)
        assert released == []
        ended = time.monotonic()
        await asyncio.sleep(0.5)
        assert len(released) == 1 and released[0] - ended >= 0.15
    finally:
        worker.shutdown()
