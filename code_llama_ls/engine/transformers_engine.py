"""The torch backend: a transformers causal LM behind the `Engine` interface.

Generation is the shared prefill + greedy decode loop (`greedy.py`) rather
than `model.generate()`, so that cancellation, stop strings and streaming act
per token, and so that the key/value caches of recent requests are kept
(`prefix_cache.py`): when the next prompt shares a prefix with one of them
(the prompt layout puts slowly changing context first), only the new tail is
prefilled. On CUDA the fast path (`fast_path.py`) decodes with a static
cache and a compiled step.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from code_llama_ls.cancel import CancelToken
from code_llama_ls.engine.base import Generation, GenerationParams
from code_llama_ls.engine.branches import BatchUnsupported, batched_prompt_cache, decode_branches
from code_llama_ls.engine.greedy import FailureHandler, KvEngine, KvModel, checked_prompt
from code_llama_ls.engine.hf_tokenizer import TransformersTokenizer
from code_llama_ls.engine.model_files import check_model_dir
from code_llama_ls.engine.prefix_cache import DEFAULT_BUDGET_MIB, DEFAULT_ENTRIES, MIB
from code_llama_ls.engine.tokenizer_files import context_length_from
from code_llama_ls.errors import GenerationError, ModelLoadError

if TYPE_CHECKING:
    import torch
    from transformers import DynamicCache, PreTrainedModel

log = logging.getLogger(__name__)

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


class TransformersEngine(KvEngine[Any, "torch.Tensor"]):
    """A loaded transformers causal LM that generates greedily, one token at a time."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: TransformersTokenizer,
        *,
        name: str,
        prefix_cache_entries: int = DEFAULT_ENTRIES,
        prefix_cache_bytes: int | None = DEFAULT_BUDGET_MIB * MIB,
        fast_path: bool | None = None,
    ) -> None:
        """Wrap a loaded `model`.

        `prefix_cache_entries`: KV caches of recent prompts kept for reuse (0:
        none, every prompt is computed in full), at most `prefix_cache_bytes`
        of keys/values in all (None: no byte bound). `fast_path` (default: on
        CUDA): one preallocated static KV cache and a compiled decode step
        (see `fast_path.py`); it keeps a single cache entry.
        """
        model.eval()  # type: ignore[no-untyped-call]
        self._model = model
        self.hf_tokenizer = tokenizer
        self.device = str(model.device)
        self.dtype = str(model.dtype).removeprefix("torch.")
        context = context_length_from(model.config.to_dict(), tokenizer)
        self.fast_path = model.device.type == "cuda" if fast_path is None else fast_path
        self._batch_unsupported = False
        kv: KvModel[Any, torch.Tensor]
        if self.fast_path:
            from code_llama_ls.engine.fast_path import StaticKvModel

            static = StaticKvModel(model, context, self._failure)
            kv, context = static, static.max_length
            prefix_cache_entries = min(prefix_cache_entries, 1)  # one static buffer
        else:
            kv = DynamicKvModel(model, self._failure)
        super().__init__(
            kv,
            tokenizer,
            name=name,
            context_length=context,
            prefix_cache_entries=prefix_cache_entries,
            prefix_cache_bytes=prefix_cache_bytes,
        )

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
        prefix_cache_entries: int = DEFAULT_ENTRIES,
        prefix_cache_bytes: int | None = DEFAULT_BUDGET_MIB * MIB,
    ) -> TransformersEngine:
        """Load from a local directory, a GGUF file in `source`, or a hub id already cached.

        Never downloads (`local_files_only`) and never unpickles weights
        (safetensors or GGUF only). On CUDA: SDPA attention and the fast path.
        """
        import torch
        import transformers

        auto_model: Any = transformers.AutoModelForCausalLM
        auto_tokenizer: Any = transformers.AutoTokenizer
        if gguf_file is None and isinstance(source, Path):
            check_model_dir(source)
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
            model_kwargs["attn_implementation"] = "sdpa"
        label = name or (Path(source).name if isinstance(source, Path) else str(source))
        # Messages name the file or directory as the user set it, not the short label.
        where = str(Path(source) / gguf_file) if gguf_file is not None else str(source)
        try:
            hf_tokenizer = auto_tokenizer.from_pretrained(str(source), **common)
            model = auto_model.from_pretrained(str(source), **common, **model_kwargs)
        except ModelLoadError:
            raise
        except (OSError, ValueError, RuntimeError, ImportError, KeyError, MemoryError) as exc:
            raise ModelLoadError(_load_failure_message(where, exc)) from exc
        generation_config = getattr(model, "generation_config", None)
        eos = getattr(generation_config, "eos_token_id", None)
        tokenizer = TransformersTokenizer(hf_tokenizer, eos)
        return cls(
            model,
            tokenizer,
            name=label,
            prefix_cache_entries=prefix_cache_entries,
            prefix_cache_bytes=prefix_cache_bytes,
        )

    def prefill_logits(self, prompt_ids: Sequence[int]) -> torch.Tensor:
        """Next-token logits after `prompt_ids` ([vocab], float32), reusing a kept prefix.

        Dynamic cache only (tests compare logits with and without reuse).
        """
        if not isinstance(self._kv, DynamicKvModel):
            raise GenerationError("prefill_logits needs the dynamic KV cache (fast path off)")
        return super().prefill_logits(prompt_ids).float().clone()

    def generate_branches(
        self,
        prompt_ids: Sequence[int],
        first_ids: Sequence[int],
        params: GenerationParams,
        cancel: CancelToken,
        on_text_for: Callable[[int], Callable[[str], bool]] | None = None,
    ) -> list[Generation]:
        """All branches as one batch (`branches.py`); one by one when there is only one, or
        when the kept cache cannot be copied into a batch."""
        if len(first_ids) < 2 or self._batch_unsupported:
            return super().generate_branches(prompt_ids, first_ids, params, cancel, on_text_for)
        prompt = checked_prompt(prompt_ids, self.context_length, self.name)
        budget = min(params.max_new_tokens, self.context_length - len(prompt) - 1)
        if cancel.cancelled or budget <= 0:
            return super().generate_branches(prompt_ids, first_ids, params, cancel, on_text_for)
        with self._lock:
            taken, reused = self._kept.take(prompt, self._kv.crop)
            cache = self._kv.empty_cache() if taken is None else taken
            cache, _ = self._kv.logits(cache, prompt[reused:], reused)
            try:
                batch = batched_prompt_cache(cache, len(prompt), len(first_ids))
            except BatchUnsupported as exc:
                log.info("alternatives are written one by one: %s", exc)
                self._batch_unsupported = True
                batch = None
            self._kept.put(prompt, cache)
            if batch is not None:
                try:
                    return decode_branches(
                        self._model,
                        batch,
                        len(prompt),
                        first_ids,
                        self.tokenizer,
                        budget,
                        params,
                        cancel,
                        on_text_for,
                    )
                except BaseException as exc:
                    failure = self._failure(exc, len(prompt) + len(first_ids))
                    if failure is exc:
                        raise
                    raise failure from exc
        return super().generate_branches(prompt_ids, first_ids, params, cancel, on_text_for)

    def _failure(self, exc: BaseException, prompt_tokens: int) -> BaseException:
        """What to raise for an exception from a forward pass."""
        if _is_out_of_memory(exc):
            _release_cuda_memory()
            return GenerationError(
                f"Out of memory while running {self.name} on {self.device} "
                f"({prompt_tokens} tokens fed). Use a smaller model, a shorter "
                "context (fewer prompt tokens or max new tokens), or the CPU "
                '(device "cpu").'
            )
        if isinstance(exc, Exception) and not isinstance(exc, GenerationError):
            return GenerationError(f"{self.name} failed while generating: {exc}")
        return exc


class DynamicKvModel:
    """Forward steps over a growing `DynamicCache` (the default on CPU)."""

    def __init__(self, model: PreTrainedModel, on_failure: FailureHandler) -> None:
        self._model = model
        self._on_failure = on_failure
        # Computing logits for the last position only saves a [T, vocab] matrix
        # in the prefill (100 MB for 500 tokens of a 49k vocabulary in fp32).
        self._logits_to_keep = "logits_to_keep" in inspect.signature(model.forward).parameters

    def empty_cache(self) -> DynamicCache:
        """A new empty cache."""
        from transformers import DynamicCache

        return DynamicCache()

    def crop(self, cache: DynamicCache, length: int) -> DynamicCache:
        """`cache` cut to `length` positions, in place."""
        cache.crop(length)
        return cache

    def forward(self, cache: DynamicCache, ids: list[int], start: int) -> tuple[DynamicCache, int]:
        """Append `ids` at positions start..; the cache and the greedy next id."""
        cache, logits = self.logits(cache, ids, start)
        return cache, int(logits.argmax().item())

    def logits(
        self, cache: DynamicCache, ids: list[int], start: int
    ) -> tuple[DynamicCache, torch.Tensor]:
        """Append `ids` at positions start..; the cache and the last position's logits ([vocab])."""
        import torch

        try:
            with torch.inference_mode():
                device = self._model.device
                extra = {"logits_to_keep": 1} if self._logits_to_keep else {}
                out = self._model(
                    input_ids=torch.tensor([ids], dtype=torch.long, device=device),  # [1, T]
                    past_key_values=cache,
                    use_cache=True,
                    cache_position=torch.arange(start, start + len(ids), device=device),  # [T]
                    **extra,
                )
                logits: torch.Tensor = out.logits[0, -1]  # [vocab]
                return cache, logits
        except BaseException as exc:
            failure = self._on_failure(exc, start + len(ids))
            if failure is exc:
                raise
            raise failure from exc


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
