"""Work-done progress: one begin, the stages as reports (the latest always sent), one end."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, cast

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from code_llama_ls.lsp.progress import WorkProgress


class FakeProgress:
    """The part of pygls' work_done_progress that WorkProgress uses, recording what is sent."""

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.tokens: dict[Any, Any] = {}

    async def create_async(self, token: types.ProgressToken) -> None:
        del token

    def begin(self, token: types.ProgressToken, value: types.WorkDoneProgressBegin) -> None:
        self.sent.append(value)

    def report(self, token: types.ProgressToken, value: types.WorkDoneProgressReport) -> None:
        self.sent.append(value)

    def end(self, token: types.ProgressToken, value: types.WorkDoneProgressEnd) -> None:
        self.sent.append(value)

    def reports(self) -> list[tuple[str | None, int | None]]:
        return [
            (v.message, v.percentage)
            for v in self.sent
            if isinstance(v, types.WorkDoneProgressReport)
        ]


class FakeServer:
    def __init__(self) -> None:
        self.work_done_progress = FakeProgress()


def progress_of(server: FakeServer) -> WorkProgress:
    return WorkProgress(cast(LanguageServer, server), "loading model", None, supported=True)


async def wait_for(condition: Any) -> None:
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not reached in 10 s")


async def test_a_load_is_one_begin_its_stages_and_one_end() -> None:
    server = FakeServer()
    async with progress_of(server) as report:
        stages = [("reading GGUF", 0.0), ("dequantizing", 0.5), ("loaded SmolLM2", 1.0)]
        for message, fraction in stages:
            report(message, fraction)
            await wait_for(lambda m=message: m in dict(server.work_done_progress.reports()))
    sent = server.work_done_progress.sent
    assert isinstance(sent[0], types.WorkDoneProgressBegin)
    assert sent[0].title == "loading model"
    assert isinstance(sent[-1], types.WorkDoneProgressEnd)
    assert sum(isinstance(v, types.WorkDoneProgressBegin) for v in sent) == 1
    assert sum(isinstance(v, types.WorkDoneProgressEnd) for v in sent) == 1
    assert server.work_done_progress.reports() == [
        ("reading GGUF", 0),
        ("dequantizing", 50),
        ("loaded SmolLM2", 100),
    ]


async def test_a_stage_reported_within_the_interval_is_sent_without_waiting_for_the_end() -> None:
    # The model thread reports the end of a stage and the start of a long one
    # at once; the editor must not show the ended stage for the whole next one.
    server = FakeServer()
    async with progress_of(server) as report:

        def load() -> None:
            for message, fraction in [("saving", 0.0), ("saving", 1.0), ("exporting to ONNX", 0.0)]:
                report(message, fraction)

        worker = threading.Thread(target=load)
        worker.start()
        worker.join()
        await wait_for(
            lambda: server.work_done_progress.reports()[-1:] == [("exporting to ONNX", 0)]
        )
        assert not any(
            isinstance(v, types.WorkDoneProgressEnd) for v in server.work_done_progress.sent
        )


async def test_reports_are_throttled_and_the_last_one_is_sent() -> None:
    server = FakeServer()
    async with progress_of(server) as report:
        for i in range(1, 201):
            report("dequantizing", i / 200)
    reports = server.work_done_progress.reports()
    assert len(reports) < 200
    assert reports[-1] == ("dequantizing", 100)
    assert isinstance(server.work_done_progress.sent[-1], types.WorkDoneProgressEnd)


async def test_nothing_is_sent_after_the_end() -> None:
    server = FakeServer()
    async with progress_of(server) as report:
        report("reading GGUF", 0.0)
    report("late", 1.0)
    await asyncio.sleep(0.2)
    assert isinstance(server.work_done_progress.sent[-1], types.WorkDoneProgressEnd)
