"""Logging of the command line: our records at --log-level, other libraries' only at debug."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings
from collections.abc import Iterator

import pytest

from code_llama_ls.cli import configure_logging
from code_llama_ls.engine.onnx_export import quiet_exporters

TOUCHED = ("", "code_llama_ls", "pygls", "py.warnings", "optimum", "transformers")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state: put it back."""
    levels = {name: logging.getLogger(name).level for name in TOUCHED}
    handlers = logging.getLogger().handlers[:]
    yield
    logging.captureWarnings(False)
    logging.getLogger().handlers = handlers
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.parametrize(
    ("level", "root", "ours"),
    [
        ("info", logging.WARNING, logging.INFO),
        ("warning", logging.WARNING, logging.WARNING),
        ("error", logging.ERROR, logging.ERROR),
        ("debug", logging.DEBUG, logging.DEBUG),
    ],
)
def test_the_root_logger_stays_at_warning_below_debug(level: str, root: int, ours: int) -> None:
    environ: dict[str, str] = {}
    configure_logging(level, environ=environ)
    assert logging.getLogger().level == root
    assert logging.getLogger("code_llama_ls").getEffectiveLevel() == ours
    assert logging.getLogger("pygls").getEffectiveLevel() >= logging.WARNING
    if level == "debug":
        assert environ == {}
        assert logging.getLogger("py.warnings").getEffectiveLevel() == logging.DEBUG
    else:
        assert environ["TRANSFORMERS_VERBOSITY"] == "error"
        assert logging.getLogger("py.warnings").getEffectiveLevel() == logging.ERROR


def test_a_variable_the_user_set_is_kept() -> None:
    environ = {"TRANSFORMERS_VERBOSITY": "info"}
    configure_logging("info", environ=environ)
    assert environ["TRANSFORMERS_VERBOSITY"] == "info"


SCRIPT = """
import logging, sys, warnings
from code_llama_ls.cli import configure_logging

configure_logging(sys.argv[1])
logging.info("Quantization parameters for tensor x")  # onnxruntime's quantizer: the root logger
logging.getLogger("onnxruntime.quantization").info("a library's info")
warnings.warn("a TracerWarning", UserWarning)
logging.getLogger("code_llama_ls.engine").info("our info")
logging.getLogger("code_llama_ls.engine").debug("our debug")
"""


def stderr_at(level: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, level], capture_output=True, text=True, check=True
    )
    return result.stderr


def test_other_libraries_records_do_not_reach_stderr_below_debug() -> None:
    stderr = stderr_at("info")
    assert "our info" in stderr
    for hidden in ("Quantization parameters", "a library's info", "TracerWarning", "our debug"):
        assert hidden not in stderr


def test_at_debug_everything_reaches_stderr() -> None:
    stderr = stderr_at("debug")
    for shown in ("Quantization parameters", "a library's info", "TracerWarning", "our debug"):
        assert shown in stderr


def test_the_exporters_are_quiet_unless_we_log_at_debug() -> None:
    ours = logging.getLogger("code_llama_ls")
    optimum = logging.getLogger("optimum")
    optimum.setLevel(logging.WARNING)
    ours.setLevel(logging.INFO)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_exporters():
            warnings.warn("a TracerWarning", UserWarning, stacklevel=1)
            assert not optimum.isEnabledFor(logging.WARNING)
        assert optimum.level == logging.WARNING
        ours.setLevel(logging.DEBUG)
        with quiet_exporters():
            warnings.warn("a TracerWarning", UserWarning, stacklevel=1)
            assert optimum.isEnabledFor(logging.WARNING)
    assert len(caught) == 1
