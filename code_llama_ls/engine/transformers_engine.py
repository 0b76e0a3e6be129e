"""The torch backend: a transformers causal LM behind the `Engine` interface.

Generation is a hand-written prefill + greedy decode loop rather than
`model.generate()`, so that cancellation, stop strings and streaming act per
token, and so that the key/value cache of the previous request can be kept:
when the next prompt shares a prefix with it (the prompt layout puts slowly
changing context first), only the new tail is prefilled.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from code_llama_ls.engine.base import (
    CancelToken,
    FinishReason,
    Generation,
    GenerationParams,
    find_stop_string,
    stream_safe_text,
)
from code_llama_ls.engine.hf_tokenizer import TransformersTokenizer
from code_llama_ls.errors import GenerationError, ModelLoadError
from code_llama_ls.tokens import TokenizerLike, decode_continuation

if TYPE_CHECKING:
    import torch
    from transformers import DynamicCache, PreTrainedModel

_DTYPE_ALIASES = {
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
}
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
_FALLBACK_CONTEXT = 2048


class TransformersEngine:
    """A loaded transformers causal LM that generates greedily, one token at a time."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: TransformersTokenizer,
        *,
        name: str,
        reuse_prefix: bool = True,
    ) -> None:
        """Wrap a loaded `model`; `reuse_prefix` keeps the last request's KV cache."""
        model.eval()  # type: ignore[no-untyped-call]
        self._model = model
        self.tokenizer: TokenizerLike = tokenizer
        self.hf_tokenizer = tokenizer
        self.name = name
        self.device = str(model.device)
        self.dtype = str(model.dtype).removeprefix("torch.")
        self.context_length = _context_length(model.config, tokenizer)
        self._reuse_prefix = reuse_prefix
        self._lock = threading.Lock()
        self._cache: DynamicCache | None = None
        self._cached_ids: list[int] = []
        # Computing logits for the last position only saves a [T, vocab] matrix
        # in the prefill (100 MB for 500 tokens of a 49k vocabulary in fp32).
        self._logits_to_keep = "logits_to_keep" in inspect.signature(model.forward).parameters

    @classmethod
    def from_pretrained(
        cls,
        source: str | Path,
        *,
        gguf_file: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        trust_remote_code: bool = False,
        name: str | None = None,
    ) -> TransformersEngine:
        """Load from a local directory, a GGUF file in `source`, or a hub id already cached.

        Never downloads (`local_files_only`) and never unpickles weights
        (safetensors or GGUF only).
        """
        import torch
        import transformers

        auto_model: Any = transformers.AutoModelForCausalLM
        auto_tokenizer: Any = transformers.AutoTokenizer
        if gguf_file is None and isinstance(source, Path):
            check_safetensors_dir(source)
        device_name = resolve_device(device)
        torch_dtype = getattr(torch, resolve_dtype(dtype, device_name))
        common: dict[str, Any] = {"local_files_only": True, "trust_remote_code": trust_remote_code}
        if gguf_file is not None:
            common["gguf_file"] = gguf_file
        model_kwargs: dict[str, Any] = {"dtype": torch_dtype}
        if gguf_file is None:
            model_kwargs["use_safetensors"] = True
        if device_name != "cpu":
            model_kwargs["device_map"] = {"": device_name}
        label = name or (Path(source).name if isinstance(source, Path) else str(source))
        try:
            hf_tokenizer = auto_tokenizer.from_pretrained(str(source), **common)
            model = auto_model.from_pretrained(str(source), **common, **model_kwargs)
        except ModelLoadError:
            raise
        except (OSError, ValueError, RuntimeError, ImportError, KeyError, MemoryError) as exc:
            raise ModelLoadError(_load_failure_message(label, exc)) from exc
        generation_config = getattr(model, "generation_config", None)
        eos = getattr(generation_config, "eos_token_id", None)
        tokenizer = TransformersTokenizer(hf_tokenizer, eos)
        return cls(model, tokenizer, name=label)

    def generate(
        self,
        prompt_ids: Sequence[int],
        params: GenerationParams,
        cancel: CancelToken,
        on_text: Callable[[str], bool] | None = None,
    ) -> Generation:
        """Greedy continuation of `prompt_ids`; see `Engine` for the contract."""
        prompt = [int(i) for i in prompt_ids]
        if not prompt:
            raise GenerationError("The prompt is empty: there is nothing to continue.")
        if len(prompt) >= self.context_length:
            raise GenerationError(
                f"The prompt has {len(prompt)} tokens but {self.name} holds "
                f"{self.context_length}: lower the context budget."
            )
        budget = min(params.max_new_tokens, self.context_length - len(prompt))
        with self._lock:
            if cancel.cancelled or budget == 0:
                finish: FinishReason = "cancelled" if cancel.cancelled else "length"
                return Generation("", (), finish, len(prompt), 0, 0.0, 0.0)
            return self._generate_locked(prompt, budget, params, cancel, on_text)

    def prefill_logits(self, prompt_ids: Sequence[int]) -> torch.Tensor:
        """Next-token logits after `prompt_ids` ([vocab], float32), reusing the cached prefix."""
        prompt = [int(i) for i in prompt_ids]
        if not prompt:
            raise GenerationError("The prompt is empty: there is nothing to continue.")
        with self._lock:
            cache, reused = self._take_cache(prompt)
            logits = self._forward(cache, prompt[reused:], reused, len(prompt))
            self._store_cache(cache, prompt)
            return logits.float().clone()

    def reset_cache(self) -> None:
        """Forget the kept KV cache (frees its memory; the next prompt is prefilled in full)."""
        with self._lock:
            self._store_cache(None, [])

    def warm_up(self, prompt_tokens: int = 64) -> None:
        """Run one small generation, so the first request does not pay for kernel setup."""
        text = "def warm_up(value):\n    return value + 1\n" * 16
        ids = self.tokenizer.encode(text)[:prompt_tokens]
        if ids:
            self.generate(ids, GenerationParams(2, frozenset()), CancelToken())
        self.reset_cache()

    def _generate_locked(
        self,
        prompt: list[int],
        budget: int,
        params: GenerationParams,
        cancel: CancelToken,
        on_text: Callable[[str], bool] | None,
    ) -> Generation:
        start = time.perf_counter()
        cache, reused = self._take_cache(prompt)
        logits = self._forward(cache, prompt[reused:], reused, len(prompt))
        next_id = int(logits.argmax().item())
        fed = list(prompt)  # ids whose keys/values are in `cache`
        prefill_end = time.perf_counter()

        generated: list[int] = []
        text = ""
        finish: FinishReason = "length"
        try:
            while True:
                if next_id in params.stop_ids:
                    finish = "stop"
                    break
                generated.append(next_id)
                text = decode_continuation(self.tokenizer, generated)
                cut = find_stop_string(text, params.stop_strings)
                if cut is not None:
                    text, finish = text[:cut], "stop-string"
                    break
                if on_text is not None:
                    seen = stream_safe_text(text, params.stop_strings)
                    if on_text(seen):
                        text, finish = seen, "callback"
                        break
                if len(generated) >= budget:
                    finish = "length"
                    break
                if cancel.cancelled:
                    finish = "cancelled"
                    break
                # [1, 1] input: one new position at index len(fed).
                logits = self._forward(cache, [next_id], len(fed), len(prompt))
                fed.append(next_id)
                next_id = int(logits.argmax().item())
        except GenerationError:
            raise
        except BaseException:
            # An error in the caller's on_text: the cache is consistent, keep it.
            self._store_cache(cache, fed)
            raise
        self._store_cache(cache, fed)
        end = time.perf_counter()
        return Generation(
            text=text,
            token_ids=tuple(generated),
            finish_reason=finish,
            prompt_tokens=len(prompt),
            cached_tokens=reused,
            prefill_ms=(prefill_end - start) * 1000.0,
            decode_ms=(end - prefill_end) * 1000.0,
        )

    def _take_cache(self, prompt: list[int]) -> tuple[DynamicCache, int]:
        """The kept cache cropped to the longest prefix it shares with `prompt`, or a new one.

        At least one prompt token is always left to compute: its logits give
        the first generated token.
        """
        from transformers import DynamicCache

        cache, cached_ids = self._cache, self._cached_ids
        self._store_cache(None, [])  # owned by this request until stored back
        if cache is None or not self._reuse_prefix or cache.get_seq_length() != len(cached_ids):
            return DynamicCache(), 0
        reuse = min(_common_prefix_length(cached_ids, prompt), len(prompt) - 1)
        if reuse <= 0:
            return DynamicCache(), 0
        if reuse < len(cached_ids):
            cache.crop(reuse)  # in place: the old request's tail is no longer needed
        return cache, reuse

    def _store_cache(self, cache: DynamicCache | None, ids: list[int]) -> None:
        if cache is None or not self._reuse_prefix:
            self._cache, self._cached_ids = None, []
        else:
            self._cache, self._cached_ids = cache, ids

    def _forward(
        self, cache: DynamicCache, ids: list[int], start: int, prompt_tokens: int
    ) -> torch.Tensor:
        """Logits of the last of `ids` ([vocab]), appending their keys/values to `cache`."""
        import torch

        try:
            with torch.inference_mode():
                input_ids = torch.tensor([ids], dtype=torch.long, device=self._model.device)
                positions = torch.arange(start, start + len(ids), device=self._model.device)
                extra = {"logits_to_keep": 1} if self._logits_to_keep else {}
                out = self._model(
                    input_ids=input_ids,  # [1, T]
                    past_key_values=cache,
                    use_cache=True,
                    cache_position=positions,  # [T]
                    **extra,
                )
                logits: torch.Tensor = out.logits[0, -1]  # [vocab]
                return logits
        except BaseException as exc:
            # A partial forward leaves the layers' caches at different lengths.
            self._store_cache(None, [])
            if _is_out_of_memory(exc):
                _release_cuda_memory()
                raise GenerationError(
                    f"Out of memory while running {self.name} on {self.device} "
                    f"({prompt_tokens} prompt tokens). Use a smaller model, a shorter "
                    "context (fewer prompt tokens or max new tokens), or the CPU "
                    '(device "cpu").'
                ) from exc
            if isinstance(exc, Exception):
                raise GenerationError(f"{self.name} failed while generating: {exc}") from exc
            raise


def check_safetensors_dir(path: Path) -> None:
    """Refuse a model directory that has no safetensors weights (pickle files can run code)."""
    if not (path / "config.json").is_file():
        raise ModelLoadError(
            f"{path} is not a Hugging Face model directory (it has no config.json)."
        )
    if any(path.glob("*.safetensors")) or (path / "model.safetensors.index.json").is_file():
        return
    pickles = sorted(p.name for p in path.iterdir() if p.suffix in _PICKLE_SUFFIXES)
    if pickles:
        raise ModelLoadError(
            f"{path} has only pickle weights ({', '.join(pickles[:3])}). code-llama-ls loads "
            "safetensors or GGUF only, because unpickling can run arbitrary code. Convert "
            "them on a machine you trust: AutoModelForCausalLM.from_pretrained(DIR)"
            ".save_pretrained(NEW_DIR, safe_serialization=True), then set `model` to NEW_DIR."
        )
    raise ModelLoadError(f"{path} has no model weights (*.safetensors).")


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'; other names are validated."""
    import torch

    wanted = device.strip().lower() or "auto"
    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(wanted)
    except (RuntimeError, ValueError) as exc:
        raise ModelLoadError(f"Unknown device {device!r}: use auto, cpu, cuda or cuda:N.") from exc
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(
            f"Device {device!r} was asked for, but torch {torch.__version__} sees no CUDA GPU: "
            "set the device to auto or cpu."
        )
    return str(parsed)


def resolve_dtype(dtype: str, device: str) -> str:
    """'auto' -> bf16 on CUDA (fp16 without bf16 support), fp32 on CPU (bf16 matmul is slow)."""
    import torch

    wanted = dtype.strip().lower() or "auto"
    if wanted == "auto":
        if device.startswith("cuda"):
            return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        return "float32"
    if wanted not in _DTYPE_ALIASES:
        raise ModelLoadError(f"Unknown dtype {dtype!r}: use auto, float32, bfloat16 or float16.")
    return _DTYPE_ALIASES[wanted]


def _load_failure_message(label: str, exc: BaseException) -> str:
    if _is_out_of_memory(exc):
        return (
            f"Not enough memory to load {label}: use a smaller model, or another device "
            "(a GPU with more memory, or the CPU)."
        )
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "trust_remote_code" in str(exc):
        return (
            f"{label} needs custom code from its repository, which is off by default: "
            f"enable trust_remote_code only if you trust it. ({text})"
        )
    if "safetensors" in str(exc):
        return (
            f"{label} has no safetensors weights here; code-llama-ls does not load pickle "
            f"weights (.bin), because unpickling can run code. ({text})"
        )
    return f"Could not load {label}: {text}"


def _context_length(config: Any, tokenizer: TransformersTokenizer) -> int:
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer.hf_tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 1_000_000:
        return limit
    return _FALLBACK_CONTEXT


def _common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _release_cuda_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
