"""int4 ONNX weights (MatMulNBits): the onnxWeights setting, the cache key, a tiny export.

The tiny model is a random Llama with tied embeddings, as SmolLM2 has, so
that the lm_head is untied and quantized as it is for the default model.
Exported locally in seconds; nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np
import pytest

from code_llama_ls.cancel import CancelToken
from code_llama_ls.config import ONNX_WEIGHTS, Settings
from code_llama_ls.engine import onnx_export
from code_llama_ls.engine.base import GenerationParams
from code_llama_ls.engine.onnx_export import (
    INT4_BLOCK_SIZE,
    INT4_LM_HEAD_BITS,
    MODEL_FILE,
    WEIGHTS,
    export_key,
    is_complete,
    onnx_cache_dir,
    read_marker,
    resolve_weights,
)
from code_llama_ls.errors import ConfigError, ModelLoadError
from tests.tiny_models import build_tied_gqa_llama

# --- the setting -----------------------------------------------------------------------------


def test_onnx_weights_setting_defaults_to_int8_and_is_validated() -> None:
    assert Settings().engine.onnx_weights == "int8"
    assert ONNX_WEIGHTS == WEIGHTS
    for value in ONNX_WEIGHTS:
        assert Settings().with_values({"onnxWeights": value}, "t").engine.onnx_weights == value
    assert Settings().with_values({"onnx_weights": "INT4"}, "config").engine.onnx_weights == "int4"
    for bad in ("int2", "", 4, None, True):
        with pytest.raises(ConfigError, match=r"onnxWeights.*int8, int4, fp32"):
            Settings().with_values({"onnxWeights": bad}, "initializationOptions")


def test_changing_onnx_weights_reloads_the_model() -> None:
    base = Settings()
    assert base.with_values({"onnxWeights": "int8"}, "t").engine == base.engine
    assert base.with_values({"onnxWeights": "int4"}, "t").engine != base.engine


# --- the cache key ---------------------------------------------------------------------------


@pytest.fixture()
def model_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "model"
    directory.mkdir()
    (directory / "config.json").write_text('{"model_type": "llama"}', encoding="utf-8")
    (directory / "model.safetensors").write_bytes(b"weights")
    return directory


def test_each_weights_option_has_its_own_cache_directory(model_dir: Path, tmp_path: Path) -> None:
    directories = {w: onnx_cache_dir(model_dir, tmp_path, weights=w) for w in WEIGHTS}
    keys = {w: export_key(model_dir, weights=w) for w in WEIGHTS}
    assert len(set(directories.values())) == len(set(keys.values())) == 3
    for weights, directory in directories.items():
        assert directory.parent == tmp_path / "onnx"
        assert directory.name.endswith(f"-{weights}")
    assert onnx_cache_dir(model_dir, tmp_path) == directories["int8"]  # the default


def test_int4_parameters_are_part_of_the_key(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {w: export_key(model_dir, weights=w) for w in WEIGHTS}
    monkeypatch.setattr(onnx_export, "INT4_BLOCK_SIZE", INT4_BLOCK_SIZE * 2)
    after = {w: export_key(model_dir, weights=w) for w in WEIGHTS}
    assert after["int4"] != before["int4"]
    assert (after["int8"], after["fp32"]) == (before["int8"], before["fp32"])


def test_unknown_weights_are_refused_with_the_choices(model_dir: Path, tmp_path: Path) -> None:
    assert resolve_weights("int4") == "int4"
    with pytest.raises(ModelLoadError, match=r"onnxWeights.*int8, int4, fp32"):
        onnx_cache_dir(model_dir, tmp_path, weights="int2")


# --- a tiny int4 export ----------------------------------------------------------------------

# onnxruntime's MatMulNBits quantizer needs onnx_ir.
_EXPORT_MODULES = ("onnx", "onnxruntime", "optimum.exporters.onnx", "onnx_ir")
needs_exporter = pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in _EXPORT_MODULES),
    reason="the ONNX exporter or the MatMulNBits quantizer is not installed",
)


@pytest.fixture(scope="module")
def tied_model(babbling_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random Llama with tied input/output embeddings and grouped-query attention.

    transformers' default weight scale (0.02): with larger random weights the
    4-bit rounding error grows through the layers until the logits barely
    correlate.
    """
    return build_tied_gqa_llama(
        tmp_path_factory.mktemp("tied-llama"), babbling_model, initializer_range=0.02
    )


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-4bit-cache")


@needs_exporter
def test_int4_export_uses_matmulnbits_and_generates(tied_model: Path, cache_root: Path) -> None:
    import onnx

    from code_llama_ls.engine.onnx_engine import OnnxEngine
    from code_llama_ls.engine.transformers_engine import TransformersEngine

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    engine = OnnxEngine.from_model_dir(tied_model, cache_root=cache_root, weights="int4", threads=1)
    # The quantizer's module calls logging.basicConfig(level=INFO) on import: undone.
    assert (list(root.handlers), root.level) == (handlers, level)
    assert (engine.device, engine.dtype) == ("cpu", "int4")

    directory = onnx_cache_dir(tied_model, cache_root, weights="int4")
    marker = read_marker(directory)
    assert marker["quantized"] == "int4" and marker["untied_weights"] == 1
    graph = onnx.load(str(directory / MODEL_FILE)).graph
    nbits = [n for n in graph.node if n.op_type == "MatMulNBits"]
    attributes = [{a.name: a.i for a in n.attribute} for n in nbits]
    # 2 layers x (q, k, v, o, gate, up, down) in 4 bits, and the lm_head.
    assert sum(a["bits"] == 4 for a in attributes) == 14
    assert {a["block_size"] for a in attributes} == {INT4_BLOCK_SIZE}
    (head,) = [n for n in graph.node if "logits" in n.output]
    assert head.op_type == "MatMulNBits"
    assert {a.name: a.i for a in head.attribute}["bits"] == INT4_LM_HEAD_BITS
    weights = {tensor.name for tensor in graph.initializer}
    assert not [n for n in graph.node if n.op_type == "MatMul" and set(n.input) & weights]

    torch_engine = TransformersEngine.from_pretrained(tied_model, device="cpu")
    bos = engine.tokenizer.bos_token_id
    text = "def greet(name):\n    print('hello ' + name)\n"
    prompt = ([bos] if bos is not None else []) + engine.tokenizer.encode(text)
    ours, theirs = engine.prefill_logits(prompt), torch_engine.prefill_logits(prompt).numpy()
    assert np.corrcoef(ours, theirs)[0, 1] > 0.98  # 0.996 when written
    result = engine.generate(prompt, GenerationParams(8, frozenset()), CancelToken())
    assert len(result.token_ids) == 8 and result.prompt_tokens == len(prompt)


@needs_exporter
def test_load_engine_passes_onnx_weights_through(tied_model: Path, cache_root: Path) -> None:
    from code_llama_ls.engine.loading import load_engine

    engine = load_engine(str(tied_model), backend="onnx", cache_dir=cache_root, onnx_weights="int4")
    assert engine.dtype == "int4"
    # The int4 export above was reused; int8 and fp32 would be directories of their own.
    exports = [p for p in (cache_root / "onnx").iterdir() if is_complete(p)]
    assert exports == [onnx_cache_dir(tied_model, cache_root, weights="int4")]
