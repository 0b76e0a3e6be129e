"""Tiny Code Llama-shaped tokenizers and models, built locally for tests.

Nothing here downloads anything: the tokenizer is trained on a few embedded
source files and mirrors Code Llama's `tokenizer.json` (legacy SentencePiece
normalizer, byte fallback, `▁<PRE>`/`▁<SUF>`/`▁<MID>`/`▁<EOT>`), and the model
is a small `LlamaForCausalLM` overfit on given examples so that greedy
decoding reproduces them exactly.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from code_llama_ls.engine.base import ServedModel
from code_llama_ls.pipeline.fim import FimMode
from code_llama_ls.pipeline.prompt import build_chat_prompt, build_completion_prompt
from code_llama_ls.tokens.tokenizer import TokenizerLike, encode_infilling

UNK, BOS, EOS = "<unk>", "<s>", "</s>"
FIM_PIECES = ("▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>")
SPIECE = "▁"

# The chat template of codellama/CodeLlama-*-Instruct-hf (Llama 2 [INST] format).
CODE_LLAMA_INSTRUCT_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}"
    "{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}"
    "{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content | trim + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + content | trim + ' ' + eos_token }}"
    "{% endif %}{% endfor %}"
)

# Training text for the tokenizer's merges: a little Python, JavaScript and prose.
_CORPUS = [
    '''"""Utilities for reading and writing configuration files."""

from __future__ import annotations

import json
import os
from pathlib import Path


class Config:
    """A small key/value store backed by a JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.values: dict[str, object] = {}

    def load(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as handle:
            self.values = json.load(handle)

    def save(self) -> None:
        text = json.dumps(self.values, indent=4, sort_keys=True)
        self.path.write_text(text + "\\n", encoding="utf-8")

    def get(self, key: str, default: object = None) -> object:
        return self.values.get(key, default)


def fibonacci(n: int) -> int:
    if n < 2:
        return n
    return fibonacci(n - 1) + fibonacci(n - 2)


def add(a, b):
    return a + b


def remove_duplicates(items: list[int]) -> list[int]:
    seen = set()
    result = []
    for item in items:
        if item not in seen:
            seen.add(item)
            result.append(item)
    return result


def main() -> None:
    config = Config(Path(os.environ.get("CONFIG", "config.json")))
    config.load()
    for key, value in sorted(config.values.items()):
        print(f"{key} = {value}")


if __name__ == "__main__":
    main()
''',
    """// Event helpers for the browser.
export function debounce(fn, wait) {
  let timer = null;
  return function (...args) {
    if (timer !== null) {
      clearTimeout(timer);
    }
    timer = setTimeout(() => fn.apply(this, args), wait);
  };
}

export class Counter {
  constructor(start = 0) {
    this.value = start;
  }

  increment() {
    this.value += 1;
    return this.value;
  }
}

const items = [1, 2, 3].map((x) => x * 2).filter((x) => x > 2);
console.log(items.length);
""",
    """The quick brown fox jumps over the lazy dog. Explain what this function does,
and return the result. This code reads a file, parses the values and prints
them in sorted order. Café, naïve, résumé: the function returns the sum of two
numbers.
""",
]

_PRE_SPLIT = r"▁+(?=▁)|▁?\p{L}+|▁?\p{N}|▁?[^\p{L}\p{N}▁\s]+|▁+|\s"


def build_code_llama_tokenizer(
    directory: Path, *, vocab_size: int = 800, chat_template: str | None = None
) -> Path:
    """Train and save a small tokenizer laid out like Code Llama's; returns `directory`.

    ids: <unk>=0, <s>=1, </s>=2, <0x00>..<0xFF> = 3..258, merged pieces, then
    the four FIM pieces. "\\n" and "\\t" are byte-fallback tokens, as in Llama;
    "▁" and "☺" are single pieces, so `encode("☺" + s)[2:]` is Meta's
    `encode_infilling`.
    """
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import CodeLlamaTokenizerFast

    legacy_normalizer = normalizers.Sequence(
        [normalizers.Prepend(SPIECE), normalizers.Replace(" ", SPIECE)]
    )
    trainer_tok = Tokenizer(models.BPE(unk_token=UNK))
    trainer_tok.normalizer = legacy_normalizer
    trainer_tok.pre_tokenizer = pre_tokenizers.Split(Regex(_PRE_SPLIT), behavior="isolated")
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=[SPIECE, "☺"],
        special_tokens=[],
    )
    trainer_tok.train_from_iterator(_CORPUS, trainer)
    trained = json.loads(trainer_tok.to_str())["model"]

    vocab: dict[str, int] = {UNK: 0, BOS: 1, EOS: 2}
    for byte in range(256):
        vocab[f"<0x{byte:02X}>"] = len(vocab)
    for piece, _ in sorted(trained["vocab"].items(), key=lambda item: item[1]):
        if piece not in vocab and not any(c in piece for c in "\n\t\r"):
            vocab[piece] = len(vocab)
    merges: list[tuple[str, str]] = []
    for left, right in trained["merges"]:
        if left in vocab and right in vocab and left + right in vocab:
            merges.append((left, right))
    for piece in FIM_PIECES:
        vocab[piece] = len(vocab)

    tok = Tokenizer(
        models.BPE(vocab=vocab, merges=merges, unk_token=UNK, fuse_unk=True, byte_fallback=True)
    )
    tok.normalizer = legacy_normalizer
    tok.decoder = decoders.Sequence(
        [
            decoders.Replace(SPIECE, " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, 1)]
    )
    tok.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in (UNK, BOS, EOS, *FIM_PIECES)]
    )
    fast = CodeLlamaTokenizerFast(
        tokenizer_object=tok,
        unk_token=UNK,
        bos_token=BOS,
        eos_token=EOS,
        add_bos_token=True,
        add_eos_token=False,
        clean_up_tokenization_spaces=False,
    )
    if chat_template is not None:
        fast.chat_template = chat_template
    directory.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(directory))
    return directory


def build_byte_level_tokenizer(directory: Path, *, vocab_size: int = 600) -> Path:
    """Train and save a GPT-2-style byte-level BPE tokenizer (no BOS, no FIM tokens)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    eos = "<|endoftext|>"
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        show_progress=False,
        special_tokens=[eos],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_CORPUS, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=eos, bos_token=eos, unk_token=eos
    )
    directory.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(directory))
    return directory


class TokenizerAdapter:
    """A transformers tokenizer seen through `code_llama_ls.tokens.tokenizer.TokenizerLike`.

    Same semantics as the engine's adapter: `encode` adds no BOS/EOS (but a
    Llama tokenizer still adds its dummy leading space); `bos_token_id` only
    when the tokenizer adds BOS by default. Special-token strings inside the
    text are encoded as text (`split_special_tokens`), as SentencePiece does:
    code that contains "</s>" must not end the prompt.
    """

    def __init__(self, tokenizer: Any, extra_stop_ids: Sequence[int] = ()) -> None:
        self.hf = tokenizer
        with_specials = tokenizer.encode("a")
        bos = tokenizer.bos_token_id
        self._bos = bos if bos is not None and with_specials[:1] == [bos] else None
        stops = set(extra_stop_ids)
        if tokenizer.eos_token_id is not None:
            stops.add(int(tokenizer.eos_token_id))
        self._stops = frozenset(stops)
        self._vocab: dict[str, int] = dict(tokenizer.get_vocab())

    @classmethod
    def from_directory(cls, directory: Path) -> TokenizerAdapter:
        from transformers import AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(str(directory)))

    @property
    def bos_token_id(self) -> int | None:
        return self._bos

    @property
    def stop_token_ids(self) -> frozenset[int]:
        return self._stops

    def encode(self, text: str) -> list[int]:
        ids = self.hf.encode(text, add_special_tokens=False, split_special_tokens=True)
        return [int(i) for i in ids]

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.hf.decode(list(ids), skip_special_tokens=False))

    def token_to_id(self, token: str) -> int | None:
        return self._vocab.get(token)

    def apply_chat_template(self, messages: Sequence[Mapping[str, str]]) -> list[int] | None:
        if getattr(self.hf, "chat_template", None) is None:
            return None
        ids = self.hf.apply_chat_template(
            [dict(m) for m in messages], add_generation_prompt=True, tokenize=True
        )
        return [int(i) for i in ids]


def build_tiny_code_llama(
    directory: Path,
    tokenizer_dir: Path,
    fim_examples: Sequence[tuple[str, str, str]],
    chat_examples: Sequence[tuple[str | Sequence[Mapping[str, str]], str]] = (),
    fim_mode: FimMode = FimMode.SPM,
    budget: int = 1536,
    *,
    hidden_size: int = 64,
    seed: int = 0,
    max_steps: int = 600,
    min_margin: float = 2.0,
) -> Path:
    """Train a tiny `LlamaForCausalLM` that greedily reproduces the examples; returns `directory`.

    Each FIM example (prefix, suffix, middle) is trained as the ids of
    `build_completion_prompt(tok, prefix, suffix, fim_mode=..., budget=...)`
    followed by `encode_infilling(middle) + [▁<EOT>]`; each chat example
    (user text or messages, answer) as `build_chat_prompt` ids +
    `encode(answer)` + [EOS] (decode the reply with plain `decode`).
    Training stops once greedy decoding of every example reproduces its
    target with a logit margin of at least `min_margin` at each step (so
    small numeric differences, such as a reused KV cache, cannot flip a
    token); raises RuntimeError when `max_steps` is not enough. The model
    and the tokenizer files are saved in `directory` (safetensors).
    """
    import torch
    from transformers import AutoTokenizer

    start = time.perf_counter()
    hf_tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    tok = TokenizerAdapter(hf_tok)
    eot = tok.token_to_id("▁<EOT>")
    eos = hf_tok.eos_token_id
    sequences: list[tuple[list[int], list[int]]] = []
    for prefix, suffix, middle in fim_examples:
        prompt = build_completion_prompt(tok, prefix, suffix, fim_mode=fim_mode, budget=budget)
        if eot is None:
            raise ValueError("the tokenizer has no ▁<EOT>: FIM examples need a FIM tokenizer")
        sequences.append((list(prompt.ids), [*encode_infilling(tok, middle), eot]))
    for chat, answer in chat_examples:
        messages = [{"role": "user", "content": chat}] if isinstance(chat, str) else chat
        prompt = build_chat_prompt(tok, messages, budget=budget)
        sequences.append((list(prompt.ids), [*tok.encode(answer), int(eos)]))
    if not sequences:
        raise ValueError("no examples to train on")

    # One thread: ops this small gain nothing from more, and OpenMP threads
    # that spin against another busy process made a 1 s build take minutes.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, steps = _train(
            sequences,
            len(hf_tok),
            hf_tok.bos_token_id,
            int(eos),
            hidden_size,
            seed,
            max_steps,
            min_margin,
        )
    finally:
        torch.set_num_threads(threads)
    directory.mkdir(parents=True, exist_ok=True)
    model.generation_config.eos_token_id = sorted({int(eos), *([eot] if eot else [])})
    model.save_pretrained(str(directory), safe_serialization=True)
    # Copied, not re-saved: CodeLlamaTokenizerFast duplicates its FIM pieces on every save.
    for source in Path(tokenizer_dir).iterdir():
        if source.is_file():
            shutil.copyfile(source, directory / source.name)
    (directory / "tiny_model_info.json").write_text(
        json.dumps(
            {
                "steps": steps,
                "seconds": round(time.perf_counter() - start, 2),
                "fim_mode": fim_mode.value,
                "budget": budget,
                "examples": len(sequences),
                "parameters": sum(p.numel() for p in model.parameters()),
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    return directory


def _train(
    sequences: Sequence[tuple[list[int], list[int]]],
    vocab_size: int,
    bos: int | None,
    eos: int,
    hidden_size: int,
    seed: int,
    max_steps: int,
    min_margin: float,
) -> tuple[Any, int]:
    """A tiny LlamaForCausalLM trained (full batch, AdamW) until it reproduces every sequence."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    longest = max(len(p) + len(t) for p, t in sequences)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=max(4096, 2 * longest),
        rope_theta=1_000_000.0,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=None,
        dtype="float32",
    )
    model = LlamaForCausalLM(config)
    inputs, labels, mask = _batch(sequences)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    steps = 0
    while True:
        model.train()
        for _ in range(25):
            logits = model(input_ids=inputs, attention_mask=mask).logits
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
        model.eval()
        if _reproduces(model, sequences, min_margin):
            break
        if steps >= max_steps:
            raise RuntimeError(
                f"tiny model did not learn its {len(sequences)} examples in {steps} steps "
                f"(loss {loss.item():.4f}); use fewer or shorter examples, or more steps"
            )
    return model, steps


def _batch(sequences: Sequence[tuple[list[int], list[int]]]) -> tuple[Any, Any, Any]:
    """Right-padded inputs, next-token labels (targets only) and attention mask."""
    import torch

    width = max(len(p) + len(t) for p, t in sequences)
    inputs = torch.zeros((len(sequences), width), dtype=torch.long)
    labels = torch.full((len(sequences), width), -100, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, (prompt, target) in enumerate(sequences):
        ids = prompt + target
        inputs[row, : len(ids)] = torch.tensor(ids)
        mask[row, : len(ids)] = 1
        # position i predicts token i + 1: learn only the target tokens.
        labels[row, len(prompt) - 1 : len(ids) - 1] = torch.tensor(target)
    return inputs, labels, mask


def _reproduces(
    model: Any, sequences: Sequence[tuple[list[int], list[int]]], margin: float
) -> bool:
    """Whether greedy decoding after each prompt yields exactly its target, with a margin.

    Teacher forcing on prompt + target equals step-by-step greedy decoding
    as long as every argmax is the target token, which is what is checked.
    """
    import torch

    with torch.no_grad():
        for prompt, target in sequences:
            ids = torch.tensor([prompt + target])
            logits = model(input_ids=ids).logits[0, len(prompt) - 1 : -1]
            top2 = torch.topk(logits, 2, dim=-1)
            want = torch.tensor(target)
            if not bool((top2.indices[:, 0] == want).all()):
                return False
            if float((top2.values[:, 0] - top2.values[:, 1]).min()) < margin:
                return False
    return True


def greedy_complete(
    model_dir: Path, prompt_ids: Sequence[int], max_new_tokens: int = 64
) -> list[int]:
    """Greedy-decode with transformers' `generate` from a saved tiny model (stop ids excluded)."""
    import torch
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(str(model_dir))
    model.eval()
    stops = model.generation_config.eos_token_id
    stop_set = set(stops if isinstance(stops, list) else [stops])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see build_tiny_code_llama
    try:
        with torch.no_grad():
            out = model.generate(
                torch.tensor([list(prompt_ids)]),
                attention_mask=torch.ones((1, len(prompt_ids)), dtype=torch.long),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=sorted(stop_set),
                pad_token_id=sorted(stop_set)[0],
            )
    finally:
        torch.set_num_threads(threads)
    new = [int(i) for i in out[0, len(prompt_ids) :]]
    for index, token in enumerate(new):
        if token in stop_set:
            return new[:index]
    return new


def build_babbling_code_llama(directory: Path, tokenizer_dir: Path, *, seed: int = 0) -> Path:
    """A random tiny Code Llama-shaped model that never chooses a stop token.

    Its output rows for EOS and ▁<EOT> are zero, so their logits are exactly
    0 while the largest of the other ~780 random logits is positive: greedy
    decoding runs to `max_new_tokens`. Cancellation tests need generation
    that only cancellation can end.
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    hf_tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    stop_ids = {int(hf_tok.eos_token_id), int(hf_tok.convert_tokens_to_ids("▁<EOT>"))}
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(hf_tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=16384,
        rope_theta=1_000_000.0,
        tie_word_embeddings=False,
        bos_token_id=int(hf_tok.bos_token_id),
        eos_token_id=int(hf_tok.eos_token_id),
    )
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for stop_id in stop_ids:
            model.lm_head.weight[stop_id].zero_()
    return save_with_tokenizer(model, directory, tokenizer_dir)


def save_with_tokenizer(model: Any, directory: Path, tokenizer_dir: Path) -> Path:
    """Save `model` (safetensors) with the tokenizer files of `tokenizer_dir` copied beside
    it (not re-saved: CodeLlamaTokenizerFast duplicates its FIM pieces on every save)."""
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(directory), safe_serialization=True)
    for source in Path(tokenizer_dir).iterdir():
        if source.is_file():
            shutil.copyfile(source, directory / source.name)
    return directory


def write_tiny_gguf(path: Path) -> Path:
    """A small well-formed GGUF file (llama metadata, a vocabulary, two tensors); not loadable.

    For tests of what happens to a GGUF file cut short or overwritten: the
    gguf package's own writer lays it out as llama.cpp's converters do.
    """
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    writer.add_context_length(64)
    tokens = [UNK, BOS, EOS, *(f"t{i}" for i in range(61))]
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * len(tokens))
    writer.add_token_types([1] * len(tokens))
    writer.add_tensor("token_embd.weight", np.ones((len(tokens), 16), dtype=np.float32))
    writer.add_tensor("output.weight", np.ones((len(tokens), 16), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def gguf_data_start(path: Path) -> int:
    """Where a GGUF file's tensor data begins (after its header and tensor table)."""
    import gguf

    return int(gguf.GGUFReader(str(path)).data_offset)


@dataclass
class TokenizerOnlyEngine:
    """What prompt building needs of an engine: a tokenizer and a context length.

    Generating is a test failure: prompts are built without a model.
    """

    tokenizer: TokenizerLike
    context_length: int = 1 << 20
    device: str = "cuda"
    name: str = "tokenizer-only"
    dtype: str = "float32"

    def generate(self, *args: object, **kwargs: object) -> object:
        raise AssertionError("nothing should be generated here")

    def next_token_choices(self, *args: object) -> tuple[int, ...]:
        raise AssertionError("nothing should be generated here")

    def generate_branches(self, *args: object, **kwargs: object) -> list[object]:
        raise AssertionError("nothing should be generated here")

    def connect(self) -> ServedModel | None:
        return None


def build_tied_gqa_llama(directory: Path, tokenizer_dir: Path, *, initializer_range: float) -> Path:
    """A random 2-layer Llama like SmolLM2: tied embeddings, 4 query heads over 2 key/value heads.

    The tokenizer files are copied from `tokenizer_dir`; `initializer_range`
    sets how far apart the random logits are.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    directory.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copyfile(tokenizer_dir / name, directory / name)
    vocab = json.loads((tokenizer_dir / "tokenizer.json").read_text())["model"]["vocab"]
    torch.manual_seed(0)
    config = LlamaConfig(  # type: ignore[no-untyped-call]
        vocab_size=len(vocab),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        initializer_range=initializer_range,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)  # type: ignore[no-untyped-call]
    model.save_pretrained(str(directory), safe_serialization=True)
    return directory
