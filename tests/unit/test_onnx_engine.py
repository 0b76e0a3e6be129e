"""The ONNX Runtime backend on the tiny test models: same tokens as torch, prefix reuse, cache.

Models are exported locally from the session's tiny models (seconds; nothing
is downloaded). Engines run with one ONNX Runtime thread: ops this small gain
nothing from more, and spinning threads slow down tests running beside them.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from code_llama_ls.cancel import CancelToken
from code_llama_ls.engine import onnx_export
from code_llama_ls.engine.base import Generation, GenerationParams
from code_llama_ls.engine.onnx_engine import OnnxEngine, open_session, physical_cores
from code_llama_ls.engine.onnx_export import (
    DATA_FILE,
    MARKER_FILE,
    MODEL_FILE,
    export_onnx,
    keep_last_logits,
    read_marker,
    run_exporter,
)
from code_llama_ls.engine.transformers_engine import TransformersEngine
from code_llama_ls.errors import GenerationError, ModelLoadError
from code_llama_ls.pipeline.fim import FimMode
from code_llama_ls.pipeline.prompt import build_completion_prompt
from code_llama_ls.tokens.tokenizer import TokenizerLike
from tests.scenarios import (
    ADD_FILE,
    ADD_MIDDLE,
    GREET_FILE,
    GREET_MIDDLE,
    split_cursor,
)
from tests.tiny_models import build_tied_gqa_llama

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("optimum.exporters.onnx")

SCENARIOS = [(ADD_FILE, ADD_MIDDLE), (GREET_FILE, GREET_MIDDLE)]


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


def _open(model: Path, cache_root: Path, *, weights: str) -> OnnxEngine:
    return OnnxEngine.from_model_dir(model, cache_root=cache_root, weights=weights, threads=1)


@pytest.fixture(scope="module")
def fp32(tiny_model: Path, cache_root: Path) -> OnnxEngine:
    return _open(tiny_model, cache_root, weights="fp32")


@pytest.fixture(scope="module")
def int8(tiny_model: Path, cache_root: Path) -> OnnxEngine:
    return _open(tiny_model, cache_root, weights="int8")


@pytest.fixture(scope="module")
def babbling(babbling_model: Path, cache_root: Path) -> OnnxEngine:
    return _open(babbling_model, cache_root, weights="fp32")


@pytest.fixture()
def fresh(babbling: OnnxEngine) -> Iterator[OnnxEngine]:
    """The babbling engine with no kept KV caches."""
    babbling.reset_cache()
    yield babbling
    babbling.reset_cache()


def _fim_prompt(tokenizer: TokenizerLike, document: str) -> list[int]:
    prefix, suffix = split_cursor(document)
    prompt = build_completion_prompt(tokenizer, prefix, suffix, fim_mode=FimMode.SPM, budget=1536)
    return list(prompt.ids)


def _prompt(engine: OnnxEngine, text: str = "def add(a, b):\n    return") -> list[int]:
    bos = engine.tokenizer.bos_token_id
    return ([bos] if bos is not None else []) + engine.tokenizer.encode(text)


def _run(
    engine: OnnxEngine | TransformersEngine,
    prompt: list[int],
    max_new_tokens: int = 24,
    stop_ids: frozenset[int] = frozenset(),
    stop_strings: tuple[str, ...] = (),
    **kwargs: Any,
) -> Generation:
    params = GenerationParams(max_new_tokens, stop_ids, stop_strings)
    return engine.generate(prompt, params, kwargs.pop("cancel", CancelToken()), **kwargs)


# --- same answers as torch -----------------------------------------------------------------


def test_fp32_infills_exactly_like_the_torch_engine(fp32: OnnxEngine, tiny_model: Path) -> None:
    torch_engine = TransformersEngine.from_pretrained(tiny_model, device="cpu")
    assert (fp32.device, fp32.dtype) == ("cpu", "float32")
    assert fp32.context_length == torch_engine.context_length
    stops = fp32.tokenizer.stop_token_ids
    assert stops == torch_engine.tokenizer.stop_token_ids
    for document, middle in SCENARIOS:
        prompt = _fim_prompt(fp32.tokenizer, document)
        ours = _run(fp32, prompt, max_new_tokens=16, stop_ids=stops)
        theirs = _run(torch_engine, prompt, max_new_tokens=16, stop_ids=stops)
        assert ours.token_ids == theirs.token_ids
        assert (ours.text, ours.finish_reason) == (middle, "stop")


def test_int8_gives_the_same_infilled_answers(int8: OnnxEngine) -> None:
    assert int8.dtype == "int8"
    stops = int8.tokenizer.stop_token_ids
    for document, middle in SCENARIOS:
        result = _run(int8, _fim_prompt(int8.tokenizer, document), 16, stops)
        assert (result.text, result.finish_reason) == (middle, "stop")


def test_last_position_logits_equal_the_full_models_last_row(
    tiny_model: Path, tmp_path: Path
) -> None:
    run_exporter(tiny_model, tmp_path / "full")
    (tmp_path / "last").mkdir()
    (tmp_path / "last" / MODEL_FILE).write_bytes((tmp_path / "full" / MODEL_FILE).read_bytes())
    assert keep_last_logits(tmp_path / "last" / MODEL_FILE)
    full = open_session(tmp_path / "full" / MODEL_FILE, threads=1)
    last = open_session(tmp_path / "last" / MODEL_FILE, threads=1)
    length = 37
    feeds: dict[str, Any] = {
        "input_ids": np.arange(3, 3 + length, dtype=np.int64)[None, :],
        "attention_mask": np.ones((1, length), dtype=np.int64),
        "position_ids": np.arange(length, dtype=np.int64)[None, :],
    }
    for item in full.get_inputs():
        if item.name.startswith("past_key_values."):
            feeds[item.name] = np.zeros((1, item.shape[1], 0, item.shape[3]), dtype=np.float32)
    full_logits = full.run(["logits"], feeds)[0]
    last_logits = last.run(["logits"], feeds)[0]
    assert full_logits.shape[1] == length and last_logits.shape[1] == 1
    np.testing.assert_allclose(last_logits[0, 0], full_logits[0, -1], rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def gqa_model(babbling_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random Llama with grouped-query attention (4 query heads, 2 key/value heads).

    Its input and output embeddings are tied, as SmolLM2's are. Large random
    weights (0.5) keep its logits far apart.
    """
    return build_tied_gqa_llama(
        tmp_path_factory.mktemp("gqa-llama"), babbling_model, initializer_range=0.5
    )


@pytest.mark.parametrize("grouped", [True, False], ids=["grouped", "repeated-kv"])
def test_grouped_query_attention_matches_torch(
    gqa_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, grouped: bool
) -> None:
    if not grouped:  # the plain export, as transformers traces it
        monkeypatch.setattr(onnx_export, "GROUPED_MODEL_TYPES", frozenset())
    onnx_engine = _open(gqa_model, tmp_path, weights="fp32")
    (directory,) = (tmp_path / "onnx").iterdir()
    graph = onnx.load(str(directory / MODEL_FILE)).graph
    repeats = [n.name for n in graph.node if n.op_type == "Expand" and "self_attn" in n.name]
    assert bool(repeats) != grouped  # repeat_kv copies keys and values with Expand
    torch_engine = TransformersEngine.from_pretrained(gqa_model, device="cpu")
    first = _prompt(onnx_engine, "def greet(name):\n    print('hello ' + name)\n" * 4)
    second = first + onnx_engine.tokenizer.encode("for i in range(10):")
    for prompt in (first, second):  # the second reuses the first's cache
        ours = onnx_engine.prefill_logits(prompt)
        theirs = torch_engine.prefill_logits(prompt).numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)
    assert _run(onnx_engine, second).token_ids == _run(torch_engine, second).token_ids


def test_int8_quantizes_a_tied_lm_head(gqa_model: Path, tmp_path: Path) -> None:
    engine = _open(gqa_model, tmp_path, weights="int8")
    (directory,) = (tmp_path / "onnx").iterdir()
    assert read_marker(directory)["untied_weights"] == 1
    graph = onnx.load(str(directory / MODEL_FILE)).graph
    (head,) = [n for n in graph.node if "logits" in n.output]
    assert head.op_type != "MatMul"  # a quantized MatMul
    torch_engine = TransformersEngine.from_pretrained(gqa_model, device="cpu")
    prompt = _prompt(engine, "def greet(name):\n    print('hello ' + name)\n")
    ours, theirs = engine.prefill_logits(prompt), torch_engine.prefill_logits(prompt).numpy()
    assert np.corrcoef(ours, theirs)[0, 1] > 0.99


# --- the generation contract ---------------------------------------------------------------


def test_streams_growing_text_and_cuts_before_a_stop_string(fresh: OnnxEngine) -> None:
    baseline = _run(fresh, _prompt(fresh), max_new_tokens=32)
    assert (len(baseline.token_ids), baseline.finish_reason) == (32, "length")
    start = len(baseline.text) // 2
    stop = baseline.text[start : start + 2]
    seen: list[str] = []
    result = _run(
        fresh,
        _prompt(fresh),
        max_new_tokens=32,
        stop_strings=("@@never@@", stop),
        on_text=lambda text: seen.append(text) is not None,
    )
    assert result.finish_reason == "stop-string"
    assert result.text == baseline.text[: baseline.text.index(stop)]
    for before, after in itertools.pairwise(seen):
        assert after.startswith(before)
    assert all(result.text.startswith(text) for text in seen)  # nothing shown is taken back


def test_stops_at_a_stop_id_which_is_left_out(fresh: OnnxEngine) -> None:
    baseline = _run(fresh, _prompt(fresh)).token_ids
    k = next(i for i in range(2, len(baseline)) if baseline[i] not in baseline[:i])
    result = _run(fresh, _prompt(fresh), stop_ids=frozenset({baseline[k]}))
    assert (result.token_ids, result.finish_reason) == (baseline[:k], "stop")


def test_budget_is_clamped_to_the_context_and_bad_prompts_are_refused(
    fresh: OnnxEngine,
) -> None:
    context = fresh.context_length
    assert _run(fresh, _prompt(fresh), max_new_tokens=0).finish_reason == "length"
    with pytest.raises(GenerationError, match=str(context)):
        _run(fresh, [5] * context)
    with pytest.raises(GenerationError, match="empty"):
        _run(fresh, [])


@pytest.mark.parametrize("k", [1, 4])
def test_cancel_stops_within_one_token(fresh: OnnxEngine, k: int) -> None:
    cancel = CancelToken()
    calls = 0

    def on_text(text: str) -> bool:
        nonlocal calls
        calls += 1
        if calls == k:
            cancel.cancel()
        return False

    result = _run(fresh, _prompt(fresh), max_new_tokens=100, cancel=cancel, on_text=on_text)
    assert result.finish_reason == "cancelled"
    assert len(result.token_ids) in (k, k + 1)


def test_cancel_before_start_runs_no_model(
    fresh: OnnxEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the model ran after cancel()")

    monkeypatch.setattr(fresh._kv._session, "run_with_iobinding", forbidden)
    cancel = CancelToken()
    cancel.cancel()
    result = _run(fresh, _prompt(fresh), cancel=cancel)
    assert (result.token_ids, result.finish_reason, result.prefill_ms) == ((), "cancelled", 0.0)


def test_runtime_failures_become_generation_errors_and_the_engine_recovers(
    fresh: OnnxEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompt = _prompt(fresh)
    expected = _run(fresh, prompt, max_new_tokens=6).token_ids
    session = fresh._kv._session
    real_run = session.run_with_iobinding
    calls = 0

    def failing(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : bad_alloc")
        return real_run(*args, **kwargs)

    monkeypatch.setattr(session, "run_with_iobinding", failing)
    with pytest.raises(GenerationError, match="Out of memory"):
        _run(fresh, [*prompt, 7], max_new_tokens=6)
    monkeypatch.undo()
    again = _run(fresh, prompt, max_new_tokens=6)
    assert again.cached_tokens == 0  # the failed request's cache was dropped, not kept
    assert again.token_ids == expected


# --- prefix-KV reuse -----------------------------------------------------------------------


def test_prefix_reuse_gives_the_same_tokens_and_logits(fresh: OnnxEngine) -> None:
    first = _prompt(fresh, "import os\nimport sys\nfrom pathlib import Path\n")
    second = first[:-2] + fresh.tokenizer.encode("def greet(name):\n    print(")
    _run(fresh, first, max_new_tokens=6)
    reused = _run(fresh, second)
    assert reused.cached_tokens == len(first) - 2 > 0
    fresh.reset_cache()
    scratch = _run(fresh, second)
    assert scratch.cached_tokens == 0
    assert reused.token_ids == scratch.token_ids

    fresh.reset_cache()
    fresh.prefill_logits(first)
    with_reuse = fresh.prefill_logits(second)
    fresh.reset_cache()
    without = fresh.prefill_logits(second)
    np.testing.assert_allclose(with_reuse, without, rtol=1e-4, atol=1e-4)
    assert fresh.connect() is None, "a local model: nothing to connect to"


def test_a_repeated_prompt_keeps_one_token_to_compute(fresh: OnnxEngine) -> None:
    prompt = _prompt(fresh)
    first = _run(fresh, prompt)
    again = _run(fresh, prompt)
    assert again.cached_tokens == len(prompt) - 1
    assert again.token_ids == first.token_ids
    accepted = prompt + list(first.token_ids[:4])  # the user took 4 tokens of the suggestion
    continued = _run(fresh, accepted, max_new_tokens=6)
    assert continued.cached_tokens == len(accepted) - 1
    assert continued.token_ids == first.token_ids[4:10]
    assert fresh.prefix_cache_stats().hits >= 2


# --- the export cache ----------------------------------------------------------------------


def test_the_export_is_cached_and_an_incomplete_one_is_redone(
    babbling_model: Path, cache_root: Path, babbling: OnnxEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = export_onnx(babbling_model, cache_root, weights="fp32", on_progress=None)
    marker = directory / MARKER_FILE
    assert read_marker(directory)["last_position_logits"] is True
    written = marker.stat().st_mtime_ns

    def forbidden(model_dir: Path, out_dir: Path) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_export, "run_exporter", forbidden)
    assert export_onnx(babbling_model, cache_root, weights="fp32") == directory
    assert marker.stat().st_mtime_ns == written
    monkeypatch.undo()

    marker.unlink()  # as if the export had been killed before its marker
    messages: list[str] = []
    again = export_onnx(
        babbling_model, cache_root, weights="fp32", on_progress=lambda m, f: messages.append(m)
    )
    assert again == directory and marker.is_file()
    assert messages == ["exporting to ONNX", "optimizing for ONNX Runtime"]
    marker_data = read_marker(directory)
    assert marker_data["runtime_optimized"] is True
    # The weights are in a file of their own, which ONNX Runtime maps.
    assert marker_data["external_data"] is True and (directory / DATA_FILE).is_file()
    # The tiny model's float32 table is not exactly float16: it is left as it is.
    assert marker_data["float16_embedding"] is False
    assert not [p for p in directory.parent.iterdir() if p.name.startswith(".tmp-")]


def test_large_models_use_external_weight_data(
    babbling_model: Path, tmp_path: Path, fresh: OnnxEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(onnx_export, "EXTERNAL_DATA_THRESHOLD", 0)
    engine = _open(babbling_model, tmp_path, weights="int8")
    (directory,) = (tmp_path / "onnx").iterdir()
    assert (directory / DATA_FILE).is_file()
    assert read_marker(directory)["external_data"] is True
    result = _run(engine, _prompt(engine), max_new_tokens=8)
    assert len(result.token_ids) == 8


# --- loading -------------------------------------------------------------------------------


def test_missing_exporter_and_pickle_weights_are_explained(
    babbling_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "optimum.exporters.onnx", None)
    with pytest.raises(ModelLoadError, match="optimum-onnx"):
        export_onnx(babbling_model, tmp_path, weights="int8")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    (tmp_path / "m" / "pytorch_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(ModelLoadError, match="pickle"):
        OnnxEngine.from_model_dir(tmp_path / "m", cache_root=tmp_path)


def test_importing_the_backend_imports_no_runtime() -> None:
    code = (
        "import sys, code_llama_ls.engine.onnx_engine, code_llama_ls.engine.onnx_export\n"
        "heavy = [m for m in ('torch', 'transformers', 'onnxruntime', 'optimum', 'onnx', 'numpy')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_physical_cores_is_within_the_available_cpus() -> None:
    assert 1 <= physical_cores() <= len(os.sched_getaffinity(0))


def test_an_embedding_table_exact_in_float16_is_stored_in_float16(tmp_path: Path) -> None:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    exact = rng.standard_normal((50, 8)).astype(np.float16).astype(np.float32)
    rounded = exact + np.float32(1e-7)  # float16 cannot hold these: left alone
    graphs = []
    for name, table in (("exact", exact), ("rounded", rounded)):
        graph = helper.make_graph(
            [helper.make_node("Gather", ["table", "ids"], ["rows"], name="lookup")],
            name,
            [helper.make_tensor_value_info("ids", TensorProto.INT64, [None])],
            [helper.make_tensor_value_info("rows", TensorProto.FLOAT, [None, 8])],
            [numpy_helper.from_array(table, "table")],
        )
        path = tmp_path / f"{name}.onnx"
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
        graphs.append((path, table))
    ids = np.array([3, 0, 49, 3], dtype=np.int64)
    for (path, table), expected in zip(graphs, (True, False), strict=True):
        assert onnx_export.halve_embedding(path) is expected
        stored = onnx.load(str(path)).graph.initializer[0].data_type
        assert stored == (TensorProto.FLOAT16 if expected else TensorProto.FLOAT)
        rows = open_session(path, threads=1).run(None, {"ids": ids})[0]
        assert rows.dtype == np.float32 and np.array_equal(rows, table[ids])


def test_next_token_choices_match_the_logits_and_the_greedy_token(fresh: OnnxEngine) -> None:
    import numpy as np

    prompt = _prompt(fresh)
    choices = fresh.next_token_choices(prompt, 3)
    logits = np.asarray(fresh.prefill_logits(prompt))
    assert list(choices) == [int(i) for i in np.argsort(-logits, kind="stable")[:3]]
    assert choices[0] == _run(fresh, prompt, 1).token_ids[0]
