"""Check what the `model` setting points at before a backend reads it.

transformers, ONNX Runtime and the gguf reader meet a damaged model with
whatever exception their parser hits first: an `IndexError` from a GGUF file
cut off in its header, "cannot reshape array" from one cut off in its tensor
data, naming no file. These checks read only headers (a GGUF file's metadata
and tensor table, each safetensors file's JSON header, never the weights) and
raise one `ModelLoadError` that names the file, says what is wrong with it
and what to do:

- a `.gguf` file that is empty, not GGUF at all (an HTML page saved by a
  download, a Git LFS pointer), of a GGUF version the reader cannot read,
  cut off before the end of its header or of its tensors, or corrupt;
- a model directory without `config.json`, with PyTorch pickle weights only
  (they are never loaded: unpickling can run code), with no weights, with a
  shard missing from `model.safetensors.index.json`, or with a safetensors
  file that is cut off or not safetensors;
- a tokenizer directory (the remote backend) without tokenizer files.

`load_failure` turns any other exception a backend raises while loading into
a `ModelLoadError` that names the model.
"""

from __future__ import annotations

import json
import mmap
import struct
from pathlib import Path

from code_llama_ls.errors import ModelLoadError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
"""Weight files that are Python pickles (PyTorch's own formats)."""
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "vocab.json")
"""Any of these makes a directory something transformers can build a tokenizer from."""

_SAFETENSORS_INDEX = "model.safetensors.index.json"
_SAFETENSORS_MAX_HEADER = 100_000_000  # the safetensors library refuses larger headers
_GGUF_MAGIC = b"GGUF"
_GGUF_VERSIONS = (2, 3)  # what gguf's GGUFReader (and so transformers) reads
_GGUF_DEFAULT_ALIGNMENT = 32
_GGUF_MAX_DIMS = 4  # GGML_MAX_DIMS
_GGUF_MAX_COUNT = 1 << 32  # more strings, array items, keys or tensors than this: corrupt
_GGUF_STRING, _GGUF_ARRAY, _GGUF_UINT32 = 8, 9, 4
# Sizes of GGUF's scalar metadata types, by type code.
_GGUF_SCALARS = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_REFETCH = "The download or copy was probably interrupted: fetch the file again."


# -- GGUF -------------------------------------------------------------------


def check_gguf_file(path: Path) -> None:
    """Raise ModelLoadError unless `path` is a whole GGUF file the gguf reader can read.

    Reads the header and tensor table only, never the weights (0.15 s for a
    header with a 49k-token vocabulary and its merges): checks the magic, the
    version, that every metadata value and tensor entry is complete and
    known, and that each tensor's data lies within the file.
    """
    try:
        size = path.stat().st_size
        if size == 0:
            raise ModelLoadError(f"{path} is empty (0 bytes), not a GGUF model. {_REFETCH}")
        with path.open("rb") as handle:
            start = handle.read(8)
            if size < 24 and _GGUF_MAGIC.startswith(start[:4]):
                raise ModelLoadError(
                    f"{path} is truncated: {size} bytes, but a GGUF header needs at least 24. "
                    + _REFETCH
                )
            if start[:4] != _GGUF_MAGIC:
                looks = describe_start(start, handle)
                if looks.startswith("it starts with"):
                    looks += ", where a GGUF file starts with 'GGUF'"
                raise ModelLoadError(
                    f"{path} is not a GGUF file: {looks}. Set `model` to a .gguf model file "
                    "(or a model directory, or a hub id)."
                )
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                needed = _gguf_extent(path, data, size)
    except OSError as exc:
        raise ModelLoadError(f"{path} cannot be read ({exc.strerror or exc}).") from exc
    if needed > size:
        raise ModelLoadError(
            f"{path} is truncated: {size:,} bytes, but its header and tensors need "
            f"{needed:,} bytes ({size / needed:.0%} present). {_REFETCH}"
        )


class _Truncated(Exception):
    """The header runs past the end of the file: it needs at least `needed` bytes."""

    def __init__(self, needed: int) -> None:
        super().__init__(needed)
        self.needed = needed


class _Corrupt(Exception):
    """The header holds something no GGUF writer produces."""


class _GgufCursor:
    """Reads GGUF header fields from a memory map, bounds-checked."""

    def __init__(self, data: mmap.mmap, size: int, order: str) -> None:
        self._data = data
        self._size = size
        self._order = order
        self._layouts: dict[str, struct.Struct] = {}
        self.offset = 0

    def unpack(self, fmt: str) -> tuple[int, ...]:
        layout = self._layouts.get(fmt)
        if layout is None:
            layout = self._layouts[fmt] = struct.Struct(self._order + fmt)
        self._need(layout.size)
        values = layout.unpack_from(self._data, self.offset)
        self.offset += layout.size
        return tuple(int(v) for v in values)

    def skip(self, count: int) -> None:
        self._need(count)
        self.offset += count

    def string(self) -> bytes:
        start = self.offset + 8
        self.skip_string()
        return bytes(self._data[start : self.offset])

    def skip_string(self) -> None:
        (length,) = self.unpack("Q")
        if length >= _GGUF_MAX_COUNT:
            raise _Corrupt(f"a string of {length:,} bytes at byte {self.offset - 8:,}")
        self.skip(length)

    def value(self, kind: int) -> int | None:
        """Skip one metadata value of type `kind`; a scalar's value is returned."""
        if kind in _GGUF_SCALARS:
            fmt = {1: "B", 2: "H", 4: "I", 8: "Q"}[_GGUF_SCALARS[kind]]
            return self.unpack(fmt)[0]
        if kind == _GGUF_STRING:
            self.skip_string()
            return None
        if kind == _GGUF_ARRAY:
            item_kind, count = self.unpack("IQ")
            if count >= _GGUF_MAX_COUNT:
                raise _Corrupt(f"an array of {count:,} items at byte {self.offset - 12:,}")
            if item_kind in _GGUF_SCALARS:
                self.skip(count * _GGUF_SCALARS[item_kind])
            elif item_kind in (_GGUF_STRING, _GGUF_ARRAY):
                for _ in range(count):
                    self.value(item_kind)
            else:
                raise _Corrupt(f"an unknown value type {item_kind} at byte {self.offset - 12:,}")
            return None
        raise _Corrupt(f"an unknown value type {kind} at byte {self.offset - 4:,}")

    def _need(self, count: int) -> None:
        if self.offset + count > self._size:
            raise _Truncated(self.offset + count)


def _gguf_extent(path: Path, data: mmap.mmap, size: int) -> int:
    """Bytes the file must have for its header and every tensor's data; raises on a bad header."""
    (version,) = struct.unpack_from("<I", data, 4)
    order = "<"
    if version & 0xFFFF == 0:  # written on a machine of the other byte order
        order, (version,) = ">", struct.unpack_from(">I", data, 4)
    if version not in _GGUF_VERSIONS:
        raise ModelLoadError(
            f"{path} is GGUF version {version}, which code-llama-ls cannot read (it reads "
            f"versions {' and '.join(map(str, _GGUF_VERSIONS))}): convert the model again "
            "with a current llama.cpp (convert_hf_to_gguf.py)."
        )
    cursor = _GgufCursor(data, size, order)
    cursor.offset = 8
    try:
        tensor_count, kv_count = cursor.unpack("QQ")
        if tensor_count >= _GGUF_MAX_COUNT or kv_count >= _GGUF_MAX_COUNT:
            raise _Corrupt(f"{tensor_count:,} tensors and {kv_count:,} metadata keys")
        alignment = _GGUF_DEFAULT_ALIGNMENT
        for _ in range(kv_count):
            key = cursor.string()
            (kind,) = cursor.unpack("I")
            value = cursor.value(kind)
            if key == b"general.alignment" and kind == _GGUF_UINT32 and value is not None:
                alignment = value
        if alignment <= 0 or alignment & (alignment - 1):
            raise _Corrupt(f"an alignment of {alignment} (not a power of two)")
        tensors = [_gguf_tensor(path, cursor) for _ in range(tensor_count)]
    except _Truncated as short:
        raise ModelLoadError(
            f"{path} is truncated: {size:,} bytes, but its header alone needs at least "
            f"{short.needed:,}. {_REFETCH}"
        ) from None
    except _Corrupt as bad:
        raise ModelLoadError(
            f"{path} is corrupt: its GGUF header has {bad}. Fetch or convert the file again."
        ) from None
    data_start = -(-cursor.offset // alignment) * alignment
    return max([data_start, *(data_start + offset + length for offset, length in tensors)])


def _gguf_tensor(path: Path, cursor: _GgufCursor) -> tuple[int, int]:
    """One tensor-table entry: its data's offset (from the data start) and length in bytes."""
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    name = cursor.string().decode("utf-8", "replace")
    (n_dims,) = cursor.unpack("I")
    if n_dims > _GGUF_MAX_DIMS:
        raise _Corrupt(f"a tensor {name!r} with {n_dims} dimensions")
    dims = cursor.unpack("Q" * n_dims)
    kind, offset = cursor.unpack("IQ")
    try:
        block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(kind)]
    except (ValueError, KeyError):
        import gguf

        raise ModelLoadError(
            f"{path} has a tensor {name!r} of type {kind}, which the installed gguf package "
            f"({getattr(gguf, '__version__', 'this version')}) does not know: the file is "
            "damaged, or newer than gguf (pip install -U gguf)."
        ) from None
    elements = 1
    for dim in dims:
        elements *= dim
    return offset, elements * type_size // block


def describe_start(start: bytes, handle: object = None) -> str:
    """What a file that should be a model looks like from its first bytes, for a message."""
    head = start
    read = getattr(handle, "read", None)
    if callable(read):
        more = read(56)
        head = start + (more if isinstance(more, bytes) else b"")
    lowered = head.lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head")):
        return (
            "it is a web page (a download that saved the page instead of the file? "
            "download the file itself, e.g. the hub's .../resolve/main/FILE link)"
        )
    if head.startswith(b"version https://git-lfs"):
        return (
            "it is a Git LFS pointer, not the file itself (run `git lfs pull` where it was cloned)"
        )
    if head.startswith(b"PK\x03\x04"):
        return "it is a zip archive (a PyTorch checkpoint?)"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "it is a Python pickle (a PyTorch checkpoint?)"
    first = start[:8]
    text = first.decode("ascii", "replace")
    if text.isprintable() and "\ufffd" not in text:
        return f"it starts with {text!r}"
    return f"it starts with bytes {first.hex(' ')}"


# -- model and tokenizer directories -----------------------------------------


def check_model_dir(path: Path) -> None:
    """Raise ModelLoadError unless `path` is a Hugging Face model directory with whole safetensors.

    Needs config.json and safetensors weights (every shard the index names);
    reads only each safetensors file's JSON header.
    """
    try:
        names = sorted(child.name for child in path.iterdir())
    except OSError as exc:
        raise ModelLoadError(f"{path} cannot be read ({exc.strerror or exc}).") from exc
    safetensors = [name for name in names if name.endswith(".safetensors")]
    has_index = _SAFETENSORS_INDEX in names
    pickles = [name for name in names if name.endswith(PICKLE_SUFFIXES)]
    if not safetensors and not has_index and pickles:
        raise ModelLoadError(_pickle_message(path, pickles, names))
    if "config.json" not in names:
        raise ModelLoadError(_no_config_message(path, names))
    _check_config(path / "config.json")
    if not safetensors and not has_index:
        raise ModelLoadError(
            f"{path} has no model weights (*.safetensors): it holds {_listing(names)}. "
            "Download the model's *.safetensors files into it, or set `model` to a .gguf file."
        )
    shards = _indexed_shards(path) if has_index else safetensors
    missing = [name for name in shards if name not in names]
    if missing:
        raise ModelLoadError(
            f"{path} lacks weight files that {_SAFETENSORS_INDEX} lists: {_listing(missing)}. "
            "The download was probably interrupted: download the missing files."
        )
    for name in shards:
        check_safetensors_file(path / name)


def check_tokenizer_dir(path: Path) -> None:
    """Raise ModelLoadError unless `path` holds a tokenizer (all the remote backend reads)."""
    try:
        names = sorted(child.name for child in path.iterdir())
    except OSError as exc:
        raise ModelLoadError(f"{path} cannot be read ({exc.strerror or exc}).") from exc
    if any(name in TOKENIZER_FILES for name in names):
        return
    ggufs = [name for name in names if name.endswith(".gguf")]
    hint = f" It holds {ggufs[0]}: set `model` to that file." if ggufs else ""
    raise ModelLoadError(
        f"{path} has no tokenizer ({', '.join(TOKENIZER_FILES)}).{hint} With the remote "
        "backend, `model` is the served model's tokenizer: for example "
        "`huggingface-cli download codellama/CodeLlama-7b-hf tokenizer.json "
        "tokenizer_config.json special_tokens_map.json config.json --local-dir DIR`, "
        "then set `model` to DIR."
    )


def check_safetensors_file(path: Path) -> None:
    """Raise ModelLoadError unless `path` has a readable safetensors header and all its data."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            start = handle.read(8)
            if len(start) < 8:
                raise ModelLoadError(
                    f"{path} is truncated: {size} bytes, too short for a safetensors header. "
                    + _REFETCH
                )
            (length,) = struct.unpack("<Q", start)
            if length > _SAFETENSORS_MAX_HEADER:
                handle.seek(0)
                raise ModelLoadError(
                    f"{path} is not a safetensors file: {describe_start(handle.read(8), handle)}."
                )
            if 8 + length > size:
                raise ModelLoadError(
                    f"{path} is truncated: {size:,} bytes, but its header alone needs "
                    f"{8 + length:,}. {_REFETCH}"
                )
            raw = handle.read(length)
    except OSError as exc:
        raise ModelLoadError(f"{path} cannot be read ({exc.strerror or exc}).") from exc
    try:
        header = json.loads(raw)
        ends = [
            int(entry["data_offsets"][1]) for key, entry in header.items() if key != "__metadata__"
        ]
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise ModelLoadError(
            f"{path} is corrupt: its safetensors header is not readable ({exc}). "
            "Fetch or convert the file again."
        ) from None
    needed = 8 + length + max(ends, default=0)
    if needed > size:
        raise ModelLoadError(
            f"{path} is truncated: {size:,} bytes, but its header says its tensors need "
            f"{needed:,} bytes ({size / needed:.0%} present). {_REFETCH}"
        )


def _pickle_message(path: Path, pickles: list[str], names: list[str]) -> str:
    if "params.json" in names and any(name.startswith("consolidated.") for name in pickles):
        return (
            f"{path} holds Meta's original checkpoint ({_listing(pickles)}, params.json), "
            "PyTorch pickle weights: code-llama-ls loads safetensors or GGUF only (unpickling "
            "can run code). Convert it with transformers' convert_llama_weights_to_hf.py on a "
            "machine you trust, or use the Hugging Face release (codellama/CodeLlama-7b-hf)."
        )
    return (
        f"{path} holds only PyTorch pickle weights ({_listing(pickles)}); code-llama-ls loads "
        "safetensors or GGUF only, because unpickling can run arbitrary code. Convert them "
        "on a machine you trust: AutoModelForCausalLM.from_pretrained(DIR)"
        ".save_pretrained(NEW_DIR, safe_serialization=True), copy the tokenizer files "
        "along, then set `model` to NEW_DIR."
    )


def _no_config_message(path: Path, names: list[str]) -> str:
    if not names:
        return f"{path} is empty: it is not a model directory (it has no config.json)."
    ggufs = [name for name in names if name.endswith(".gguf")]
    if ggufs:
        return (
            f"{path} is not a Hugging Face model directory (it has no config.json), but it "
            f"holds {_listing(ggufs)}: set `model` to {path / ggufs[0]}."
        )
    return (
        f"{path} is not a Hugging Face model directory (it has no config.json; it holds "
        f"{_listing(names)}). Set `model` to a directory with config.json and *.safetensors, "
        "or to a .gguf file."
    )


def _check_config(path: Path) -> None:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelLoadError(f"{path} cannot be read ({exc.strerror or exc}).") from exc
    except ValueError as exc:
        raise ModelLoadError(f"{path} is not valid JSON ({exc}).") from None
    if not isinstance(config, dict):
        raise ModelLoadError(f"{path} is not a model config (a JSON object).")


def _indexed_shards(path: Path) -> list[str]:
    index = path / _SAFETENSORS_INDEX
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        return sorted({str(name) for name in weight_map.values()})
    except OSError as exc:
        raise ModelLoadError(f"{index} cannot be read ({exc.strerror or exc}).") from exc
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ModelLoadError(
            f"{index} is corrupt (no readable weight_map: {exc}). Fetch it again."
        ) from None


def _listing(names: list[str], most: int = 3) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


# -- any other failure --------------------------------------------------------


def load_failure(model: str, exc: BaseException) -> ModelLoadError:
    """A ModelLoadError naming `model` for an exception a backend raised while loading it.

    The caller chains `exc` (``raise load_failure(...) from exc``) and logs its
    traceback: the message is for the user, the traceback for a bug report.
    """
    if isinstance(exc, ModelLoadError):
        return exc
    detail = _first_line(exc)
    if is_out_of_memory(exc):
        return ModelLoadError(
            f"Not enough memory to load {model} ({detail}): use a smaller or more quantized "
            "model, another device (a GPU with more memory, or the CPU), or close programs "
            "that use much memory."
        )
    return ModelLoadError(
        f"Could not load {model}: {detail}. Its files may be damaged or in a form this "
        "version cannot read: check them (or fetch them again), or set `model` to another "
        "model. The server log has the details."
    )


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` is running out of host or GPU memory (torch's error is a RuntimeError)."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    if len(first) > 300:
        first = first[:300] + "…"
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
