"""ONNX weights on the CPU: fp32, int8 and int4 (MatMulNBits) exports of the default model.

For each `--variants` export of the offline default model (SmolLM2-135M,
exported once into the cache directory by `onnx_export.export_onnx`):

- size: the bytes of `model.onnx` (and any external data) in its directory;
- RSS: in a fresh process per variant, the resident memory after the
  engine is loaded, and the peak after one `--prompt-tokens` generation;
- speed: in this process, all variants loaded side by side and measured in
  turns (the order rotates each round, so background load falls on all
  alike), `--runs` rounds: cold prefill of `--prompt-tokens` tokens of real
  source, then `--decode-tokens` greedy tokens with no stop id; decode
  ms/token = decode time / (tokens - 1). Medians are reported, with every
  round's values and the load average around it;
- teacher-forced agreement with fp32: code sequences of
  `--agreement-tokens` tokens (HumanEval programs, prompt + canonical
  solution + suffix, and chunks of benchmarks/data/keystroke_replay's
  textwrap.py), fed one token at a time through each variant (the decode
  path: `prefill_logits` reuses the kept cache and computes one position).
  At every position: whether the variant's top token equals fp32's (all
  positions, and those where fp32's top probability is >= 0.5), and whether
  it is the real next token;
- HumanEval-infilling pass@1 of `--humaneval-variants` through the real
  server, as `benchmarks/humaneval_infilling.py` runs it (same problems, same
  splicing and tests), with the time budget off (`--time-budget-ms 0`: a
  completion is not cut short by a slow machine, so the weights alone decide
  what is written). The default model has no infilling tokens: its prompts
  are left to right. Problems are compared in pairs: passed by one variant
  only, and a two-sided sign test on those.

Each server gets `onnxWeights` from a config file (`--config`); the
engine's dtype, from `codeLlama/memory`, is checked against it.

Run from the repository root:

    .venv/bin/python -m benchmarks.onnx_4bit [--variants fp32,int8,int4] [--runs 5]
        [--prompt-tokens 500] [--decode-tokens 64] [--agreement-tokens 256]
        [--agreement-sequences 12] [--humaneval-variants int8,int4]
        [--humaneval-subsets single-line,multi-line] [--humaneval-limit 150] [--seed 0]
        [--skip-agreement] [--skip-humaneval] [--threads N]
        [--out benchmarks/results/onnx_4bit.json]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gzip
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.environment import REPO_ROOT, machine

DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "onnx_4bit.json"
VARIANTS = ("fp32", "int8", "int4")
TEXTWRAP = REPO_ROOT / "benchmarks" / "data" / "keystroke_replay" / "textwrap.py.txt"
HUMANEVAL = REPO_ROOT / "benchmarks" / "data" / "human-eval-infilling"
PACKAGES = ("onnxruntime", "onnx", "onnx-ir", "optimum-onnx", "numpy", "tokenizers")
CONFIDENT = 0.5


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --- exports and engines -----------------------------------------------------------------------


def export(variant: str, model_dir: Path, cache_root: Path) -> dict[str, Any]:
    """Export `variant` once (timed when it was not cached); where it is and its size."""
    from code_llama_ls.engine.onnx_export import (
        export_onnx,
        is_complete,
        onnx_cache_dir,
        read_marker,
    )

    cached = is_complete(onnx_cache_dir(model_dir, cache_root, weights=variant))
    started = time.perf_counter()
    directory = export_onnx(model_dir, cache_root, weights=variant)
    seconds = time.perf_counter() - started
    marker = read_marker(directory)
    size = sum(p.stat().st_size for p in directory.glob("model.onnx*") if p.is_file())
    return {
        "directory": str(directory),
        "cached": cached,
        "export_seconds": marker.get("total_seconds") if cached else round(seconds, 1),
        "model_mb": round(size / 1e6, 1),
        "quantized": marker.get("quantized"),
    }


def load(variant: str, model_dir: Path, cache_root: Path, threads: int | None) -> Any:
    from code_llama_ls.engine.onnx_engine import OnnxEngine

    return OnnxEngine.from_model_dir(
        model_dir, cache_root=cache_root, weights=variant, name=variant, threads=threads
    )


def _proc_status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return math.nan


def rss_child(variant: str, prompt_tokens: int, threads: int | None) -> None:
    """In a fresh process: RSS after loading `variant`, and the peak after one generation."""
    from code_llama_ls.engine.default_model import default_cache_dir, ensure_default_model

    cache_root = default_cache_dir()
    model_dir = ensure_default_model(cache_root)
    before = _proc_status_mib("VmRSS")
    engine = load(variant, model_dir, cache_root, threads)
    loaded = _proc_status_mib("VmRSS")
    generate(engine, source_ids(engine, prompt_tokens), 8)
    result = {
        "rss_before_load_mib": before,
        "rss_after_load_mib": loaded,
        "rss_after_generation_mib": _proc_status_mib("VmRSS"),
        "peak_rss_mib": _proc_status_mib("VmHWM"),
    }
    print(json.dumps(result))


def measure_rss(variant: str, prompt_tokens: int, threads: int | None) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.onnx_4bit", "--rss-child", variant]
    command += ["--prompt-tokens", str(prompt_tokens)]
    if threads is not None:
        command += ["--threads", str(threads)]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- speed -------------------------------------------------------------------------------------


def source_ids(engine: Any, count: int) -> list[int]:
    """`count` ids of textwrap.py (BOS first when the tokenizer has one)."""
    bos = engine.tokenizer.bos_token_id
    text = TEXTWRAP.read_text(encoding="utf-8")
    ids: list[int] = ([] if bos is None else [bos]) + list(engine.tokenizer.encode(text))
    if len(ids) < count:
        raise SystemExit(f"{TEXTWRAP} has only {len(ids)} tokens; ask for fewer")
    return ids[:count]


def generate(engine: Any, prompt: list[int], max_new_tokens: int) -> Any:
    from code_llama_ls.cancel import CancelToken
    from code_llama_ls.engine.base import GenerationParams

    engine.reset_cache()
    result = engine.generate(prompt, GenerationParams(max_new_tokens, frozenset()), CancelToken())
    if len(result.token_ids) != max_new_tokens:
        raise RuntimeError(f"expected {max_new_tokens} tokens, got {len(result.token_ids)}")
    engine.reset_cache()
    return result


def measure_speed(
    engines: dict[str, Any], prompt_tokens: int, decode_tokens: int, runs: int
) -> dict[str, Any]:
    """Rounds of cold prefill + decode per variant, the order rotating each round."""
    names = list(engines)
    prompt = source_ids(engines[names[0]], prompt_tokens)
    for engine in engines.values():  # first-run costs (allocations, pre-packing) are not measured
        generate(engine, prompt[:64], 4)
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for number in range(runs):
        order = names[number % len(names) :] + names[: number % len(names)]
        for name in order:
            load_before = _load_average()[0]
            result = generate(engines[name], prompt, decode_tokens)
            rounds[name].append(
                {
                    "round": number,
                    "prefill_ms": round(result.prefill_ms, 1),
                    "decode_ms_per_token": round(result.decode_ms / (decode_tokens - 1), 2),
                    "load_1min": load_before,
                    "token_ids": list(result.token_ids),
                }
            )
        _progress(f"speed round {number + 1}/{runs} (load {_load_average()[0]})")
    summary: dict[str, Any] = {}
    for name in names:
        values = rounds[name]
        summary[name] = {
            "prefill_ms": round(statistics.median(r["prefill_ms"] for r in values), 1),
            "prefill_tok_s": round(
                prompt_tokens / (statistics.median(r["prefill_ms"] for r in values) / 1000), 1
            ),
            "decode_ms_per_token": round(
                statistics.median(r["decode_ms_per_token"] for r in values), 2
            ),
            "runs": values,
        }
    return summary


# --- teacher-forced agreement ------------------------------------------------------------------


def agreement_sequences(engine: Any, count: int, tokens: int) -> list[tuple[str, list[int]]]:
    """Half HumanEval programs, half chunks of textwrap.py: (name, ids) each, BOS first."""
    bos = engine.tokenizer.bos_token_id
    head = [] if bos is None else [bos]
    chosen: list[tuple[str, list[int]]] = []
    seen: set[str] = set()
    with gzip.open(HUMANEVAL / "HumanEval-SingleLineInfilling.jsonl.gz", "rt") as lines:
        for line in lines:
            record = json.loads(line)
            task = record["task_id"].split("/")[2]  # SingleLineInfilling/HumanEval/N/Lk
            if task in seen:
                continue
            seen.add(task)
            text = record["prompt"] + record["canonical_solution"] + record["suffix"]
            ids = (head + engine.tokenizer.encode(text))[:tokens]
            if len(ids) >= tokens // 2:
                chosen.append((f"HumanEval/{task}", ids))
            if len(chosen) >= count - count // 2:
                break
    source = engine.tokenizer.encode(TEXTWRAP.read_text(encoding="utf-8"))
    step = max(tokens, (len(source) - tokens) // max(1, count // 2))
    for number in range(count // 2):
        start = number * step
        chosen.append((f"textwrap.py@{start}", head + source[start : start + tokens - len(head)]))
    return chosen


def top_tokens(engine: Any, ids: list[int]) -> tuple[list[int], list[float]]:
    """The top token and its probability after ids[:1], ids[:2], ... (teacher forced)."""
    import numpy as np

    engine.reset_cache()
    tops: list[int] = []
    probabilities: list[float] = []
    for end in range(1, len(ids)):
        logits = np.asarray(engine.prefill_logits(ids[:end]), dtype=np.float64)
        top = int(logits.argmax())
        tops.append(top)
        probabilities.append(float(1.0 / np.exp(logits - logits[top]).sum()))
    engine.reset_cache()
    return tops, probabilities


def measure_agreement(
    engines: dict[str, Any], count: int, tokens: int, reference: str = "fp32"
) -> dict[str, Any]:
    names = list(engines)
    sequences = agreement_sequences(engines[names[0]], count, tokens)
    tops: dict[str, list[int]] = {name: [] for name in names}
    reference_p: list[float] = []
    truth: list[int] = []
    for number, (label, ids) in enumerate(sequences, 1):
        truth += ids[1:]
        for name in names:
            found, probabilities = top_tokens(engines[name], ids)
            tops[name] += found
            if name == reference:
                reference_p += probabilities
        _progress(f"agreement {number}/{len(sequences)} ({label}, {len(ids)} tokens)")
    confident = [p >= CONFIDENT for p in reference_p]
    result: dict[str, Any] = {
        "sequences": [label for label, _ in sequences],
        "positions": len(truth),
        "confident_positions": sum(confident),
        "confident_threshold": CONFIDENT,
        "variants": {},
    }
    for name in names:
        same = [a == b for a, b in zip(tops[name], tops[reference], strict=True)]
        hits = [a == b for a, b in zip(tops[name], truth, strict=True)]
        result["variants"][name] = {
            "agreement_with_fp32": round(sum(same) / len(same), 4),
            "agreement_with_fp32_confident": round(
                sum(s for s, c in zip(same, confident, strict=True) if c) / max(1, sum(confident)),
                4,
            ),
            "next_token_accuracy": round(sum(hits) / len(hits), 4),
        }
    return result


# --- HumanEval-infilling through the server ----------------------------------------------------


def run_humaneval(
    weights: str, problems: dict[str, list[Any]], flags: list[str], timeout: float
) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    """humaneval_infilling's server run, with `onnxWeights` set in a config file.

    `codeLlama/memory` is asked once the model has loaded: the engine's
    dtype must be the weights asked for, and its RSS is recorded.
    """
    from benchmarks import humaneval_infilling as he

    seen: dict[str, Any] = {}
    original = he.server_status

    async def status_and_memory(client: Any) -> dict[str, Any]:
        status = await original(client)
        memory = await client.protocol.send_request_async("codeLlama/memory", None)
        seen["memory"] = _plain(memory)
        return status

    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "config.toml"
        config.write_text(f'onnxWeights = "{weights}"\n', encoding="utf-8")
        he.server_status = status_and_memory
        try:
            began = time.perf_counter()
            outcomes, server = asyncio.run(
                he.server_outcomes(problems, [*flags, "--config", str(config)])
            )
        finally:
            he.server_status = original
    memory = seen.get("memory") or {}
    engines = [e for e in memory.get("engines", []) if e.get("role") == "completion"]
    expected = "float32" if weights == "fp32" else weights
    if [e.get("dtype") for e in engines] != [expected]:
        raise RuntimeError(f"the server ran {engines} where {weights} weights were asked for")
    process = memory.get("process", {})
    server |= {
        "engine": engines[0],
        "rss_after_load_mib": round(process.get("rssBytes", math.nan) / 2**20, 1),
        "seconds": round(time.perf_counter() - began, 1),
    }
    he.run_tests([o for found in outcomes.values() for o in found], timeout)
    return outcomes, server


def _plain(value: Any) -> Any:
    """pygls' namedtuples for untyped results, as dicts and lists again."""
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def sign_test(only_a: int, only_b: int) -> float | None:
    """Two-sided exact binomial p-value for discordant pairs (None without any)."""
    n = only_a + only_b
    if n == 0:
        return None
    tail: float = sum(math.comb(n, k) for k in range(min(only_a, only_b) + 1)) / 2**n
    return round(min(1.0, 2.0 * tail), 4)


def compare_pairs(first: list[Any], second: list[Any]) -> dict[str, Any]:
    both = sum(a.passed and b.passed for a, b in zip(first, second, strict=True))
    only_first = sum(a.passed and not b.passed for a, b in zip(first, second, strict=True))
    only_second = sum(b.passed and not a.passed for a, b in zip(first, second, strict=True))
    same_text = sum(a.text == b.text for a, b in zip(first, second, strict=True))
    return {
        "both_passed": both,
        "only_first_passed": only_first,
        "only_second_passed": only_second,
        "sign_test_p": sign_test(only_first, only_second),
        "identical_completions": same_text,
    }


def measure_humaneval(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks import humaneval_infilling as he

    subsets = args.humaneval_subsets.split(",")
    problems = {s: he.load_problems(s, args.humaneval_limit, args.seed) for s in subsets}
    flags = ["--log-level", "warning", "--backend", "onnx", "--time-budget-ms", "0"]
    names = args.humaneval_variants.split(",")
    outcomes: dict[str, dict[str, list[Any]]] = {}
    result: dict[str, Any] = {"subsets": subsets, "server_flags": flags, "variants": {}}
    for name in names:
        _progress(f"HumanEval-infilling through the server, {name} weights")
        found, server = run_humaneval(name, problems, flags, args.timeout)
        outcomes[name] = found
        everything = [o for s in subsets for o in found[s]]
        result["variants"][name] = {
            "server": server,
            "all": he.summary(everything),
            "subsets": {s: he.summary(found[s]) for s in subsets},
            "problems": {s: [o.to_json() for o in found[s]] for s in subsets},
        }
    if len(names) == 2:
        first, second = ([o for s in subsets for o in outcomes[n][s]] for n in names)
        result["pairs"] = {"first": names[0], "second": names[1], **compare_pairs(first, second)}
    return result


# --- the report --------------------------------------------------------------------------------


def print_table(report: dict[str, Any]) -> None:
    variants = report["variants"]
    agreement = report.get("agreement", {}).get("variants", {})
    humaneval = report.get("humaneval", {}).get("variants", {})
    print(
        f"{'weights':<8} {'file MB':>8} {'RSS MiB':>8} {'prefill ms':>11} {'decode ms/tok':>14} "
        f"{'agree fp32':>11} {'(confident)':>12} {'next-token':>11} {'pass@1':>8}"
    )
    for name, v in variants.items():
        a = agreement.get(name, {})
        h = humaneval.get(name, {}).get("all", {})
        rss = v.get("rss", {}).get("rss_after_load_mib", math.nan)
        speed = v.get("speed", {})
        print(
            f"{name:<8} {v['export']['model_mb']:>8.1f} {rss:>8.1f} "
            f"{speed.get('prefill_ms', math.nan):>11.1f} "
            f"{speed.get('decode_ms_per_token', math.nan):>14.2f} "
            f"{a.get('agreement_with_fp32', math.nan):>11.4f} "
            f"{a.get('agreement_with_fp32_confident', math.nan):>12.4f} "
            f"{a.get('next_token_accuracy', math.nan):>11.4f} "
            f"{h.get('pass@1', math.nan) if h else math.nan:>7}%"
        )
    pairs = report.get("humaneval", {}).get("pairs")
    if pairs:
        print(
            f"HumanEval pairs: both {pairs['both_passed']}, only {pairs['first']} "
            f"{pairs['only_first_passed']}, only {pairs['second']} {pairs['only_second_passed']} "
            f"(sign test p={pairs['sign_test_p']}), identical completions "
            f"{pairs['identical_completions']}"
        )
    print(f"load average: {report['load_average']}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--prompt-tokens", type=int, default=500)
    parser.add_argument("--decode-tokens", type=int, default=64)
    parser.add_argument("--agreement-tokens", type=int, default=256)
    parser.add_argument("--agreement-sequences", type=int, default=12)
    parser.add_argument("--humaneval-variants", default="int8,int4")
    parser.add_argument("--humaneval-subsets", default="single-line,multi-line")
    parser.add_argument("--humaneval-limit", type=int, default=150, help="problems per subset")
    parser.add_argument("--seed", type=int, default=0, help="draws the HumanEval problems")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per test program")
    parser.add_argument("--skip-agreement", action="store_true")
    parser.add_argument("--skip-humaneval", action="store_true")
    parser.add_argument("--threads", type=int, help="ONNX Runtime threads (default: cores)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--rss-child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = set(args.variants.split(",")) - set(VARIANTS)
    if unknown or "fp32" not in args.variants.split(","):
        parser.error(f"--variants: fp32 (the reference) and any of {', '.join(VARIANTS)}")
    if args.decode_tokens < 2:
        parser.error("--decode-tokens must be at least 2")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(raw)
    if args.rss_child:
        rss_child(args.rss_child, args.prompt_tokens, args.threads)
        return 0
    from code_llama_ls.engine.default_model import (
        DEFAULT_MODEL_NAME,
        default_cache_dir,
        ensure_default_model,
    )

    began = time.perf_counter()
    loads = {"start": _load_average()}
    cache_root = default_cache_dir()
    model_dir = ensure_default_model(cache_root)
    names = args.variants.split(",")
    variants: dict[str, dict[str, Any]] = {}
    report: dict[str, Any] = {
        "benchmark": "onnx_4bit",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(PACKAGES),
        "model": DEFAULT_MODEL_NAME,
        "parameters": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "int4": _int4_parameters(),
        "load_average": loads,
        "variants": variants,
    }

    def save() -> None:  # after each part, so that a later failure keeps the earlier ones
        report["seconds"] = round(time.perf_counter() - began, 1)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")

    for name in names:
        _progress(f"exporting {name}")
        variants[name] = {"export": export(name, model_dir, cache_root)}
    for name in names:
        _progress(f"RSS of {name}")
        variants[name]["rss"] = measure_rss(name, args.prompt_tokens, args.threads)
    engines = {name: load(name, model_dir, cache_root, args.threads) for name in names}
    speed = measure_speed(engines, args.prompt_tokens, args.decode_tokens, args.runs)
    for name in names:
        variants[name]["speed"] = speed[name]
    loads["after_speed"] = _load_average()
    save()
    if not args.skip_agreement:
        report["agreement"] = measure_agreement(
            engines, args.agreement_sequences, args.agreement_tokens
        )
        loads["after_agreement"] = _load_average()
    del engines
    save()
    if not args.skip_humaneval:
        report["humaneval"] = measure_humaneval(args)
        loads["after_humaneval"] = _load_average()
    save()
    print_table(report)
    print(f"wrote {args.out}")
    return 0


def _int4_parameters() -> dict[str, Any]:
    from code_llama_ls.engine import onnx_export

    return {
        "block_size": onnx_export.INT4_BLOCK_SIZE,
        "symmetric": onnx_export.INT4_SYMMETRIC,
        "accuracy_level": onnx_export.INT4_ACCURACY_LEVEL,
        "lm_head_bits": onnx_export.INT4_LM_HEAD_BITS,
    }


if __name__ == "__main__":
    sys.exit(main())
