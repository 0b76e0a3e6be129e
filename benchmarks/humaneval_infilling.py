"""HumanEval-infilling pass@1 through the real server, as an editor drives it.

One server per run (`python -m code_llama_ls serve`, stdio, no workspace
context), started and initialized by pytest-lsp's client with VS Code's
capabilities plus inline completion. Per problem the document is opened, one
`textDocument/inlineCompletion` is requested at the hole, the first item's
insertText is spliced in (no item: nothing), the document is closed, and the
program `prompt + middle + suffix + test + check(entry_point)` runs in its own
`python -I` process: exit status 0 within `--timeout` seconds is a pass.

Single-line and multi-line holes are whole lines. An editor user writing them
stands on a blank line (the server offers nothing at the start of a line that
holds code, and never ends ghost text with a newline), so for those subsets
the document has a blank line at the hole and accepting the completion fills
that line: `prompt + insertText + "\\n" + suffix`. Random spans are opened as
`prompt + suffix` and spliced as they are.

`--mode canonical` splices the true middle (less its final newline for whole
lines) through the same code instead of asking the server: it must pass
100%, checking the splicing and the test running.

Run from the repository root:

    /work/venv/bin/python -m benchmarks.humaneval_infilling [--mode server|canonical]
        [--subsets single-line,multi-line,random-span-light] [--limit N [--seed S]]
        [--model M] [--fim-mode auto|psm|spm] [--max-new-tokens N]
        [--backend auto|transformers|onnx] [--timeout 10]
        [--out benchmarks/results/humaneval_infilling-MODE.json]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gzip
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from benchmarks.environment import machine, percentile

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data" / "human-eval-infilling"
SUBSETS = {  # name -> (file, whether the holes are whole lines)
    "single-line": ("HumanEval-SingleLineInfilling.jsonl.gz", True),
    "multi-line": ("HumanEval-MultiLineInfilling.jsonl.gz", True),
    "random-span-light": ("HumanEval-RandomSpanInfillingLight.jsonl.gz", False),
}
REQUEST_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Problem:
    """One infilling problem of a subset."""

    task_id: str
    entry_point: str
    prompt: str
    suffix: str
    canonical: str
    test: str
    whole_lines: bool

    @property
    def document(self) -> str:
        """The editor's text before the completion: a blank line at a whole-line hole."""
        return self.prompt + ("\n" if self.whole_lines else "") + self.suffix

    def splice(self, insert_text: str) -> str:
        """The document after accepting `insert_text` at the hole."""
        return self.prompt + insert_text + ("\n" if self.whole_lines else "") + self.suffix

    @property
    def canonical_insert(self) -> str:
        """The insertText a perfect server would return."""
        return self.canonical.removesuffix("\n") if self.whole_lines else self.canonical

    def program(self, insert_text: str) -> str:
        return self.splice(insert_text) + "\n" + self.test + f"\ncheck({self.entry_point})\n"


@dataclass
class Outcome:
    """What happened to one problem."""

    problem: Problem
    text: str
    latency_ms: float | None = None
    prompt_format: str | None = None
    cursor: str | None = None
    passed: bool = False
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        latency = None if self.latency_ms is None else round(self.latency_ms, 1)
        return {
            "task_id": self.problem.task_id,
            "passed": self.passed,
            "latency_ms": latency,
            "format": self.prompt_format,
            "cursor": self.cursor,
            "completion": self.text,
            "error": self.error,
        }


def load_problems(subset: str, limit: int | None, seed: int | None) -> list[Problem]:
    """The subset's problems: all, the first `limit`, or `limit` drawn with `seed`."""
    name, whole_lines = SUBSETS[subset]
    with gzip.open(DATA / name, "rt", encoding="utf-8") as lines:
        records = [json.loads(line) for line in lines]
    problems = [
        Problem(
            r["task_id"],
            r["entry_point"],
            r["prompt"],
            r["suffix"],
            r["canonical_solution"],
            r["test"],
            whole_lines,
        )
        for r in records
    ]
    if limit is None or limit >= len(problems):
        return problems
    if seed is None:
        return problems[:limit]
    chosen = sorted(random.Random(seed).sample(range(len(problems)), limit))
    return [problems[i] for i in chosen]


# -- the server ----------------------------------------------------------------


async def start_server(flags: Sequence[str]) -> tuple[LanguageClient, str]:
    """The real server, initialized as VS Code with inline completion; and its encoding."""
    command = [sys.executable, "-m", "code_llama_ls", "serve", "--no-workspace-context", *flags]
    client = await ClientServerConfig(server_command=command).start()
    assert isinstance(client, LanguageClient)
    client.feature("codeLlama/status")(lambda params: None)  # getStatus is asked instead
    capabilities = client_capabilities("visual-studio-code")
    assert capabilities.text_document is not None
    capabilities.text_document.inline_completion = types.InlineCompletionClientCapabilities()
    result = await client.initialize_session(types.InitializeParams(capabilities=capabilities))
    return client, str(result.capabilities.position_encoding or "utf-16")


async def server_status(client: LanguageClient) -> dict[str, Any]:
    """`codeLlama/getStatus` once the model has loaded (or failed to)."""
    while True:
        status = await client.protocol.send_request_async("codeLlama/getStatus", None)
        status = status if isinstance(status, dict) else status._asdict()
        if status["device"] is not None or status["state"] == "error":
            return status
        await asyncio.sleep(0.1)


def hole_position(prompt: str, encoding: str) -> types.Position:
    """The end of `prompt` as an LSP position in the negotiated encoding."""
    last_line = prompt.rsplit("\n", 1)[-1]
    if encoding == "utf-8":
        width = len(last_line.encode("utf-8"))
    elif encoding == "utf-16":
        width = len(last_line.encode("utf-16-le")) // 2
    else:
        width = len(last_line)
    return types.Position(prompt.count("\n"), width)


async def complete(
    client: LanguageClient, encoding: str, problem: Problem, folder: Path
) -> Outcome:
    """Open the problem's document, ask for the inline completion at the hole, close it."""
    uri = (folder / (problem.task_id.replace("/", "_") + ".py")).as_uri()
    position = hole_position(problem.prompt, encoding)
    document = types.TextDocumentItem(
        uri=uri, language_id="python", version=1, text=problem.document
    )
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=document))
    outcome = Outcome(problem, "")
    try:
        params = types.InlineCompletionParams(
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Automatic
            ),
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=position,
        )
        began = time.perf_counter()
        request = client.text_document_inline_completion_async(params)
        result = await asyncio.wait_for(request, REQUEST_TIMEOUT_S)
        outcome.latency_ms = (time.perf_counter() - began) * 1000
        items = result.items if isinstance(result, types.InlineCompletionList) else result or []
        text = items[0].insert_text if items else ""
        outcome.text = text if isinstance(text, str) else text.value
        outcome.prompt_format, outcome.cursor = await prompt_format(client, uri, position)
    except Exception as exc:  # a server error is recorded, and the problem fails
        outcome.error = f"server: {type(exc).__name__}: {str(exc).splitlines()[0]}"
    finally:
        closed = types.TextDocumentIdentifier(uri=uri)
        client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=closed))
    return outcome


async def prompt_format(
    client: LanguageClient, uri: str, position: types.Position
) -> tuple[str, str]:
    """The prompt format and the cursor's classification, from `codeLlama.showPrompt`."""
    where = {"uri": uri, "position": {"line": position.line, "character": position.character}}
    params = types.ExecuteCommandParams(command="codeLlama.showPrompt", arguments=[where])
    report = await client.workspace_execute_command_async(params)
    return report["format"], report["reason"]


async def server_outcomes(
    problems: dict[str, list[Problem]], flags: Sequence[str]
) -> tuple[dict[str, list[Outcome]], dict[str, Any]]:
    """Every problem's completion from one server, and what the server said about itself."""
    client, encoding = await start_server(flags)
    try:
        status = await server_status(client)
        outcomes: dict[str, list[Outcome]] = {}
        with tempfile.TemporaryDirectory() as folder:
            warm_up = Problem("warm-up", "f", "def f(x):\n    return ", "\n", "", "", False)
            await complete(client, encoding, warm_up, Path(folder))
            for subset, chosen in problems.items():
                outcomes[subset] = []
                for number, problem in enumerate(chosen, 1):
                    outcomes[subset].append(await complete(client, encoding, problem, Path(folder)))
                    print(f"\r{subset}: {number}/{len(chosen)}", end="", file=sys.stderr)
                print(file=sys.stderr)
        errors = [m.message for m in client.messages if m.type == types.MessageType.Error]
        server = {key: status[key] for key in ("model", "device", "state", "message")}
        server |= {"positionEncoding": encoding, "errorMessages": errors}
        await client.shutdown_session()
        return outcomes, server
    finally:
        await client.stop()


# -- running the tests -----------------------------------------------------------


def run_test(outcome: Outcome, timeout: float) -> None:
    """Run the spliced program in its own isolated process; exit status 0 passes."""
    if outcome.error is not None:
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "program.py"
        path.write_text(outcome.problem.program(outcome.text), encoding="utf-8")
        try:
            done = subprocess.run(
                [sys.executable, "-I", str(path)],
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            outcome.error = f"timeout after {timeout:g} s"
            return
    outcome.passed = done.returncode == 0
    if not outcome.passed:
        lines = done.stderr.strip().splitlines()
        outcome.error = lines[-1] if lines else f"exit status {done.returncode}"


def run_tests(outcomes: list[Outcome], timeout: float) -> None:
    """Run every outcome's program, one process per CPU at a time."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(lambda outcome: run_test(outcome, timeout), outcomes))


# -- the report ------------------------------------------------------------------


def summary(outcomes: list[Outcome]) -> dict[str, Any]:
    latencies = [o.latency_ms for o in outcomes if o.latency_ms is not None]
    passed = sum(o.passed for o in outcomes)
    return {
        "problems": len(outcomes),
        "passed": passed,
        "pass@1": round(100 * passed / len(outcomes), 2) if outcomes else None,
        "empty": sum(not o.text for o in outcomes),
        "server_errors": sum((o.error or "").startswith("server:") for o in outcomes),
        "latency_p50_ms": percentile(latencies, 0.5),
        "latency_p95_ms": percentile(latencies, 0.95),
        "latency_mean_ms": round(statistics.fmean(latencies), 1) if latencies else None,
    }


def print_table(subsets: dict[str, dict[str, Any]], server: dict[str, Any] | None) -> None:
    if server is not None:
        print(f"model {server['model']} on {server['device']}, format {server['formats']}")
    print(f"{'subset':<18} {'n':>5} {'pass@1':>7} {'empty':>6} {'p50 ms':>8} {'p95 ms':>8}")
    for name, s in subsets.items():
        p50, p95 = s["latency_p50_ms"], s["latency_p95_ms"]
        print(
            f"{name:<18} {s['problems']:>5} {s['pass@1']:>6.1f}% {s['empty']:>6} "
            f"{'-' if p50 is None else p50:>8} {'-' if p95 is None else p95:>8}"
        )


def server_flags(args: argparse.Namespace) -> list[str]:
    flags = ["--log-level", "warning"]
    for flag, value in (
        ("--model", args.model),
        ("--fim-mode", args.fim_mode),
        ("--max-new-tokens", args.max_new_tokens),
        ("--backend", args.backend),
    ):
        if value is not None:
            flags += [flag, str(value)]
    return flags


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--mode", choices=("server", "canonical"), default="server")
    parser.add_argument("--subsets", default=",".join(SUBSETS))
    parser.add_argument("--limit", type=int, help="problems per subset (default: all)")
    parser.add_argument("--seed", type=int, help="draw --limit problems at random with this seed")
    parser.add_argument("--model", help="the server's --model (default: its offline default)")
    parser.add_argument("--fim-mode", choices=("auto", "psm", "spm"))
    parser.add_argument("--max-new-tokens", type=int)
    parser.add_argument("--backend", choices=("auto", "transformers", "onnx"))
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per test program")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    unknown = set(args.subsets.split(",")) - set(SUBSETS)
    if unknown:
        parser.error(f"unknown subsets {sorted(unknown)}; known: {', '.join(SUBSETS)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()
    problems = {s: load_problems(s, args.limit, args.seed) for s in args.subsets.split(",")}
    server: dict[str, Any] | None = None
    if args.mode == "canonical":
        outcomes = {
            s: [Outcome(p, p.canonical_insert) for p in chosen] for s, chosen in problems.items()
        }
    else:
        outcomes, server = asyncio.run(server_outcomes(problems, server_flags(args)))
        formats = {o.prompt_format for found in outcomes.values() for o in found}
        server["formats"] = sorted(f for f in formats if f is not None)
    run_tests([o for found in outcomes.values() for o in found], args.timeout)
    subsets = {s: summary(found) for s, found in outcomes.items()}
    print_table(subsets, server)
    elapsed = time.perf_counter() - began
    print(f"{elapsed:.0f} s")
    out = args.out or Path(f"benchmarks/results/humaneval_infilling-{args.mode}.json")
    report = {
        "benchmark": "humaneval_infilling",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(("torch", "transformers")),
        "parameters": {**vars(args), "out": str(out), "server_flags": server_flags(args)},
        "server": server,
        "seconds": round(elapsed, 1),
        "subsets": subsets,
        "problems": {
            s: [o.to_json() for o in found if args.mode == "server" or not o.passed]
            for s, found in outcomes.items()
        },
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
