"""Stress: a typing storm, hundreds of open documents and a 1 MB minified line.

Each scenario starts a fresh `python -m code_llama_ls serve` (stdio, the
server's default settings: no `initializationOptions`, the offline default
model unless `--model`; `--backend` is passed through too) with its working
directory and `PYTHONPATH` set to `--repo-root` (default: this repository), so
the code of another checkout, e.g. a git worktree of an older commit, is
measured with the same virtual environment. The client is pytest-lsp's
`LanguageClient`, initialized with VS Code's capabilities plus inline
completion; the server's stderr is read by the benchmark (its error lines and
tail are recorded) and its resident memory is read from
`/proc/<pid>/status` (VmRSS, and VmHWM, the peak over the process's life).
Every scenario first waits for the model to load (`codeLlama/getStatus` until
it names a device, at most `--load-timeout` s: the first start of a model
exports it), and the server is shut down, or killed, when the scenario ends.
A scenario that fails (the server dies, a wait runs out) records its
`failure` with what it measured so far; the next scenario still runs.

**storm: a typing storm** (`--storm-seconds`, `--keys-per-second`).

- *Document.* CPython 3.11.7's `Lib/textwrap.py` (`data/keystroke_replay/`),
  opened as `file:///tmp/stress/textwrap.py` with one line holding the
  indentation of the first statement of `TextWrapper._wrap_chunks`' body
  (after its docstring) inserted before that statement; the cursor after the
  indentation.
- *Warm-up.* One inline completion (trigger Invoked) at that cursor, awaited
  (at most `--load-timeout` s); not counted.
- *Keystrokes.* The file's lines from that statement on are typed again, in
  a cycle when they run out: one character per keystroke; a line break is
  one keystroke inserting "\\n" and the next line's indentation (auto-indent).
  Keystroke k is sent at k / `--keys-per-second` s after the start (open loop:
  answers are never awaited; a late event loop is recorded as `max_lag_ms`).
- *Per keystroke.* `textDocument/didChange` (the insertion as an incremental
  range edit, version + 1); then, when the previous inline completion request
  is still unanswered, `$/cancelRequest` for it (as VS Code does); then
  `textDocument/inlineCompletion` (trigger Automatic) at the new cursor.
- *Outcomes.* Each request is answered with a result with items, a result
  without (`empty`), an error (counted by code), `died` (the server exited
  first), or not at all within `--drain-seconds` (30) after the last
  keystroke: `unanswered`, reported loudly, since a request the server never
  answers is a bug. Latency runs from sending a request to its answer (the
  response being read), over every answered request, and over those that
  were not cancelled.
- *Memory.* VmRSS once per second; reported before the storm (after the
  warm-up), the maximum during it, at its end, 5 s after the end, after the
  drain, and VmHWM. `codeLlama/getStatus` `stats` before and after, when the
  server keeps them.

**documents: many documents** (`--documents`, `--document-kb`).

- `--documents` distinct deterministic Python modules (functions and classes
  with identifiers drawn by `random.Random("mod-N")`, padded with a comment
  to exactly `--document-kb` KiB), `file:///tmp/stress/mod_NNN.py`.
- VmRSS before; every `didOpen` back to back; `codeLlama/getStatus`; the time
  from the first `didOpen` to that answer is `open_s`. VmRSS at the answer
  and 2 s later. Every `didClose`; `codeLlama/getStatus` again (`close_s`);
  2 s later VmRSS after closing; VmHWM. Deltas against the RSS before.

**minified: a minified line** (`--minified-bytes`, `--minified-timeout`).

- After a warm-up completion on a small separate JavaScript document (not
  counted), `file:///tmp/stress/minified.js` is opened: exactly
  `--minified-bytes` bytes (default 1,000,000: at the server's default
  `maxDocumentBytes`; documents over it get no completions) on one line
  with no line break, minified-looking statements
  (`var a=function(b,c){return b+c*3};` and the like, names from a counter),
  the last one a `var x="...";` of words padding it to the exact size.
  `getStatus` right after the `didOpen` times its ingest (`open_s`).
- An inline completion (trigger Invoked) at the end of the line, awaited at
  most `--minified-timeout` s (then `$/cancelRequest` and 10 s more), then one
  after the `;` nearest the middle. Per request: wall time, outcome (items,
  empty, error, unanswered), the first item's length and start.
- VmRSS every 0.2 s: before opening, the peak from `didOpen` to the last
  answer, 2 s after it; VmHWM.

The JSON (`--out`) holds `machine()` (CPU, load average at the start and
end, versions, the benchmark's own commit), the settings, the server command,
the code root measured (path, `git rev-parse HEAD`, dirty or not, and where
`code_llama_ls` is imported from), and per scenario every number, the
server's error messages and stderr error lines, how it exited and its
`failure`, if any. Memory in MiB (2**20 bytes).

Run from the repository root:

    python -m benchmarks.stress [--scenarios storm,documents,minified]
        [--storm-seconds 60] [--keys-per-second 30] [--drain-seconds 30]
        [--documents 300] [--document-kb 20] [--minified-bytes 1000000]
        [--minified-timeout 120] [--load-timeout 600] [--model M] [--backend B]
        [--repo-root DIR] [--quick] [--out benchmarks/results/stress.json]
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import collections
import contextlib
import datetime
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient, client_capabilities, make_test_lsp_client

from benchmarks.environment import machine, percentile, write_results

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "benchmarks" / "data" / "keystroke_replay" / "textwrap.py.txt"
SOURCE_ORIGIN = "CPython 3.11.7 Lib/textwrap.py (PSF-2.0)"
STORM_FUNCTION = ("TextWrapper", "_wrap_chunks")
URI_BASE = "file:///tmp/stress"
SCENARIOS = ("storm", "documents", "minified")
BACKENDS = ("auto", "transformers", "onnx", "remote")
STATUS_TIMEOUT_S = 60.0
INITIALIZE_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0
AFTER_CANCEL_S = 10.0
SETTLE_S = 2.0
POLL_S = 0.02
AFTER_STORM_S = 5.0
MIB = 1024.0  # /proc reports kB (KiB)
STDERR_TAIL = 60
WARM_UP_PY = "def area(width, height):\n    return "
WARM_UP_JS = "function area(width, height) {\n  return "
WORDS = (
    "count", "total", "item", "value", "index", "buffer", "node", "key", "name", "path",
    "score", "limit", "offset", "chunk", "token", "weight", "queue", "entry", "record", "state",
    "width", "depth", "left", "right", "parent", "child", "cache", "size", "delta", "ratio",
)  # fmt: skip


class ServerDied(RuntimeError):
    """The server process exited while a scenario needed it."""


# -- memory ----------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """`pid` and every process under it (Linux): the server and its model host."""
    found: list[int] = []
    waiting = [pid]
    while waiting:
        current = waiting.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                waiting.extend(int(child) for child in (task / "children").read_text().split())
        except OSError:  # gone meanwhile
            continue
    return found


def status_mib(pid: int, keys: tuple[str, ...]) -> dict[str, float] | None:
    """Fields of /proc/PID/status (kB there) in MiB, summed over `process_tree(pid)`.

    None when `pid` is gone. Summed peaks (VmHWM) are an upper bound: the
    processes need not have peaked at once.
    """
    values: dict[str, float] = {}
    for number, member in enumerate(process_tree(pid)):
        try:
            text = Path(f"/proc/{member}/status").read_text(encoding="utf-8")
        except OSError:
            if number == 0:
                return None
            continue
        for line in text.splitlines():
            key, _, rest = line.partition(":")
            if key in keys:
                values[key] = round(values.get(key, 0.0) + int(rest.split()[0]) / MIB, 1)
    return values


def memory_mib(pid: int) -> dict[str, float] | None:
    """VmRSS and VmHWM of a process and its children in MiB, or None when it is gone."""
    values = status_mib(pid, ("VmRSS", "VmHWM"))
    return values if values and "VmRSS" in values else None


def rss(pid: int) -> float | None:
    values = memory_mib(pid)
    return None if values is None else values["VmRSS"]


def hwm(pid: int) -> float | None:
    values = memory_mib(pid)
    return None if values is None else values.get("VmHWM")


def delta(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else round(after - before, 1)


class MemorySampler:
    """VmRSS every `interval` seconds in the background, with the time of each sample."""

    def __init__(self, pid: int, interval: float) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._task: asyncio.Task[None] | None = None
        self.started = time.perf_counter()

    async def _run(self) -> None:
        while True:
            value = rss(self.pid)
            if value is not None:
                self.samples.append((time.perf_counter(), value))
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self.started = time.perf_counter()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def timeline(self) -> list[tuple[float, float]]:
        """(seconds since the sampler started, MiB) of every sample."""
        return [(round(at - self.started, 2), value) for at, value in self.samples]

    def peak(self, start: float, end: float) -> float | None:
        """The largest sample taken between two perf_counter times."""
        inside = [value for at, value in self.samples if start <= at <= end]
        return max(inside) if inside else None


# -- the server ------------------------------------------------------------------


@dataclass
class Server:
    """A running server: its client, process and what it wrote to stderr."""

    client: LanguageClient
    process: asyncio.subprocess.Process
    stderr_tail: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=STDERR_TAIL)
    )
    stderr_errors: list[str] = field(default_factory=list)
    stderr_lines: int = 0
    reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    def check_alive(self, where: str) -> None:
        if not self.alive:
            raise ServerDied(f"the server exited with code {self.process.returncode} {where}")

    async def read_stderr(self) -> None:
        """Drain the server's stderr (a full pipe would block it), keeping errors and a tail."""
        stream = self.process.stderr
        if stream is None:
            return
        while line := await stream.readline():
            text = line.decode("utf-8", "replace").rstrip()
            self.stderr_lines += 1
            self.stderr_tail.append(text)
            lowered = text.lower()
            if ("error" in lowered or "traceback" in lowered or "exception" in lowered) and len(
                self.stderr_errors
            ) < 200:
                self.stderr_errors.append(text[:500])

    def report(self) -> dict[str, Any]:
        """What the server said: error messages, stderr error lines, how it ended."""
        messages = [
            {"type": int(m.type), "message": m.message[:500]}
            for m in self.client.messages
            if m.type in (types.MessageType.Error, types.MessageType.Warning)
        ]
        return {
            "pid": self.pid,
            "returncode": self.process.returncode,
            "show_messages": messages,
            "stderr_lines": self.stderr_lines,
            "stderr_error_lines": self.stderr_errors,
            "stderr_tail": list(self.stderr_tail)[-20:],
        }


def server_command(args: argparse.Namespace) -> list[str]:
    command = [sys.executable, "-m", "code_llama_ls", "serve"]
    if args.model is not None:
        command += ["--model", args.model]
    if args.backend is not None:
        command += ["--backend", args.backend]
    return command


def server_env(repo_root: Path) -> dict[str, str]:
    """This environment with `repo_root` first on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(repo_root), env.get("PYTHONPATH", "")) if p)
    return env


def plain(value: Any) -> Any:
    """pygls' namedtuples for untyped results, as dicts and lists again."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


async def start_server(command: Sequence[str], repo_root: Path) -> Server:
    """The real server over stdio, initialized as VS Code with inline completion."""
    client = make_test_lsp_client()
    client.feature("codeLlama/status")(lambda params: None)  # getStatus is asked instead
    client.feature(types.CLIENT_REGISTER_CAPABILITY)(lambda params: None)  # as VS Code accepts
    await client.start_io(*command, cwd=str(repo_root), env=server_env(repo_root))
    # pytest-lsp forwards the server's stderr to ours; read it here instead.
    forwarder = getattr(client, "_stderr_forwarder", None)
    if forwarder is not None:
        forwarder.cancel()
        client._stderr_forwarder = None
    process = client._server
    assert isinstance(process, asyncio.subprocess.Process)
    server = Server(client, process)
    server.reader = asyncio.create_task(server.read_stderr())
    capabilities = client_capabilities("visual-studio-code")
    assert capabilities.text_document is not None
    capabilities.text_document.inline_completion = types.InlineCompletionClientCapabilities()
    params = types.InitializeParams(capabilities=capabilities)
    try:
        await asyncio.wait_for(client.initialize_session(params), INITIALIZE_TIMEOUT_S)
    except BaseException:
        await stop_server(server)
        raise
    return server


async def stop_server(server: Server) -> dict[str, Any]:
    """shutdown + exit, at most STOP_TIMEOUT_S each; kill the process if it is still there."""
    process, client = server.process, server.client
    outcome: dict[str, Any] = {"alive_at_end": server.alive, "clean_shutdown": False}
    if server.alive:
        try:
            await asyncio.wait_for(client.shutdown_async(None), STOP_TIMEOUT_S)
            client.exit(None)
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
            outcome["clean_shutdown"] = True
        except Exception as exc:  # a stuck or dead server is killed below
            outcome["shutdown_error"] = f"{type(exc).__name__}: {exc}"
    if process.returncode is None:
        process.kill()
        outcome["killed"] = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
    with contextlib.suppress(Exception):
        stop: Any = client.stop  # untyped in pygls
        await asyncio.wait_for(stop(), STOP_TIMEOUT_S)
    if server.reader is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.reader, STOP_TIMEOUT_S)
        server.reader.cancel()
    outcome["returncode"] = process.returncode
    return outcome


async def get_status(server: Server, timeout: float = STATUS_TIMEOUT_S) -> dict[str, Any]:
    """`codeLlama/getStatus`; a server that does not answer in time is an error."""
    server.check_alive("before codeLlama/getStatus")
    request = server.client.protocol.send_request("codeLlama/getStatus", None)
    try:
        status = plain(await asyncio.wait_for(asyncio.wrap_future(request), timeout))
    except TimeoutError:
        server.check_alive("during codeLlama/getStatus")
        raise RuntimeError(
            f"the server did not answer codeLlama/getStatus in {timeout:g} s"
        ) from None
    return status if isinstance(status, dict) else {}


async def wait_ready(server: Server, timeout: float) -> dict[str, Any]:
    """`codeLlama/getStatus` once the model has loaded; a load error is a failure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = await get_status(server)
        if status.get("state") == "error":
            raise RuntimeError(f"the model did not load: {status.get('message')}")
        if status.get("device") is not None:
            return status
        await asyncio.sleep(0.5)
    raise RuntimeError(f"the model did not load in {timeout:g} s")


def open_document(server: Server, uri: str, text: str, language: str = "python") -> None:
    document = types.TextDocumentItem(uri=uri, language_id=language, version=1, text=text)
    server.client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=document))


def close_document(server: Server, uri: str) -> None:
    closed = types.TextDocumentIdentifier(uri=uri)
    server.client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=closed))


def send_insert(server: Server, uri: str, version: int, line: int, column: int, text: str) -> None:
    """`didChange`: one insertion as an incremental range edit."""
    here = types.Position(line, column)
    change = types.TextDocumentContentChangePartial(range=types.Range(here, here), text=text)
    document = types.VersionedTextDocumentIdentifier(uri=uri, version=version)
    params = types.DidChangeTextDocumentParams(text_document=document, content_changes=[change])
    server.client.text_document_did_change(params)


def send_cancel(server: Server, msg_id: str) -> None:
    server.client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=msg_id))


def inline_params(
    uri: str, line: int, column: int, trigger: types.InlineCompletionTriggerKind
) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        context=types.InlineCompletionContext(trigger_kind=trigger),
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line, column),
    )


@dataclass
class Answer:
    """What a request got: outcome, the first item's text, the error, and when."""

    outcome: str = "unanswered"
    """items, empty, error, died (the server exited first) or unanswered."""
    items: int = 0
    text: str = ""
    code: int | None = None
    error: str | None = None
    answered_at: float | None = None


def read_answer(future: Future[Any], answer: Answer) -> None:
    """Fill `answer` from a finished request future (called as its done callback)."""
    answer.answered_at = time.perf_counter()
    if future.cancelled():
        answer.outcome, answer.error = "died", "the client dropped the request"
        return
    exc = future.exception()
    if isinstance(exc, JsonRpcException):
        answer.outcome, answer.code, answer.error = "error", exc.code, str(exc)[:300]
        return
    if exc is not None:  # pygls fails pending requests this way when the server exits
        answer.outcome, answer.error = "died", f"{type(exc).__name__}: {str(exc)[:300]}"
        return
    result = future.result()
    items = result.items if isinstance(result, types.InlineCompletionList) else result or []
    answer.items = len(items)
    if items:
        text = items[0].insert_text
        answer.text = text if isinstance(text, str) else text.value
    answer.outcome = "items" if items else "empty"


def request_inline(
    server: Server, params: types.InlineCompletionParams, msg_id: str
) -> tuple[Future[Any], Answer]:
    """Send an inline completion request; its Answer fills in when the response is read."""
    answer = Answer()
    future: Future[Any] = server.client.protocol.send_request(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id=msg_id
    )
    future.add_done_callback(lambda done: read_answer(done, answer))
    return future, answer


async def all_done(futures: Sequence[Future[Any]], until: float) -> bool:
    """Wait until every request is answered or `until` (perf_counter) passes; whether all were.

    Polled: answer times come from the futures' done callbacks, not from here,
    and no asyncio future is left holding an exception nobody reads.
    """
    while not all(f.done() for f in futures):
        if time.perf_counter() >= until:
            return False
        await asyncio.sleep(POLL_S)
    return True


async def answered(future: Future[Any], timeout: float) -> bool:
    """Wait at most `timeout` seconds for a request's response; whether it came."""
    return await all_done([future], time.perf_counter() + timeout)


async def single_completion(
    server: Server,
    uri: str,
    line: int,
    column: int,
    timeout: float,
    msg_id: str,
) -> dict[str, Any]:
    """One Invoked inline completion, its wall time and outcome; cancelled after `timeout` s."""
    began = time.perf_counter()
    params = inline_params(uri, line, column, types.InlineCompletionTriggerKind.Invoked)
    future, answer = request_inline(server, params, msg_id)
    record: dict[str, Any] = {"line": line, "character": column}
    if not await answered(future, timeout):
        send_cancel(server, msg_id)
        record["cancelled_after_s"] = timeout
        if await answered(future, AFTER_CANCEL_S):
            record["answered_after_cancel"] = True
    wall = None if answer.answered_at is None else answer.answered_at - began
    record |= {
        "outcome": answer.outcome,
        "wall_s": None if wall is None else round(wall, 3),
        "items": answer.items,
        "text_length": len(answer.text),
        "text_start": answer.text[:80],
        "error_code": answer.code,
        "error": answer.error,
    }
    return record


# -- documents -------------------------------------------------------------------


def storm_start(source: str) -> int:
    """0-based line of the first statement after `TextWrapper._wrap_chunks`' docstring."""
    class_name, method = STORM_FUNCTION
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == method:
                    body = item.body[1:] if ast.get_docstring(item) is not None else item.body
                    return body[0].lineno - 1
    raise SystemExit(f"{class_name}.{method} is not in {SOURCE}")


def indentation(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


@dataclass(frozen=True)
class Keystroke:
    """One keystroke: the text it inserts at (line, column), and the cursor after it."""

    line: int
    column: int
    text: str
    cursor: tuple[int, int]


def storm_plan(source: str, count: int) -> tuple[str, int, list[Keystroke]]:
    """The storm's document, the cursor line, and `count` keystrokes re-typing the file."""
    lines = source.splitlines()
    first = storm_start(source)
    indent = indentation(lines[first])
    document = "\n".join([*lines[:first], indent, *lines[first:]]) + "\n"
    keys: list[Keystroke] = []
    line, column = first, len(indent)
    number = first
    while len(keys) < count:
        text = lines[number]
        for char in text[len(indentation(text)) :]:
            if len(keys) >= count:
                break
            keys.append(Keystroke(line, column, char, (line, column + 1)))
            column += 1
        number = number + 1 if number + 1 < len(lines) else first
        if len(keys) < count:
            nxt = indentation(lines[number])
            keys.append(Keystroke(line, column, "\n" + nxt, (line + 1, len(nxt))))
            line, column = line + 1, len(nxt)
    return document, first, keys


def identifier(rng: random.Random) -> str:
    return f"{rng.choice(WORDS)}_{rng.choice(WORDS)}{rng.randint(0, 99)}"


def generated_function(rng: random.Random) -> str:
    """One deterministic Python function (sometimes a small class) with drawn names."""
    name, a, b, c, x, i = (identifier(rng) for _ in range(6))
    k, n = rng.randint(2, 97), rng.randint(3, 40)
    if rng.random() < 0.25:
        cls = "".join(part.title() for part in identifier(rng).split("_"))
        return (
            f"class {cls}:\n"
            f'    """Keeps the {rng.choice(WORDS)} of a {rng.choice(WORDS)}."""\n\n'
            f"    def __init__(self, {a}, {b}={k}):\n"
            f"        self.{a} = {a}\n"
            f"        self.{b} = {b}\n\n"
            f"    def {name}(self, {c}):\n"
            f"        return self.{a} * {c} + self.{b}\n\n\n"
        )
    return (
        f"def {name}({a}, {b}, {c}=None):\n"
        f'    """Return the {rng.choice(WORDS)} of {a} and {b}."""\n'
        f"    {x} = {a} + {b}\n"
        f"    if {c} is not None:\n"
        f"        {x} = {x} * {c}\n"
        f"    for {i} in range({n}):\n"
        f"        {x} += {i} * {k}\n"
        f"    return {x}\n\n\n"
    )


def generated_module(number: int, size: int) -> str:
    """A deterministic Python module of exactly `size` bytes (ASCII)."""
    rng = random.Random(f"mod-{number}")
    text = f'"""Generated module {number} for the stress benchmark."""\n\nimport math\n\n\n'
    while True:
        piece = generated_function(rng)
        if len(text) + len(piece) > size - 2:
            break
        text += piece
    rest = size - len(text)
    return text + ("\n" if rest == 1 else "#" + "-" * (rest - 2) + "\n")


def short_name(number: int) -> str:
    """a, b, ..., z, ba, bb, ...: minifier-style names (no JavaScript keyword is drawn)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    name = ""
    while True:
        name = letters[number % 26] + name
        number //= 26
        if number == 0:
            break
    return "v" + name if name in ("do", "if", "in") else name


def minified_js(size: int) -> str:
    """One line of exactly `size` bytes of minified-looking JavaScript (size >= 1000).

    Drawn statements fill all but the last 120-200 bytes; a last `var x="...";`
    holding words takes exactly what is left.
    """
    rng = random.Random("minified")
    parts: list[str] = []
    length = 0
    counter = 0
    while True:
        n, p, q = (short_name(counter + j) for j in range(3))
        counter += 3
        k = rng.randint(1, 99)
        op = rng.choice("+-*")
        statement = rng.choice(
            (
                f"var {n}=function({p},{q}){{return {p}{op}{q}*{k}}};",
                f"function {n}({p}){{var {q}={p}{op}{k};return {q}}}",
                f"var {n}=[{k},{k + 1},{k * 2}].map(function({p}){{return {p}{op}{k}}});",
                f"{n}=typeof {p}==='undefined'?{k}:{p}{op}{q};",
            )
        )
        if length + len(statement) > size - 120:
            break
        parts.append(statement)
        length += len(statement)
    head = f'var {short_name(counter)}="'
    words = " ".join(rng.choice(WORDS) for _ in range(60))
    room = size - length - len(head) - 2
    return "".join(parts) + head + words[:room].rstrip().ljust(room, ".") + '";'


# -- scenarios -------------------------------------------------------------------


@dataclass
class StormRequest:
    """One keystroke's inline completion request in the storm."""

    index: int
    sent_at: float
    future: Future[Any]
    answer: Answer
    cancel_sent_at: float | None = None

    def latency_ms(self) -> float | None:
        if self.answer.answered_at is None or self.answer.outcome == "died":
            return None
        return (self.answer.answered_at - self.sent_at) * 1000

    def to_json(self, t0: float) -> dict[str, Any]:
        latency = self.latency_ms()
        return {
            "index": self.index,
            "sent_s": round(self.sent_at - t0, 3),
            "cancel_sent_s": None
            if self.cancel_sent_at is None
            else round(self.cancel_sent_at - t0, 3),
            "outcome": self.answer.outcome,
            "latency_ms": None if latency is None else round(latency, 1),
            "items": self.answer.items,
            "text_length": len(self.answer.text),
            "error_code": self.answer.code,
        }


def latency_summary(values: Sequence[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50_ms": percentile(values, 0.5),
        "p95_ms": percentile(values, 0.95),
        "max_ms": round(max(values), 1) if values else None,
    }


def outcome_counts(requests: Sequence[StormRequest]) -> dict[str, Any]:
    counts = collections.Counter(r.answer.outcome for r in requests)
    codes = collections.Counter(str(r.answer.code) for r in requests if r.answer.outcome == "error")
    return {
        "requests": len(requests),
        "items": counts["items"],
        "empty": counts["empty"],
        "errors": sum(codes.values()),
        "errors_by_code": dict(sorted(codes.items())),
        "died": counts["died"],
        "unanswered": counts["unanswered"],
    }


def stats_delta(before: Any, after: Any) -> dict[str, int] | None:
    if not isinstance(before, dict) or not isinstance(after, dict):
        return None
    return {
        k: int(after[k]) - int(before.get(k, 0))
        for k in after
        if isinstance(after[k], int | float) and not isinstance(after[k], bool)
    }


async def scenario_storm(server: Server, args: argparse.Namespace, out: dict[str, Any]) -> None:
    source = SOURCE.read_text(encoding="utf-8")
    count = round(args.storm_seconds * args.keys_per_second)
    document, first, keys = storm_plan(source, count)
    uri = f"{URI_BASE}/textwrap.py"
    out["document"] = {
        "uri": uri,
        "source": SOURCE_ORIGIN,
        "insertion_line": first + 1,
        "function": ".".join(STORM_FUNCTION),
        "keystrokes_planned": len(keys),
        "characters_typed": sum(len(k.text) for k in keys),
        "line_breaks": sum(k.text.startswith("\n") for k in keys),
    }
    open_document(server, uri, document)
    warm = await single_completion(
        server, uri, first, keys[0].column, args.load_timeout, "stress-warm-up"
    )
    out["warm_up"] = warm
    print(f"storm: warm-up {warm['outcome']} in {warm['wall_s']} s", file=sys.stderr)
    server.check_alive("after the warm-up")
    stats_before = (await get_status(server)).get("stats")
    sampler = MemorySampler(server.pid, 1.0)
    memory: dict[str, Any] = {"rss_before_mib": rss(server.pid)}
    out["memory"] = memory
    sampler.start()
    requests: list[StormRequest] = []
    out["requests"] = requests  # replaced by their JSON at the end
    interval = 1.0 / args.keys_per_second
    max_lag = 0.0
    t0 = time.perf_counter()
    try:
        for index, key in enumerate(keys):
            delay = t0 + index * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                max_lag = max(max_lag, -delay)
            server.check_alive(f"at keystroke {index}")
            send_insert(server, uri, index + 2, key.line, key.column, key.text)
            if requests and requests[-1].answer.answered_at is None:
                send_cancel(server, f"storm-{index - 1}")
                requests[-1].cancel_sent_at = time.perf_counter()
            params = inline_params(uri, *key.cursor, types.InlineCompletionTriggerKind.Automatic)
            sent_at = time.perf_counter()
            future, answer = request_inline(server, params, f"storm-{index}")
            requests.append(StormRequest(index, sent_at, future, answer))
            if index % 30 == 0:
                print(f"\rstorm: {index}/{len(keys)}", end="", file=sys.stderr)
        end = time.perf_counter()
        print(file=sys.stderr)
        memory["rss_end_mib"] = rss(server.pid)
        memory["rss_max_during_mib"] = sampler.peak(t0, end)
        out["storm_s"] = round(end - t0, 2)
        out["keys_per_second_achieved"] = round(len(requests) / max(end - t0, 1e-9), 2)
        out["max_lag_ms"] = round(max_lag * 1000, 1)

        futures = [r.future for r in requests]
        await all_done(futures, end + AFTER_STORM_S)
        await asyncio.sleep(max(0.0, end + AFTER_STORM_S - time.perf_counter()))
        memory["rss_after_5s_mib"] = rss(server.pid)
        await all_done(futures, end + args.drain_seconds)
        memory["rss_after_drain_mib"] = rss(server.pid)
        memory["vmhwm_mib"] = hwm(server.pid)
        memory["rss_max_during_minus_before_mib"] = delta(
            memory["rss_max_during_mib"], memory["rss_before_mib"]
        )
        memory["rss_after_5s_minus_before_mib"] = delta(
            memory["rss_after_5s_mib"], memory["rss_before_mib"]
        )
        still = [r.index for r in requests if not r.future.done()]
        out["unanswered_indexes"] = still
        if server.alive:
            out["stats_delta"] = stats_delta(stats_before, (await get_status(server)).get("stats"))
        else:
            out["died_after_storm"] = True
    finally:
        await sampler.stop()
        memory["rss_samples"] = sampler.timeline()
        summarize_storm(out, requests, t0)


def summarize_storm(out: dict[str, Any], requests: Sequence[StormRequest], t0: float) -> None:
    """Outcome counts and latencies of the storm, in `out`, whatever happened."""
    cancelled = [r for r in requests if r.cancel_sent_at is not None]
    kept = [r for r in requests if r.cancel_sent_at is None]
    answered_all = [lat for r in requests if (lat := r.latency_ms()) is not None]
    answered_kept = [lat for r in kept if (lat := r.latency_ms()) is not None]
    out["outcomes"] = outcome_counts(requests)
    out["cancel_sent"] = len(cancelled)
    out["outcomes_of_cancelled"] = outcome_counts(cancelled)
    out["outcomes_not_cancelled"] = outcome_counts(kept)
    out["latency_answered"] = latency_summary(answered_all)
    out["latency_not_cancelled"] = latency_summary(answered_kept)
    if requests:
        last = requests[-1]
        out["last_request"] = last.to_json(t0)
    out["requests"] = [r.to_json(t0) for r in requests]


async def scenario_documents(server: Server, args: argparse.Namespace, out: dict[str, Any]) -> None:
    size = args.document_kb * 1024
    texts = [generated_module(n, size) for n in range(args.documents)]
    uris = [f"{URI_BASE}/mod_{n:03d}.py" for n in range(args.documents)]
    out["documents"] = {"count": len(texts), "bytes_each": size, "bytes_total": size * len(texts)}
    await asyncio.sleep(SETTLE_S)
    memory: dict[str, Any] = {"rss_before_mib": rss(server.pid)}
    out["memory"] = memory
    sampler = MemorySampler(server.pid, 0.5)
    sampler.start()
    try:
        began = time.perf_counter()
        for uri, text in zip(uris, texts, strict=True):
            open_document(server, uri, text)
        sent = time.perf_counter()
        await get_status(server, args.documents_timeout)
        opened = time.perf_counter()
        out["open_s"] = round(opened - began, 3)
        out["open_send_s"] = round(sent - began, 3)
        memory["rss_at_open_answer_mib"] = rss(server.pid)
        await asyncio.sleep(SETTLE_S)
        memory["rss_after_open_mib"] = rss(server.pid)
        began = time.perf_counter()
        for uri in uris:
            close_document(server, uri)
        await get_status(server, args.documents_timeout)
        out["close_s"] = round(time.perf_counter() - began, 3)
        await asyncio.sleep(SETTLE_S)
        memory["rss_after_close_mib"] = rss(server.pid)
        memory["rss_peak_sampled_mib"] = sampler.peak(0.0, time.perf_counter())
        memory["vmhwm_mib"] = hwm(server.pid)
        memory["open_minus_before_mib"] = delta(
            memory["rss_after_open_mib"], memory["rss_before_mib"]
        )
        memory["close_minus_before_mib"] = delta(
            memory["rss_after_close_mib"], memory["rss_before_mib"]
        )
        server.check_alive("after closing the documents")
    finally:
        await sampler.stop()
        memory["rss_samples"] = sampler.timeline()


async def counted_completion(
    server: Server, uri: str, column: int, timeout: float, msg_id: str
) -> dict[str, Any]:
    """An Invoked completion on line 0, with the server's counters' growth over it."""
    before = (await get_status(server)).get("stats")
    record = await single_completion(server, uri, 0, column, timeout, msg_id)
    if server.alive:
        after = await get_status(server)
        record["server_last_completion_ms"] = after.get("lastCompletionMs")
        record["stats_delta"] = stats_delta(before, after.get("stats"))
    return record


async def scenario_minified(server: Server, args: argparse.Namespace, out: dict[str, Any]) -> None:
    warm_uri = f"{URI_BASE}/warm_up.js"
    open_document(server, warm_uri, WARM_UP_JS, "javascript")
    last = WARM_UP_JS.rsplit("\n", 1)[-1]
    warm = await single_completion(
        server, warm_uri, WARM_UP_JS.count("\n"), len(last), args.load_timeout, "stress-warm-up"
    )
    out["warm_up"] = warm
    close_document(server, warm_uri)
    text = minified_js(args.minified_bytes)
    middle = text.rfind(";", 0, len(text) // 2) + 1
    uri = f"{URI_BASE}/minified.js"
    out["document"] = {
        "uri": uri,
        "bytes": len(text.encode("utf-8")),
        "lines": text.count("\n") + 1,
        "middle_character": middle,
    }
    await asyncio.sleep(SETTLE_S)
    memory: dict[str, Any] = {"rss_before_mib": rss(server.pid)}
    out["memory"] = memory
    sampler = MemorySampler(server.pid, 0.2)
    sampler.start()
    began = time.perf_counter()
    try:
        open_document(server, uri, text, "javascript")
        await get_status(server, args.minified_timeout)
        out["open_s"] = round(time.perf_counter() - began, 3)
        out["end_of_line"] = await counted_completion(
            server, uri, len(text), args.minified_timeout, "stress-minified-end"
        )
        print(f"minified: end of line {out['end_of_line']['outcome']}", file=sys.stderr)
        server.check_alive("after the end-of-line completion")
        out["middle"] = await counted_completion(
            server, uri, middle, args.minified_timeout, "stress-minified-middle"
        )
        print(f"minified: middle {out['middle']['outcome']}", file=sys.stderr)
        done = time.perf_counter()
        memory["rss_peak_during_mib"] = sampler.peak(began, done)
        await asyncio.sleep(SETTLE_S)
        memory["rss_after_mib"] = rss(server.pid)
        memory["vmhwm_mib"] = hwm(server.pid)
        memory["peak_minus_before_mib"] = delta(
            memory["rss_peak_during_mib"], memory["rss_before_mib"]
        )
        memory["after_minus_before_mib"] = delta(memory["rss_after_mib"], memory["rss_before_mib"])
        server.check_alive("after the minified line")
    finally:
        if "rss_peak_during_mib" not in memory:
            memory["rss_peak_during_mib"] = sampler.peak(began, time.perf_counter())
        await sampler.stop()
        memory["rss_samples"] = sampler.timeline()


Scenario = Callable[[Server, argparse.Namespace, dict[str, Any]], Any]
RUNNERS: dict[str, Scenario] = {
    "storm": scenario_storm,
    "documents": scenario_documents,
    "minified": scenario_minified,
}


async def run_scenario(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """One scenario in a fresh server; a failure is recorded, never raised."""
    out: dict[str, Any] = {"failure": None}
    began = time.perf_counter()
    server: Server | None = None
    try:
        server = await start_server(server_command(args), args.repo_root)
        status = await wait_ready(server, args.load_timeout)
        out["ready_s"] = round(time.perf_counter() - began, 1)
        out["server_status"] = {k: v for k, v in status.items() if k != "stats"}
        out["rss_ready_mib"] = rss(server.pid)
        print(f"{name}: {status.get('model')} ready in {out['ready_s']} s", file=sys.stderr)
        await RUNNERS[name](server, args, out)
    except Exception as exc:  # a dead or stuck server must not lose the other scenarios
        out["failure"] = f"{type(exc).__name__}: {exc}"
        print(f"\n{name} FAILED: {out['failure']}", file=sys.stderr)
    finally:
        if server is not None:
            out["server"] = server.report()
            out["server"]["stop"] = await stop_server(server)
            out["server"]["returncode"] = server.process.returncode
        out["seconds"] = round(time.perf_counter() - began, 1)
    return out


# -- the report ------------------------------------------------------------------


def git_in(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def code_root(folder: Path) -> dict[str, Any]:
    """Which code the server runs: the folder, its commit, and where the package comes from."""
    probe = "import code_llama_ls; print(code_llama_ls.__file__)"
    try:
        done = subprocess.run(
            [sys.executable, "-c", probe],
            cwd=folder,
            env=server_env(folder),
            capture_output=True,
            text=True,
            timeout=60,
        )
        package: str | None = done.stdout.strip() or done.stderr.strip()[-300:]
    except (OSError, subprocess.SubprocessError) as exc:
        package = f"{type(exc).__name__}: {exc}"
    return {
        "path": str(folder),
        "git_commit": git_in(folder, "rev-parse", "HEAD"),
        "git_dirty": bool(git_in(folder, "status", "--porcelain", "--untracked-files=no")),
        "code_llama_ls_imported_from": package,
    }


def mib(value: Any) -> str:
    return "n/a" if value is None else f"{value:,.1f}"


def ms(value: Any) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def print_report(result: dict[str, Any]) -> None:
    scenarios = result["scenarios"]
    print(f"code root: {result['code_root']['path']} @ {result['code_root']['git_commit']}")
    for name, s in scenarios.items():
        print(f"\n== {name} ==" + (f"  FAILED: {s['failure']}" if s.get("failure") else ""))
        stop = s.get("server", {}).get("stop", {})
        if stop and not stop.get("alive_at_end", True):
            print(f"!!! the server had exited (code {stop.get('returncode')}) before the end")
        memory = s.get("memory", {})
        if name == "storm" and "outcomes" in s:
            o, lat, kept = s["outcomes"], s["latency_answered"], s["latency_not_cancelled"]
            print(
                f"keystrokes/requests sent {o['requests']} in {s.get('storm_s')} s "
                f"({s.get('keys_per_second_achieved')}/s, max lag {s.get('max_lag_ms')} ms); "
                f"cancel sent {s['cancel_sent']}"
            )
            print(
                f"answered: items {o['items']}, empty {o['empty']}, errors {o['errors']} "
                f"{o['errors_by_code']}, died {o['died']}, unanswered {o['unanswered']}"
            )
            if o["unanswered"]:
                print(
                    f"!!! {o['unanswered']} REQUESTS NEVER ANSWERED "
                    f"(in {result['settings']['drain_seconds']} s after the storm)"
                )
            print(
                f"latency answered (n={lat['n']}): p50 {ms(lat['p50_ms'])} ms, "
                f"p95 {ms(lat['p95_ms'])} ms, max {ms(lat['max_ms'])} ms; "
                f"not cancelled (n={kept['n']}): p50 {ms(kept['p50_ms'])}, "
                f"p95 {ms(kept['p95_ms'])}, max {ms(kept['max_ms'])} ms"
            )
            stats = s.get("stats_delta") or {}
            if stats:
                print(
                    "server counters: "
                    + ", ".join(f"{k} {v}" for k, v in stats.items() if isinstance(v, int))
                )
            last = s.get("last_request", {})
            print(f"last request: {last.get('outcome')} in {ms(last.get('latency_ms'))} ms")
            print(
                f"RSS MiB: before {mib(memory.get('rss_before_mib'))}, max during "
                f"{mib(memory.get('rss_max_during_mib'))}, end {mib(memory.get('rss_end_mib'))}, "
                f"+5 s {mib(memory.get('rss_after_5s_mib'))}, after drain "
                f"{mib(memory.get('rss_after_drain_mib'))}; VmHWM {mib(memory.get('vmhwm_mib'))}"
            )
        elif name == "documents" and "open_s" in s:
            d = s["documents"]
            print(
                f"{d['count']} documents x {d['bytes_each']:,} B: open -> getStatus "
                f"{s['open_s']} s; close -> getStatus {s.get('close_s')} s"
            )
            print(
                f"RSS MiB: before {mib(memory.get('rss_before_mib'))}, after open "
                f"{mib(memory.get('rss_after_open_mib'))} "
                f"(delta {mib(memory.get('open_minus_before_mib'))}), after close "
                f"{mib(memory.get('rss_after_close_mib'))} "
                f"(delta {mib(memory.get('close_minus_before_mib'))}); "
                f"VmHWM {mib(memory.get('vmhwm_mib'))}"
            )
        elif name == "minified" and "document" in s:
            print(
                f"{s['document']['bytes']:,} B on one line: open -> getStatus {s.get('open_s')} s"
            )
            for where in ("end_of_line", "middle"):
                r = s.get(where)
                if r is None:
                    continue
                note = " (after $/cancelRequest)" if r.get("answered_after_cancel") else ""
                print(
                    f"{where}: {r['outcome']}{note} in {r['wall_s']} s, items {r['items']}, "
                    f"text {r['text_length']} chars, prompt tokens "
                    f"{(r.get('stats_delta') or {}).get('promptTokens', 'n/a')}"
                    + (f", error {r['error_code']}: {r['error']}" if r.get("error") else "")
                )
            print(
                f"RSS MiB: before {mib(memory.get('rss_before_mib'))}, peak during "
                f"{mib(memory.get('rss_peak_during_mib'))}, after "
                f"{mib(memory.get('rss_after_mib'))}; VmHWM {mib(memory.get('vmhwm_mib'))}"
            )
        errors = s.get("server", {}).get("stderr_error_lines") or []
        messages = s.get("server", {}).get("show_messages") or []
        if errors or messages:
            print(
                f"server: {len(messages)} error/warning messages, {len(errors)} stderr error lines"
            )
            for line in [m["message"] for m in messages][:3] + errors[:5]:
                print(f"   {line[:160]}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--storm-seconds", type=float, help="default 60 (--quick: 5)")
    parser.add_argument("--keys-per-second", type=float, default=30.0)
    parser.add_argument("--drain-seconds", type=float, default=30.0)
    parser.add_argument("--documents", type=int, help="default 300 (--quick: 20)")
    parser.add_argument("--document-kb", type=int, default=20)
    parser.add_argument("--documents-timeout", type=float, default=300.0)
    parser.add_argument("--minified-bytes", type=int, help="default 1000000 (--quick: 100000)")
    parser.add_argument("--minified-timeout", type=float, default=120.0)
    parser.add_argument("--load-timeout", type=float, default=600.0, help="model load, warm-up")
    parser.add_argument("--model", help="the server's --model (default: its offline default)")
    parser.add_argument("--backend", choices=BACKENDS, help="the server's --backend")
    parser.add_argument("--repo-root", type=Path, default=ROOT, help="where the server's code is")
    parser.add_argument("--quick", action="store_true", help="short settings for a quick check")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/stress.json"))
    args = parser.parse_args(argv)
    unknown = [s for s in args.scenarios.split(",") if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; known: {', '.join(SCENARIOS)}")
    quick = args.quick
    if args.storm_seconds is None:
        args.storm_seconds = 5.0 if quick else 60.0
    if args.documents is None:
        args.documents = 20 if quick else 300
    if args.minified_bytes is None:
        args.minified_bytes = 100_000 if quick else 1_000_000
    if args.storm_seconds <= 0 or args.keys_per_second <= 0 or args.documents < 1:
        parser.error("need --storm-seconds > 0, --keys-per-second > 0 and --documents >= 1")
    if args.minified_bytes < 1000:
        parser.error("need --minified-bytes >= 1000")
    args.repo_root = args.repo_root.resolve()
    if not (args.repo_root / "code_llama_ls").is_dir():
        parser.error(f"--repo-root {args.repo_root} has no code_llama_ls package")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()
    environment = machine(("torch", "transformers", "onnxruntime", "pygls", "lsprotocol"))
    root = code_root(args.repo_root)
    print(f"measuring {root['path']} @ {root['git_commit']}", file=sys.stderr)
    scenarios: dict[str, dict[str, Any]] = {}
    for name in args.scenarios.split(","):
        scenarios[name] = asyncio.run(run_scenario(name, args))
    settings = {**vars(args), "out": str(args.out), "repo_root": str(args.repo_root)}
    result = {
        "benchmark": "stress",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": environment,
        "load_average_end": os.getloadavg(),
        "settings": settings,
        "server_command": server_command(args),
        "server_cwd_and_pythonpath": str(args.repo_root),
        "code_root": root,
        "seconds": round(time.perf_counter() - began, 1),
        "scenarios": scenarios,
    }
    print_report(result)
    failed = [name for name, s in scenarios.items() if s.get("failure")]
    print(f"\n{result['seconds']:.0f} s; failed scenarios: {', '.join(failed) or 'none'}")
    write_results(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
