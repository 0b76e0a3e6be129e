"""Tests of the engine: the generation contract, prefix-KV reuse, loading rules and errors.

A tiny random Llama and a byte-level BPE tokenizer trained on a few lines are
built locally (no download); the model is random, so the tests compare the
engine against itself and against `model.generate`, never against text.
"""

from __future__ import annotations

import itertools
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from code_llama_ls.cancel import CancelToken
from code_llama_ls.engine.base import (
    Generation,
    GenerationParams,
    find_stop_string,
    stream_safe_text,
)
from code_llama_ls.engine.hf_tokenizer import TransformersTokenizer
from code_llama_ls.engine.loading import load_engine, looks_like_hub_id
from code_llama_ls.engine.transformers_engine import (
    TransformersEngine,
    resolve_device,
    resolve_dtype,
)
from code_llama_ls.errors import GenerationError, ModelLoadError
from code_llama_ls.tokens.tokenizer import decode_continuation

TRAINING_LINES = [
    "def add(a, b):\n    return a + b\n",
    "def greet(name):\n    print('hello ' + name)\n",
    "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = y\n",
    "for i in range(10):\n    total += i * 2\n",
    "if value is None:\n    raise ValueError('missing value')\n",
    "import os\nimport sys\nfrom pathlib import Path\n",
    "while queue:\n    item = queue.pop()\n    seen.add(item)\n",
    "return {'name': name, 'size': len(items)}\n",
]
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)
MAX_POSITIONS = 256


def _build_tokenizer(add_bos: bool) -> PreTrainedTokenizerFast:
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    # Only the training text's characters: the random model then never emits
    # half of a multi-byte character, and every decoded text is plain ASCII.
    trainer = trainers.BpeTrainer(
        vocab_size=200, special_tokens=["<s>", "</s>", "<unk>", "<|im_end|>"], show_progress=False
    )
    backend.train_from_iterator(TRAINING_LINES * 4, trainer=trainer)
    if add_bos:
        backend.post_processor = processors.TemplateProcessing(
            single="<s> $A", special_tokens=[("<s>", backend.token_to_id("<s>"))]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        additional_special_tokens=["<|im_end|>"],
        chat_template=CHAT_TEMPLATE,
        clean_up_tokenization_spaces=False,
    )


def _build_model(vocab_size: int, tokenizer: PreTrainedTokenizerFast) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=MAX_POSITIONS,
        rope_theta=10000.0,
        # Large random weights: greedy output wanders instead of repeating one token.
        initializer_range=0.5,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id
    )
    return model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = _build_tokenizer(add_bos=True)
    model = _build_model(len(tokenizer), tokenizer)
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def engine(model_dir: Path) -> TransformersEngine:
    return TransformersEngine.from_pretrained(model_dir, device="cpu")


@pytest.fixture()
def fresh(engine: TransformersEngine) -> Iterator[TransformersEngine]:
    """The shared engine with an empty KV cache (and no monkeypatched forward left over)."""
    engine.reset_cache()
    yield engine
    engine.reset_cache()


def _prompt(engine: TransformersEngine, text: str = "def add(a, b):\n    return") -> list[int]:
    bos = engine.tokenizer.bos_token_id
    return ([bos] if bos is not None else []) + engine.tokenizer.encode(text)


def _run(
    engine: TransformersEngine,
    prompt: list[int],
    max_new_tokens: int = 24,
    stop_ids: frozenset[int] = frozenset(),
    stop_strings: tuple[str, ...] = (),
    **kwargs: Any,
) -> Generation:
    params = GenerationParams(max_new_tokens, stop_ids, stop_strings)
    return engine.generate(prompt, params, kwargs.pop("cancel", CancelToken()), **kwargs)


# --- the tokenizer adapter -------------------------------------------------------------


def test_tokenizer_adapter_encodes_like_transformers_without_special_tokens(
    engine: TransformersEngine,
) -> None:
    tokenizer = engine.tokenizer
    hf = engine.hf_tokenizer.hf_tokenizer
    text = "def greet(name):\n    print('hello ' + name)\n"
    assert tokenizer.encode(text) == hf.encode(text, add_special_tokens=False)
    assert tokenizer.decode(tokenizer.encode(text)) == text
    assert tokenizer.bos_token_id == hf.convert_tokens_to_ids("<s>")
    assert tokenizer.stop_token_ids == {
        hf.convert_tokens_to_ids("</s>"),
        hf.convert_tokens_to_ids("<|im_end|>"),
    }
    assert tokenizer.token_to_id("<s>") == hf.convert_tokens_to_ids("<s>")
    assert tokenizer.token_to_id("no such token") is None  # not the unk id


def test_tokenizer_adapter_chat_template_and_bos_detection() -> None:
    hf = _build_tokenizer(add_bos=False)
    tokenizer = TransformersTokenizer(hf, generation_eos=[hf.convert_tokens_to_ids("<unk>")])
    assert tokenizer.bos_token_id is None  # has a BOS token, but does not add it
    assert hf.convert_tokens_to_ids("<unk>") in tokenizer.stop_token_ids
    messages = [{"role": "user", "content": "explain add"}]
    ids = tokenizer.apply_chat_template(messages)
    assert ids == hf.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    assert tokenizer.decode(ids or []) == "user: explain add\nassistant:"
    hf.chat_template = None
    assert TransformersTokenizer(hf).apply_chat_template(messages) is None


# --- the generation contract -------------------------------------------------------------


def test_streams_growing_text_once_per_token(fresh: TransformersEngine) -> None:
    seen: list[str] = []
    result = _run(fresh, _prompt(fresh), on_text=lambda text: seen.append(text) is not None)
    assert result.finish_reason == "length"
    assert len(result.token_ids) == 24 == len(seen)
    for before, after in itertools.pairwise(seen):
        assert after.startswith(before)
    assert seen[-1] == result.text
    assert result.text == decode_continuation(fresh.tokenizer, result.token_ids)
    assert result.prompt_tokens == len(_prompt(fresh))
    assert result.prefill_ms > 0 and result.decode_ms > 0


def test_greedy_generation_is_deterministic(fresh: TransformersEngine) -> None:
    first = _run(fresh, _prompt(fresh))
    fresh.reset_cache()
    second = _run(fresh, _prompt(fresh))
    assert first.token_ids == second.token_ids
    assert len(set(first.token_ids)) > 3, "the tiny model should not repeat a single token"


def test_matches_transformers_generate(fresh: TransformersEngine) -> None:
    prompt = _prompt(fresh)
    result = _run(fresh, prompt, max_new_tokens=20)
    config = GenerationConfig(
        max_new_tokens=20,
        do_sample=False,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=fresh.tokenizer.token_to_id("<unk>"),
    )
    input_ids = torch.tensor([prompt])
    with torch.inference_mode():
        reference = fresh._model.generate(
            input_ids, attention_mask=torch.ones_like(input_ids), generation_config=config
        )
    assert list(result.token_ids) == reference[0, len(prompt) :].tolist()


def test_stops_at_a_stop_id_which_is_left_out(fresh: TransformersEngine) -> None:
    baseline = _run(fresh, _prompt(fresh)).token_ids
    k = next(i for i in range(2, len(baseline)) if baseline[i] not in baseline[:i])
    result = _run(fresh, _prompt(fresh), stop_ids=frozenset({baseline[k]}))
    assert result.finish_reason == "stop"
    assert result.token_ids == baseline[:k]
    assert result.text == decode_continuation(fresh.tokenizer, baseline[:k])


def test_stop_id_as_first_token_gives_empty_text(fresh: TransformersEngine) -> None:
    first = _run(fresh, _prompt(fresh), max_new_tokens=1).token_ids[0]
    result = _run(fresh, _prompt(fresh), stop_ids=frozenset({first}))
    assert (result.text, result.token_ids, result.finish_reason) == ("", (), "stop")


def test_cuts_text_before_a_stop_string(fresh: TransformersEngine) -> None:
    baseline = _run(fresh, _prompt(fresh), max_new_tokens=32).text
    start = len(baseline) // 2
    stop = baseline[start : start + 2]
    seen: list[str] = []
    result = _run(
        fresh,
        _prompt(fresh),
        max_new_tokens=32,
        stop_strings=("@@never@@", stop),
        on_text=lambda text: seen.append(text) is not None,
    )
    assert result.finish_reason == "stop-string"
    assert result.text == baseline[: baseline.index(stop)]
    assert all(result.text.startswith(text) for text in seen)  # nothing shown is taken back


def test_stops_at_max_new_tokens(fresh: TransformersEngine) -> None:
    result = _run(fresh, _prompt(fresh), max_new_tokens=5)
    assert (len(result.token_ids), result.finish_reason) == (5, "length")
    empty = _run(fresh, _prompt(fresh), max_new_tokens=0)
    assert (empty.token_ids, empty.finish_reason) == ((), "length")


def test_max_new_tokens_is_clamped_to_the_context(fresh: TransformersEngine) -> None:
    prompt = (_prompt(fresh) * 100)[: MAX_POSITIONS - 3]
    result = _run(fresh, prompt, max_new_tokens=50)
    assert (len(result.token_ids), result.finish_reason) == (3, "length")
    with pytest.raises(GenerationError, match="256"):
        _run(fresh, (_prompt(fresh) * 100)[:MAX_POSITIONS])
    with pytest.raises(GenerationError, match="empty"):
        _run(fresh, [])


def test_callback_can_end_generation(fresh: TransformersEngine) -> None:
    seen: list[str] = []

    def on_text(text: str) -> bool:
        seen.append(text)
        return len(seen) == 3

    result = _run(fresh, _prompt(fresh), on_text=on_text)
    assert result.finish_reason == "callback"
    assert len(result.token_ids) == 3
    assert result.text == seen[-1]


@pytest.mark.parametrize("k", [1, 4])
def test_cancel_from_on_text_stops_within_one_token(fresh: TransformersEngine, k: int) -> None:
    cancel = CancelToken()
    calls = 0

    def on_text(text: str) -> bool:
        nonlocal calls
        calls += 1
        if calls == k:
            cancel.cancel()
        return False

    result = _run(fresh, _prompt(fresh), cancel=cancel, on_text=on_text)
    assert result.finish_reason == "cancelled"
    assert len(result.token_ids) in (k, k + 1)


def test_cancel_from_another_thread_stops_within_one_token(fresh: TransformersEngine) -> None:
    cancel = CancelToken()
    produced = 0
    started = threading.Event()
    results: list[Generation] = []

    def on_text(text: str) -> bool:
        nonlocal produced
        produced += 1
        started.set()
        time.sleep(0.002)  # keep the worker busy long enough to be cancelled mid-run
        return False

    worker = threading.Thread(
        target=lambda: results.append(
            _run(fresh, _prompt(fresh), max_new_tokens=200, cancel=cancel, on_text=on_text)
        )
    )
    worker.start()
    assert started.wait(30)
    cancel.cancel()
    produced_at_cancel = produced  # read after cancel(): later tokens are at most one
    worker.join(30)
    assert not worker.is_alive()
    (result,) = results
    assert result.finish_reason == "cancelled"
    assert len(result.token_ids) <= produced_at_cancel + 1
    assert len(result.token_ids) < 200


def test_cancel_before_start_runs_no_model(
    fresh: TransformersEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the model ran after cancel()")

    monkeypatch.setattr(fresh._model, "forward", forbidden)
    cancel = CancelToken()
    cancel.cancel()
    result = _run(fresh, _prompt(fresh), cancel=cancel)
    assert (result.text, result.token_ids, result.finish_reason) == ("", (), "cancelled")
    assert result.prefill_ms == 0.0


# --- prefix-KV reuse ---------------------------------------------------------------------


def test_prefix_reuse_gives_the_same_logits_and_tokens(fresh: TransformersEngine) -> None:
    first = _prompt(fresh, "import os\nimport sys\nfrom pathlib import Path\n")
    second = first[:-2] + fresh.tokenizer.encode("def greet(name):\n    print(")
    _run(fresh, first, max_new_tokens=6)
    reused = _run(fresh, second)
    assert reused.cached_tokens == len(first) - 2
    fresh.reset_cache()
    scratch = _run(fresh, second)
    assert scratch.cached_tokens == 0
    assert reused.token_ids == scratch.token_ids

    fresh.reset_cache()
    fresh.prefill_logits(first)
    with_reuse = fresh.prefill_logits(second)
    fresh.reset_cache()
    without = fresh.prefill_logits(second)
    torch.testing.assert_close(with_reuse, without, rtol=1e-5, atol=1e-5)


def test_prefix_reuse_of_the_same_prompt_keeps_one_token_to_compute(
    fresh: TransformersEngine,
) -> None:
    prompt = _prompt(fresh)
    first = _run(fresh, prompt)
    again = _run(fresh, prompt)
    assert again.cached_tokens == len(prompt) - 1
    assert again.token_ids == first.token_ids


def test_prefix_reuse_covers_accepted_generated_tokens(fresh: TransformersEngine) -> None:
    prompt = _prompt(fresh)
    first = _run(fresh, prompt, max_new_tokens=10)
    accepted = prompt + list(first.token_ids[:4])  # the user took 4 tokens of the suggestion
    continued = _run(fresh, accepted, max_new_tokens=6)
    assert continued.cached_tokens == len(accepted) - 1
    assert continued.token_ids == first.token_ids[4:10]


def test_prefix_reuse_after_cancel_and_after_unrelated_prompt(fresh: TransformersEngine) -> None:
    prompt = _prompt(fresh)
    cancel = CancelToken()
    _run(fresh, prompt, cancel=cancel, on_text=lambda text: cancel.cancel() or False)
    after_cancel = _run(fresh, prompt)
    assert after_cancel.cached_tokens == len(prompt) - 1
    fresh.reset_cache()
    assert _run(fresh, prompt).token_ids == after_cancel.token_ids
    unrelated = fresh.tokenizer.encode("while queue:")
    assert _run(fresh, unrelated).cached_tokens == 0


def test_prefix_reuse_keeps_several_prompts(fresh: TransformersEngine) -> None:
    here = _prompt(fresh, "import os\nimport sys\nfrom pathlib import Path\n")
    elsewhere = fresh.tokenizer.encode("while queue:\n    item = queue.pop()\n")
    _run(fresh, here, max_new_tokens=4)
    _run(fresh, elsewhere, max_new_tokens=4)  # an explanation or another file in between
    back = _run(fresh, here + fresh.tokenizer.encode("def"))
    assert back.cached_tokens == len(here)


def test_no_prefix_cache_computes_every_prompt_in_full(model_dir: Path) -> None:
    naive = TransformersEngine.from_pretrained(model_dir, device="cpu", prefix_cache_entries=0)
    prompt = _prompt(naive)
    first, again = _run(naive, prompt), _run(naive, prompt)
    assert again.cached_tokens == 0
    assert again.token_ids == first.token_ids


def _fast_path_engine(model_dir: Path, **kwargs: Any) -> TransformersEngine:
    loaded = TransformersEngine.from_pretrained(model_dir, device="cpu")
    return TransformersEngine(
        loaded._model, loaded.hf_tokenizer, name="fast", fast_path=True, **kwargs
    )


def test_static_cache_fast_path_gives_the_dynamic_tokens_with_prefix_reuse(
    fresh: TransformersEngine, model_dir: Path
) -> None:
    fast = _fast_path_engine(model_dir)
    assert fast.fast_path and not fresh.fast_path
    first = _prompt(fresh, "import os\nimport sys\nfrom pathlib import Path\n")
    second = first[:-2] + fresh.tokenizer.encode("def greet(name):\n    print(")
    for prompt in (first, second, first):  # a longer stale tail in the buffer, then a shorter
        fresh.reset_cache()
        expected = _run(fresh, prompt)
        got = _run(fast, prompt)
        assert got.token_ids == expected.token_ids
    assert _run(fast, first).cached_tokens == len(first) - 1


def test_fast_path_decodes_eagerly_when_compiling_fails(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, fresh: TransformersEngine
) -> None:
    compiled: list[Any] = []

    def broken_compile(function: Any, **kwargs: Any) -> Any:
        compiled.append(kwargs)

        def fail(*args: Any) -> Any:
            raise RuntimeError("no compiler here")

        return fail

    monkeypatch.setattr(torch, "compile", broken_compile)
    fast = _fast_path_engine(model_dir)
    fast._kv._compile = True  # type: ignore[union-attr]
    prompt = _prompt(fresh)
    assert _run(fast, prompt).token_ids == _run(fresh, prompt).token_ids
    assert compiled == [{"mode": "reduce-overhead", "fullgraph": True, "dynamic": False}]


def test_the_static_cache_gives_the_dynamic_logits_but_prefill_logits_wants_the_dynamic(
    fresh: TransformersEngine, model_dir: Path
) -> None:
    fast = _fast_path_engine(model_dir)
    prompt = _prompt(fresh)
    cache, logits = fast._kv.logits(fast._kv.empty_cache(), prompt, 0)
    _, step = fast._kv.logits(cache, [7], len(prompt))  # one id: eager too, still logits
    expected = fresh.prefill_logits(prompt)
    torch.testing.assert_close(logits.float(), expected, rtol=1e-5, atol=1e-5)
    assert step.shape == expected.shape
    with pytest.raises(GenerationError, match="dynamic KV cache"):
        fast.prefill_logits(prompt)
    with pytest.raises(GenerationError, match="prompt is empty"):
        fresh.prefill_logits([])


def test_a_local_engine_has_nothing_to_connect_to(fresh: TransformersEngine) -> None:
    assert fresh.connect() is None


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: out of memory"),
        MemoryError(),
    ],
    ids=["cuda", "runtime", "memory"],
)
@pytest.mark.parametrize("failing_call", [1, 3], ids=["prefill", "decode"])
def test_out_of_memory_becomes_a_generation_error_and_the_engine_recovers(
    fresh: TransformersEngine,
    monkeypatch: pytest.MonkeyPatch,
    error: BaseException,
    failing_call: int,
) -> None:
    prompt = _prompt(fresh)
    expected = _run(fresh, prompt, max_new_tokens=6).token_ids
    real_forward = fresh._model.forward
    calls = 0

    def forward(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == failing_call:
            raise error
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(fresh._model, "forward", forward)
    with pytest.raises(GenerationError, match="Out of memory") as caught:
        _run(fresh, prompt, max_new_tokens=6)
    assert "smaller model" in str(caught.value) and "CPU" in str(caught.value)
    monkeypatch.undo()
    recovered = _run(fresh, prompt, max_new_tokens=6)
    assert recovered.cached_tokens == 0  # a half-updated cache was dropped
    assert recovered.token_ids == expected


def test_other_model_failures_become_generation_errors(
    fresh: TransformersEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("shape mismatch")

    monkeypatch.setattr(fresh._model, "forward", broken)
    with pytest.raises(GenerationError, match="shape mismatch"):
        _run(fresh, _prompt(fresh))


# --- loading -----------------------------------------------------------------------------


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the network was contacted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_loads_a_local_directory(model_dir: Path, no_network: None) -> None:
    loaded = load_engine(str(model_dir), device="cpu")
    assert isinstance(loaded, TransformersEngine)
    assert (loaded.name, loaded.device, loaded.dtype) == (model_dir.name, "cpu", "float32")
    assert loaded.context_length == MAX_POSITIONS


def test_a_16_bit_checkpoint_is_upcast_on_cpu(model_dir: Path, tmp_path: Path) -> None:
    tokenizer = _build_tokenizer(add_bos=True)
    model = _build_model(len(tokenizer), tokenizer).to(torch.bfloat16)
    model.save_pretrained(tmp_path, safe_serialization=True)
    tokenizer.save_pretrained(tmp_path)
    loaded = TransformersEngine.from_pretrained(tmp_path, device="cpu")
    assert loaded.dtype == "float32"
    assert {p.dtype for p in loaded._model.parameters()} == {torch.float32}
    assert TransformersEngine.from_pretrained(tmp_path, dtype="bf16").dtype == "bfloat16"


def test_refuses_pickle_weights(tmp_path: Path, model_dir: Path) -> None:
    (tmp_path / "config.json").write_text((model_dir / "config.json").read_text())
    (tmp_path / "pytorch_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(ModelLoadError, match="pickle") as caught:
        load_engine(str(tmp_path))
    assert "safetensors" in str(caught.value)


def test_a_directory_without_config_or_weights_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"no config\.json"):
        load_engine(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="no model weights"):
        load_engine(str(tmp_path))


def test_a_missing_path_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "models" / "nowhere"
    with pytest.raises(ModelLoadError, match="does not exist") as caught:
        load_engine(str(missing))
    assert str(missing) in str(caught.value)
    (tmp_path / "weights.txt").write_text("x")
    with pytest.raises(ModelLoadError, match=r"not a \.gguf"):
        load_engine(str(tmp_path / "weights.txt"))


def test_an_uncached_hub_id_fails_fast_without_network(no_network: None) -> None:
    started = time.perf_counter()
    with pytest.raises(ModelLoadError) as caught:
        load_engine("code-llama-ls-tests/no-such-model")
    assert time.perf_counter() - started < 10
    message = str(caught.value)
    assert "huggingface-cli download code-llama-ls-tests/no-such-model --local-dir" in message
    assert "nor in the local Hugging Face cache" in message


def test_a_cached_hub_id_loads_offline(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: None
) -> None:
    from transformers.utils import hub

    snapshot = tmp_path / "models--tiny-org--tiny-llama" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    for file in model_dir.iterdir():
        (snapshot / file.name).write_bytes(file.read_bytes())
    (tmp_path / "models--tiny-org--tiny-llama" / "refs").mkdir()
    (tmp_path / "models--tiny-org--tiny-llama" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(hub, "TRANSFORMERS_CACHE", str(tmp_path))
    loaded = load_engine("tiny-org/tiny-llama", device="cpu")
    assert loaded.name == "tiny-org/tiny-llama"


def test_hub_id_shape() -> None:
    assert looks_like_hub_id("codellama/CodeLlama-7b-hf")
    assert not looks_like_hub_id("models/codellama/CodeLlama-7b-hf")
    assert not looks_like_hub_id("./model")
    assert not looks_like_hub_id("../x")
    assert not looks_like_hub_id("/abs/path")


def test_device_and_dtype_resolution() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto") == expected
    assert resolve_device("CPU") == "cpu"
    assert resolve_dtype("auto", "cpu") == "float32"
    assert resolve_dtype("fp16", "cpu") == "float16"
    with pytest.raises(ModelLoadError, match="Unknown dtype"):
        resolve_dtype("int3", "cpu")
    with pytest.raises(ModelLoadError, match="Unknown device"):
        resolve_device("gpu7")
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_importing_the_package_does_not_import_torch() -> None:
    code = (
        "import sys, code_llama_ls.engine as e\n"
        "e.load_engine, e.DEFAULT_MODEL_NAME, e.ServedModel\n"
        "heavy = [m for m in ('torch', 'transformers', 'numpy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- stop strings and streaming (pure helpers) -----------------------------------------------


def test_find_stop_string_picks_the_earliest() -> None:
    assert find_stop_string("a\n\nb\ndef", ("\ndef", "\n\n")) == 1
    assert find_stop_string("abc", ("x",)) is None


def test_stream_safe_text_holds_back_possible_stop_starts_and_split_characters() -> None:
    assert stream_safe_text("return x\n", ("\n\n",)) == "return x"
    assert stream_safe_text("return x\nd", ("\ndef",)) == "return x"
    assert stream_safe_text("return x\nz", ("\ndef",)) == "return x\nz"
    assert stream_safe_text("caf\ufffd", ()) == "caf"
    assert stream_safe_text("", ("\n",)) == ""


def test_generation_params_are_validated() -> None:
    with pytest.raises(ValueError):
        GenerationParams(-1, frozenset())
    assert GenerationParams(4, frozenset(), ("", "\n\n")).stop_strings == ("\n\n",)
    token = CancelToken()
    assert not token.cancelled
    token.cancel()
    assert token.cancelled


# --- next-token choices (alternative suggestions) -------------------------------------


def test_next_token_choices_are_the_likeliest_first_tokens(fresh: TransformersEngine) -> None:
    prompt = _prompt(fresh)
    choices = fresh.next_token_choices(prompt, 4)
    logits = fresh.prefill_logits(prompt)
    assert list(choices) == [int(i) for i in logits.argsort(descending=True)[:4]]
    assert choices[0] == _run(fresh, prompt, 1).token_ids[0], "the first is the greedy one"


def test_a_forced_beginning_reuses_the_prompt_and_goes_on_greedily(
    fresh: TransformersEngine,
) -> None:
    prompt = _prompt(fresh)
    second = fresh.next_token_choices(prompt, 2)[1]
    branch = _run(fresh, [*prompt, second], 8)
    assert branch.cached_tokens == len(prompt), "only the forced token is prefilled"
    fresh.reset_cache()
    assert _run(fresh, [*prompt, second], 8).token_ids == branch.token_ids


def test_top_ids_of_torch_and_numpy_logits_agree() -> None:
    import numpy as np
    import torch

    from code_llama_ls.engine.greedy import top_ids

    values = [0.5, 3.0, -1.0, 2.0, 2.5]
    assert top_ids(torch.tensor(values), 3) == (1, 4, 3)
    assert top_ids(np.array(values, dtype=np.float32), 3) == (1, 4, 3)
    assert top_ids(np.array(values), 9) == (1, 4, 3, 0, 2), "no more than the vocabulary"


def test_next_token_choices_on_the_static_cache_fast_path(
    model_dir: Path, fresh: TransformersEngine
) -> None:
    fast = _fast_path_engine(model_dir)
    prompt = _prompt(fresh)
    assert fast.next_token_choices(prompt, 3) == fresh.next_token_choices(prompt, 3)
    second = fast.next_token_choices(prompt, 2)[1]
    branch = _run(fast, [*prompt, second], 6)
    assert branch.token_ids == _run(fresh, [*prompt, second], 6).token_ids


def _branches_one_by_one(
    engine: TransformersEngine, prompt: list[int], firsts: list[int], params: GenerationParams
) -> list[Generation]:
    from code_llama_ls.engine.base import branch_by_branch

    return branch_by_branch(engine, prompt, firsts, params, CancelToken())


@pytest.mark.parametrize("stops", ["none", "stop ids", "stop strings"])
def test_branches_in_one_batch_are_the_generations_one_by_one(
    fresh: TransformersEngine, stops: str
) -> None:
    prompt = _prompt(fresh)
    firsts = list(fresh.next_token_choices(prompt, 4))
    alone = _run(fresh, prompt, 12).token_ids
    stop_ids = frozenset(alone[3:4]) if stops == "stop ids" else frozenset()
    stop_strings = (fresh.tokenizer.decode(list(alone[4:6])),) if stops == "stop strings" else ()
    params = GenerationParams(12, stop_ids, stop_strings)
    batched = fresh.generate_branches(prompt, firsts, params, CancelToken())
    fresh.reset_cache()
    expected = _branches_one_by_one(fresh, prompt, firsts, params)
    assert [g.token_ids for g in batched] == [g.token_ids for g in expected]
    assert [g.text for g in batched] == [g.text for g in expected]
    assert [g.finish_reason for g in batched] == [g.finish_reason for g in expected]
    assert all(g.prompt_tokens == len(prompt) + 1 for g in batched)


def test_a_branch_that_says_enough_leaves_the_batch(fresh: TransformersEngine) -> None:
    prompt = _prompt(fresh)
    firsts = list(fresh.next_token_choices(prompt, 3))
    seen: dict[int, int] = {0: 0, 1: 0, 2: 0}

    def on_text_for(branch: int) -> Callable[[str], bool]:
        def on_text(text: str) -> bool:
            seen[branch] += 1
            return branch == 1 and seen[branch] == 2

        return on_text

    params = GenerationParams(8, frozenset())
    batched = fresh.generate_branches(prompt, firsts, params, CancelToken(), on_text_for)
    assert batched[1].finish_reason == "callback" and len(batched[1].token_ids) == 2
    assert seen[1] == 2 and seen[0] == seen[2] == 8
    assert [len(g.token_ids) for g in (batched[0], batched[2])] == [8, 8]


def test_a_cancel_ends_every_branch(fresh: TransformersEngine) -> None:
    prompt = _prompt(fresh)
    firsts = list(fresh.next_token_choices(prompt, 3))
    cancel = CancelToken()

    def on_text_for(branch: int) -> Callable[[str], bool]:
        def on_text(text: str) -> bool:
            if branch == 2:
                cancel.cancel()
            return False

        return on_text

    params = GenerationParams(20, frozenset())
    batched = fresh.generate_branches(prompt, firsts, params, cancel, on_text_for)
    assert [g.finish_reason for g in batched] == ["cancelled"] * 3
    assert all(len(g.token_ids) == 1 for g in batched)


def test_branches_batch_from_the_static_cache_too(
    model_dir: Path, fresh: TransformersEngine
) -> None:
    fast = _fast_path_engine(model_dir)
    prompt = _prompt(fresh)
    firsts = list(fresh.next_token_choices(prompt, 3))
    params = GenerationParams(8, frozenset())
    batched = fast.generate_branches(prompt, firsts, params, CancelToken())
    assert not fast._batch_unsupported
    expected = _branches_one_by_one(fresh, prompt, firsts, params)
    assert [g.token_ids for g in batched] == [g.token_ids for g in expected]
