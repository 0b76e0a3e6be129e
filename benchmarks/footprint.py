"""Footprint: how long the server takes to start and how much memory it holds, beside llama.cpp.

Each start spawns the real server, `python -m code_llama_ls serve --log-level
warning` over stdio (the offline default model, no `initializationOptions`,
no workspace folder), once per `--backends` entry: `default` passes no
`--backend` (the server picks: ONNX Runtime int8 for the default model on a
CPU), any other name is passed as `--backend NAME`. It is started with
`benchmarks/stress.py`'s harness: working directory and `PYTHONPATH` at
`--repo-root` (default: this repository; a git worktree of an older commit
measures that code with the same virtual environment), pytest-lsp's client
initialized with VS Code's capabilities plus inline completion, the server's
stderr kept by the benchmark, resident memory read from `/proc/<pid>/status`
of the server and every process under it (its model host, which runs the
ONNX model), summed. The server re-executes itself once to turn pymalloc
off (same pid), which counts in its start.

**Times** are milliseconds from spawn: `time.perf_counter()` just before
`stress.start_server`, which makes the client and spawns the process.

- `initialize_ms`: the `initialize` response read (start_server returns after
  sending `initialized`, which starts the model's load in the background).
- `ready_ms`: the model loaded, the earlier of a `codeLlama/status`
  notification and a `codeLlama/getStatus` poll (every 0.1 s) saying state
  `ready` (or `generating`) with a device; `ready_by` says which came first
  (a server that publishes no notifications is timed by the poll alone). A
  state `error` fails the start.
- `first_completion_ms`: the response to the first
  `textDocument/inlineCompletion` (trigger Invoked) read, sent right after
  ready on a small Python document (`def area(width, height):` / `return `,
  cursor at the end); `first_completion_latency_ms` is that request's own
  latency (sent → response).

Every backend is started `--starts` times (default 3), in rounds (each round
starts every backend once, llama.cpp last, so machine load drifts over all
of them alike); each start is shut down after its first completion, except
in the last round, whose servers run the remaining stages once. Start-up
figures are reported as median, min and max over the starts; every start is
in the JSON.

**Memory** in MiB (2**20 bytes): VmRSS (and VmHWM, the peak so far, with
RssAnon and RssFile: file pages such as an mmapped model count in VmRSS) at
each stage of the last round's server:

- `ready`: when the model is loaded (read right after ready is seen);
- `first_completion`: right after the first completion's response;
- `keystrokes`: after `--keystrokes` (default 60) characters of a small Python
  function are typed, one per keystroke, at the end of a document holding
  `import math` (a line break and the next line's indentation are one
  keystroke, as an editor's auto-indent); per keystroke an incremental
  `didChange` and a `textDocument/inlineCompletion` (Automatic) at the new
  cursor, its response awaited (at most 30 s, then `$/cancelRequest`) before
  the next keystroke. Latency p50/p95 and outcomes are recorded;
- `documents_open`: `--documents` (default 300) distinct 20 KiB Python
  modules (`stress.generated_module`) opened back to back, a
  `codeLlama/getStatus` answered after the last one, 2 s to settle;
- `documents_closed`: all of them closed, `codeLlama/getStatus` answered, 2 s
  to settle (the server returns freed memory 1 s after the last close).

At each stage the server is also asked `codeLlama/memory` (what holds its
memory, where the server has the request): its result is recorded, or null
with the error when it answers one; a server that answers MethodNotFound
(older code, via `--repo-root`) is not asked again.

**llama.cpp**: llama-cpp-python's server (`python -m llama_cpp.server`, as
`tests/llama_server.py` starts it: `--n_threads` (default: the CPUs this
process may use), `--interrupt_requests False`, `OMP_WAIT_POLICY=PASSIVE`)
on the same GGUF the default model is converted from
(`find_default_gguf()`: SmolLM2-135M-Instruct Q4_1), `--n_ctx` 2048, on
127.0.0.1 and a free port, its output to a temporary log. `ready_ms`: spawn
→ the first `GET /v1/models` answered with a model (polled every 0.05 s);
VmRSS at ready; then one `POST /v1/completions` of the same small document
(`max_tokens` 64, the server's `maxNewTokens`; temperature 0): its latency,
`first_completion_ms` from spawn, VmRSS after it. Same `--starts` rounds.
Skipped, with the reason recorded, when `llama_cpp` cannot be imported or
`--no-llama-cpp`.

A start that fails (the server dies, a wait runs out) records its `failure`
with what it measured so far; the others still run. The JSON (`--out`)
holds `machine()` (CPU, load average, versions, the benchmark's own
commit), the parameters, the code measured (`stress.code_root` of
`--repo-root`), the GGUF, and per server its command, every start, the
start-up summary and the stages.

Run from the repository root:

    python -m benchmarks.footprint [--backends default,transformers] [--starts 3]
        [--documents 300] [--keystrokes 60] [--no-llama-cpp] [--llama-threads N]
        [--llama-context 2048] [--load-timeout 600] [--repo-root DIR] [--quick]
        [--out benchmarks/results/footprint.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcMethodNotFound

from benchmarks.environment import machine, percentile, write_results
from benchmarks.stress import (
    AFTER_CANCEL_S,
    BACKENDS,
    SETTLE_S,
    WARM_UP_PY,
    Keystroke,
    Server,
    answered,
    close_document,
    code_root,
    generated_module,
    get_status,
    indentation,
    inline_params,
    memory_mib,
    open_document,
    plain,
    request_inline,
    send_cancel,
    send_insert,
    server_command,
    start_server,
    status_mib,
    stop_server,
)
from tests.llama_server import _die_with_parent, free_port

ROOT = Path(__file__).resolve().parent.parent
URI_BASE = "file:///tmp/footprint"
LLAMA_CPP = "llama.cpp"
DEFAULT_BACKEND = "default"
STATUS_NOTIFICATION = "codeLlama/status"
MEMORY_REQUEST = "codeLlama/memory"
READY_POLL_S = 0.1
HTTP_POLL_S = 0.05
KEYSTROKE_TIMEOUT_S = 30.0
MEMORY_TIMEOUT_S = 30.0
DOCUMENT_BYTES = 20 * 1024
MAX_NEW_TOKENS = 64  # the server's default maxNewTokens, for llama.cpp's request
LOG_TAIL_CHARS = 2000
MIB = 1024.0  # /proc reports kB (KiB)
HEADER = "import math\n\n\n"
TYPED = (
    "def moving_average(values, window):\n"
    "    if window <= 0:\n"
    '        raise ValueError("window must be positive")\n'
    "    total = sum(values[:window])\n"
    "    averages = [total / window]\n"
    "    for i in range(window, len(values)):\n"
    "        total += values[i] - values[i - window]\n"
    "        averages.append(total / window)\n"
    "    return averages\n"
)
STARTUP_KEYS = ("initialize_ms", "ready_ms", "first_completion_ms", "first_completion_latency_ms")
STAGES = ("ready", "first_completion", "keystrokes", "documents_open", "documents_closed")


# -- memory ----------------------------------------------------------------------


def rss_parts(pid: int) -> dict[str, float]:
    """RssAnon, RssFile and RssShmem of a process and its children in MiB (empty when gone)."""
    return status_mib(pid, ("RssAnon", "RssFile", "RssShmem")) or {}


def memory_now(pid: int) -> dict[str, Any]:
    """VmRSS, VmHWM and the RSS breakdown now, in MiB (None when the process is gone)."""
    values = memory_mib(pid) or {}
    parts = rss_parts(pid)
    return {
        "rss_mib": values.get("VmRSS"),
        "hwm_mib": values.get("VmHWM"),
        "rss_anon_mib": parts.get("RssAnon"),
        "rss_file_mib": parts.get("RssFile"),
        "rss_shmem_mib": parts.get("RssShmem"),
    }


async def ask_memory(server: Server) -> tuple[Any, str | None, bool]:
    """`codeLlama/memory`'s result, or (None, the error) when the server answers one.

    The third value says whether the server does not know the method.
    """
    server.check_alive(f"before {MEMORY_REQUEST}")
    request = server.client.protocol.send_request(MEMORY_REQUEST, None)
    try:
        result = await asyncio.wait_for(asyncio.wrap_future(request), MEMORY_TIMEOUT_S)
    except JsonRpcException as exc:
        error = f"{type(exc).__name__} {exc.code}: {str(exc)[:300]}"
        return None, error, isinstance(exc, JsonRpcMethodNotFound)
    except TimeoutError:
        server.check_alive(f"during {MEMORY_REQUEST}")
        return None, f"no answer in {MEMORY_TIMEOUT_S:g} s", False
    return plain(result), None, False


@dataclass
class Stages:
    """The memory stages of one language server, measured as its run goes."""

    server: Server
    t0: float
    taken: dict[str, Any] = field(default_factory=dict)
    memory_missing: str | None = None
    """The error of a server that does not know codeLlama/memory: it is not asked again."""

    async def take(self, name: str) -> None:
        """Memory now (read first), then what `codeLlama/memory` says, if anything."""
        stage = {"at_ms": ms_since(self.t0), **memory_now(self.server.pid)}
        if self.memory_missing is not None:
            stage["memory"], stage["memory_error"] = None, self.memory_missing
        else:
            stage["memory"], stage["memory_error"], missing = await ask_memory(self.server)
            if missing:
                self.memory_missing = stage["memory_error"]
        self.taken[name] = stage


def ms_since(t0: float, now: float | None = None) -> float:
    return round(((time.perf_counter() if now is None else now) - t0) * 1000, 1)


# -- the language server ---------------------------------------------------------


def lsp_command(backend: str) -> list[str]:
    """stress.server_command for a backend (`default`: no --backend), at --log-level warning."""
    flags = argparse.Namespace(model=None, backend=None if backend == DEFAULT_BACKEND else backend)
    return [*server_command(flags), "--log-level", "warning"]


def loaded(status: dict[str, Any]) -> bool:
    """Whether a status says the model is loaded (a fresh server is `ready` with no device)."""
    return status.get("device") is not None and status.get("state", "ready") in (
        "ready",
        "generating",
    )


@dataclass
class StatusWatch:
    """`codeLlama/status` notifications as they are read, and when the first said loaded."""

    t0: float
    notifications: list[dict[str, Any]] = field(default_factory=list)
    ready_at: float | None = None
    error: str | None = None

    def listen(self, server: Server) -> None:
        """Have `received` called for the next notification, until one says loaded.

        pytest-lsp's future for it is resolved, and so its done callback run,
        in the read loop as the message is read: the time is its arrival.
        """
        wait: Callable[[str], Future[Any]] = server.client.protocol.wait_for_notification
        wait(STATUS_NOTIFICATION).add_done_callback(lambda done: self.received(server, done))

    def received(self, server: Server, done: Future[Any]) -> None:
        now = time.perf_counter()
        if done.cancelled() or done.exception() is not None:  # the server exited
            return
        status = plain(done.result())
        if isinstance(status, dict):
            self.notifications.append({"at_ms": ms_since(self.t0, now), **status})
            if status.get("state") == "error" and self.error is None:
                self.error = str(status.get("message"))
            if loaded(status):
                self.ready_at = now
                return
        self.listen(server)


async def wait_loaded(
    server: Server, watch: StatusWatch, timeout: float
) -> tuple[float, str, dict[str, Any]]:
    """When the model was loaded (perf_counter), what said so first, and the status then."""
    deadline = time.perf_counter() + timeout
    while True:
        if watch.error is not None:
            raise RuntimeError(f"the model did not load: {watch.error}")
        if watch.ready_at is not None:
            return watch.ready_at, "notification", await get_status(server)
        status = await get_status(server)
        now = time.perf_counter()
        if status.get("state") == "error":
            raise RuntimeError(f"the model did not load: {status.get('message')}")
        if loaded(status):
            if watch.ready_at is not None and watch.ready_at <= now:
                return watch.ready_at, "notification", status
            return now, "getStatus", status
        if now >= deadline:
            raise RuntimeError(f"the model did not load in {timeout:g} s")
        await asyncio.sleep(READY_POLL_S)


async def inline_completion(
    server: Server,
    uri: str,
    cursor: tuple[int, int],
    trigger: types.InlineCompletionTriggerKind,
    timeout: float,
    msg_id: str,
) -> dict[str, Any]:
    """One inline completion, awaited (`timeout`, then $/cancelRequest): outcome and times."""
    params = inline_params(uri, *cursor, trigger)
    sent = time.perf_counter()
    future, answer = request_inline(server, params, msg_id)
    record: dict[str, Any] = {}
    if not await answered(future, timeout):
        send_cancel(server, msg_id)
        record["cancelled_after_s"] = timeout
        await answered(future, AFTER_CANCEL_S)
    done = answer.answered_at
    record |= {
        "outcome": answer.outcome,
        "sent_at": sent,
        "answered_at": done,
        "latency_ms": None if done is None else round((done - sent) * 1000, 1),
        "text_length": len(answer.text),
        "text_start": answer.text[:80],
        "error_code": answer.code,
    }
    return record


def typing_plan(count: int, line: int) -> list[Keystroke]:
    """`count` keystrokes typing TYPED (again, when it runs out) from column 0 of `line`."""
    keys: list[Keystroke] = []
    column = position = 0
    while len(keys) < count:
        char = TYPED[position % len(TYPED)]
        position += 1
        if char == "\n":
            following = TYPED[position % len(TYPED) :].split("\n", 1)[0]
            indent = indentation(following)
            position += len(indent)
            keys.append(Keystroke(line, column, "\n" + indent, (line + 1, len(indent))))
            line, column = line + 1, len(indent)
        else:
            keys.append(Keystroke(line, column, char, (line, column + 1)))
            column += 1
    return keys


async def keystroke_replay(server: Server, count: int) -> dict[str, Any]:
    """Type `count` keystrokes, awaiting an Automatic inline completion after each."""
    uri = f"{URI_BASE}/typed.py"
    open_document(server, uri, HEADER)
    keys = typing_plan(count, HEADER.count("\n"))
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    began = time.perf_counter()
    for index, key in enumerate(keys):
        server.check_alive(f"at keystroke {index}")
        send_insert(server, uri, index + 2, key.line, key.column, key.text)
        record = await inline_completion(
            server,
            uri,
            key.cursor,
            types.InlineCompletionTriggerKind.Automatic,
            KEYSTROKE_TIMEOUT_S,
            f"footprint-key-{index}",
        )
        outcomes[record["outcome"]] = outcomes.get(record["outcome"], 0) + 1
        if record["latency_ms"] is not None and record["outcome"] in ("items", "empty"):
            latencies.append(record["latency_ms"])
    return {
        "uri": uri,
        "keystrokes": len(keys),
        "characters": sum(len(k.text) for k in keys),
        "seconds": round(time.perf_counter() - began, 2),
        "outcomes": dict(sorted(outcomes.items())),
        "latency_p50_ms": percentile(latencies, 0.5),
        "latency_p95_ms": percentile(latencies, 0.95),
        "latency_max_ms": max(latencies) if latencies else None,
    }


async def open_and_close(server: Server, count: int, stages: Stages) -> dict[str, Any]:
    """Open `count` generated modules, then close them all; memory after each."""
    texts = [generated_module(n, DOCUMENT_BYTES) for n in range(count)]
    uris = [f"{URI_BASE}/mod_{n:03d}.py" for n in range(count)]
    out: dict[str, Any] = {"count": count, "bytes_each": DOCUMENT_BYTES}
    began = time.perf_counter()
    for uri, text in zip(uris, texts, strict=True):
        open_document(server, uri, text)
    await get_status(server, 300.0)
    out["open_s"] = round(time.perf_counter() - began, 3)
    await asyncio.sleep(SETTLE_S)
    await stages.take("documents_open")
    began = time.perf_counter()
    for uri in uris:
        close_document(server, uri)
    await get_status(server, 300.0)
    out["close_s"] = round(time.perf_counter() - began, 3)
    await asyncio.sleep(SETTLE_S)
    await stages.take("documents_closed")
    server.check_alive("after closing the documents")
    return out


async def lsp_start(backend: str, args: argparse.Namespace, full: bool) -> dict[str, Any]:
    """One start of the language server; with `full`, every stage after the first completion."""
    out: dict[str, Any] = {"failure": None}
    server: Server | None = None
    stages: Stages | None = None
    watch: StatusWatch | None = None
    t0 = time.perf_counter()
    try:
        server = await start_server(lsp_command(backend), args.repo_root)
        out["initialize_ms"] = ms_since(t0)
        stages = Stages(server, t0)
        watch = StatusWatch(t0)
        watch.listen(server)
        ready_at, ready_by, status = await wait_loaded(server, watch, args.load_timeout)
        out["ready_ms"] = ms_since(t0, ready_at)
        out["ready_by"] = ready_by
        out["status"] = {k: v for k, v in status.items() if k != "stats"}
        await stages.take("ready")
        uri = f"{URI_BASE}/first.py"
        open_document(server, uri, WARM_UP_PY)
        cursor = (WARM_UP_PY.count("\n"), len(WARM_UP_PY.rsplit("\n", 1)[-1]))
        first = await inline_completion(
            server,
            uri,
            cursor,
            types.InlineCompletionTriggerKind.Invoked,
            args.load_timeout,
            "footprint-first",
        )
        done = first.pop("answered_at")
        first.pop("sent_at")
        out["first_completion"] = first
        out["first_completion_ms"] = None if done is None else ms_since(t0, done)
        out["first_completion_latency_ms"] = first["latency_ms"]
        await stages.take("first_completion")
        if full:
            print(f"{backend}: typing {args.keystrokes} keystrokes", file=sys.stderr)
            out["keystrokes"] = await keystroke_replay(server, args.keystrokes)
            await stages.take("keystrokes")
            print(f"{backend}: opening and closing {args.documents} documents", file=sys.stderr)
            out["documents"] = await open_and_close(server, args.documents, stages)
    except Exception as exc:  # a dead or stuck server must not lose the other runs
        out["failure"] = f"{type(exc).__name__}: {exc}"
        print(f"{backend} FAILED: {out['failure']}", file=sys.stderr)
    finally:
        out["stages"] = {} if stages is None else stages.taken
        if watch is not None:
            out["status_notifications"] = watch.notifications
        if server is not None:
            out["server"] = server.report()
            out["server"]["stop"] = await stop_server(server)
            out["server"]["returncode"] = server.process.returncode
    return out


# -- llama.cpp ---------------------------------------------------------------------


def http_json(url: str, body: dict[str, Any] | None = None, timeout: float = 2.0) -> Any:
    """GET (or POST `body` as JSON) and the decoded answer."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


def models_answer(url: str) -> bool:
    """Whether the server answers /v1/models with a model now."""
    try:
        return bool(http_json(f"{url}/v1/models").get("data"))
    except (OSError, urllib.error.URLError, ValueError):
        return False


def llama_command(gguf: Path, port: int, args: argparse.Namespace) -> list[str]:
    """`python -m llama_cpp.server` as tests/llama_server.py starts it."""
    return [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(args.llama_context),
        "--n_threads",
        str(args.llama_threads),
        "--interrupt_requests",
        "False",
    ]


def llama_unavailable() -> str | None:
    """Why llama.cpp's server cannot run here, or None."""
    for module in ("llama_cpp", "uvicorn", "fastapi"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not importable (pip install 'llama-cpp-python[server]')"
    return None


async def llama_start(gguf: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One start of llama.cpp's server: ready, one completion, memory at both."""
    out: dict[str, Any] = {"failure": None}
    stages: dict[str, Any] = {}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    with tempfile.TemporaryDirectory(prefix="footprint-llama-") as folder:
        log_path = Path(folder) / "llama_server.log"
        process: asyncio.subprocess.Process | None = None
        t0 = time.perf_counter()
        try:
            with log_path.open("wb") as log:
                process = await asyncio.create_subprocess_exec(
                    *llama_command(gguf, port, args),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    preexec_fn=_die_with_parent,
                )
            deadline = t0 + args.load_timeout
            while not await asyncio.to_thread(models_answer, url):
                if process.returncode is not None:
                    raise RuntimeError(f"llama_cpp.server exited with {process.returncode}")
                if time.perf_counter() >= deadline:
                    raise RuntimeError(f"llama_cpp.server did not answer in {args.load_timeout} s")
                await asyncio.sleep(HTTP_POLL_S)
            out["ready_ms"] = ms_since(t0)
            stages["ready"] = {"at_ms": ms_since(t0), **memory_now(process.pid)}
            body = {"prompt": WARM_UP_PY, "max_tokens": MAX_NEW_TOKENS, "temperature": 0.0}
            sent = time.perf_counter()
            answer = await asyncio.to_thread(
                http_json, f"{url}/v1/completions", body, args.load_timeout
            )
            done = time.perf_counter()
            stages["first_completion"] = {"at_ms": ms_since(t0), **memory_now(process.pid)}
            out["first_completion_ms"] = ms_since(t0, done)
            out["first_completion_latency_ms"] = ms_since(sent, done)
            choice = (answer.get("choices") or [{}])[0]
            out["first_completion"] = {
                "latency_ms": out["first_completion_latency_ms"],
                "text_length": len(choice.get("text") or ""),
                "text_start": (choice.get("text") or "")[:80],
                "finish_reason": choice.get("finish_reason"),
                "usage": answer.get("usage"),
            }
        except Exception as exc:  # recorded; the other runs go on
            out["failure"] = f"{type(exc).__name__}: {exc}"
            print(f"{LLAMA_CPP} FAILED: {out['failure']}", file=sys.stderr)
        finally:
            out["stages"] = stages
            if process is not None:
                out["pid"] = process.pid
                out["alive_at_end"] = process.returncode is None
                if process.returncode is None:
                    process.terminate()
                    try:
                        await asyncio.wait_for(process.wait(), 10.0)
                    except TimeoutError:
                        process.kill()
                        await process.wait()
                out["returncode"] = process.returncode
            with contextlib.suppress(OSError):
                log_text = log_path.read_text(encoding="utf-8", errors="replace")
                if out["failure"] is not None:
                    out["log_tail"] = log_text[-LOG_TAIL_CHARS:]
    return out


# -- the run -----------------------------------------------------------------------


def spread(values: Sequence[float]) -> dict[str, Any] | None:
    """Median, min and max of the starts that measured a value."""
    if not values:
        return None
    return {
        "n": len(values),
        "median": percentile(values, 0.5),
        "min": min(values),
        "max": max(values),
    }


def summarize(starts: Sequence[dict[str, Any]], keys: Sequence[str]) -> dict[str, Any]:
    """The start-up figures over every start, and the stages of the last (full) one."""
    startup = {
        key: spread([s[key] for s in starts if isinstance(s.get(key), int | float)]) for key in keys
    }
    last = starts[-1] if starts else {}
    return {
        "startup": startup,
        "failures": [s["failure"] for s in starts if s.get("failure")],
        "stages": last.get("stages", {}),
        "keystrokes": last.get("keystrokes"),
        "documents": last.get("documents"),
        "status": last.get("status"),
    }


async def run_all(args: argparse.Namespace, gguf: Path | None) -> dict[str, Any]:
    """Every start, in rounds; the last round's servers run every stage."""
    servers: dict[str, dict[str, Any]] = {}
    for backend in args.backends:
        servers[backend] = {"command": lsp_command(backend), "starts": []}
    if args.llama_skip_reason is None:
        assert gguf is not None
        servers[LLAMA_CPP] = {"command": llama_command(gguf, 0, args), "starts": []}
    else:
        servers[LLAMA_CPP] = {"skipped": args.llama_skip_reason}
    for round_ in range(args.starts):
        full = round_ == args.starts - 1
        for backend in args.backends:
            print(f"{backend}: start {round_ + 1}/{args.starts}", file=sys.stderr)
            run = await lsp_start(backend, args, full)
            servers[backend]["starts"].append(run)
            print(
                f"{backend}: initialize {run.get('initialize_ms')} ms, ready "
                f"{run.get('ready_ms')} ms, first completion {run.get('first_completion_ms')} ms",
                file=sys.stderr,
            )
        if args.llama_skip_reason is None and gguf is not None:
            print(f"{LLAMA_CPP}: start {round_ + 1}/{args.starts}", file=sys.stderr)
            run = await llama_start(gguf, args)
            servers[LLAMA_CPP]["starts"].append(run)
            print(
                f"{LLAMA_CPP}: ready {run.get('ready_ms')} ms, "
                f"first completion {run.get('first_completion_ms')} ms",
                file=sys.stderr,
            )
    for name, record in servers.items():
        if "starts" in record:
            keys = STARTUP_KEYS[1:] if name == LLAMA_CPP else STARTUP_KEYS
            record.update(summarize(record["starts"], keys))
    return servers


# -- the report ------------------------------------------------------------------


def number(value: Any, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def spread_text(value: dict[str, Any] | None) -> str:
    if value is None:
        return "n/a"
    if value["n"] == 1:
        return number(value["median"])
    return f"{number(value['median'])} ({number(value['min'])}-{number(value['max'])})"


def table_rows(servers: dict[str, dict[str, Any]], args: argparse.Namespace) -> list[list[str]]:
    """The report's rows: a label, then one cell per server."""

    def startup(key: str) -> Callable[[dict[str, Any]], str]:
        def cell(s: dict[str, Any]) -> str:
            figures = s.get("startup", {})
            return spread_text(figures[key]) if key in figures else "-"

        return cell

    def stage(name: str, key: str) -> Callable[[dict[str, Any]], str]:
        def cell(s: dict[str, Any]) -> str:
            value = s.get("stages", {}).get(name)
            return "-" if value is None else number(value.get(key), 1)

        return cell

    def keys(key: str) -> Callable[[dict[str, Any]], str]:
        return lambda s: "-" if not s.get("keystrokes") else number(s["keystrokes"].get(key))

    def has_memory(s: dict[str, Any]) -> str:
        stages = s.get("stages", {}).values()
        if not any("memory_error" in v for v in stages):
            return "-"
        held = sum(v.get("memory") is not None for v in stages)
        return f"{held} of {len(stages)} stages" if held else "null"

    n = args.documents
    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("initialize answered, ms", startup("initialize_ms")),
        ("ready, ms", startup("ready_ms")),
        ("first completion, ms from spawn", startup("first_completion_ms")),
        ("first completion latency, ms", startup("first_completion_latency_ms")),
        ("VmRSS ready, MiB", stage("ready", "rss_mib")),
        ("VmRSS after first completion, MiB", stage("first_completion", "rss_mib")),
        ("  of which RssFile, MiB", stage("first_completion", "rss_file_mib")),
        (f"VmRSS after {args.keystrokes} keystrokes, MiB", stage("keystrokes", "rss_mib")),
        ("  keystroke latency p50, ms", keys("latency_p50_ms")),
        ("  keystroke latency p95, ms", keys("latency_p95_ms")),
        (f"VmRSS {n} documents open, MiB", stage("documents_open", "rss_mib")),
        (f"VmRSS {n} documents closed, MiB", stage("documents_closed", "rss_mib")),
        ("VmHWM at the end, MiB", lambda s: last_hwm(s)),
        (f"{MEMORY_REQUEST} answered", has_memory),
    ]
    out = [["", *servers]]
    for label, cell in rows:
        out.append([label, *("skipped" if "skipped" in s else cell(s) for s in servers.values())])
    return out


def last_hwm(s: dict[str, Any]) -> str:
    """VmHWM at the last stage measured (llama.cpp's stages are the first two)."""
    stages = s.get("stages", {})
    for name in reversed(STAGES):
        if name in stages:
            return number(stages[name].get("hwm_mib"), 1)
    return "-"


def print_report(result: dict[str, Any], args: argparse.Namespace) -> None:
    code = result["code"]
    print(f"code root: {code['path']} @ {code['git_commit']}" + (" (dirty)" * code["git_dirty"]))
    servers = result["results"]["servers"]
    rows = table_rows(servers, args)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(
        f"\nstarts: {args.starts} per server (times: median (min-max) over the starts; "
        "memory: the last start)"
    )
    for index, row in enumerate(rows):
        cells = [
            row[0].ljust(widths[0]),
            *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)),
        ]
        print("  ".join(cells))
        if index == 0:
            print("  ".join("-" * w for w in widths))
    for name, s in servers.items():
        if "skipped" in s:
            print(f"{name}: skipped ({s['skipped']})")
        for failure in s.get("failures", []):
            print(f"!!! {name}: {failure}")
        status = s.get("status")
        if status:
            print(f"{name}: {status.get('model')} on {status.get('device')}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--backends", default="default,transformers", help="default: no --backend")
    parser.add_argument("--starts", type=int, help="starts per server (default 3, --quick: 1)")
    parser.add_argument("--documents", type=int, help="default 300 (--quick: 20)")
    parser.add_argument("--keystrokes", type=int, help="default 60 (--quick: 10)")
    parser.add_argument("--no-llama-cpp", action="store_true", help="skip llama.cpp's server")
    parser.add_argument("--llama-threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--llama-context", type=int, default=2048, help="llama.cpp's --n_ctx")
    parser.add_argument("--load-timeout", type=float, default=600.0, help="model load, seconds")
    parser.add_argument("--repo-root", type=Path, default=ROOT, help="where the server's code is")
    parser.add_argument("--quick", action="store_true", help="1 start, 20 documents, 10 keys")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/footprint.json"))
    args = parser.parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    known = (DEFAULT_BACKEND, *(b for b in BACKENDS if b != "remote"))
    unknown = [b for b in args.backends if b not in known]
    if unknown or not args.backends:
        parser.error(f"unknown backends {unknown}; known: {', '.join(known)}")
    quick = args.quick
    if args.starts is None:
        args.starts = 1 if quick else 3
    if args.documents is None:
        args.documents = 20 if quick else 300
    if args.keystrokes is None:
        args.keystrokes = 10 if quick else 60
    if args.starts < 1 or args.documents < 1 or args.keystrokes < 1:
        parser.error("need --starts, --documents and --keystrokes >= 1")
    args.repo_root = args.repo_root.resolve()
    if not (args.repo_root / "code_llama_ls").is_dir():
        parser.error(f"--repo-root {args.repo_root} has no code_llama_ls package")
    args.llama_skip_reason = "--no-llama-cpp" if args.no_llama_cpp else llama_unavailable()
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()
    environment = machine(("torch", "transformers", "onnxruntime", "llama-cpp-python", "pygls"))
    root = code_root(args.repo_root)
    print(f"measuring {root['path']} @ {root['git_commit']}", file=sys.stderr)
    gguf: Path | None = None
    if args.llama_skip_reason is None:
        from code_llama_ls.engine import find_default_gguf

        try:
            gguf = find_default_gguf()
        except Exception as exc:  # no wheel: llama.cpp has nothing to serve
            args.llama_skip_reason = f"no GGUF: {exc}"
    servers = asyncio.run(run_all(args, gguf))
    parameters = {
        **{k: v for k, v in vars(args).items() if k != "llama_skip_reason"},
        "out": str(args.out),
        "repo_root": str(args.repo_root),
        "document_bytes": DOCUMENT_BYTES,
        "typed": TYPED,
        "first_document": WARM_UP_PY,
        "llama_max_tokens": MAX_NEW_TOKENS,
    }
    result = {
        "benchmark": "footprint",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": environment,
        "load_average_end": os.getloadavg(),
        "parameters": parameters,
        "code": root,
        "seconds": round(time.perf_counter() - began, 1),
        "results": {
            "gguf": None if gguf is None else {"path": str(gguf), "bytes": gguf.stat().st_size},
            "servers": servers,
        },
    }
    print_report(result, args)
    print(f"\n{result['seconds']:.0f} s")
    write_results(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
