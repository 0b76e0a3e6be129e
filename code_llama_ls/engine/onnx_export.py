"""Export a transformers causal LM to ONNX once, for the ONNX Runtime backend.

The export (optimum's exporter, task `text-generation-with-past`: the graph
takes `past_key_values.N.key/value` and returns `present.N.key/value`) is
cached under `cache_root/onnx/`, in a directory named after the model and a
digest of everything that changes its result: the model's config, its weight
and tokenizer files (sizes and modification times), the versions of the
exporting packages, this module's export format, and the weights (int8,
int4 or fp32; their directories coexist). It is written under a temporary
name and renamed when complete, with a marker file written last, so an
interrupted export is never used.

What differs from a plain export:

- Llama models are traced with `grouped_attention`: query heads that share
  a key/value head are multiplied with it directly, where transformers'
  attention repeats the keys/values (a copy of the whole cache per step in
  the graph).
- The prefill computes logits for the last position only: the hidden states
  that enter the lm_head MatMul are sliced to the last position. A
  1,000-token prefill otherwise computes a [1000, vocab] matrix it throws away.
- int8 (optional): dynamic quantization of the MatMul weights (QInt8, per
  tensor; on SmolLM2 QInt8 agreed with fp32's top token more often than
  QUInt8 or reduce_range, and decoded faster). A tied lm_head, read through a
  Transpose of the embedding table, gets its own copy so that it is
  quantized too. The embedding Gather is left in float: quantizing it makes
  ONNX Runtime dequantize the whole table on every step (decode 1.6x slower).
  It is stored in float16 when that is exact (bf16-trained checkpoints):
  half the bytes, the same logits (SmolLM2: 113 -> 57 MB).
- int4 (optional): block-wise 4-bit MatMul weights (ONNX Runtime's
  MatMulNBits; see `quantize_int4`), the lm_head untied as for int8.
- The saved graph is ONNX Runtime's own extended optimization of it (its
  fusions), so that opening it skips that work: 0.9-1.2 s instead of
  1.7-2.8 s for SmolLM2 int8 on two cores, and 30-80 MiB less resident.

Imports of optimum, onnx and onnxruntime happen inside the functions.

It is one file, over 500 lines, because every step above (trace, graph
rewrites, quantization, runtime optimization, marker) has settings that the
cache key computed here must cover (`export_key`: the INT4_* parameters,
EXPORT_FORMAT_VERSION); split, a step's change and the key change it needs
would sit in different files.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
import re
import shutil
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from code_llama_ls.engine.base import ProgressCallback
from code_llama_ls.engine.cache_build import build_once
from code_llama_ls.errors import ModelLoadError

if TYPE_CHECKING:
    import onnx
    import torch

# Bump when the export changes, so that caches written by older code are redone.
EXPORT_FORMAT_VERSION = 4
MARKER_FILE = "code-llama-ls-onnx.json"
MODEL_FILE = "model.onnx"
DATA_FILE = f"{MODEL_FILE}.data"
"""Where the graph's weights are kept: ONNX Runtime maps this file instead of reading it."""
TASK = "text-generation-with-past"
INSTALL_HINT = "pip install optimum-onnx onnxruntime"

WEIGHTS = ("int8", "int4", "fp32")
"""What an export's MatMul weights are: the `onnxWeights` setting."""
DEFAULT_WEIGHTS = "int8"

# int4 (`quantize_int4`), chosen on SmolLM2-135M (benchmarks/onnx_4bit.py).
INT4_BLOCK_SIZE = 32
INT4_SYMMETRIC = True
INT4_ACCURACY_LEVEL = 4
INT4_LM_HEAD_BITS = 8
_NBITS_LOGGER = "onnxruntime.quantization.matmul_nbits_quantizer"

# Models traced with `grouped_attention` (its reshapes assume Llama's head layout).
GROUPED_ATTENTION = "code_llama_ls_grouped"
GROUPED_MODEL_TYPES = frozenset({"llama"})

# Weights above this many bytes go to an external data file next to the graph
# (a protobuf message holds at most 2 GiB).
EXTERNAL_DATA_THRESHOLD = 1_800_000_000

# The packages whose versions change what an export produces.
EXPORT_PACKAGES = ("optimum-onnx", "optimum", "onnx", "onnxruntime", "transformers", "torch")

# Files copied next to the graph, so the ONNX directory holds its tokenizer and config.
_SIDE_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "vocab.json",
    "merges.txt",
)
_WEIGHT_PATTERNS = ("*.safetensors", "model.safetensors.index.json")
_INT64_MAX = 2**63 - 1


def export_onnx(
    model_dir: Path,
    cache_root: Path,
    *,
    weights: str = DEFAULT_WEIGHTS,
    on_progress: ProgressCallback | None = None,
) -> Path:
    """The cached ONNX directory of `model_dir` (`model.onnx`, tokenizer, config), exporting once.

    `weights`: one of WEIGHTS. Raises ModelLoadError saying what to do when
    the exporter is missing or fails.
    """
    chosen = resolve_weights(weights)
    report = on_progress or _ignore_progress
    return build_once(
        onnx_cache_dir(model_dir, cache_root, weights=chosen),
        is_complete,
        lambda tmp: _export_into(model_dir, tmp, weights=chosen, report=report),
        lambda exc: (
            f"Exporting {model_dir.name} to ONNX failed: {_first_line(exc)}. "
            'Use backend "transformers" instead, or report the error.'
        ),
    )


def resolve_weights(weights: str = DEFAULT_WEIGHTS) -> str:
    """`weights`, checked: ModelLoadError naming the choices when it is none of WEIGHTS."""
    if weights not in WEIGHTS:
        raise ModelLoadError(
            f"Unknown ONNX weights {weights!r}: onnxWeights must be one of {', '.join(WEIGHTS)}."
        )
    return weights


def onnx_cache_dir(
    model_dir: Path,
    cache_root: Path,
    *,
    weights: str = DEFAULT_WEIGHTS,
) -> Path:
    """Where the export of `model_dir` with `weights` lives (or will live) under `cache_root`."""
    chosen = resolve_weights(weights)
    digest = export_key(model_dir, weights=chosen)
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", model_dir.resolve().name) or "model"
    return cache_root / "onnx" / f"{name}-{digest[:12]}-{chosen}"


def export_key(model_dir: Path, *, weights: str = DEFAULT_WEIGHTS) -> str:
    """A hex digest of everything that changes the export of `model_dir` with `weights`."""
    chosen = resolve_weights(weights)
    config = model_dir / "config.json"
    if not config.is_file():
        raise ModelLoadError(
            f"{model_dir} is not a Hugging Face model directory (it has no config.json)."
        )
    digest = hashlib.sha256()
    digest.update(config.read_bytes())
    for path in _weight_files(model_dir) + _side_files(model_dir):
        stat = path.stat()
        digest.update(f"\0{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    versions = {name: _version(name) for name in EXPORT_PACKAGES}
    digest.update(json.dumps([versions, EXPORT_FORMAT_VERSION, _key_weights(chosen)]).encode())
    return digest.hexdigest()


def _key_weights(weights: str) -> object:
    """What the key holds for `weights`: int8 and fp32 as before int4 (their caches stay valid)."""
    if weights == "int4":
        return {
            "int4": [INT4_BLOCK_SIZE, INT4_SYMMETRIC, INT4_ACCURACY_LEVEL, INT4_LM_HEAD_BITS],
        }
    return weights == "int8"


def is_complete(directory: Path) -> bool:
    """Whether `directory` holds a finished export (its marker is written last)."""
    return (directory / MARKER_FILE).is_file() and (directory / MODEL_FILE).is_file()


def read_marker(directory: Path) -> dict[str, Any]:
    """The marker of a finished export: versions, weights, last-position logits, timings.

    Its "quantized" is "int8", "int4", or None for fp32.
    """
    try:
        data = json.loads((directory / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"Cannot read {directory / MARKER_FILE} ({exc}): delete {directory}."
        ) from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"{directory / MARKER_FILE} is not a JSON object: delete {directory}.")
    return data


def run_exporter(model_dir: Path, out_dir: Path, *, grouped: bool = True) -> None:
    """optimum's export of `model_dir` with past key values into `out_dir` (fp32, unchanged).

    `grouped`: trace Llama models with `grouped_attention` (no repeated keys/values).
    """
    try:
        from optimum.exporters.onnx import (  # type: ignore[import-untyped]
            onnx_export_from_model,
        )
    except ImportError as exc:
        raise ModelLoadError(
            f"The onnx backend needs optimum-onnx to export the model ({_first_line(exc)}): "
            f'run `{INSTALL_HINT}`, or set backend to "transformers".'
        ) from exc
    model = _load_for_export(model_dir, grouped=grouped)
    with quiet_exporters():
        onnx_export_from_model(
            model=model,
            output=str(out_dir),
            task=TASK,
            do_validation=False,
            custom_onnx_configs=_custom_configs(model.config),
        )


def _custom_configs(config: Any) -> dict[str, Any] | None:
    """An export configuration for an architecture optimum has none for (Starcoder2: its
    decoder takes and returns what Qwen2's does: grouped-query keys/values with position
    ids); None for the others."""
    if config.model_type != "starcoder2":
        return None
    from optimum.exporters.onnx.model_configs import (  # type: ignore[import-untyped]
        Qwen2OnnxConfig,
    )

    with_past = Qwen2OnnxConfig(
        config, task="text-generation", use_past=True, use_past_in_inputs=True
    )
    return {"model": with_past}


def grouped_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Eager attention that multiplies grouped queries by the shared keys/values.

    transformers' attention repeats each key/value head for the query heads
    that share it (grouped-query attention), which the ONNX graph then does by
    copying the whole cache on every step; here the queries are reshaped to
    [batch, kv_heads, group * length, dim] instead, so the cache is read in
    place. Query head h uses key/value head h // group, as in `repeat_kv`.
    Exported Llama graphs decoded 1.5x faster at 2,000 tokens of context
    (SmolLM2, 9 query / 3 key-value heads) and prefilled 1.2x faster.
    """
    import torch

    del module, dropout, kwargs  # inference only
    batch, heads, length, dim = query.shape
    kv_heads, kv_length = key.shape[1], key.shape[2]
    grouped = query.reshape(batch, kv_heads, heads // kv_heads * length, dim)
    scores = torch.matmul(grouped, key.transpose(2, 3)).reshape(batch, heads, length, kv_length)
    scores = scores * scaling
    if attention_mask is not None:
        scores = scores + attention_mask[:, :, :, :kv_length]
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    probs = probs.reshape(batch, kv_heads, heads // kv_heads * length, kv_length)
    output = torch.matmul(probs, value).reshape(batch, heads, length, dim)
    return output.transpose(1, 2).contiguous(), None


def register_grouped_attention() -> None:
    """Make `grouped_attention` loadable as `attn_implementation=GROUPED_ATTENTION`."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(GROUPED_ATTENTION, grouped_attention)
    AttentionMaskInterface.register(GROUPED_ATTENTION, _eager_mask)


def _eager_mask(*args: Any, **kwargs: Any) -> Any:
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    # Looked up on each call: optimum swaps in a traceable "eager" mask while it exports.
    return ALL_MASK_ATTENTION_FUNCTIONS["eager"](*args, **kwargs)


def _load_for_export(model_dir: Path, *, grouped: bool) -> Any:
    """The fp32 model of `model_dir` (safetensors only, no remote code), ready to trace."""
    import torch
    import transformers

    auto_config: Any = transformers.AutoConfig
    auto_model: Any = transformers.AutoModelForCausalLM
    common: dict[str, Any] = {"local_files_only": True, "trust_remote_code": False}
    config = auto_config.from_pretrained(str(model_dir), **common)
    kwargs: dict[str, Any] = {"dtype": torch.float32, "use_safetensors": True, **common}
    if grouped and config.model_type in GROUPED_MODEL_TYPES:
        register_grouped_attention()
        kwargs["attn_implementation"] = GROUPED_ATTENTION
    return auto_model.from_pretrained(str(model_dir), **kwargs).eval()


def keep_last_logits(model_path: Path) -> bool:
    """Make the graph in `model_path` compute logits for the last position only, in place.

    Inserts a Slice (axis 1, last position) before the MatMul that produces
    `logits`; the output becomes [batch, 1, vocab]. Returns False and leaves
    the file alone when `logits` does not come straight from a MatMul.
    External weight data next to the file is referenced, not rewritten.
    """
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    if not slice_logits_input(model):
        return False
    onnx.save_model(model, str(model_path))
    return True


def slice_logits_input(model: onnx.ModelProto) -> bool:
    """`keep_last_logits` on a loaded graph; False when there is no lm_head MatMul."""
    from onnx import TensorProto, helper

    graph = model.graph
    found = [(i, n) for i, n in enumerate(graph.node) if "logits" in n.output]
    if len(found) != 1 or found[0][1].op_type != "MatMul":
        return False
    index, matmul = found[0]
    hidden = matmul.input[0]
    names = [f"{hidden}/keep_last_{part}" for part in ("starts", "ends", "axes")]
    for name, value in zip(names, (-1, _INT64_MAX, 1), strict=True):
        graph.initializer.append(helper.make_tensor(name, TensorProto.INT64, [1], [value]))
    last = f"{hidden}/keep_last"
    graph.node.insert(index, helper.make_node("Slice", [hidden, *names], [last], name=last))
    matmul.input[0] = last
    for output in graph.output:
        if output.name == "logits":
            dim = output.type.tensor_type.shape.dim[1]
            dim.Clear()
            dim.dim_value = 1
    return True


def untie_matmul_weights(model_path: Path) -> int:
    """Store transposed copies of weights that MatMuls read through a Transpose, in place.

    optimum exports tied input/output embeddings (SmolLM2) as one table that
    the lm_head reads through a Transpose node, which the quantizer leaves in
    float: the largest MatMul of a small model then reads 4x the bytes per
    token. A stored copy gets quantized (int8 decode of SmolLM2 17% faster,
    28 MB more on disk). Returns the number of weights copied.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(model_path))
    graph = model.graph
    weights = {tensor.name: tensor for tensor in graph.initializer}
    matmul_inputs = {n.input[1] for n in graph.node if n.op_type == "MatMul"}
    untied = [
        node
        for node in graph.node
        if node.op_type == "Transpose"
        and node.input[0] in weights
        and len(weights[node.input[0]].dims) == 2
        and node.output[0] in matmul_inputs
        and all(a.name == "perm" and list(a.ints) == [1, 0] for a in node.attribute)
    ]
    for node in untied:
        table = numpy_helper.to_array(weights[node.input[0]])
        copy = numpy_helper.from_array(table.T.copy(), node.output[0])
        graph.initializer.append(copy)
        graph.node.remove(node)
    if untied:
        onnx.save_model(model, str(model_path))
    return len(untied)


def quantize_int8(source: Path, target: Path, *, external_data: bool) -> None:
    """Dynamic int8 quantization of the MatMul weights of `source` into `target`."""
    from onnxruntime.quantization import (  # type: ignore[import-untyped]
        QuantType,
        quantize_dynamic,
    )

    root = logging.getLogger()
    root.addFilter(_drop_preprocessing_advice)
    try:
        with quiet_exporters():
            quantize_dynamic(
                source,
                target,
                weight_type=QuantType.QInt8,
                op_types_to_quantize=["MatMul"],
                per_channel=False,
                use_external_data_format=external_data,
            )
    finally:
        root.removeFilter(_drop_preprocessing_advice)


def quantize_int4(source: Path, target: Path, *, external_data: bool) -> None:
    """Block-wise 4-bit quantization of the MatMul weights of `source` into `target`.

    ONNX Runtime's MatMulNBits, round to nearest: each block of
    INT4_BLOCK_SIZE weights along the input axis shares a float scale
    (symmetric: no zero point). Chosen on SmolLM2-135M by agreement with
    fp32's top token, teacher-forced on 600 positions of code (int8 78%):
    block 32 67%, block 128 52-57%, block 16 no better than 32;
    symmetric as good as asymmetric (and smaller); a least-squares or
    clipped scale search no better. INT4_ACCURACY_LEVEL 4 quantizes the
    activations to int8 inside the kernel: level 0 (fp32 activations)
    decoded 3x slower. The lm_head (the MatMul that makes the logits) is
    the most sensitive: in INT4_LM_HEAD_BITS (8) it agreed 70%, at the
    same decode speed. The embedding Gather stays float, as for int8
    (4-bit GatherBlockQuantized halved the file at the same speed, but cost
    agreement again). ORT's HQQ (float zero points) agreed as often as
    int8 but decoded 7-25x slower on the CPU; rounding its zero points
    lost its gain. benchmarks/onnx_4bit.py has the resulting export against
    int8: on 2,559 positions 75.5% agreement (int8 82.2%), HumanEval
    infilling pass@1 as good (14.3% vs 11.7% on 300 problems), decode 10%
    faster but prefill 1.6x slower on an AVX2 CPU, no smaller in memory
    (ONNX Runtime pre-packs the 4-bit weights): int8 stays the default.
    """
    import onnx

    quantizer_class = _nbits_quantizer()
    model = onnx.load(str(source))
    lm_head = [n.name for n in model.graph.node if "logits" in n.output and n.op_type == "MatMul"]
    separate = lm_head if INT4_LM_HEAD_BITS != 4 else []
    nbits_log = logging.getLogger(_NBITS_LOGGER)
    level = nbits_log.level
    if not logging.getLogger(__name__).isEnabledFor(logging.DEBUG):
        nbits_log.setLevel(logging.WARNING)  # two INFO lines per MatMul otherwise
    try:
        with quiet_exporters():
            if separate:
                model = _nbits(quantizer_class, model, INT4_LM_HEAD_BITS, include=separate)
            model = _nbits(quantizer_class, model, 4, exclude=separate)
    finally:
        nbits_log.setLevel(level)
    onnx.save_model(
        model,
        str(target),
        save_as_external_data=external_data,
        location=f"{target.name}.data",
    )


def _nbits(
    quantizer_class: Any,
    model: onnx.ModelProto,
    bits: int,
    *,
    include: list[str] | None = None,
    exclude: list[str] | None = None,
) -> onnx.ModelProto:
    """`model` with its MatMul weights (or only those of `include`) in `bits` bits (MatMulNBits)."""
    quantizer = quantizer_class(
        model,
        bits=bits,
        block_size=INT4_BLOCK_SIZE,
        is_symmetric=INT4_SYMMETRIC,
        accuracy_level=INT4_ACCURACY_LEVEL,
        nodes_to_include=include,
        nodes_to_exclude=exclude or [],
        # With nodes_to_include, a type no node has: only those nodes are quantized.
        op_types_to_quantize=("MatMul",) if include is None else ("code_llama_ls.none",),
    )
    quantizer.process()
    result: onnx.ModelProto = quantizer.model.model
    return result


def _nbits_quantizer() -> Any:
    """ONNX Runtime's MatMulNBitsQuantizer, imported without its change to the root logger.

    Its module calls logging.basicConfig(level=INFO) when first imported.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        from onnxruntime.quantization.matmul_nbits_quantizer import (  # type: ignore[import-untyped]
            MatMulNBitsQuantizer,
        )
    except ImportError as exc:
        raise ModelLoadError(
            f"int4 ONNX weights need onnxruntime's MatMulNBits quantizer ({_first_line(exc)}): "
            'run `pip install onnx-ir`, or set onnxWeights to "int8".'
        ) from exc
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return MatMulNBitsQuantizer


def _drop_preprocessing_advice(record: logging.LogRecord) -> bool:
    """Drop the quantizer's advice to pre-process shapes (it is meant for static quantization)."""
    return not record.getMessage().startswith("Please consider to run pre-processing")


def halve_embedding(model_path: Path) -> bool:
    """Store the embedding table in float16 when that is exact, casting gathered rows back.

    The table (the Gather's data, 113 MB of float32 for SmolLM2-135M) is
    read a few rows per token; checkpoints trained in bf16 hold values that
    float16 represents exactly, so half the bytes change no logit. A table
    that float16 would round is left as it is.
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(model_path))
    graph = model.graph
    tables = {t.name: t for t in graph.initializer if t.data_type == TensorProto.FLOAT}
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    inserted = 0
    for position, node in enumerate(list(graph.node)):
        table = tables.get(node.input[0]) if node.op_type == "Gather" else None
        if table is None or uses[table.name] != 1:
            continue
        values = numpy_helper.to_array(table)
        half = values.astype(np.float16)
        if not np.array_equal(half.astype(np.float32), values):
            continue
        table.CopyFrom(numpy_helper.from_array(half, table.name))
        rows = node.output[0]
        node.output[0] = f"{rows}/float16"
        cast = helper.make_node(
            "Cast", [node.output[0]], [rows], to=TensorProto.FLOAT, name=f"{node.name}/to_float"
        )
        graph.node.insert(position + 1 + inserted, cast)
        inserted += 1
    if inserted:
        onnx.save(model, str(model_path))
    return inserted > 0


def optimize_for_runtime(model_path: Path, out_path: Path) -> None:
    """Save ONNX Runtime's own optimization of the graph (fusions), so loads skip it.

    Extended optimizations only: they hold on any CPU, while the layout
    changes of ORT_ENABLE_ALL depend on the machine and are redone at load.
    Opening the saved graph took 0.9-1.2 s instead of 1.7-2.8 s here.

    The weights go to `DATA_FILE` beside `out_path`: ONNX Runtime maps that
    file instead of parsing and copying it, so a session opens in 0.28 s
    instead of 0.64 s (SmolLM2-135M int8), and the weights it reads in place
    (the float16 embedding) are page cache shared by every server's process.
    """
    import onnxruntime as ort  # type: ignore[import-untyped]

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(out_path)
    options.log_severity_level = 3
    options.add_session_config_entry(
        "session.optimized_model_external_initializers_file_name", DATA_FILE
    )
    options.add_session_config_entry(
        "session.optimized_model_external_initializers_min_size_in_bytes", "1024"
    )
    ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])


@contextlib.contextmanager
def quiet_exporters() -> Iterator[None]:
    """Silence what the exporter and the quantizer print, unless our log level is debug.

    torch.onnx's tracer warns about every data-dependent branch it meets;
    optimum warns that the tied embedding and lm_head map to different ONNX
    initializers (expected: `untie_matmul_weights` unties them anyway); the
    quantizer logs each tensor at INFO through the root logger (left to the
    root logger's level); ONNX Runtime's C++ logger is left at errors only.
    """
    if logging.getLogger(__name__).isEnabledFor(logging.DEBUG):
        yield
        return
    loggers = [logging.getLogger(name) for name in ("optimum", "transformers")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with contextlib.suppress(ImportError):
            import onnxruntime

            onnxruntime.set_default_logger_severity(3)  # process-wide; no way to read it back
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


def _export_into(model_dir: Path, out_dir: Path, *, weights: str, report: ProgressCallback) -> None:
    started = time.perf_counter()
    report("exporting to ONNX", None)
    raw = out_dir / "export"
    run_exporter(model_dir, raw)
    last_only = keep_last_logits(raw / MODEL_FILE)
    export_s = time.perf_counter() - started
    external = _size(raw) > EXTERNAL_DATA_THRESHOLD
    untied = 0
    if weights != "fp32":
        report(f"quantizing to {weights}", None)
        if not external:  # a large model is loaded in full by the quantizer alone
            untied = untie_matmul_weights(raw / MODEL_FILE)
        quantizer = quantize_int4 if weights == "int4" else quantize_int8
        quantizer(raw / MODEL_FILE, out_dir / MODEL_FILE, external_data=external)
        shutil.rmtree(raw)
    else:
        for path in raw.iterdir():
            path.rename(out_dir / path.name)
        raw.rmdir()
    halved = False
    if not external:  # both rewrite the graph in one protobuf (at most 2 GiB)
        report("optimizing for ONNX Runtime", None)
        halved = halve_embedding(out_dir / MODEL_FILE)
        optimized = out_dir / f"optimized-{MODEL_FILE}"
        optimize_for_runtime(out_dir / MODEL_FILE, optimized)
        optimized.replace(out_dir / MODEL_FILE)
    for path in _side_files(model_dir):
        shutil.copyfile(path, out_dir / path.name)
    marker = {
        "source": str(model_dir.resolve()),
        "task": TASK,
        "quantized": None if weights == "fp32" else weights,
        "last_position_logits": last_only,
        "untied_weights": untied,
        "float16_embedding": halved,
        "runtime_optimized": not external,
        "external_data": (out_dir / DATA_FILE).is_file(),
        "export_format_version": EXPORT_FORMAT_VERSION,
        "packages": {name: _version(name) for name in EXPORT_PACKAGES},
        "export_seconds": round(export_s, 2),
        "total_seconds": round(time.perf_counter() - started, 2),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (out_dir / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


def _weight_files(model_dir: Path) -> list[Path]:
    found = {p for pattern in _WEIGHT_PATTERNS for p in model_dir.glob(pattern) if p.is_file()}
    return sorted(found)


def _side_files(model_dir: Path) -> list[Path]:
    return [model_dir / name for name in _SIDE_FILES if (model_dir / name).is_file()]


def _size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.iterdir() if p.is_file())


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _ignore_progress(message: str, fraction: float | None) -> None:
    del message, fraction
