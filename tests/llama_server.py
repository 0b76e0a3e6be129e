"""A real llama.cpp server (llama-cpp-python's) on 127.0.0.1, for tests and benchmarks.

It serves the default model's GGUF, as a team's GPU box would serve Code
Llama's. It can be stopped and started again on the same port, to play a
server that goes down mid-session.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

READY_TIMEOUT_S = 120.0
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Linux: the server gets SIGTERM when the process that started it dies (a killed test)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LlamaCppServer:
    """`python -m llama_cpp.server` serving `gguf`; its output goes to `log_path`."""

    def __init__(
        self,
        gguf: Path,
        log_path: Path,
        *,
        port: int | None = None,
        context: int = 4096,
        threads: int = 2,
    ) -> None:
        self.gguf = gguf
        self.log_path = log_path
        self.port = port or free_port()
        self.context = context
        self.threads = threads
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Where editors' language servers point `remoteUrl`."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LlamaCppServer:
        """Start the server and wait until it answers /v1/models."""
        command = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.gguf),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.context),
            "--n_threads",
            str(self.threads),
            # One client must not cut another's generation short: cancelling
            # is the client's job (it closes its stream).
            "--interrupt_requests",
            "False",
        ]
        log = self.log_path.open("ab")
        # Idle OpenMP threads sleep instead of spinning: the server shares two
        # cores with the language servers and the test runner.
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_WAIT_POLICY": "PASSIVE"}
        self._process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=_die_with_parent,
        )
        log.close()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited:\n{self.log_text()[-2000:]}")
            if self.answers():
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not start in {READY_TIMEOUT_S:.0f} s")

    def answers(self) -> bool:
        """Whether the server answers /v1/models now."""
        try:
            with urllib.request.urlopen(f"{self.url}/v1/models", timeout=2) as response:
                return bool(json.load(response).get("data"))
        except (OSError, urllib.error.URLError, ValueError):
            return False

    def stop(self) -> None:
        """Stop the server (as a crash or a restart would)."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def log_text(self) -> str:
        """What the server printed so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self) -> LlamaCppServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
