"""Prompt building on the request path, for one tree or a before/after pair of trees.

`prepare_prompt` (classify, budget, context, local window, layout; no model)
on the offline default model's real tokenizer (SmolLM2, converted into the
cache by an earlier run of the server), at `--positions` cursor positions
spread over benchmarks/data/keystroke_replay's textwrap.py, with a
`--budget`-token prompt: the file alone ("local"), and with the workspace
context of the tree's own `code_llama_ls/` folder plus the file ("context").
Each position is built `--rounds` times: the first build (cold) and the
median of the rest (warm: as while the user types) are kept; the table has
their medians and the warm 90th percentile. With `--repo-root` given more
than once, each tree runs in its own process, in turns, `--runs` times (the
load of a busy machine falls on all alike), and the medians over the runs
are reported.

Run from the repository root:

    .venv/bin/python -m benchmarks.prompt_build [--repo-root DIR ...] [--runs 6]
        [--positions 40] [--rounds 5] [--budget 2048] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from benchmarks.environment import machine, write_results

T = TypeVar("T")
SOURCE = Path(__file__).parent / "data" / "keystroke_replay" / "textwrap.py.txt"


def cursor_offsets(text: str, positions: int) -> list[int]:
    """`positions` line ends spread evenly over `text`."""
    return [text.rfind("\n", 0, len(text) * (i + 1) // (positions + 1)) for i in range(positions)]


def time_builds(
    build: Callable[[int], T], offsets: Sequence[int], rounds: int
) -> tuple[list[float], list[float], list[T]]:
    """Per offset, `build` run `rounds` times: the first run's ms (cold), the median of the
    others (warm), and the last result."""
    cold: list[float] = []
    warm: list[float] = []
    results: list[T] = []
    for offset in offsets:
        times = []
        for _ in range(rounds):
            began = time.perf_counter()
            result = build(offset)
            times.append((time.perf_counter() - began) * 1000)
        cold.append(times[0])
        warm.append(statistics.median(times[1:]))
        results.append(result)
    return cold, warm, results


def measure(root: Path, positions: int, rounds: int, budget: int) -> dict[str, Any]:
    """One run in this process, on the code of `root` (already first on sys.path)."""
    import tempfile

    from code_llama_ls.context.builder import ContextBuilder
    from code_llama_ls.context.index import WorkspaceIndex
    from code_llama_ls.engine.default_model import converted_dir, default_cache_dir
    from code_llama_ls.engine.tokenizer_files import load_tokenizer
    from code_llama_ls.pipeline.complete import prepare_prompt
    from code_llama_ls.pipeline.request import CompletionOptions, CompletionRequest
    from code_llama_ls.text.documents import DocumentStore
    from tests.tiny_models import TokenizerOnlyEngine

    tok = load_tokenizer(converted_dir(default_cache_dir()))
    text = SOURCE.read_text()
    workspace = Path(tempfile.mkdtemp())
    (workspace / "textwrap.py").write_text(text)
    index = WorkspaceIndex()
    index.index_root(root / "code_llama_ls")
    index.index_root(workspace)
    builder = ContextBuilder(index)
    snapshot = DocumentStore().open((workspace / "textwrap.py").as_uri(), "python", 1, text)
    engine = TokenizerOnlyEngine(tok)
    offsets = cursor_offsets(text, positions)
    result: dict[str, Any] = {}
    for with_context in (False, True):
        # The options' defaults: the layout each tree takes by itself.
        options = CompletionOptions(
            max_new_tokens=64, context_tokens=budget + 64, workspace_context=with_context
        )
        context = builder if with_context else None

        def build(offset: int, options: Any = options, context: Any = context) -> object:
            request = CompletionRequest(snapshot, offset, options)
            return prepare_prompt(request, engine, context)  # type: ignore[arg-type]

        cold, warm, _ = time_builds(build, offsets, rounds)
        warm.sort()
        result["context" if with_context else "local"] = {
            "cold_ms_median": statistics.median(cold),
            "warm_ms_median": statistics.median(warm),
            "warm_ms_p90": warm[int(len(warm) * 0.9)],
        }
    return result


def _run_in(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    # This file, loaded by path: the tree measured may have no copy of it.
    code = (
        "import importlib.util, json; from pathlib import Path; "
        f"spec = importlib.util.spec_from_file_location('prompt_build', {__file__!r}); "
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
        f"print(json.dumps(module.measure(Path({str(root)!r}), {args.positions}, "
        f"{args.rounds}, {args.budget})))"
    )
    env_path = str(root)
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo-root", type=Path, action="append")
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--positions", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=2048)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    roots = [root.resolve() for root in args.repo_root or [Path(__file__).resolve().parent.parent]]
    runs: dict[str, list[dict[str, Any]]] = {str(root): [] for root in roots}
    for _ in range(args.runs):
        for root in roots:
            runs[str(root)].append(_run_in(root, args))
    summary: dict[str, Any] = {}
    print(f"{'tree':<28}{'part':<9}{'cold ms':>9}{'warm ms':>9}{'warm p90':>10}")
    for root, measured in runs.items():
        summary[root] = {}
        for part in ("local", "context"):
            row = {
                key: round(statistics.median(run[part][key] for run in measured), 2)
                for key in ("cold_ms_median", "warm_ms_median", "warm_ms_p90")
            }
            summary[root][part] = row
            print(
                f"{root[-28:]:<28}{part:<9}{row['cold_ms_median']:>9}"
                f"{row['warm_ms_median']:>9}{row['warm_ms_p90']:>10}"
            )
    if args.out is not None:
        write_results(
            args.out,
            {
                "benchmark": "prompt_build",
                "machine": machine(("tokenizers",)),
                "settings": {k: v for k, v in vars(args).items() if k not in ("out", "repo_root")},
                "trees": {root: _revision(Path(root)) for root in runs},
                "summary": summary,
                "runs": runs,
            },
        )


def _revision(root: Path) -> str | None:
    done = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or None


if __name__ == "__main__":
    main()
