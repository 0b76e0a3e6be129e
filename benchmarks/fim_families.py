"""Prompt building per FIM family, and the ONNX export of each family's architecture.

No real weights of StarCoder2, DeepSeek-Coder, Qwen2.5-Coder or CodeGemma can
be reached from this machine, so this measures what can be measured without
them, on the look-alike tokenizers and tiny random-init models that the
tests build (`tests/fim_families.py`: each family's pre-tokenization, special
tokens and BOS rule, a vocabulary of ~800 entries):

- prompt build: `prepare_prompt` (classify, budget, local window, FIM
  layout; no workspace context) at `--positions` cursor positions spread
  over benchmarks/data/keystroke_replay's textwrap.py (about 19k characters),
  with a `--budget`-token prompt; each position built `--rounds` times, the
  first build (cold piece caches) and the median of the rest (warm: the
  pieces are cached as they are while the user types) reported per family.
  Code Llama's tiny tokenizer and the default model's real tokenizer
  (SmolLM2, left-to-right) are measured alongside;
- ONNX export: each family's tiny model exported by the backend's own path
  (`load_engine(..., backend="onnx")`: optimum's export, the graph rewrites,
  int8 or fp32 weights, ONNX Runtime's optimization), timed from a cold
  cache, with the size of the directory written.

Run from the repository root:

    .venv/bin/python -m benchmarks.fim_families [--positions 40] [--rounds 5]
        [--budget 2048] [--out benchmarks/results/issue-22/fim_families.json]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.environment import machine, write_results
from benchmarks.prompt_build import cursor_offsets, time_builds
from code_llama_ls.engine.tokenizer_files import load_tokenizer
from code_llama_ls.pipeline.complete import PreparedPrompt, prepare_prompt
from code_llama_ls.pipeline.fim import FimMode, FimTokens
from code_llama_ls.pipeline.request import CompletionOptions, CompletionRequest
from code_llama_ls.text.documents import DocumentStore
from code_llama_ls.tokens.tokenizer import TokenizerLike
from tests.fim_families import FAMILY_KEYS, build_family_model, build_family_tokenizer
from tests.tiny_models import TokenizerOnlyEngine, build_code_llama_tokenizer

SOURCE = Path(__file__).parent / "data" / "keystroke_replay" / "textwrap.py.txt"


def _tokenizers(root: Path) -> dict[str, TokenizerLike]:
    from code_llama_ls.engine.default_model import converted_dir, default_cache_dir

    found: dict[str, TokenizerLike] = {
        "code-llama (tiny)": load_tokenizer(build_code_llama_tokenizer(root / "code-llama"))
    }
    for family in FAMILY_KEYS:
        found[family] = load_tokenizer(build_family_tokenizer(family, root / family))
    smollm2 = converted_dir(default_cache_dir())
    if (smollm2 / "tokenizer.json").is_file():
        found["smollm2 (default, real)"] = load_tokenizer(smollm2)
    return found


def _prompt_builds(
    tok: TokenizerLike, text: str, positions: int, rounds: int, budget: int
) -> dict[str, Any]:
    snapshot = DocumentStore().open("file:///bench/textwrap.py", "python", 1, text)
    engine = TokenizerOnlyEngine(tok)
    options = CompletionOptions(FimMode.AUTO, 64, budget + 64, workspace_context=False)

    def build(offset: int) -> PreparedPrompt:
        return prepare_prompt(CompletionRequest(snapshot, offset, options), engine)  # type: ignore[arg-type]

    cold, warm, built = time_builds(build, cursor_offsets(text, positions), rounds)
    tokens = [len(prepared.prompt.ids) for prepared in built if prepared.prompt is not None]
    fim = FimTokens.from_tokenizer(tok)
    return {
        "format": "left-to-right" if fim is None else f"{fim.family.key} {fim.mode(FimMode.AUTO)}",
        "positions": positions,
        "prompt_tokens_median": statistics.median(tokens) if tokens else 0,
        "cold_ms_median": round(statistics.median(cold), 2),
        "warm_ms_median": round(statistics.median(warm), 2),
        "warm_ms_max": round(max(warm), 2),
    }


def _onnx_exports(root: Path) -> dict[str, Any]:
    from code_llama_ls.engine.loading import load_engine

    results: dict[str, Any] = {}
    for family in FAMILY_KEYS:
        model = build_family_model(family, root / f"{family}-model", root / family)
        for weights in ("fp32", "int8"):
            cache = root / f"cache-{family}-{weights}"
            began = time.perf_counter()
            load_engine(str(model), backend="onnx", cache_dir=cache, onnx_weights=weights)
            seconds = time.perf_counter() - began
            onnx_dirs = [p for p in (cache / "onnx").iterdir() if p.is_dir()]
            size = sum(f.stat().st_size for d in onnx_dirs for f in d.rglob("*") if f.is_file())
            results[f"{family} {weights}"] = {
                "export_and_load_s": round(seconds, 2),
                "bytes": size,
            }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--positions", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=2048)
    parser.add_argument("--skip-onnx", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    text = SOURCE.read_text()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        builds = {
            name: _prompt_builds(tok, text, args.positions, args.rounds, args.budget)
            for name, tok in _tokenizers(root).items()
        }
        exports = {} if args.skip_onnx else _onnx_exports(root)
    print(f"prompt build, {args.budget}-token budget, {args.positions} positions of textwrap.py")
    print(f"{'tokenizer':<26}{'format':<24}{'tokens':>7}{'cold ms':>9}{'warm ms':>9}{'max':>7}")
    for name, row in builds.items():
        print(
            f"{name:<26}{row['format']:<24}{row['prompt_tokens_median']:>7}"
            f"{row['cold_ms_median']:>9}{row['warm_ms_median']:>9}{row['warm_ms_max']:>7}"
        )
    if exports:
        print("\nONNX export of each family's tiny model (cold cache)")
        for name, row in exports.items():
            print(f"{name:<24}{row['export_and_load_s']:>8} s{row['bytes'] / 1e6:>9.2f} MB")
    result = {
        "benchmark": "fim_families",
        "machine": machine(("tokenizers", "transformers", "optimum-onnx", "onnxruntime")),
        "settings": vars(args) | {"out": str(args.out) if args.out else None},
        "prompt_build": builds,
        "onnx_export": exports,
        "real_weights": "not reachable from this machine: no pass@1 per family measured",
    }
    if args.out is not None:
        write_results(args.out, result)


if __name__ == "__main__":
    main()
