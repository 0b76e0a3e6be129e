"""A team on one inference engine: N editors typing at once, in-process or remote.

N simulated editors (`--editors 1,4,16`) type concurrently, each in its own
document, against ONE inference engine, and every keystroke's inline
completion is timed as `keystroke_replay` times it. Two ways to share an
engine (`--modes`):

- `in-process`: one `python -m code_llama_ls serve` (the default model on the
  default backend: ONNX Runtime int8 on a CPU) and all N editors over its one
  LSP connection, each in its own document (a distinct file URI). This is the
  only way N editors can share an in-process engine.
- `remote`: one llama.cpp server (llama-cpp-python's, `tests/llama_server.py`:
  the default model's GGUF, 4096 tokens of context, 2 threads), and N
  code-llama-ls servers, one per editor as in a team, each with `backend`
  "remote" and `remoteUrl` pointing at it.

A fresh set of servers (and, for `remote`, a fresh llama.cpp server) is
started for every (mode, N). Every code-llama-ls server gets keystroke_replay's
`all-on` settings: `contextTokens` = `--prompt-tokens` + `maxNewTokens` (a
prompt of about 1k tokens), `workspaceContext` false, 4 prefix-KV cache
entries, the completion cache on, the server's default debounce and time
budget; `remote` adds `backend` and `remoteUrl`. Settings the server refuses
are left out, loudly, and recorded.

**The typing protocol** is keystroke_replay's (its docstring has the details),
per editor:

- *Regions.* `random.Random(--seed)` draws max(N) regions of textwrap.py
  (runs of function-body lines starting at a statement, long enough for
  `--keystrokes-per-editor` keystrokes, with a full prompt before them), then
  deals them out in a seeded shuffle: editor k types region k whatever N is,
  so N = 1's editor is among N = 4's, and N = 4's are among N = 16's.
- *The document.* Editor k opens `editor-k/textwrap.py` (its own URI) with
  its region's lines replaced by the first line's indentation, and types the
  removed code again: one character per keystroke, a line break with the next
  line's indentation as one keystroke.
- *Per keystroke.* `didChange`, then at once `textDocument/inlineCompletion`;
  the response is awaited (30 s, then `$/cancelRequest`), the latency runs
  from the keystroke to the response, and the rest of the typing interval is
  slept: `--interval-ms` +-50% (seeded per editor), 800 ms after a line
  break. A closed loop per editor: a slow engine slows its typists down.
- *Start.* Every server is warmed up first (one request on a small separate
  document, not counted), then all editors start together (asyncio.gather),
  each after a seeded offset of up to one typing interval, as real typists
  are not in step.
- *Outcomes.* suggestion, empty, cancelled (RequestCancelled,
  ContentModified, ServerCancelled), timeout (no response in 30 s) or error.
  An editor whose server dies is recorded as failed; the others type on.

**Reported** per (mode, N): latency p50, p95 and mean over every answered
request of every editor (a timeout has no latency, as in keystroke_replay),
and p50 and mean with each timeout counted as the 30 s the editor waited (a
lower bound); counts of each outcome; the wall time of the typing (first
keystroke to the last response); per editor p50 and mean; and the
`codeLlama/getStatus` counters summed over the servers (model calls,
completion-cache hits, and prefix-KV reuse in-process: remote servers count
no cached tokens, llama.cpp reuses its own). For `remote`, the llama.cpp
server's log is read for completion requests, streams the client closed,
how much of the previous prompt each request reused (llama-cpp-python keeps
one sequence's KV: editors taking turns evict each other's), and lines that
look like errors; its tail is kept when something went wrong. The JSON
(`--out`) holds the machine, the parameters, the regions, and per (mode, N)
the settings, servers (status, error and warning messages, counters),
summary and every request.

Run from the repository root:

    python -m benchmarks.team_load [--editors 1,4,16]
        [--modes in-process,remote] [--keystrokes-per-editor 20] [--seed 0]
        [--interval-ms 150] [--prompt-tokens 1024]
        [--out benchmarks/results/team_load.json]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import hashlib
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled
from pytest_lsp import LanguageClient

from benchmarks.environment import machine, percentile, write_results
from benchmarks.keystroke_replay import (
    CHARS_PER_TOKEN,
    DOCUMENT_NAME,
    LOAD_TIMEOUT_S,
    OUTCOMES,
    REQUEST_TIMEOUT_S,
    ROOT,
    SOURCE,
    SOURCE_ORIGIN,
    STATS_KEYS,
    Record,
    Region,
    build_region,
    choose_runs,
    close_document,
    config_settings,
    get_status,
    indentation,
    lsp_position,
    open_document,
    read_stats,
    server_status,
    show_prompt,
    split_known,
    start_server,
    type_key,
    warm_up,
    with_delays,
)
from code_llama_ls.engine import find_default_gguf
from tests.llama_server import LlamaCppServer

MODES = ("in-process", "remote")
BASE_CONFIG = "all-on"
SERVER_FLAGS = ("--log-level", "warning")
SHUTDOWN_TIMEOUT_S = 15.0
KILL_TIMEOUT_S = 10.0
LLAMA_CONTEXT = 4096
LLAMA_THREADS = 2
LOG_TAIL_CHARS = 4000
PREFIX_MATCH = re.compile(r"(\d+) prefix-match hit, remaining (\d+) prompt tokens")
LOG_ERROR_MARKERS = ("Traceback", "Error", "error:", "Exception", '" 500', '" 4')


# -- the plan --------------------------------------------------------------------


@dataclass(frozen=True)
class Editor:
    """One simulated editor: its region of the file and when it starts typing."""

    number: int
    region: Region
    start_delay_ms: float

    def to_json(self) -> dict[str, Any]:
        return {
            "editor": self.number,
            **self.region.to_json(),
            "start_delay_ms": round(self.start_delay_ms, 1),
        }


def editors_plan(source: str, args: argparse.Namespace) -> list[Editor]:
    """max(N) editors, each typing its own region; the same editors for every N."""
    count, budget = max(args.editors), args.keystrokes_per_editor
    runs = choose_runs(source, count, budget, CHARS_PER_TOKEN * args.prompt_tokens, args.seed)
    rng = random.Random(f"editors-{args.seed}")
    rng.shuffle(runs)
    editors: list[Editor] = []
    for number, run in enumerate(runs, 1):
        region = build_region(source, run, budget, number, 0)
        strokes = with_delays(list(region.keystrokes), args.interval_ms, args.seed + number)
        region = dataclasses.replace(region, keystrokes=tuple(strokes))
        editors.append(Editor(number, region, rng.uniform(0.0, args.interval_ms)))
    return editors


# -- one (mode, N) ---------------------------------------------------------------


@dataclass
class Server:
    """One code-llama-ls server process and what it said."""

    client: LanguageClient
    encoding: str
    folder: Path
    status: dict[str, Any] = field(default_factory=dict)
    stats_before: dict[str, int] | None = None
    stats_after: dict[str, int] | None = None

    def to_json(self) -> dict[str, Any]:
        errors = [m.message for m in self.client.messages if m.type == types.MessageType.Error]
        warnings = [m.message for m in self.client.messages if m.type == types.MessageType.Warning]
        return {
            **{k: v for k, v in self.status.items() if k != "stats"},
            "positionEncoding": self.encoding,
            "errorMessages": errors,
            "warningMessages": warnings,
            "stats_before": self.stats_before,
            "stats_after": self.stats_after,
        }


@dataclass
class EditorRun:
    """What one editor's requests gave."""

    editor: Editor
    server: int
    """Index of the server it typed into."""
    uri: str = ""
    prompt: dict[str, Any] = field(default_factory=dict)
    records: list[Record] = field(default_factory=list)
    failure: str | None = None


@dataclass
class LoadRun:
    """One (mode, N): its settings, servers, editors and timings."""

    mode: str
    count: int
    settings: dict[str, Any] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    servers: list[dict[str, Any]] = field(default_factory=list)
    editors: list[EditorRun] = field(default_factory=list)
    setup_s: float | None = None
    wall_s: float | None = None
    llama_server: dict[str, Any] | None = None
    failure: str | None = None

    @property
    def name(self) -> str:
        return f"{self.mode} N={self.count}"


def run_settings(mode: str, args: argparse.Namespace, url: str | None) -> dict[str, Any]:
    """keystroke_replay's all-on settings, with the remote backend for `remote`."""
    layer: dict[str, Any] = {}
    if mode == "remote":
        layer = {"backend": "remote", "remoteUrl": url}
    common = argparse.Namespace(prompt_tokens=args.prompt_tokens, workspace=None, backend=None)
    return config_settings(BASE_CONFIG, common, layer)


def accepted(run: LoadRun, settings: dict[str, Any]) -> dict[str, Any]:
    """The settings the server accepts; the others are recorded and said aloud."""
    known, refused = split_known(settings)
    if refused:
        print(
            f"warning: {run.name}: the server does not accept {', '.join(refused)}; "
            "left out, so the server's defaults apply",
            file=sys.stderr,
        )
    run.refused = refused
    return known


async def stop_client(client: LanguageClient) -> None:
    """Shut the server down politely, else terminate it, else kill it; then the client."""
    try:
        await asyncio.wait_for(client.shutdown_session(), SHUTDOWN_TIMEOUT_S)
    except Exception as exc:  # a dead or stuck server is stopped below all the same
        print(f"warning: shutdown failed ({type(exc).__name__}: {exc})", file=sys.stderr)
    process = client._server
    if process is not None and process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), KILL_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            await process.wait()
    await client.stop()  # type: ignore[no-untyped-call]


async def start_servers(
    count: int, settings: dict[str, Any], clients: list[LanguageClient]
) -> list[tuple[LanguageClient, str]]:
    """`count` servers started at once; each started one goes into `clients` (to stop)."""
    results = await asyncio.gather(
        *(start_server(SERVER_FLAGS, settings, None) for _ in range(count)),
        return_exceptions=True,
    )
    started = [r for r in results if isinstance(r, tuple)]
    clients.extend(client for client, _ in started)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return started


async def until_loaded(client: LanguageClient) -> dict[str, Any]:
    """`codeLlama/getStatus` once the model has loaded and, for `remote`, the server answered.

    keystroke_replay's `server_status` returns once a device is known; the
    remote backend names its device (the URL) before it has probed the server.
    """
    status = await server_status(client)
    deadline = time.monotonic() + LOAD_TIMEOUT_S
    while status.get("state") == "loading" and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        status = await get_status(client)
    if status.get("state") in ("loading", "error"):
        raise RuntimeError(f"the server did not load its model: {status.get('message')}")
    return status


async def prepare(client: LanguageClient, encoding: str, folder: Path) -> Server:
    """Wait for the model, warm the server up (not counted), read its status and counters."""
    folder.mkdir(parents=True, exist_ok=True)
    server = Server(client, encoding, folder)
    await until_loaded(client)
    await warm_up(client, encoding, folder)
    server.status = await get_status(client)
    server.stats_before = await read_stats(client)
    return server


async def type_editor(run: EditorRun, server: Server, progress: list[int], total: int) -> None:
    """One editor: open its document, type its region with a request per keystroke, close.

    Failures are recorded on the editor, so the other editors type on.
    """
    client, encoding, region = server.client, server.encoding, run.editor.region
    try:
        run.uri = (server.folder / f"editor-{run.editor.number:02d}" / DOCUMENT_NAME).as_uri()
        open_document(client, run.uri, region.document)
        indent = indentation(region.document.splitlines()[region.first_line])
        where = lsp_position(region.first_line, indent, encoding)
        run.prompt = await show_prompt(client, run.uri, where)
        await asyncio.sleep(run.editor.start_delay_ms / 1000)
        shown = ""
        for version, key in enumerate(region.keystrokes, 2):
            record, shown = await type_key(client, run.uri, version, key, encoding, shown)
            run.records.append(record)
            progress[0] += 1
            print(f"\r  {progress[0]}/{total} requests", end="", file=sys.stderr)
            if record.outcome == "timeout":
                await get_status(client)  # raises when the server is gone
        close_document(client, run.uri)
    except Exception as exc:  # a dead server ends this editor, not the others
        run.failure = f"{type(exc).__name__}: {exc}"


async def type_all(run: LoadRun, servers: Sequence[Server], editors: Sequence[Editor]) -> None:
    """Every editor at once, editor k on server k (or all on the one server)."""
    run.editors = [EditorRun(e, i if len(servers) > 1 else 0) for i, e in enumerate(editors)]
    total = sum(len(e.region.keystrokes) for e in editors)
    progress = [0]
    began = time.perf_counter()
    await asyncio.gather(
        *(type_editor(er, servers[er.server], progress, total) for er in run.editors)
    )
    run.wall_s = time.perf_counter() - began
    print(file=sys.stderr)
    for server in servers:
        try:
            server.stats_after = await read_stats(server.client)
        except Exception as exc:  # the counters are extras; a dead server has none
            print(f"warning: {run.name}: no counters ({exc})", file=sys.stderr)
    failed = [f"editor {er.editor.number}: {er.failure}" for er in run.editors if er.failure]
    if failed:
        run.failure = "; ".join(failed)


def scan_log(text: str) -> dict[str, Any]:
    """What the llama.cpp server's log says: requests, prompt reuse, errors.

    llama-cpp-python keeps one sequence's KV. `Llama.generate: H prefix-match
    hit, remaining R prompt tokens to eval` is printed for a prompt that
    shares H > 0 tokens with the previous one; a prompt with no such line
    shared none. A streamed request still evaluates its whole prompt when its
    turn comes; `Disconnected from client` means its client closed the stream
    after the first tokens (it had enough, or it had given up). Warm-up
    requests are counted too.
    """
    lines = text.splitlines()
    matches = [(int(m[1]), int(m[2])) for m in map(PREFIX_MATCH.search, lines) if m]
    suspicious = [line for line in lines if any(mark in line for mark in LOG_ERROR_MARKERS)]
    return {
        "completion_requests": sum('"POST /v1/completions' in line for line in lines),
        "closed_by_client": sum("Disconnected from client" in line for line in lines),
        "prefix_matches": len(matches),
        "prefix_matches_reusing_most": sum(hit >= rest for hit, rest in matches),
        "tokens_reused": sum(hit for hit, _ in matches),
        "tokens_evaluated_after_a_match": sum(rest for _, rest in matches),
        "suspicious_lines": len(suspicious),
        "examples": suspicious[:20],
    }


async def run_one(
    run: LoadRun, editors: Sequence[Editor], args: argparse.Namespace, folder: Path
) -> None:
    """Start the servers of one (mode, N), warm them up, type, and stop them all."""
    began = time.perf_counter()
    clients: list[LanguageClient] = []
    llama: LlamaCppServer | None = None
    servers: list[Server] = []
    try:
        url = None
        if run.mode == "remote":
            gguf = find_default_gguf()
            log_path = folder / f"llama-server-{run.count}.log"
            llama = LlamaCppServer(gguf, log_path, context=LLAMA_CONTEXT, threads=LLAMA_THREADS)
            await asyncio.to_thread(llama.start)
            url = llama.url
            run.llama_server = {
                "gguf": str(gguf),
                "url": url,
                "context": LLAMA_CONTEXT,
                "threads": LLAMA_THREADS,
            }
        run.settings = accepted(run, run_settings(run.mode, args, url))
        count = run.count if run.mode == "remote" else 1
        started = await start_servers(count, run.settings, clients)
        servers = list(
            await asyncio.gather(
                *(
                    prepare(client, encoding, folder / f"{run.mode}-{run.count}-server-{i}")
                    for i, (client, encoding) in enumerate(started)
                )
            )
        )
        run.setup_s = time.perf_counter() - began
        model = servers[0].status.get("model")
        print(
            f"{run.name}: {len(servers)} server(s), {model} ready in {run.setup_s:.0f} s",
            file=sys.stderr,
        )
        await type_all(run, servers, editors[: run.count])
    except Exception as exc:  # a failed (mode, N) must not lose the other results
        run.failure = f"{type(exc).__name__}: {exc}"
    finally:
        run.servers = [server.to_json() for server in servers]
        await asyncio.gather(*(stop_client(client) for client in clients), return_exceptions=True)
        if llama is not None:
            llama.stop()
            log = llama.log_text()
            run.llama_server = (run.llama_server or {}) | {"log": scan_log(log)}
            if run.failure is not None or run.llama_server["log"]["suspicious_lines"]:
                run.llama_server["log_tail"] = log[-LOG_TAIL_CHARS:]
    if run.failure is not None:
        print(f"{run.name} failed: {run.failure}", file=sys.stderr)


def quiet_late_cancels(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Drop asyncio's report of a timed-out request's late RequestCancelled answer.

    keystroke_replay's `ask` sends `$/cancelRequest` after 30 s and waits 5 s
    more; when the server's RequestCancelled comes later, nobody awaits the
    request, and asyncio prints a traceback for each. Everything else is reported.
    """
    if isinstance(context.get("exception"), JsonRpcRequestCancelled):
        return
    loop.default_exception_handler(context)


async def run_all(
    runs: Sequence[LoadRun], editors: Sequence[Editor], args: argparse.Namespace
) -> None:
    asyncio.get_running_loop().set_exception_handler(quiet_late_cancels)
    with tempfile.TemporaryDirectory(prefix="team_load-") as folder:
        for run in runs:
            await run_one(run, editors, args, Path(folder))


# -- the report ------------------------------------------------------------------


def stats_total(run: LoadRun) -> dict[str, int] | None:
    """The servers' counters' growth over the typing, summed; None where any lacks them."""
    total = dict.fromkeys(STATS_KEYS, 0)
    for server in run.servers:
        before, after = server.get("stats_before"), server.get("stats_after")
        if before is None or after is None or any(k not in after for k in STATS_KEYS):
            return None
        for key in STATS_KEYS:
            total[key] += int(after[key]) - int(before.get(key, 0))
    return total if run.servers else None


def share(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def latency_summary(records: Sequence[Record]) -> dict[str, Any]:
    """Latency of the answered requests (as keystroke_replay); and with timeouts as 30 s.

    A timeout has no latency, so the first figures leave it out; the
    `_with_timeouts` ones count it as the 30 s the editor waited (a lower bound).
    """
    latencies = [r.latency_ms for r in records if r.latency_ms is not None]
    waited = [
        r.latency_ms if r.latency_ms is not None else REQUEST_TIMEOUT_S * 1000 for r in records
    ]
    return {
        "requests": len(records),
        "answered": len(latencies),
        "latency_p50_ms": percentile(latencies, 0.5),
        "latency_p95_ms": percentile(latencies, 0.95),
        "latency_mean_ms": round(statistics.fmean(latencies), 1) if latencies else None,
        "latency_p50_ms_with_timeouts": percentile(waited, 0.5),
        "latency_mean_ms_with_timeouts": round(statistics.fmean(waited), 1) if waited else None,
    }


def summarize(run: LoadRun) -> dict[str, Any]:
    """Outcomes and latency over every request of every editor, and the counters."""
    records = [r for er in run.editors for r in er.records]
    delta = stats_total(run)
    summary: dict[str, Any] = {
        **latency_summary(records),
        **{o: sum(r.outcome == o for r in records) for o in OUTCOMES},
        "typed_along": sum(r.typed_along for r in records),
        "failed_editors": sum(er.failure is not None for er in run.editors),
        "wall_s": None if run.wall_s is None else round(run.wall_s, 1),
        "requests_per_s": None,
        "stats": delta,
        "prefix_kv_reuse": None,
        "cache_hit_rate": None,
        "per_editor": [
            {"editor": er.editor.number, **latency_summary(er.records)} for er in run.editors
        ],
    }
    if run.wall_s:
        summary["requests_per_s"] = round(len(records) / run.wall_s, 2)
    if delta is not None:
        if run.mode != "remote":  # remote servers count no cached tokens
            summary["prefix_kv_reuse"] = share(delta["cachedTokens"], delta["promptTokens"])
        hits = delta["typedThroughHits"] + delta["inFlightHits"]
        summary["cache_hit_rate"] = share(hits, delta["completions"])
    return summary


def cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def print_table(runs: Sequence[LoadRun], summaries: Sequence[dict[str, Any]]) -> None:
    print(
        f"{'mode':<10} {'N':>3} {'requests':>8} {'p50 ms':>7} {'p95 ms':>7} {'mean ms':>7} "
        f"{'sugg':>5} {'empty':>5} {'canc':>5} {'tmout':>5} {'errors':>6} {'wall s':>6} "
        f"{'p50+t':>6} {'mean+t':>6}"
    )
    for run, s in zip(runs, summaries, strict=True):
        print(
            f"{run.mode:<10} {run.count:>3} {s['requests']:>8} {cell(s['latency_p50_ms']):>7} "
            f"{cell(s['latency_p95_ms']):>7} {cell(s['latency_mean_ms']):>7} "
            f"{s['suggestion']:>5} {s['empty']:>5} {s['cancelled']:>5} {s['timeout']:>5} "
            f"{s['error']:>6} {cell(s['wall_s']):>6} "
            f"{cell(s['latency_p50_ms_with_timeouts']):>6} "
            f"{cell(s['latency_mean_ms_with_timeouts']):>6}"
        )
    print("p50/p95/mean: answered requests; p50+t/mean+t: timeouts counted as 30 s")


def print_problems(runs: Sequence[LoadRun]) -> None:
    """Failures, server error messages and the llama.cpp server's suspicious log lines."""
    for run in runs:
        if run.failure is not None:
            print(f"{run.name}: FAILED: {run.failure}")
        errors = sorted({m for s in run.servers for m in s.get("errorMessages", [])})
        if errors:
            print(f"{run.name}: server error messages: {errors[:5]}")
        request_errors = sorted({r.error for er in run.editors for r in er.records if r.error})
        if request_errors:
            print(f"{run.name}: request errors: {request_errors[:5]}")
        log = (run.llama_server or {}).get("log")
        if log:
            print(
                f"{run.name}: llama.cpp log: {log['completion_requests']} completion requests, "
                f"{log['closed_by_client']} closed by the client, {log['prefix_matches']} "
                f"reused part of the previous prompt ({log['prefix_matches_reusing_most']} most "
                f"of it: {log['tokens_reused']} tokens reused, "
                f"{log['tokens_evaluated_after_a_match']} evaluated), "
                f"{log['suspicious_lines']} suspicious lines"
            )


def report(
    args: argparse.Namespace,
    source: str,
    editors: Sequence[Editor],
    runs: Sequence[LoadRun],
    seconds: float,
) -> dict[str, Any]:
    return {
        "benchmark": "team_load",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(("onnxruntime", "llama_cpp_python", "pygls")),
        "parameters": {
            **vars(args),
            "out": str(args.out),
            "server_flags": list(SERVER_FLAGS),
            "base_config": BASE_CONFIG,
        },
        "source": {
            "file": str(SOURCE.relative_to(ROOT)),
            "origin": SOURCE_ORIGIN,
            "sha256": hashlib.sha256(source.encode("utf-8")).hexdigest(),
            "lines": source.count("\n"),
        },
        "editors": [editor.to_json() for editor in editors],
        "seconds": round(seconds, 1),
        "runs": [
            {
                "mode": run.mode,
                "editors": run.count,
                "settings": run.settings,
                "refused_settings": run.refused,
                "failure": run.failure,
                "setup_s": None if run.setup_s is None else round(run.setup_s, 1),
                "llama_server": run.llama_server,
                "servers": run.servers,
                "summary": summarize(run),
                "per_editor": [
                    {
                        "editor": er.editor.number,
                        "server": er.server,
                        "uri": er.uri,
                        "prompt": er.prompt,
                        "failure": er.failure,
                        "requests": [r.to_json() for r in er.records],
                    }
                    for er in run.editors
                ],
            }
            for run in runs
        ],
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--editors", default="1,4,16", help="editor counts N, comma-separated")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--keystrokes-per-editor", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--interval-ms", type=float, default=150.0, help="typing interval, +-50%%")
    parser.add_argument("--prompt-tokens", type=int, default=1024)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/team_load.json"))
    args = parser.parse_args(argv)
    try:
        args.editors = [int(n) for n in args.editors.split(",")]
    except ValueError:
        parser.error("--editors takes comma-separated integers, e.g. 1,4,16")
    if not args.editors or min(args.editors) < 1:
        parser.error("every editor count must be at least 1")
    args.modes = args.modes.split(",")
    unknown = [m for m in args.modes if m not in MODES]
    if unknown:
        parser.error(f"unknown modes {unknown}; known: {', '.join(MODES)}")
    if args.keystrokes_per_editor < 1:
        parser.error("--keystrokes-per-editor must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()
    source = SOURCE.read_text(encoding="utf-8")
    editors = editors_plan(source, args)
    for editor in editors:
        region = editor.region
        print(
            f"editor {editor.number}: {region.function}, line {region.first_line + 1}, "
            f"{len(region.keystrokes)} keystrokes",
            file=sys.stderr,
        )
    runs = [LoadRun(mode, n) for mode in args.modes for n in args.editors]
    asyncio.run(run_all(runs, editors, args))
    elapsed = time.perf_counter() - began
    result = report(args, source, editors, runs, elapsed)
    print_table(runs, [r["summary"] for r in result["runs"]])
    print_problems(runs)
    print(f"{elapsed:.0f} s")
    write_results(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
