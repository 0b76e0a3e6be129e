"""What alternative suggestions cost: an invoked completion with 1 and with N candidates.

The offline default model fills `--places` holes in CPython's `textwrap.py`
(the keystroke replay's file: the first statement lines inside function
bodies, each removed but for its indentation), through the pipeline the server
runs (`pipeline.complete`, no time budget, `--max-new-tokens`), once per
backend and way of writing the alternatives:

- `onnx`: ONNX Runtime (the CPU default), alternatives one after the other;
- `torch, one by one`: transformers on the CPU, alternatives one after the other;
- `torch, one batch`: the same engine, alternatives as one batch
  (`engine/branches.py`).

Per place and row: the completion with `candidates` 1 (the best alone),
then with `--candidates`; reported are the medians of the whole request's
time for each, of the alternatives stage alone (`alternatives_ms`), and how
many distinct alternatives came. The prompt's keys/values are kept between
the two requests at a place, as the server keeps them between keystrokes.
`--repeats` passes over the places; rows alternate within a pass.

    python -m benchmarks.alternatives [--places 12] [--candidates 3] [--repeats 2]
        [--max-new-tokens 48] [--out benchmarks/results/alternatives.json]
"""

from __future__ import annotations

import argparse
import ast
import datetime
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.environment import machine, write_results
from benchmarks.keystroke_replay import SOURCE, function_body_lines
from code_llama_ls.cancel import CancelToken
from code_llama_ls.engine.base import Engine
from code_llama_ls.engine.loading import load_engine
from code_llama_ls.pipeline.complete import complete
from code_llama_ls.pipeline.request import CompletionOptions, CompletionRequest
from code_llama_ls.text.documents import DocumentStore

ROWS = ("onnx", "torch, one by one", "torch, one batch")


def holes(source: str, count: int) -> list[tuple[str, int]]:
    """The first `count` statement lines inside function bodies, each removed but for its
    indentation: (the document without it, the cursor after the indentation)."""
    _, starts = function_body_lines(ast.parse(source))
    lines = source.split("\n")
    found = []
    for number in sorted(starts)[:count]:
        line = lines[number - 1]
        indent = line[: len(line) - len(line.lstrip())]
        before = "\n".join(lines[: number - 1]) + "\n" + indent
        found.append((before + "\n" + "\n".join(lines[number:]), len(before)))
    return found


def timed(engine: Engine, request: CompletionRequest) -> tuple[float, float | None, int]:
    """(whole request ms, alternatives stage ms or None, alternatives found)."""
    began = time.perf_counter()
    done = complete(request, engine, CancelToken())
    whole = (time.perf_counter() - began) * 1000
    return whole, done.timings_ms.get("alternatives_ms"), len(done.alternatives)


def run(args: argparse.Namespace) -> dict[str, Any]:
    source = SOURCE.read_text(encoding="utf-8")
    options = CompletionOptions(
        max_new_tokens=args.max_new_tokens,
        time_budget_ms=0,
        context_tokens=args.prompt_tokens + args.max_new_tokens,
    )
    engines = {
        "onnx": load_engine(None, backend="onnx", device="cpu"),
        "torch": load_engine(None, backend="transformers", device="cpu"),
    }
    samples: dict[str, list[tuple[float, float, float | None, int]]] = {row: [] for row in ROWS}
    for _ in range(args.repeats):
        for text, offset in holes(source, args.places):
            snapshot = DocumentStore().open("file:///bench/textwrap.py", "python", 1, text)
            for row in ROWS:
                engine = engines["onnx" if row == "onnx" else "torch"]
                if row != "onnx":
                    # The batch's switch: one by one is what the engine falls back to.
                    engine._batch_unsupported = row == "torch, one by one"  # type: ignore[attr-defined]
                one = CompletionRequest(snapshot, offset, options, candidates=1)
                many = CompletionRequest(snapshot, offset, options, candidates=args.candidates)
                alone, _, _ = timed(engine, one)
                whole, stage, found = timed(engine, many)
                samples[row].append((alone, whole, stage, found))
    summary = {row: summarize(values) for row, values in samples.items()}
    return {
        "benchmark": "alternatives",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(("torch", "transformers", "onnxruntime")),
        "parameters": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "summary": summary,
        "samples": {row: [list(s) for s in values] for row, values in samples.items()},
    }


def summarize(values: Sequence[tuple[float, float, float | None, int]]) -> dict[str, Any]:
    stages = [stage for _, _, stage, _ in values if stage is not None]
    return {
        "requests": len(values),
        "alone_p50_ms": round(statistics.median(v[0] for v in values), 1),
        "with_alternatives_p50_ms": round(statistics.median(v[1] for v in values), 1),
        "alternatives_stage_p50_ms": round(statistics.median(stages), 1) if stages else None,
        "alternatives_found": sum(v[3] for v in values),
    }


def print_table(summary: dict[str, dict[str, Any]], candidates: int) -> None:
    print(
        f"{'row':<20} {'n':>3} {'alone p50':>10} {f'{candidates} cands p50':>13} "
        f"{'stage p50':>10} {'found':>6}"
    )
    for row, s in summary.items():
        stage = s["alternatives_stage_p50_ms"]
        print(
            f"{row:<20} {s['requests']:>3} {s['alone_p50_ms']:>10.0f} "
            f"{s['with_alternatives_p50_ms']:>13.0f} "
            f"{'n/a' if stage is None else f'{stage:.0f}':>10} {s['alternatives_found']:>6}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--places", type=int, default=12)
    parser.add_argument("--candidates", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--prompt-tokens", type=int, default=1024)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/alternatives.json"))
    args = parser.parse_args(argv)
    result = run(args)
    print_table(result["summary"], args.candidates)
    write_results(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
