"""The ONNX Runtime backend: an exported causal LM (int8, int4 or fp32) on the CPU.

The model is exported once (`onnx_export.py`) and run with ONNX Runtime's
CPU provider. Decoding is the shared greedy loop (`greedy.py`) over a
`KvModel` whose cache is the list of past key/value arrays: each step feeds
them as `past_key_values.N.key/value` and gets the grown cache back as
`present.N.key/value`. Arrays are never changed in place, so cropping a kept
cache for prefix reuse (`prefix_cache.py`) is a slice.

onnxruntime and numpy are imported when an engine is made, not when this
module is; transformers and torch never are (the tokenizer is read from its
files, `tokenizer_files.py`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from code_llama_ls.engine.base import (
    ProgressCallback,
)
from code_llama_ls.engine.greedy import KvEngine
from code_llama_ls.engine.model_files import check_model_dir
from code_llama_ls.engine.onnx_export import (
    DEFAULT_WEIGHTS,
    MODEL_FILE,
    export_onnx,
    read_marker,
)
from code_llama_ls.engine.prefix_cache import DEFAULT_BUDGET_MIB, DEFAULT_ENTRIES, MIB
from code_llama_ls.engine.tokenizer_files import FileTokenizer, context_length_from, read_json
from code_llama_ls.errors import GenerationError, ModelLoadError

if TYPE_CHECKING:
    import numpy as np
    import onnxruntime as ort  # type: ignore[import-untyped]
    from numpy.typing import NDArray

    from code_llama_ls.tokens.tokenizer import TokenizerLike

KvArrays: TypeAlias = "list[NDArray[Any]]"
"""One cache: past keys and values in the graph's input order, each [1, heads, length, dim]."""

_PAST_PREFIX = "past_key_values."
_PRESENT_PREFIX = "present."
_ONNX_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16"}


class OnnxKvModel:
    """Forward steps of an exported decoder with past key values (`KvModel[KvArrays, NDArray]`)."""

    def __init__(self, session: ort.InferenceSession, name: str) -> None:
        """Read the graph's inputs: ids, optional mask and positions, past keys/values."""
        import numpy as np

        self._session = session
        self._name = name
        inputs = session.get_inputs()
        self._inputs = {i.name for i in inputs}
        past = [i for i in inputs if i.name.startswith(_PAST_PREFIX)]
        if "input_ids" not in self._inputs or not past:
            raise ModelLoadError(
                f"{name}: the ONNX graph has no input_ids or past_key_values inputs; "
                "it was not exported with past key values (text-generation-with-past)."
            )
        outputs = {o.name for o in session.get_outputs()}
        self._past_names = [i.name for i in past]
        self._present_names = [
            _PRESENT_PREFIX + n.removeprefix(_PAST_PREFIX) for n in self._past_names
        ]
        missing = [n for n in ["logits", *self._present_names] if n not in outputs]
        if missing:
            raise ModelLoadError(f"{name}: the ONNX graph lacks outputs {missing[:3]}.")
        # A prefill's activations leave ONNX Runtime's arena when the run ends.
        self._shrink_arena = ort_run_options(shrink_arena=True)
        self._empty = [
            np.zeros((1, _dim(i.shape, 1), 0, _dim(i.shape, 3)), dtype=_numpy_dtype(i.type))
            for i in past
        ]

    def empty_cache(self) -> KvArrays:
        """Arrays of length 0 (never written to, so they are shared)."""
        return list(self._empty)

    def crop(self, cache: KvArrays, length: int) -> KvArrays:
        """Views of the first `length` positions (arrays are never changed in place)."""
        return [array[:, :, :length, :] for array in cache]

    def forward(self, cache: KvArrays, ids: list[int], start: int) -> tuple[KvArrays, int]:
        """Feed `ids` at positions start..; the grown cache and the argmax of the last logits."""
        present, logits = self.logits(cache, ids, start)
        return present, int(logits.argmax())

    def logits(self, cache: KvArrays, ids: list[int], start: int) -> tuple[KvArrays, NDArray[Any]]:
        """The cache holding `ids` too and the last position's logits ([vocab]).

        The grown keys/values are written by ONNX Runtime straight into numpy
        arrays (an I/O binding), not into its arena: a cache the prefix LRU
        evicts is then really freed, and the arena holds only a run's
        activations, which it gives back after a prefill.
        """
        import numpy as np

        total = start + len(ids)
        binding = self._session.io_binding()
        binding.bind_cpu_input("input_ids", np.asarray([ids], dtype=np.int64))
        if "attention_mask" in self._inputs:
            binding.bind_cpu_input("attention_mask", np.ones((1, total), dtype=np.int64))
        if "position_ids" in self._inputs:
            positions = np.arange(start, total, dtype=np.int64)[None, :]
            binding.bind_cpu_input("position_ids", positions)
        binding.bind_output("logits", "cpu")  # first: outputs come back in binding order
        present: KvArrays = []
        for name, past, present_name, empty in zip(
            self._past_names, cache, self._present_names, self._empty, strict=True
        ):
            binding.bind_cpu_input(name, np.ascontiguousarray(past))
            grown = np.empty((1, empty.shape[1], total, empty.shape[3]), dtype=empty.dtype)
            binding.bind_output(
                present_name, "cpu", 0, grown.dtype, list(grown.shape), grown.ctypes.data
            )
            present.append(grown)
        try:
            self._session.run_with_iobinding(binding, self._shrink_arena if len(ids) > 1 else None)
            logits: NDArray[Any] = binding.copy_outputs_to_cpu()[0][0, -1]
        except Exception as exc:
            raise _generation_error(self._name, exc, total) from exc
        return present, logits


class OnnxEngine(KvEngine["KvArrays", "NDArray[Any]"]):
    """An exported causal LM run by ONNX Runtime on the CPU, generating greedily."""

    def __init__(
        self,
        session: ort.InferenceSession,
        tokenizer: TokenizerLike,
        *,
        name: str,
        context_length: int,
        dtype: str,
        prefix_cache_entries: int = DEFAULT_ENTRIES,
        prefix_cache_bytes: int | None = DEFAULT_BUDGET_MIB * MIB,
    ) -> None:
        """Wrap an open `session` of an exported decoder (see `from_model_dir`)."""
        self._onnx = OnnxKvModel(session, name)
        self.device = "cpu"
        self.dtype = dtype
        super().__init__(
            self._onnx,
            tokenizer,
            name=name,
            context_length=context_length,
            prefix_cache_entries=prefix_cache_entries,
            prefix_cache_bytes=prefix_cache_bytes,
        )

    @classmethod
    def from_model_dir(
        cls,
        model_dir: Path,
        *,
        cache_root: Path,
        weights: str = DEFAULT_WEIGHTS,
        name: str | None = None,
        prefix_cache_entries: int = DEFAULT_ENTRIES,
        prefix_cache_bytes: int | None = DEFAULT_BUDGET_MIB * MIB,
        on_progress: ProgressCallback | None = None,
        threads: int | None = None,
        on_exported: Callable[[Path], object] | None = None,
        decoding_tokenizer: bool = False,
    ) -> OnnxEngine:
        """Export `model_dir` (safetensors) once into `cache_root`, then open it.

        `weights`: "int8" (faster on a CPU), "int4" or "fp32". `threads`: ONNX
        Runtime's intra-op threads (default: the physical cores available).
        `on_exported` hears the export's directory (its tokenizer files are
        ready to read there) before the session opens. `decoding_tokenizer`: prompts
        come as ids (the model host): see `FileTokenizer`'s `decoding`.
        """
        check_model_dir(model_dir)
        label = name or model_dir.name
        onnx_dir = export_onnx(model_dir, cache_root, weights=weights, on_progress=on_progress)
        if on_exported is not None:
            on_exported(onnx_dir)
        report = on_progress or _ignore_progress
        report(f"loading {label} (ONNX Runtime)", None)
        # The tokenizer is read (from its files: no transformers, nor torch, on
        # this path) while ONNX Runtime, which lets go of the GIL for part of
        # it, opens the session: 0.40 s for both instead of 0.46.
        marker = read_marker(onnx_dir)
        with ThreadPoolExecutor(1, thread_name_prefix="tokenizer") as reader:
            reading = reader.submit(FileTokenizer, onnx_dir, decoding=decoding_tokenizer)
            session = open_session(
                onnx_dir / MODEL_FILE,
                threads=threads,
                optimized=bool(marker.get("runtime_optimized")),
            )
            tokenizer = reading.result()
        quantized = marker.get("quantized")
        return cls(
            session,
            tokenizer,
            name=label,
            context_length=context_length_from(read_json(onnx_dir / "config.json"), tokenizer),
            dtype=str(quantized) if quantized else "float32",
            prefix_cache_entries=prefix_cache_entries,
            prefix_cache_bytes=prefix_cache_bytes,
        )


def open_session(
    model_path: Path, *, threads: int | None = None, optimized: bool = False
) -> ort.InferenceSession:
    """An ONNX Runtime CPU session; ModelLoadError on failure.

    `optimized`: the graph was saved optimized (`onnx_export.optimize_for_runtime`),
    so it opens with no optimization pass: 170 ms instead of 290-370 here
    (SmolLM2-135M int8), decoding as fast and to the same tokens. Otherwise
    every optimization runs at load.
    """
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ModelLoadError(
            f"The onnx backend needs onnxruntime ({exc}): run `pip install onnxruntime`, "
            'or set backend to "transformers".'
        ) from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads if threads is not None else physical_cores()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        if optimized
        else ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    )
    options.log_severity_level = 3  # errors only: no warnings about unused initializers
    # Idle intra-op threads sleep instead of spinning: the editor, the parser and
    # the context engine share these cores. With one other busy process on 2
    # cores, spinning made int8 decode 1.7x (short context) to 2x (1,000 tokens) slower.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(
            str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        raise ModelLoadError(
            f"ONNX Runtime could not open {model_path}: {_first_line(exc)}. Delete "
            f"{model_path.parent} to export the model again."
        ) from exc


def ort_run_options(*, shrink_arena: bool) -> ort.RunOptions:
    """ONNX Runtime run options; `shrink_arena`: give unused arena memory back after the run."""
    import onnxruntime as ort

    options = ort.RunOptions()
    if shrink_arena:
        options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return options


def physical_cores() -> int:
    """Physical CPU cores this process may run on (SMT siblings counted once)."""
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    available = len(allowed) or os.cpu_count() or 1
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return available
    cores: set[tuple[str, str]] = set()
    for block in text.split("\n\n"):
        fields = dict(_cpuinfo_field(line) for line in block.splitlines() if ":" in line)
        processor = fields.get("processor", "")
        if "core id" in fields and (not allowed or int(processor or -1) in allowed):
            cores.add((fields.get("physical id", ""), fields["core id"]))
    return max(1, min(available, len(cores))) if cores else available


def _cpuinfo_field(line: str) -> tuple[str, str]:
    key, _, value = line.partition(":")
    return key.strip(), value.strip()


def _dim(shape: Sequence[Any], axis: int) -> int:
    value = shape[axis]
    if not isinstance(value, int):
        raise ModelLoadError(f"The ONNX graph's past key/value axis {axis} is dynamic ({value}).")
    return value


def _numpy_dtype(onnx_type: str) -> np.dtype[Any]:
    import numpy as np

    name = _ONNX_DTYPES.get(onnx_type)
    if name is None:
        raise ModelLoadError(f"Unsupported ONNX past key/value type {onnx_type}.")
    return np.dtype(name)


def _generation_error(name: str, exc: Exception, tokens: int) -> GenerationError:
    text = str(exc)
    if isinstance(exc, MemoryError) or "bad_alloc" in text or "out of memory" in text.lower():
        return GenerationError(
            f"Out of memory while running {name} on cpu ({tokens} tokens fed). Use a smaller "
            "model or a shorter context (fewer prompt tokens or max new tokens)."
        )
    return GenerationError(f"{name} failed while generating (ONNX Runtime): {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _ignore_progress(message: str, fraction: float | None) -> None:
    del message, fraction
