"""Keystroke-to-result latency through the real server, as a user types a real file.

A real source file, not written for the benchmark (CPython's `Lib/textwrap.py`,
`data/keystroke_replay/`), is typed again, one keystroke at a time, through
`python -m code_llama_ls serve` over stdio, with an inline completion request
after every keystroke as an editor sends them. The same keystrokes are
replayed against each configuration (`--configs`), each in a fresh server
process:

- `naive`: no prefix-KV cache, no completion cache, no debounce, no time
  budget: every request computes its whole prompt;
- `prefix-kv`: 4 prefix-KV cache entries, nothing else;
- `all-on`: prefix-KV cache and completion cache (typed-through and in-flight
  reuse), the server's default debounce and time budget, and `--backend`;
- `llama-cpp`: `all-on` with `backend` "remote" and `remoteUrl` pointing at a
  llama.cpp server started for this configuration and stopped after it:
  llama-cpp-python's `python -m llama_cpp.server` (`tests/llama_server.py`)
  on `--gguf` (default: the default model's GGUF, `find_default_gguf()`),
  with `--llama-context` tokens of context and `--llama-threads` threads.
  llama.cpp does the model work; the language server loads only the
  tokenizer (the default model's, or `--model`'s: it must be the GGUF's).

Every configuration also gets `contextTokens` = `--prompt-tokens` +
`maxNewTokens` (so the prompt is about `--prompt-tokens` long) and
`workspaceContext` false unless `--workspace DIR` is given. Settings the
server does not know (yet) are left out, loudly, and recorded: the server
would otherwise reject all of them. `--settings-json` layers a JSON object
over every configuration's settings (`{"naive": {...}}` for one; null removes
a key).

**The code measured.** Every server runs `python -m code_llama_ls serve` with
its working directory and first `PYTHONPATH` entry at `--repo-root` (default:
this checkout), as `stress.py` does, so a git worktree of another commit (a
"before") is measured with the same virtual environment and the same
benchmark; which settings it accepts is asked of that code too. The report
records the folder, its commit and where the package was imported from.

**The typing protocol.**

- *Regions.* `random.Random(--seed)` draws `--regions` runs of consecutive
  non-blank lines inside function bodies (docstrings left out), each starting
  at a statement, long enough for its share of `--keystrokes`, and, when the
  file has enough of them, with at least 4 characters per prompt token of the
  file before them (a left-to-right model's prompt is full). Regions are
  typed in file order.
- *The document.* For each region the file is opened (`didOpen`, version 1)
  with the region's lines replaced by one line holding the first line's
  indentation (what an editor shows after Enter with auto-indent), the rest
  of the file after it as the suffix (infilling). The cursor stands after that
  indentation.
- *Keystrokes.* The removed code is typed again: one character per keystroke;
  a line break is one keystroke inserting "\\n" and the next line's
  indentation at once, as editors auto-indent. Each region types its share
  of `--keystrokes` and stops; the lines it did not reach stay removed.
- *Per keystroke.* `didChange` (the one insertion as an incremental range
  edit, version + 1), then at once `textDocument/inlineCompletion` at the new
  cursor (trigger kind Automatic). Closed loop with think time: the response
  is awaited (30 s, then `$/cancelRequest`), the latency is taken from the
  keystroke to the response, and the rest of the typing interval, if any, is
  slept before the next keystroke. The interval is `--interval-ms` with a
  fixed-seed jitter of +-50%, and 800 ms after a line break. A fast server
  sees realistic typing; a slow one is measured on every keystroke.
- *Typed along.* As in VS Code, when the previous response showed a
  suggestion and the next keystroke types its beginning, the keystroke is
  counted as `typed_along` (what a typed-through cache can answer).
- *Accepts* (`--accept`). When the suggestion on screen is exactly the
  text of the next keystrokes (the code the typist was about to type,
  ending where a keystroke ends), the typist reads it for
  `--accept-pause-ms` and accepts it: one `didChange` inserting the whole
  suggestion (Tab), then a request at the cursor after it, recorded as an
  `accept` event; the keystrokes it covered are skipped. The figures of
  the requests after an accept (their latency, and whether the server
  answered each from a suggestion written ahead: its `aheadHits` counter
  read just before and after the request, where it counts them) are
  reported apart.
- *Outcomes.* A response with items is a `suggestion`; with none, `empty`;
  an error RequestCancelled, ContentModified or ServerCancelled is
  `cancelled`; no response within 30 s is `timeout`; any other error is
  `error`.
- *Warm-up.* Each server answers one request on a small separate document
  (model load and first-call costs) before measuring; it is not counted.
- *Failures.* A server that dies or stops answering ends its configuration
  (recorded as its `failure`); the other configurations still run.

**Statistics.** `codeLlama/getStatus` is read before and after the typing; its
cumulative `stats` counters (completions, modelCalls, typedThroughHits,
inFlightHits, promptTokens, cachedTokens, prefilledTokens) give tokens
prefilled per model call, prefix-KV reuse (cachedTokens / promptTokens) and the
completion cache's hit rate ((typedThroughHits + inFlightHits) / completions);
n/a where the server has no `stats`. `codeLlama.showPrompt` at each region's
start records the prompt's format and size. With `llama-cpp` the language
server computes no prompt itself: the llama.cpp server's log gives the
prefix reuse instead (llama-cpp-python keeps the previous prompt's KV, and
logs `H prefix-match hit, remaining R prompt tokens to eval` for a prompt
sharing H > 0 tokens with it): prefix-KV reuse is then the hits' tokens over
the prompt tokens sent, and prefill per model call the rest; the log's
counts and its lines that look like errors are recorded (warm-up included).

Run from the repository root:

    python -m benchmarks.keystroke_replay [--configs naive,prefix-kv,all-on,llama-cpp]
        [--keystrokes 240] [--regions 3] [--seed 0] [--interval-ms 150]
        [--prompt-tokens 1024] [--model M] [--backend transformers|onnx|auto]
        [--gguf FILE] [--llama-context 4096] [--llama-threads N]
        [--workspace DIR] [--settings-json JSON] [--repo-root DIR]
        [--accept] [--accept-pause-ms 400]
        [--out benchmarks/results/keystroke_replay.json]
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import dataclasses
import datetime
import hashlib
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient, client_capabilities, make_test_lsp_client

from benchmarks.environment import machine, percentile, write_results
from benchmarks.stress import code_root, plain, server_env
from code_llama_ls.config import Settings
from code_llama_ls.engine.default_model import find_default_gguf
from code_llama_ls.errors import ConfigError
from tests.llama_server import LlamaCppServer

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data" / "keystroke_replay"
SOURCE = DATA / "textwrap.py.txt"
SOURCE_ORIGIN = "CPython 3.11.7 Lib/textwrap.py (PSF-2.0)"
DOCUMENT_NAME = "textwrap.py"
CONFIGS: dict[str, dict[str, Any]] = {
    "naive": {
        "prefixCacheEntries": 0,
        "completionCache": False,
        "debounceMs": 0,
        "timeBudgetMs": 0,
    },
    "prefix-kv": {
        "prefixCacheEntries": 4,
        "completionCache": False,
        "debounceMs": 0,
        "timeBudgetMs": 0,
    },
    "all-on": {"prefixCacheEntries": 4, "completionCache": True},
    "no-ahead": {"prefixCacheEntries": 4, "completionCache": True, "speculate": False},
    "llama-cpp": {"prefixCacheEntries": 4, "completionCache": True, "backend": "remote"},
}
LLAMA_CPP = "llama-cpp"
LLAMA_URL_UNTIL_STARTED = "http://127.0.0.1:8080"
"""`remoteUrl` while the settings are checked; the llama.cpp server's own once it runs."""
LLAMA_CONTEXT = 4096
PREFIX_MATCH = re.compile(r"(\d+) prefix-match hit, remaining (\d+) prompt tokens")
LOG_ERROR_MARKERS = ("Traceback", "Error", "error:", "Exception", '" 500', '" 4')
LOG_TAIL_CHARS = 4000
BACKENDS = ("transformers", "onnx", "auto")
STATS_KEYS = (
    "completions",
    "modelCalls",
    "typedThroughHits",
    "inFlightHits",
    "promptTokens",
    "cachedTokens",
    "prefilledTokens",
)
OUTCOMES = ("suggestion", "empty", "cancelled", "timeout", "error")
CANCELLED_CODES = frozenset({-32800, -32801, -32802})  # cancelled, content modified, server
REQUEST_TIMEOUT_S = 30.0
STATUS_TIMEOUT_S = 30.0
LOAD_TIMEOUT_S = 900.0
AFTER_CANCEL_S = 5.0
NEWLINE_PAUSE_MS = 800.0
CHARS_PER_TOKEN = 4
WARM_UP_TEXT = "def area(width, height):\n    return "


# -- the typing plan -------------------------------------------------------------


@dataclass(frozen=True)
class Keystroke:
    """One keystroke: what it inserts, where, and how long the typist waits after it."""

    index: int
    region: int
    text: str
    """One character, or "\\n" and the next line's indentation."""
    line: int
    """0-based line of the insertion."""
    before: str
    """The line's text before the insertion point."""
    delay_ms: float = 0.0

    @property
    def cursor(self) -> tuple[int, str]:
        """The cursor after the keystroke: its line, and the line's text before it."""
        if self.text.startswith("\n"):
            return self.line + 1, self.text[1:]
        return self.line, self.before + self.text


@dataclass(frozen=True)
class Region:
    """A place in the file that is typed again, and its keystrokes."""

    number: int
    first_line: int
    """0-based first removed line."""
    lines: int
    """How many lines were removed (the ones the keystrokes reach)."""
    function: str
    document: str
    keystrokes: tuple[Keystroke, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "region": self.number,
            "function": self.function,
            "first_line": self.first_line + 1,
            "lines": self.lines,
            "keystrokes": len(self.keystrokes),
            "first_keystroke": self.keystrokes[0].index if self.keystrokes else None,
        }


def function_body_lines(tree: ast.Module) -> tuple[set[int], set[int]]:
    """1-based lines inside function bodies (docstrings out), and statement starts among them."""
    inside: set[int] = set()
    starts: set[int] = set()
    docstrings: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        body = node.body
        if ast.get_docstring(node, clean=False) is not None:
            first = body[0]
            docstrings.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
            body = body[1:]
        for statement in body:
            inside.update(range(statement.lineno, (statement.end_lineno or statement.lineno) + 1))
            starts.update(
                s.lineno for s in ast.walk(statement) if isinstance(s, ast.stmt | ast.ExceptHandler)
            )
    return inside - docstrings, starts - docstrings


def candidate_runs(source: str) -> list[tuple[int, int]]:
    """Runs of non-blank function-body lines starting at a statement, as 0-based [first, end)."""
    inside, starts = function_body_lines(ast.parse(source))
    runs: list[tuple[int, int]] = []
    first: int | None = None
    for number, text in enumerate(source.splitlines(), 1):
        usable = number in inside and bool(text.strip())
        if usable and first is None and number in starts:
            first = number
        elif not usable and first is not None:
            runs.append((first - 1, number - 1))
            first = None
    if first is not None:
        runs.append((first - 1, len(source.splitlines())))
    return runs


def indentation(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def typing_cost(lines: Sequence[str], run: tuple[int, int]) -> int:
    """Keystrokes that type the run's lines again (a line break with its indent is one)."""
    first, end = run
    return sum(len(lines[i]) - len(indentation(lines[i])) for i in range(first, end)) + (
        end - first - 1
    )


def choose_runs(
    source: str, count: int, budget: int, min_offset: int, seed: int
) -> list[tuple[int, int]]:
    """`count` runs long enough for `budget` keystrokes, drawn with `seed`, in file order."""
    lines = source.splitlines()
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    long_enough = [r for r in candidate_runs(source) if typing_cost(lines, r) >= budget]
    late = [r for r in long_enough if offsets[r[0]] >= min_offset]
    pool = late if len(late) >= count else long_enough
    if len(pool) < count:
        raise SystemExit(
            f"only {len(pool)} function-body runs can take {budget} keystrokes each; "
            "ask for fewer --keystrokes or --regions"
        )
    return sorted(random.Random(seed).sample(pool, count))


def region_keystrokes(
    lines: Sequence[str], first: int, budget: int, region: int, start_index: int
) -> list[Keystroke]:
    """Up to `budget` keystrokes typing `lines[first:]` again, from after the first indent."""
    strokes: list[Keystroke] = []
    number = first
    while len(strokes) < budget and number < len(lines):
        indent, text = indentation(lines[number]), lines[number]
        if number > first:
            end_of_line = strokes[-1].cursor[1]  # the line just typed, in full
            strokes.append(Keystroke(0, region, "\n" + indent, number - 1, end_of_line))
        before = indent
        for char in text[len(indent) :]:
            if len(strokes) >= budget:
                break
            strokes.append(Keystroke(0, region, char, number, before))
            before += char
        number += 1
    return [dataclasses.replace(k, index=start_index + i) for i, k in enumerate(strokes)]


def enclosing_function(tree: ast.Module, line: int) -> str:
    """The qualified name (Class.method, f.inner) of the innermost function holding `line`."""
    best = "?"

    def visit(node: ast.AST, prefix: str) -> None:
        nonlocal best
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = prefix + child.name
                inside = child.lineno <= line <= (child.end_lineno or child.lineno)
                if inside and not isinstance(child, ast.ClassDef):
                    best = name
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return best


def with_delays(strokes: list[Keystroke], interval_ms: float, seed: int) -> list[Keystroke]:
    """The typist's pause after each keystroke: the interval +-50%, 800 ms after a line break."""
    rng = random.Random(f"typing-{seed}")
    return [
        dataclasses.replace(
            k,
            delay_ms=NEWLINE_PAUSE_MS
            if k.text.startswith("\n")
            else interval_ms * rng.uniform(0.5, 1.5),
        )
        for k in strokes
    ]


def build_region(
    source: str, run: tuple[int, int], budget: int, number: int, start_index: int
) -> Region:
    """The region's document (its lines replaced by the first one's indent) and keystrokes."""
    lines = source.splitlines(keepends=True)
    bare = [line.rstrip("\r\n") for line in lines]
    first = run[0]
    strokes = region_keystrokes(bare, first, budget, number, start_index)
    last = strokes[-1].cursor[0] if strokes else first
    document = "".join(lines[:first]) + indentation(bare[first]) + "\n" + "".join(lines[last + 1 :])
    function = enclosing_function(ast.parse(source), first + 1)
    return Region(number, first, last - first + 1, function, document, tuple(strokes))


def typing_plan(source: str, args: argparse.Namespace) -> list[Region]:
    """The regions to type, each with its share of the keystrokes and their pauses."""
    count = args.regions
    budgets = [args.keystrokes // count + (i < args.keystrokes % count) for i in range(count)]
    runs = choose_runs(source, count, max(budgets), CHARS_PER_TOKEN * args.prompt_tokens, args.seed)
    regions: list[Region] = []
    start = 0
    for number, (run, budget) in enumerate(zip(runs, budgets, strict=True), 1):
        region = build_region(source, run, budget, number, start)
        strokes = with_delays(list(region.keystrokes), args.interval_ms, args.seed + number)
        regions.append(dataclasses.replace(region, keystrokes=tuple(strokes)))
        start += len(strokes)
    return regions


# -- settings --------------------------------------------------------------------


def parse_overrides(text: str | None) -> dict[str, Any]:
    """The --settings-json object (empty when not given)."""
    if not text:
        return {}
    value = json.loads(text)
    if not isinstance(value, dict):
        raise SystemExit("--settings-json must be a JSON object")
    return value


def overrides_for(name: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The overrides for every configuration, then those for configuration `name`."""
    common = {k: v for k, v in overrides.items() if k not in CONFIGS}
    own = overrides.get(name)
    return common | (own if isinstance(own, dict) else {})


def config_settings(
    name: str, args: argparse.Namespace, overrides: dict[str, Any]
) -> dict[str, Any]:
    """What the server is sent as `initializationOptions.codeLlama` for configuration `name`."""
    layer = overrides_for(name, overrides)
    max_new_tokens = layer.get("maxNewTokens") or Settings().completion.max_new_tokens
    settings: dict[str, Any] = {
        "contextTokens": args.prompt_tokens + max_new_tokens,
        "workspaceContext": args.workspace is not None,
        **CONFIGS[name],
    }
    if name == "all-on" and args.backend is not None:
        settings["backend"] = args.backend
    if name == LLAMA_CPP:
        settings["remoteUrl"] = LLAMA_URL_UNTIL_STARTED
    settings |= layer
    return {k: v for k, v in settings.items() if v is not None}


# Run by the code of --repo-root: which of the settings on stdin it refuses, and why.
_REFUSED_BY = """
import json, sys
from code_llama_ls.config import Settings
from code_llama_ls.errors import ConfigError
refused = {}
for key, value in json.load(sys.stdin).items():
    try:
        Settings().with_values({key: value}, "keystroke_replay")
    except ConfigError as exc:
        refused[key] = str(exc).split(" (known:")[0]
print(json.dumps(refused))
"""


def split_known(
    settings: dict[str, Any], repo_root: Path | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The settings the server accepts, and the others with the reason they were refused.

    `repo_root`: the server's code is there (another checkout): it is asked, in a subprocess.
    """
    refused: dict[str, str] = {}
    if repo_root is None or repo_root == ROOT:
        for key, value in settings.items():
            try:
                Settings().with_values({key: value}, "keystroke_replay")
            except ConfigError as exc:
                refused[key] = str(exc).split(" (known:")[0]
    else:
        done = subprocess.run(
            [sys.executable, "-c", _REFUSED_BY],
            input=json.dumps(settings),
            cwd=repo_root,
            env=server_env(repo_root),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"cannot check settings with {repo_root}'s code:\n{done.stderr}")
        refused = json.loads(done.stdout)
    known = {k: v for k, v in settings.items() if k not in refused}
    return known, refused


# -- the server ------------------------------------------------------------------


async def start_server(
    flags: Sequence[str],
    settings: dict[str, Any],
    workspace: Path | None,
    repo_root: Path = ROOT,
) -> tuple[LanguageClient, str]:
    """The real server (`repo_root`'s code), initialized as VS Code with inline completion.

    Returns the client and the negotiated position encoding.
    """
    command = [sys.executable, "-m", "code_llama_ls", "serve", *flags]
    client = make_test_lsp_client()
    await client.start_io(*command, cwd=str(repo_root), env=server_env(repo_root))
    client.feature("codeLlama/status")(lambda params: None)  # getStatus is asked instead
    capabilities = client_capabilities("visual-studio-code")
    assert capabilities.text_document is not None
    capabilities.text_document.inline_completion = types.InlineCompletionClientCapabilities()
    folders = None
    if workspace is not None:
        folders = [types.WorkspaceFolder(uri=workspace.as_uri(), name=workspace.name)]
    params = types.InitializeParams(
        capabilities=capabilities,
        initialization_options={"codeLlama": settings},
        workspace_folders=folders,
        root_uri=folders[0].uri if folders else None,
    )
    result = await client.initialize_session(params)
    return client, str(result.capabilities.position_encoding or "utf-16")


async def get_status(client: LanguageClient) -> dict[str, Any]:
    """`codeLlama/getStatus`; a server that does not answer in time is an error."""
    request = client.protocol.send_request_async("codeLlama/getStatus", None)
    try:
        status = plain(await asyncio.wait_for(request, STATUS_TIMEOUT_S))
    except TimeoutError:
        raise RuntimeError("the server did not answer codeLlama/getStatus") from None
    return status if isinstance(status, dict) else {}


async def server_status(client: LanguageClient) -> dict[str, Any]:
    """`codeLlama/getStatus` once the model has loaded (or failed to)."""
    deadline = time.monotonic() + LOAD_TIMEOUT_S
    while time.monotonic() < deadline:
        status = await get_status(client)
        if status.get("device") is not None or status.get("state") == "error":
            return status
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the model did not load in {LOAD_TIMEOUT_S:g} s")


async def read_stats(client: LanguageClient) -> dict[str, int] | None:
    """The server's cumulative counters, or None when it keeps none."""
    stats = (await get_status(client)).get("stats")
    return stats if isinstance(stats, dict) else None


async def indexing_done(client: LanguageClient) -> None:
    """Wait (at most LOAD_TIMEOUT_S) until every work-done progress begun has ended."""
    deadline = time.monotonic() + LOAD_TIMEOUT_S
    while time.monotonic() < deadline:
        begun = [r for r in client.progress_reports.values() if r]
        if all(isinstance(r[-1], types.WorkDoneProgressEnd) for r in begun):
            return
        await asyncio.sleep(0.2)
    print("warning: workspace indexing still running; typing anyway", file=sys.stderr)


def lsp_width(text: str, encoding: str) -> int:
    """The length of `text` in the negotiated position encoding's units."""
    if encoding == "utf-8":
        return len(text.encode("utf-8"))
    if encoding == "utf-16":
        return len(text.encode("utf-16-le")) // 2
    return len(text)


def lsp_position(line: int, before: str, encoding: str) -> types.Position:
    return types.Position(line, lsp_width(before, encoding))


def open_document(client: LanguageClient, uri: str, text: str) -> None:
    document = types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=document))


def close_document(client: LanguageClient, uri: str) -> None:
    closed = types.TextDocumentIdentifier(uri=uri)
    client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=closed))


def send_keystroke(
    client: LanguageClient, uri: str, version: int, key: Keystroke, encoding: str
) -> None:
    """`didChange`: the keystroke's insertion as an incremental range edit."""
    here = lsp_position(key.line, key.before, encoding)
    change = types.TextDocumentContentChangePartial(range=types.Range(here, here), text=key.text)
    document = types.VersionedTextDocumentIdentifier(uri=uri, version=version)
    params = types.DidChangeTextDocumentParams(text_document=document, content_changes=[change])
    client.text_document_did_change(params)


async def ask(
    client: LanguageClient, uri: str, position: types.Position
) -> tuple[str, str, str | None]:
    """One inline completion: (outcome, first item's text, error); cancelled after 30 s."""
    params = types.InlineCompletionParams(
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Automatic
        ),
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=position,
    )
    msg_id = f"replay-{uuid.uuid4().hex[:12]}"
    method = types.TEXT_DOCUMENT_INLINE_COMPLETION
    sent = client.protocol.send_request_async(method, params, msg_id=msg_id)
    request: asyncio.Future[Any] = asyncio.ensure_future(sent)
    try:
        result = await asyncio.wait_for(asyncio.shield(request), REQUEST_TIMEOUT_S)
    except TimeoutError:
        client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=msg_id))
        await asyncio.wait([request], timeout=AFTER_CANCEL_S)
        return "timeout", "", f"no response in {REQUEST_TIMEOUT_S:g} s"
    except JsonRpcException as exc:
        outcome = "cancelled" if exc.code in CANCELLED_CODES else "error"
        return outcome, "", f"{exc.code}: {exc.message}"
    items = result.items if isinstance(result, types.InlineCompletionList) else result or []
    text = items[0].insert_text if items else ""
    text = text if isinstance(text, str) else text.value
    return ("suggestion" if text else "empty"), text, None


async def show_prompt(client: LanguageClient, uri: str, position: types.Position) -> dict[str, Any]:
    """The prompt's format, size and budget at a position, from `codeLlama.showPrompt`."""
    where = {"uri": uri, "position": {"line": position.line, "character": position.character}}
    params = types.ExecuteCommandParams(command="codeLlama.showPrompt", arguments=[where])
    request = client.workspace_execute_command_async(params)
    try:
        report = plain(await asyncio.wait_for(request, REQUEST_TIMEOUT_S))
    except JsonRpcException as exc:
        return {"error": f"{exc.code}: {exc.message}"}
    except TimeoutError:
        return {"error": f"no response in {REQUEST_TIMEOUT_S:g} s"}
    return {k: report.get(k) for k in ("format", "tokens", "budget", "mode", "reason")}


async def warm_up(client: LanguageClient, encoding: str, folder: Path) -> None:
    """One request on a small separate document: model load and first-call costs."""
    uri = (folder / "warm_up.py").as_uri()
    open_document(client, uri, WARM_UP_TEXT)
    last_line = WARM_UP_TEXT.rsplit("\n", 1)[-1]
    await ask(client, uri, lsp_position(WARM_UP_TEXT.count("\n"), last_line, encoding))
    close_document(client, uri)


# -- replaying -------------------------------------------------------------------


@dataclass
class Record:
    """What one keystroke's completion request gave."""

    index: int
    region: int
    line: int
    column: int
    """The cursor after the keystroke, 1-based as editors show it (columns in characters)."""
    latency_ms: float | None
    outcome: str
    text_length: int
    typed_along: bool
    error: str | None = None
    event: str = "key"
    """"key" (one keystroke typed) or "accept" (the suggestion on screen accepted whole)."""
    accepted_chars: int = 0
    from_ahead: bool | None = None
    """An accept's request answered from a suggestion written ahead (None: the server does
    not count them)."""
    latency_s: float = field(default=0.0, repr=False)
    """Seconds from the edit to the answer, timeouts included (for the typing interval)."""

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        del record["latency_s"]
        record["items"] = self.outcome == "suggestion"
        if self.latency_ms is not None:
            record["latency_ms"] = round(self.latency_ms, 1)
        return record


@dataclass
class ConfigRun:
    """One configuration's server and what it answered."""

    name: str
    settings: dict[str, Any]
    refused: dict[str, str]
    server: dict[str, Any] = field(default_factory=dict)
    prompts: list[dict[str, Any]] = field(default_factory=list)
    stats_before: dict[str, int] | None = None
    stats_after: dict[str, int] | None = None
    records: list[Record] = field(default_factory=list)
    failure: str | None = None
    llama_server: dict[str, Any] | None = None
    """`llama-cpp` only: the llama.cpp server's file, flags and what its log says."""


async def type_key(
    client: LanguageClient, uri: str, version: int, key: Keystroke, encoding: str, shown: str
) -> tuple[Record, str]:
    """Send one keystroke, ask for the completion after it, sleep the rest of its interval.

    `shown` is the suggestion on screen before the keystroke; the record and
    the suggestion now on screen come back.
    """
    record, text = await edit_and_ask(client, uri, version, key, key.cursor, encoding)
    record.typed_along = bool(shown) and shown.startswith(key.text)
    await asyncio.sleep(max(0.0, key.delay_ms / 1000 - record.latency_s))
    return record, text


async def edit_and_ask(
    client: LanguageClient,
    uri: str,
    version: int,
    edit: Keystroke,
    cursor: tuple[int, str],
    encoding: str,
) -> tuple[Record, str]:
    """Send `edit`, ask for the completion at `cursor` (its line, and the line's text before
    it); the record, its latency measured from the edit, and the suggestion now shown."""
    began = time.perf_counter()
    send_keystroke(client, uri, version, edit, encoding)
    line, before = cursor
    outcome, text, error = await ask(client, uri, lsp_position(line, before, encoding))
    latency = (time.perf_counter() - began) * 1000
    record = Record(
        index=edit.index,
        region=edit.region,
        line=line + 1,
        column=len(before) + 1,
        latency_ms=None if outcome == "timeout" else latency,
        outcome=outcome,
        text_length=len(text),
        typed_along=False,
        error=error,
        latency_s=latency / 1000,
    )
    return record, text


def keystrokes_covered(keys: Sequence[Keystroke], start: int, text: str) -> int:
    """How many keystrokes from `start` type exactly `text` (0: it does not end with one)."""
    typed = ""
    for count, key in enumerate(keys[start:], 1):
        typed += key.text
        if typed == text:
            return count
        if not text.startswith(typed):
            return 0
    return 0


async def accept_suggestion(
    client: LanguageClient,
    uri: str,
    version: int,
    keys: Sequence[Keystroke],
    shown: str,
    encoding: str,
) -> tuple[Record, str]:
    """Accept the suggestion on screen, which `keys` would type, and ask at the cursor after it."""
    first, last = keys[0], keys[-1]
    hits_before = (await read_stats(client) or {}).get("aheadHits")
    accept = dataclasses.replace(first, text=shown)
    record, text = await edit_and_ask(client, uri, version, accept, last.cursor, encoding)
    hits_after = (await read_stats(client) or {}).get("aheadHits")
    record.event, record.accepted_chars = "accept", len(shown)
    if hits_before is not None and hits_after is not None:
        record.from_ahead = hits_after > hits_before
    await asyncio.sleep(max(0.0, last.delay_ms / 1000 - record.latency_s))
    return record, text


async def type_region(
    client: LanguageClient,
    encoding: str,
    region: Region,
    uri: str,
    run: ConfigRun,
    total: int,
    accept_pause_ms: float | None,
) -> None:
    """Open the region's document and type its keystrokes, a request after each; with
    `accept_pause_ms`, accept a suggestion that is the code to type, after that pause."""
    open_document(client, uri, region.document)
    indent = indentation(region.document.splitlines()[region.first_line])
    prompt = await show_prompt(client, uri, lsp_position(region.first_line, indent, encoding))
    run.prompts.append({"region": region.number, **prompt})
    shown, version, next_key, keys = "", 1, 0, region.keystrokes
    while next_key < len(keys):
        version += 1
        covered = keystrokes_covered(keys, next_key, shown) if accept_pause_ms else 0
        if covered and accept_pause_ms is not None:
            await asyncio.sleep(accept_pause_ms / 1000)
            taken = keys[next_key : next_key + covered]
            record, shown = await accept_suggestion(client, uri, version, taken, shown, encoding)
            next_key += covered
        else:
            record, shown = await type_key(client, uri, version, keys[next_key], encoding, shown)
            next_key += 1
        run.records.append(record)
        if record.outcome == "timeout":
            await get_status(client)  # raises when the server is gone
        print(f"\r{run.name}: {len(run.records)}/{total}", end="", file=sys.stderr)
    close_document(client, uri)


async def until_loaded(client: LanguageClient) -> dict[str, Any]:
    """`codeLlama/getStatus` once the model has loaded (the remote backend: its server answered).

    `server_status` returns once a device is known; the remote backend names
    its device (the URL) before it has probed the server.
    """
    status = await server_status(client)
    deadline = time.monotonic() + LOAD_TIMEOUT_S
    while status.get("state") == "loading" and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        status = await get_status(client)
    if status.get("state") in ("loading", "error"):
        raise RuntimeError(f"the server did not load its model: {status.get('message')}")
    return status


def llama_log(text: str) -> dict[str, Any]:
    """What the llama.cpp server's log says: requests, prefix reuse, lines that look like errors."""
    lines = text.splitlines()
    matches = [(int(m[1]), int(m[2])) for m in map(PREFIX_MATCH.search, lines) if m]
    suspicious = [line for line in lines if any(mark in line for mark in LOG_ERROR_MARKERS)]
    return {
        "completion_requests": sum('"POST /v1/completions' in line for line in lines),
        "closed_by_client": sum("Disconnected from client" in line for line in lines),
        "prefix_matches": len(matches),
        "tokens_reused": sum(hit for hit, _ in matches),
        "tokens_evaluated_after_a_match": sum(rest for _, rest in matches),
        "suspicious_lines": len(suspicious),
        "examples": suspicious[:20],
    }


async def run_config(
    run: ConfigRun,
    plan: Sequence[Region],
    flags: Sequence[str],
    args: argparse.Namespace,
) -> None:
    """Start a fresh server with the configuration's settings and replay every region.

    `llama-cpp` first starts its llama.cpp server, and stops it after.
    """
    if run.name != LLAMA_CPP:
        await replay(run, plan, flags, args)
        return
    with tempfile.TemporaryDirectory() as folder:
        gguf = args.gguf or find_default_gguf()
        context = max(args.llama_context, run.settings.get("contextTokens", 0))
        threads = args.llama_threads
        llama = LlamaCppServer(
            gguf, Path(folder) / "llama-server.log", context=context, threads=threads
        )
        run.llama_server = {"gguf": str(gguf), "context": context, "threads": threads}
        failed = True
        try:
            await asyncio.to_thread(llama.start)
            run.llama_server["url"] = run.settings["remoteUrl"] = llama.url
            await replay(run, plan, flags, args)
            failed = False
        finally:
            await asyncio.to_thread(llama.stop)
            log = llama.log_text()
            run.llama_server["log"] = llama_log(log)
            if failed or run.llama_server["log"]["suspicious_lines"]:
                run.llama_server["log_tail"] = log[-LOG_TAIL_CHARS:]


async def replay(
    run: ConfigRun, plan: Sequence[Region], flags: Sequence[str], args: argparse.Namespace
) -> None:
    """The server's part of `run_config`: start it, warm it up, type, read its counters."""
    began = time.perf_counter()
    workspace: Path | None = args.workspace
    client, encoding = await start_server(flags, run.settings, workspace, args.repo_root)
    try:
        status = await until_loaded(client)
        if workspace is not None:
            await indexing_done(client)
        loaded = time.perf_counter() - began
        print(f"{run.name}: {status.get('model')} ready in {loaded:.0f} s", file=sys.stderr)
        with tempfile.TemporaryDirectory() as folder:
            base = workspace if workspace is not None else Path(folder)
            await warm_up(client, encoding, Path(folder))
            run.stats_before = await read_stats(client)
            total = sum(len(region.keystrokes) for region in plan)
            for region in plan:
                uri = (base / DOCUMENT_NAME).as_uri()
                pause = args.accept_pause_ms if args.accept else None
                await type_region(client, encoding, region, uri, run, total, pause)
            print(file=sys.stderr)
            run.stats_after = await read_stats(client)
        errors = [m.message for m in client.messages if m.type == types.MessageType.Error]
        run.server = {k: v for k, v in status.items() if k != "stats"}
        run.server |= {"positionEncoding": encoding, "errorMessages": errors}
        await client.shutdown_session()
    finally:
        await client.stop()


async def run_all(
    runs: Sequence[ConfigRun],
    plan: Sequence[Region],
    flags: Sequence[str],
    args: argparse.Namespace,
) -> None:
    """Every configuration in turn; one that fails is recorded and the others still run."""
    for run in runs:
        try:
            await run_config(run, plan, flags, args)
        except Exception as exc:  # a dead or stuck server must not lose the other results
            run.failure = f"{type(exc).__name__}: {exc}"
            print(f"\n{run.name} failed: {run.failure}", file=sys.stderr)


# -- the report ------------------------------------------------------------------


def stats_delta(run: ConfigRun) -> dict[str, int] | None:
    """The counters' growth over the typing, or None when the server keeps none."""
    before, after = run.stats_before, run.stats_after
    if before is None or after is None or any(k not in after for k in STATS_KEYS):
        return None
    return {k: int(after[k]) - int(before.get(k, 0)) for k in STATS_KEYS}


def share(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def summarize(run: ConfigRun) -> dict[str, Any]:
    """Per configuration: outcomes, latency, prefill and cache figures.

    `llama-cpp`: prefill and prefix reuse from the llama.cpp server's log.
    """
    latencies = [r.latency_ms for r in run.records if r.latency_ms is not None]
    counts = {o: sum(r.outcome == o for r in run.records) for o in OUTCOMES}
    delta = stats_delta(run)
    summary: dict[str, Any] = {
        "requests": len(run.records),
        **counts,
        "typed_along": sum(r.typed_along for r in run.records),
        "latency_p50_ms": percentile(latencies, 0.5),
        "latency_p95_ms": percentile(latencies, 0.95),
        "latency_mean_ms": round(statistics.fmean(latencies), 1) if latencies else None,
        "stats": delta,
        "prefilled_per_model_call": None,
        "prefix_kv_reuse": None,
        "cache_hit_rate": None,
    }
    summary |= accept_summary(run)
    if delta is not None:
        summary["prefilled_per_model_call"] = share(delta["prefilledTokens"], delta["modelCalls"])
        summary["prefix_kv_reuse"] = share(delta["cachedTokens"], delta["promptTokens"])
        hits = delta["typedThroughHits"] + delta["inFlightHits"]
        summary["cache_hit_rate"] = share(hits, delta["completions"])
        log = (run.llama_server or {}).get("log")
        if log is not None:  # llama.cpp computed the prompts: its prefix-match hits
            reused = min(log["tokens_reused"], delta["promptTokens"])
            prefilled = delta["promptTokens"] - reused
            summary["prefilled_per_model_call"] = share(prefilled, delta["modelCalls"])
            summary["prefix_kv_reuse"] = share(reused, delta["promptTokens"])
    return summary


def accept_summary(run: ConfigRun) -> dict[str, Any]:
    """The accepts, and the requests after them: latency, and the share the server answered
    from a suggestion written ahead (n/a where it does not count them)."""
    accepts = [r for r in run.records if r.event == "accept"]
    latencies = [r.latency_ms for r in accepts if r.latency_ms is not None]
    before, after = run.stats_before or {}, run.stats_after or {}
    ahead = None
    counted = [r for r in accepts if r.from_ahead is not None]
    if counted:
        hits = sum(bool(r.from_ahead) for r in counted)
        hit_latencies = [r.latency_ms for r in counted if r.from_ahead and r.latency_ms]
        miss_latencies = [r.latency_ms for r in counted if not r.from_ahead and r.latency_ms]
        ahead = {
            "hits": hits,
            "hit_rate": share(hits, len(counted)),
            "hit_p50_ms": percentile(hit_latencies, 0.5),
            "miss_p50_ms": percentile(miss_latencies, 0.5),
            "written": int(after.get("writtenAhead", 0)) - int(before.get("writtenAhead", 0)),
            "all_ahead_hits": int(after.get("aheadHits", 0)) - int(before.get("aheadHits", 0)),
        }
    return {
        "accepts": len(accepts),
        "accepted_chars": sum(r.accepted_chars for r in accepts),
        "after_accept_p50_ms": percentile(latencies, 0.5),
        "after_accept_p95_ms": percentile(latencies, 0.95),
        "after_accept_mean_ms": round(statistics.fmean(latencies), 1) if latencies else None,
        "after_accept_suggestions": sum(r.outcome == "suggestion" for r in accepts),
        "written_ahead": ahead,
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 2)


def speedups(summaries: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """naive/X of p50 and mean latency for every other configuration X."""
    naive = summaries.get("naive")
    if naive is None:
        return {}
    return {
        f"naive/{name}": {
            "p50": ratio(naive["latency_p50_ms"], s["latency_p50_ms"]),
            "mean": ratio(naive["latency_mean_ms"], s["latency_mean_ms"]),
        }
        for name, s in summaries.items()
        if name != "naive"
    }


def cell(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:.1f}%" if percent else f"{value:.0f}"


def print_table(summaries: dict[str, dict[str, Any]]) -> None:
    head = (
        f"{'config':<10} {'n':>4} {'sugg':>5} {'empty':>5} {'canc':>5} {'p50 ms':>7} "
        f"{'p95 ms':>7} {'mean ms':>7} {'prefill':>7} {'kv reuse':>8} {'hits':>6} {'along':>5}"
    )
    print(head)
    for name, s in summaries.items():
        cancelled = s["cancelled"] + s["timeout"]
        print(
            f"{name:<10} {s['requests']:>4} {s['suggestion']:>5} {s['empty']:>5} {cancelled:>5} "
            f"{cell(s['latency_p50_ms']):>7} {cell(s['latency_p95_ms']):>7} "
            f"{cell(s['latency_mean_ms']):>7} {cell(s['prefilled_per_model_call']):>7} "
            f"{cell(s['prefix_kv_reuse'], True):>8} {cell(s['cache_hit_rate'], True):>6} "
            f"{s['typed_along']:>5}"
        )
    for name, s in summaries.items():
        if s["accepts"]:
            ahead = s["written_ahead"] or {}
            print(
                f"{name}: {s['accepts']} accepts ({s['accepted_chars']} chars); the request "
                f"after: p50 {cell(s['after_accept_p50_ms'])} ms, p95 "
                f"{cell(s['after_accept_p95_ms'])} ms, mean {cell(s['after_accept_mean_ms'])} "
                f"ms; answered from a suggestion written ahead: "
                f"{cell(ahead.get('hit_rate'), True)} (p50 {cell(ahead.get('hit_p50_ms'))} ms; "
                f"the others p50 {cell(ahead.get('miss_p50_ms'))} ms; "
                f"{ahead.get('written', 'n/a')} written ahead)"
            )
    for pair, values in speedups(summaries).items():
        p50, mean = values["p50"], values["mean"]
        print(
            f"{pair}: p50 x{'n/a' if p50 is None else p50}, mean x{'n/a' if mean is None else mean}"
        )


def print_servers(runs: Sequence[ConfigRun]) -> None:
    """Per configuration: the model, the prompt sizes, and what went wrong, if anything."""
    for run in runs:
        if run.failure is not None:
            print(f"{run.name}: FAILED: {run.failure}")
            continue
        server = run.server
        backend = f" ({server['backend']})" if server.get("backend") else ""
        tokens = [prompt.get("tokens") for prompt in run.prompts]
        print(
            f"{run.name}: {server.get('model')}{backend} on {server.get('device')}; "
            f"prompt tokens at the regions {tokens}; "
            f"refused settings: {', '.join(run.refused) or 'none'}; "
            f"server errors: {server.get('errorMessages') or 'none'}"
        )
        if run.llama_server is not None:
            llama, log = run.llama_server, run.llama_server.get("log") or {}
            print(
                f"{run.name}: llama.cpp server on {Path(llama['gguf']).name}, "
                f"{llama['threads']} threads, {llama['context']} context; "
                f"{log.get('completion_requests')} requests, "
                f"{log.get('prefix_matches')} prefix matches reusing "
                f"{log.get('tokens_reused')} tokens; "
                f"{log.get('suspicious_lines')} log lines that look like errors"
            )


def server_flags(args: argparse.Namespace) -> list[str]:
    flags = ["--log-level", "warning"]
    if args.model is not None:
        flags += ["--model", args.model]
    return flags


def make_runs(args: argparse.Namespace) -> list[ConfigRun]:
    """One run per configuration, with the settings the server (of --repo-root) accepts."""
    overrides = parse_overrides(args.settings_json)
    runs = []
    for name in args.configs.split(","):
        known, refused = split_known(config_settings(name, args, overrides), args.repo_root)
        if refused:
            print(
                f"warning: {name}: the server does not accept {', '.join(refused)}; "
                "left out, so this configuration runs on the server's defaults for them",
                file=sys.stderr,
            )
        runs.append(ConfigRun(name, known, refused))
    return runs


def report(
    args: argparse.Namespace,
    source: str,
    plan: Sequence[Region],
    runs: Sequence[ConfigRun],
    seconds: float,
) -> dict[str, Any]:
    summaries = {run.name: summarize(run) for run in runs}
    parameters = {
        **vars(args),
        "out": str(args.out),
        "workspace": args.workspace and str(args.workspace),
        "repo_root": str(args.repo_root),
        "gguf": args.gguf and str(args.gguf),
    }
    return {
        "benchmark": "keystroke_replay",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(("torch", "transformers", "onnxruntime", "llama-cpp-python")),
        "code": code_root(args.repo_root),
        "parameters": {**parameters, "server_flags": server_flags(args)},
        "source": {
            "file": str(SOURCE.relative_to(ROOT)),
            "origin": SOURCE_ORIGIN,
            "sha256": hashlib.sha256(source.encode("utf-8")).hexdigest(),
            "lines": source.count("\n"),
        },
        "regions": [region.to_json() for region in plan],
        "seconds": round(seconds, 1),
        "ratios": speedups(summaries),
        "configs": {
            run.name: {
                "settings": run.settings,
                "refused_settings": run.refused,
                "failure": run.failure,
                "server": run.server,
                "prompts": run.prompts,
                "stats_before": run.stats_before,
                "stats_after": run.stats_after,
                "llama_server": run.llama_server,
                "summary": summaries[run.name],
                "requests": [r.to_json() for r in run.records],
            }
            for run in runs
        },
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--keystrokes", type=int, default=240, help="in all, split across regions")
    parser.add_argument("--regions", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--interval-ms", type=float, default=150.0, help="typing interval, +-50%%")
    parser.add_argument("--prompt-tokens", type=int, default=1024)
    parser.add_argument("--model", help="the server's --model (default: its offline default)")
    parser.add_argument("--backend", choices=BACKENDS, help="all-on only (default: the server's)")
    parser.add_argument("--workspace", type=Path, help="turn workspace context on, this folder")
    parser.add_argument("--settings-json", help="JSON object layered over every config's settings")
    parser.add_argument("--repo-root", type=Path, default=ROOT, help="where the server's code is")
    parser.add_argument("--gguf", type=Path, help="llama-cpp: the model (default: the default's)")
    parser.add_argument("--llama-context", type=int, default=LLAMA_CONTEXT, help="llama-cpp")
    parser.add_argument(
        "--llama-threads", type=int, default=os.cpu_count() or 1, help="llama-cpp (default: all)"
    )
    parser.add_argument(
        "--accept", action="store_true", help="accept suggestions that are the code to type"
    )
    parser.add_argument(
        "--accept-pause-ms", type=float, default=400.0, help="reading a suggestion before Tab"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/keystroke_replay.json")
    )
    args = parser.parse_args(argv)
    unknown = [c for c in args.configs.split(",") if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown configs {unknown}; known: {', '.join(CONFIGS)}")
    if args.regions < 1 or args.keystrokes < args.regions:
        parser.error("need --regions >= 1 and at least one keystroke per region")
    if args.workspace is not None:
        args.workspace = args.workspace.resolve()
    if args.model is not None and Path(args.model).exists():  # the server runs in --repo-root
        args.model = str(Path(args.model).resolve())
    args.repo_root = args.repo_root.resolve()
    if not (args.repo_root / "code_llama_ls").is_dir():
        parser.error(f"--repo-root {args.repo_root} has no code_llama_ls package")
    if args.gguf is not None:
        args.gguf = args.gguf.resolve()
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()
    source = SOURCE.read_text(encoding="utf-8")
    plan = typing_plan(source, args)
    for region in plan:
        print(
            f"region {region.number}: {region.function}, line {region.first_line + 1}, "
            f"{region.lines} lines, {len(region.keystrokes)} keystrokes",
            file=sys.stderr,
        )
    print(
        f"measuring {args.repo_root} @ {code_root(args.repo_root)['git_commit']}", file=sys.stderr
    )
    runs = make_runs(args)
    asyncio.run(run_all(runs, plan, server_flags(args), args))
    print_servers(runs)
    elapsed = time.perf_counter() - began
    result = report(args, source, plan, runs, elapsed)
    print_table({name: c["summary"] for name, c in result["configs"].items()})
    print(f"{elapsed:.0f} s")
    write_results(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
