"""The start's garbage is collected once, after it, and the collector is on from then on."""

from __future__ import annotations

import gc
import weakref

from code_llama_ls.memory import settle_start_up_garbage


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic collector frees it


def test_the_start_runs_without_the_collector_and_settling_collects_and_freezes() -> None:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        kept = Node()
        left = weakref.ref(Node())
        for _ in range(10_000):  # what would set automatic collections off
            Node()
        assert left() is not None, "nothing collects a cycle while the collector is off"
        settle_start_up_garbage()
        assert left() is None, "the start's garbage is collected"
        assert gc.isenabled(), "the collector is on after the start"
        assert gc.get_freeze_count() > 0, "what survived is kept out of later collections"
        assert kept.me is kept
    finally:
        gc.unfreeze()
        if not was_enabled:
            gc.disable()
