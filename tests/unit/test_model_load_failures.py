"""A model that cannot load is one clear ModelLoadError naming the file and what is wrong.

Bad inputs are built in tmp_path: a tiny GGUF file written with the gguf
package's GGUFWriter (then cut short or overwritten), garbage, pickle-only
and half-downloaded model directories, missing paths. Nothing is downloaded
and no real model is loaded: each check fails before a backend would start.
`EngineHolder` turns whatever a loader raises into a ModelLoadError and
remembers it, so the same settings never load (and re-read the files) again.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import struct
import weakref
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

from code_llama_ls.config import EngineSettings
from code_llama_ls.engine import loading
from code_llama_ls.engine.base import Engine, ProgressCallback
from code_llama_ls.engine.loading import load_engine
from code_llama_ls.engine.model_files import check_gguf_file, check_model_dir
from code_llama_ls.errors import ModelLoadError
from code_llama_ls.serving.engines import EngineHolder
from tests.tiny_models import build_code_llama_tokenizer, gguf_data_start, write_tiny_gguf

REFETCH = "fetch the file again"


# -- inputs ------------------------------------------------------------------


@pytest.fixture
def tiny_gguf(tmp_path: Path) -> Path:
    return write_tiny_gguf(tmp_path / "tiny.gguf")


def cut(source: Path, length: int, target: Path) -> Path:
    target.write_bytes(source.read_bytes()[:length])
    return target


def write_safetensors(path: Path) -> Path:
    save_file({"weight": np.zeros((8, 8), dtype=np.float32)}, str(path))
    return path


def model_dir(path: Path) -> Path:
    """config.json and one whole safetensors file: passes every check."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    write_safetensors(path / "model.safetensors")
    return path


def load_error(model: str | Path, **kwargs: Any) -> str:
    """The message load_engine fails with (it must fail with a ModelLoadError)."""
    with pytest.raises(ModelLoadError) as caught:
        load_engine(str(model), device="cpu", **kwargs)
    return str(caught.value)


STUB_ENGINE = SimpleNamespace(name="stub", device="cpu")
"""What the stub backend returns: the checks let the model through."""


@pytest.fixture
def stub_backend(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Replace the torch backend's loader; record what load_engine hands it."""
    from code_llama_ls.engine.transformers_engine import TransformersEngine

    calls: list[dict[str, Any]] = []

    def from_pretrained(source: object, **kwargs: Any) -> SimpleNamespace:
        calls.append({"source": source, **kwargs})
        return STUB_ENGINE

    monkeypatch.setattr(TransformersEngine, "from_pretrained", staticmethod(from_pretrained))
    return calls


# -- GGUF files --------------------------------------------------------------


def test_a_whole_gguf_file_passes_and_reaches_the_backend(
    tiny_gguf: Path, stub_backend: list[dict[str, Any]]
) -> None:
    check_gguf_file(tiny_gguf)
    loaded: object = load_engine(str(tiny_gguf), backend="transformers", device="cpu")
    assert loaded is STUB_ENGINE
    assert stub_backend[0]["source"] == tiny_gguf.parent
    assert stub_backend[0]["gguf_file"] == "tiny.gguf"


def test_the_default_models_gguf_passes() -> None:
    from code_llama_ls.engine.default_model import find_default_gguf

    check_gguf_file(find_default_gguf())


@pytest.mark.parametrize(
    ("cut_at", "expected"),
    [
        (lambda start, size: 3, "a GGUF header needs at least 24"),
        (lambda start, size: 23, "a GGUF header needs at least 24"),
        (lambda start, size: 100, "its header alone needs at least"),
        (lambda start, size: start - 10, "its header alone needs at least"),
        (lambda start, size: start + 5, "its header and tensors need"),
        (lambda start, size: size - 1, "its header and tensors need"),
    ],
    ids=["in-magic", "in-counts", "in-metadata", "in-tensor-table", "in-data", "last-byte"],
)
def test_a_truncated_gguf_file_says_how_much_is_missing(
    tiny_gguf: Path,
    tmp_path: Path,
    cut_at: Callable[[int, int], int],
    expected: str,
    stub_backend: list[dict[str, Any]],
) -> None:
    size = tiny_gguf.stat().st_size
    length = cut_at(gguf_data_start(tiny_gguf), size)
    bad = cut(tiny_gguf, length, tmp_path / "model.Q4_K_M.gguf")
    message = load_error(bad)
    assert message.startswith(f"{bad} is truncated: {length:,} bytes")
    assert expected in message and REFETCH in message
    if "tensors need" in expected:
        assert f"need {size:,} bytes" in message
    assert stub_backend == []  # the backend never saw it


def test_every_truncation_of_a_gguf_file_is_caught(tiny_gguf: Path, tmp_path: Path) -> None:
    data = tiny_gguf.read_bytes()
    bad = tmp_path / "cut.gguf"
    for length in range(1, len(data), 7):
        bad.write_bytes(data[:length])
        with pytest.raises(ModelLoadError, match="is truncated"):
            check_gguf_file(bad)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "is empty (0 bytes)"),
        (bytes(range(200, 256)) * 10, "it starts with bytes c8 c9 ca cb cc cd ce cf"),
        (b"this is not a model at all\n" * 20, "it starts with 'this is '"),
        (b"<!DOCTYPE html>\n<html><head><title>Hugging Face</title>", "it is a web page"),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 1\n", "git lfs pull"),
        (b"PK\x03\x04" + bytes(60), "zip archive"),
        (b"\x80\x02}q\x00" + bytes(60), "Python pickle"),
    ],
    ids=["empty", "random", "text", "web-page", "lfs-pointer", "zip", "pickle"],
)
def test_a_garbage_gguf_file_says_what_it_is(
    tmp_path: Path, content: bytes, expected: str, stub_backend: list[dict[str, Any]]
) -> None:
    bad = tmp_path / "codellama-7b.gguf"
    bad.write_bytes(content)
    message = load_error(bad)
    assert message.startswith(str(bad))
    assert expected in message
    if content:
        assert "is not a GGUF file" in message
    assert stub_backend == []


def test_an_unsupported_gguf_version_is_named(tiny_gguf: Path) -> None:
    data = bytearray(tiny_gguf.read_bytes())
    data[4:8] = struct.pack("<I", 99)
    tiny_gguf.write_bytes(bytes(data))
    assert "is GGUF version 99, which code-llama-ls cannot read" in load_error(tiny_gguf)


def test_a_corrupt_gguf_header_is_named(tiny_gguf: Path) -> None:
    data = bytearray(tiny_gguf.read_bytes())
    key_length = struct.unpack_from("<Q", data, 24)[0]
    type_at = 24 + 8 + key_length
    data[type_at : type_at + 4] = struct.pack("<I", 77)  # the first value's type
    tiny_gguf.write_bytes(bytes(data))
    message = load_error(tiny_gguf)
    assert message.startswith(f"{tiny_gguf} is corrupt")
    assert "unknown value type 77" in message


def test_an_unknown_tensor_type_is_named(tiny_gguf: Path) -> None:
    data = bytearray(tiny_gguf.read_bytes())
    name = b"output.weight"
    at = data.index(name) + len(name)  # then n_dims, dims, type
    (n_dims,) = struct.unpack_from("<I", data, at)
    data[at + 4 + 8 * n_dims : at + 8 + 8 * n_dims] = struct.pack("<I", 250)
    tiny_gguf.write_bytes(bytes(data))
    message = load_error(tiny_gguf)
    assert f"{tiny_gguf} has a tensor 'output.weight' of type 250" in message


def test_a_truncated_gguf_file_fails_for_the_remote_backend_too(
    tiny_gguf: Path, tmp_path: Path
) -> None:
    from code_llama_ls.engine.remote_engine import RemoteSettings
    from code_llama_ls.engine.remote_http import HttpSettings

    bad = cut(tiny_gguf, gguf_data_start(tiny_gguf) + 5, tmp_path / "served.gguf")
    remote = RemoteSettings(HttpSettings("http://127.0.0.1:9"))
    assert "is truncated" in load_error(bad, backend="remote", remote=remote)


# -- model directories ---------------------------------------------------------


@pytest.mark.parametrize("weights", ["pytorch_model.bin", "model.pt", "last.ckpt"])
@pytest.mark.parametrize("with_config", [True, False], ids=["config", "no-config"])
def test_pickle_only_weights_are_refused_with_how_to_convert(
    tmp_path: Path, weights: str, with_config: bool, stub_backend: list[dict[str, Any]]
) -> None:
    directory = tmp_path / "CodeLlama-7b-pickles"
    directory.mkdir()
    if with_config:
        (directory / "config.json").write_text('{"model_type": "llama"}')
    (directory / weights).write_bytes(b"\x80\x02}q\x00.")
    message = load_error(directory)
    assert message.startswith(f"{directory} holds only PyTorch pickle weights ({weights})")
    assert "loads safetensors or GGUF only" in message
    assert "save_pretrained(NEW_DIR, safe_serialization=True)" in message
    assert stub_backend == []


def test_metas_original_checkpoint_is_recognised(tmp_path: Path) -> None:
    (tmp_path / "params.json").write_text("{}")
    (tmp_path / "consolidated.00.pth").write_bytes(b"PK\x03\x04")
    (tmp_path / "tokenizer.model").write_bytes(b"\x00")
    message = load_error(tmp_path)
    assert "holds Meta's original checkpoint (consolidated.00.pth, params.json)" in message
    assert "convert_llama_weights_to_hf.py" in message


def test_a_directory_without_config_json_says_what_it_holds(tmp_path: Path) -> None:
    directory = tmp_path / "downloads"
    directory.mkdir()
    assert load_error(directory) == (
        f"{directory} is empty: it is not a model directory (it has no config.json)."
    )
    (directory / "notes.txt").write_text("x")
    message = load_error(directory)
    assert f"{directory} is not a Hugging Face model directory (it has no config.json" in message
    assert "notes.txt" in message
    write_tiny_gguf(directory / "codellama.Q8_0.gguf")
    message = load_error(directory)
    assert f"set `model` to {directory / 'codellama.Q8_0.gguf'}" in message


def test_a_config_that_is_not_json_is_named(tmp_path: Path) -> None:
    directory = model_dir(tmp_path / "m")
    (directory / "config.json").write_text("{not json")
    assert load_error(directory).startswith(f"{directory / 'config.json'} is not valid JSON")


def test_a_directory_with_config_but_no_weights(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "tokenizer.json").write_text("{}")
    message = load_error(tmp_path)
    assert message.startswith(f"{tmp_path} has no model weights (*.safetensors)")
    assert "config.json, tokenizer.json" in message


def test_a_whole_model_directory_passes_and_reaches_the_backend(
    tmp_path: Path, stub_backend: list[dict[str, Any]]
) -> None:
    directory = model_dir(tmp_path / "tiny-llama")
    check_model_dir(directory)
    loaded: object = load_engine(str(directory), backend="transformers", device="cpu")
    assert loaded is STUB_ENGINE
    assert stub_backend[0]["source"] == directory
    assert stub_backend[0]["gguf_file"] is None


def test_a_truncated_safetensors_file_is_named(tmp_path: Path) -> None:
    directory = model_dir(tmp_path / "m")
    weights = directory / "model.safetensors"
    whole = weights.stat().st_size
    cut(weights, whole - 16, weights)
    message = load_error(directory)
    assert message.startswith(f"{weights} is truncated: {whole - 16:,} bytes")
    assert f"its tensors need {whole:,} bytes" in message and REFETCH in message
    cut(weights, 20, weights)  # inside the JSON header
    assert "its header alone needs" in load_error(directory)
    cut(weights, 5, weights)
    assert "too short for a safetensors header" in load_error(directory)


def test_a_safetensors_file_that_is_not_one_is_named(tmp_path: Path) -> None:
    directory = model_dir(tmp_path / "m")
    weights = directory / "model.safetensors"
    weights.write_bytes(b"version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 9\n")
    message = load_error(directory)
    assert message.startswith(f"{weights} is not a safetensors file: it is a Git LFS pointer")
    weights.write_bytes(struct.pack("<Q", 12) + b"{broken json" + bytes(64))
    assert load_error(directory).startswith(f"{weights} is corrupt: its safetensors header")


def test_a_shard_missing_from_the_index_is_named(tmp_path: Path) -> None:
    directory = tmp_path / "sharded"
    directory.mkdir()
    (directory / "config.json").write_text("{}")
    write_safetensors(directory / "model-00001-of-00002.safetensors")
    index = {
        "weight_map": {
            "a": "model-00001-of-00002.safetensors",
            "b": "model-00002-of-00002.safetensors",
        }
    }
    (directory / "model.safetensors.index.json").write_text(json.dumps(index))
    message = load_error(directory)
    assert message.startswith(f"{directory} lacks weight files that model.safetensors.index.json")
    assert "model-00002-of-00002.safetensors" in message


def test_the_remote_backend_needs_only_a_tokenizer(tmp_path: Path) -> None:
    from code_llama_ls.engine.remote_engine import RemoteEngine, RemoteSettings
    from code_llama_ls.engine.remote_http import HttpSettings

    remote = RemoteSettings(HttpSettings("http://127.0.0.1:9"))
    empty = tmp_path / "empty"
    empty.mkdir()
    message = load_error(empty, backend="remote", remote=remote)
    assert message.startswith(f"{empty} has no tokenizer")
    tokenizer_dir = build_code_llama_tokenizer(tmp_path / "codellama-tokenizer")
    assert not list(tokenizer_dir.glob("*.safetensors"))
    engine = load_engine(str(tokenizer_dir), backend="remote", remote=remote)
    assert isinstance(engine, RemoteEngine)  # lazily connected: nothing is contacted here


# -- paths -------------------------------------------------------------------


def test_a_missing_path_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "models" / "codellama-7b.Q4_K_M.gguf"
    message = load_error(missing)
    assert message.startswith(f"Model path {str(missing)!r} does not exist.")


def test_a_broken_link_names_its_target(tmp_path: Path) -> None:
    link = tmp_path / "current-model"
    os.symlink(tmp_path / "gone", link)
    message = load_error(link)
    assert message.startswith(f"Model path {str(link)!r} is a link to {str(tmp_path / 'gone')!r}")


# -- whatever a backend raises -------------------------------------------------


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (IndexError("index 0 is out of bounds for axis 0 with size 0"), "Could not load"),
        (ValueError("cannot reshape array of size 3 into shape (2,2)"), "Could not load"),
        (MemoryError(), "Not enough memory to load"),
        (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), "Not enough memory"),
    ],
    ids=["IndexError", "ValueError", "MemoryError", "cuda-oom"],
)
def test_load_engine_turns_any_backend_exception_into_a_named_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    raised: Exception,
    expected: str,
) -> None:
    from code_llama_ls.engine.transformers_engine import TransformersEngine

    def explode(source: object, **kwargs: Any) -> None:
        raise raised

    monkeypatch.setattr(TransformersEngine, "from_pretrained", staticmethod(explode))
    directory = model_dir(tmp_path / "tiny-llama")
    with caplog.at_level(logging.ERROR), pytest.raises(ModelLoadError) as caught:
        load_engine(str(directory), backend="transformers", device="cpu")
    message = str(caught.value)
    assert message.startswith(f"{expected}")
    assert str(directory) in message and type(raised).__name__ in message
    assert caught.value.__cause__ is raised
    assert [r.exc_info[1] for r in caplog.records if r.exc_info] == [raised]


class CountingLoader:
    """A loader that fails (with `failure`) or succeeds, counting its calls."""

    def __init__(self, failure: BaseException | None) -> None:
        self.failure = failure
        self.calls: list[str | None] = []

    def __call__(self, settings: EngineSettings, on_progress: ProgressCallback | None) -> Engine:
        self.calls.append(settings.model)
        if self.failure is not None:
            raise self.failure
        engine: Any = type("FakeEngine", (), {"name": str(settings.model), "device": "cpu"})()
        return engine  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (IndexError("index 0 is out of bounds for axis 0 with size 0"), "Could not load"),
        (ValueError("GGUF magic invalid"), "Could not load"),
        (KeyError("general.architecture"), "Could not load"),
        (MemoryError("Unable to allocate 12.6 GiB"), "Not enough memory to load"),
        (ModelLoadError("/m is truncated: 5 bytes"), "/m is truncated: 5 bytes"),
    ],
    ids=["IndexError", "ValueError", "KeyError", "MemoryError", "ModelLoadError"],
)
def test_the_engine_holder_remembers_any_failure_until_the_settings_change(
    failure: BaseException, expected: str, caplog: pytest.LogCaptureFixture
) -> None:
    loader = CountingLoader(failure)
    holder = EngineHolder(loader)
    settings = EngineSettings(model="/models/broken.gguf")
    with caplog.at_level(logging.ERROR), pytest.raises(ModelLoadError) as first:
        holder.get(settings)
    message = str(first.value)
    assert message.startswith(expected)
    if not isinstance(failure, ModelLoadError):
        assert "/models/broken.gguf" in message and type(failure).__name__ in message
        assert first.value.__cause__ is failure
        traced = [r for r in caplog.records if r.exc_info is not None]
        assert [r.exc_info[1] for r in traced if r.exc_info] == [failure]
    else:
        assert first.value is failure
    # Every later request: the same error at once, no new load attempt.
    for _ in range(5):
        with pytest.raises(ModelLoadError) as again:
            holder.get(settings)
        assert str(again.value) == message
    assert loader.calls == ["/models/broken.gguf"]
    assert len(list(_frames(again.value))) < 5  # tracebacks do not pile up per request
    if not isinstance(failure, ModelLoadError):
        # The remembered error keeps no frames of the failed load (nor what they hold).
        assert again.value.__cause__ is failure and failure.__traceback__ is None
    assert len([r for r in caplog.records if r.exc_info is not None]) <= 1
    # Other settings are another load; dropping the failed settings forgets the error.
    with pytest.raises(ModelLoadError):
        holder.get(EngineSettings(model="/models/other.gguf"))
    assert loader.calls == ["/models/broken.gguf", "/models/other.gguf"]
    holder.keep_only(EngineSettings(model="/models/fixed"))
    loader.failure = None
    assert holder.get(settings).name == "/models/broken.gguf"
    assert loader.calls[-1] == "/models/broken.gguf" and len(loader.calls) == 3


def test_a_remembered_failure_does_not_keep_the_half_loaded_model_alive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # pytest keeps log records, and the error's record holds the traceback.
    monkeypatch.setattr(logging.getLogger("code_llama_ls.serving.engines"), "disabled", True)

    class HalfLoaded:
        pass

    kept: list[weakref.ref[HalfLoaded]] = []

    def loader(settings: EngineSettings, on_progress: ProgressCallback | None) -> Engine:
        weights = HalfLoaded()
        kept.append(weakref.ref(weights))
        raise MemoryError("Unable to allocate 26.0 GiB")

    holder = EngineHolder(loader)
    for _ in range(3):
        with pytest.raises(ModelLoadError, match="Not enough memory to load /models/big"):
            holder.get(EngineSettings(model="/models/big"))
    gc.collect()
    assert len(kept) == 1 and kept[0]() is None


def test_a_failure_of_the_default_model_names_it() -> None:
    holder = EngineHolder(CountingLoader(OSError("No space left on device")))
    with pytest.raises(ModelLoadError, match=r"Could not load the default model \(SmolLM2"):
        holder.get(EngineSettings())


def test_keyboard_interrupt_is_not_swallowed() -> None:
    holder = EngineHolder(CountingLoader(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        holder.get(EngineSettings(model="/m"))


def test_load_engine_label_for_messages() -> None:
    assert loading.model_label(None).startswith("the default model")
    assert loading.model_label("codellama/CodeLlama-7b-hf") == "codellama/CodeLlama-7b-hf"
    assert loading.model_label("~/m.gguf") == str(Path("~/m.gguf").expanduser())


def _frames(exc: BaseException) -> Any:
    tb = exc.__traceback__
    while tb is not None:
        yield tb
        tb = tb.tb_next


class WarmingEngine:
    """A loaded engine that records its warm-up (and can fail it)."""

    def __init__(self, failure: Exception | None = None) -> None:
        self.name, self.device, self.warmed, self.failure = "warming", "cpu", 0, failure

    def warm_up(self) -> None:
        self.warmed += 1
        if self.failure is not None:
            raise self.failure


@pytest.mark.parametrize("failure", [None, RuntimeError("bad_alloc")], ids=["warm", "fails"])
def test_a_loaded_engine_is_warmed_up_once_before_it_is_handed_out(
    failure: Exception | None, caplog: pytest.LogCaptureFixture
) -> None:
    engine = WarmingEngine(failure)
    stages: list[str] = []
    holder = EngineHolder(lambda settings, progress: engine)  # type: ignore[arg-type,return-value]
    with caplog.at_level(logging.WARNING):
        got = holder.get(EngineSettings(), lambda message, fraction: stages.append(message))
        again = holder.get(EngineSettings())
    assert got is again is engine  # type: ignore[comparison-overlap]
    assert engine.warmed == 1 and stages == ["warming up warming"]
    # A failed warm-up is logged; the engine still serves (its first request reports it).
    assert ("warming up warming failed" in caplog.text) is (failure is not None)
