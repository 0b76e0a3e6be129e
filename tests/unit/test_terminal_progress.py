"""Command-line progress: a tqdm bar per stage on a terminal, else a line as each starts, ends."""

from __future__ import annotations

import io
import logging
import re
import sys
import threading

import pytest

from code_llama_ls.tools.terminal_progress import TerminalProgress

# What a first run reports: the GGUF conversion, the ONNX export, the load.
FIRST_RUN = [
    ("reading GGUF", 0.0),
    ("reading GGUF", 1.0),
    ("dequantizing", 0.0),
    *[("dequantizing", i / 20) for i in range(1, 21)],
    ("saving", 0.0),
    ("saving", 0.9),
    ("saving", 1.0),
    ("exporting to ONNX", 0.0),
    ("quantizing to int8", 0.75),
    ("loading SmolLM2 (ONNX Runtime)", None),
    ("loaded SmolLM2", 1.0),
]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(stream: io.StringIO, reports: list[tuple[str, float | None]]) -> str:
    with TerminalProgress(stream) as progress:
        for message, fraction in reports:
            progress(message, fraction)
    return stream.getvalue()


def test_off_a_terminal_each_stage_is_a_line_when_it_starts_and_one_when_it_ends() -> None:
    lines = run(io.StringIO(), FIRST_RUN).splitlines()
    assert [line.split(": done in")[0] for line in lines] == [
        "reading GGUF ...",
        "reading GGUF",
        "dequantizing ...",
        "dequantizing",
        "saving ...",
        "saving",
        "exporting to ONNX ...",
        "exporting to ONNX",
        "quantizing to int8 ...",
        "quantizing to int8",
        "loading SmolLM2 (ONNX Runtime) ...",
        "loading SmolLM2 (ONNX Runtime)",
        "loaded SmolLM2",
    ]
    assert all(line.endswith(" s") for line in lines if ": done in" in line)
    assert "%" not in "".join(lines)


def test_a_stage_that_fails_gets_no_done_line() -> None:
    stream = io.StringIO()
    with pytest.raises(RuntimeError), TerminalProgress(stream) as progress:
        progress("exporting to ONNX", 0.0)
        raise RuntimeError("the exporter failed")
    assert stream.getvalue() == "exporting to ONNX ...\n"


def test_on_a_terminal_each_stage_is_a_tqdm_bar() -> None:
    text = run(Terminal(), FIRST_RUN)
    assert "\r" in text  # redrawn in place
    shown = [line.split("\r")[-1] for line in text.split("\n")[:-1]]  # what stays on screen
    assert [line.split(":")[0] for line in shown] == [
        "reading GGUF",
        "dequantizing",
        "saving",
        "exporting to ONNX",
        "quantizing to int8",
        "loading SmolLM2 (ONNX Runtime)",
        "loaded SmolLM2",
    ]
    # A stage that ended shows as complete, a stage of unknown length as a timer.
    assert all(": 100%|" in line for line in shown[:5])
    assert "quantizing to int8:  75%|" in text  # a stage begun part done
    assert "%" not in shown[5] and shown[5].endswith("00:00")
    assert shown[6] == "loaded SmolLM2"


def test_on_a_terminal_log_records_do_not_run_into_the_bar(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = Terminal()
    monkeypatch.setattr(sys, "stderr", stream)
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [logging.StreamHandler(sys.stderr)])
    with TerminalProgress(stream) as progress:
        progress("dequantizing", 0.5)
        logging.getLogger("code_llama_ls.test").warning("a record")
        progress("dequantizing", 1.0)
    assert "a record" in re.split(r"[\r\n]", stream.getvalue())  # not after the bar's text
    assert isinstance(root.handlers[0], logging.StreamHandler)  # put back


def test_reports_from_another_thread_are_shown() -> None:
    stream = io.StringIO()
    with TerminalProgress(stream) as progress:

        def load() -> None:
            for message, fraction in FIRST_RUN:
                progress(message, fraction)

        worker = threading.Thread(target=load)
        worker.start()
        worker.join()
    assert stream.getvalue().splitlines()[-1] == "loaded SmolLM2"
