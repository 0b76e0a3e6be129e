"""Fill-in-the-middle formats of the model families the server knows, told from the tokenizer.

A family is recognised by the special tokens its tokenizer carries, never by
the model's name: a fine-tune or a re-upload keeps them. Each family's
format is laid out at token level, as its own repository documents it:

- Code Llama (Meta, `meta-llama/codellama: llama/generation.py`,
  `infilling_prompt_tokens`): `▁<PRE>`, `▁<SUF>`, `▁<MID>`, ends with
  `▁<EOT>`; trained on PSM and SPM. Its SentencePiece tokenizer adds a dummy
  space to the text it encodes first: the prefix keeps it, the suffix is
  encoded without it (`encode_infilling`).
- StarCoder and StarCoder2 (BigCode): `<fim_prefix>`, `<fim_suffix>`,
  `<fim_middle>`, no BOS; SPM as bigcode's Megatron trains it
  (`<fim_prefix><fim_suffix>SUFFIX<fim_middle>PREFIX`) on request only, its
  share in training being unpublished. StarCoder2's repository format opens
  with `<repo_name>NAME` (no line break) and puts `<file_sep>PATH\n` before
  each file; StarCoder 1 has no such tokens.
- DeepSeek-Coder (base models; its Instruct models were not trained to
  infill): `<｜fim▁begin｜>`, `<｜fim▁hole｜>`, `<｜fim▁end｜>` (full-width bars),
  after BOS; PSM only; other files go in as comment headers, as in its
  repository-level data.
- Qwen2.5-Coder: `<|fim_prefix|>`, `<|fim_suffix|>`, `<|fim_middle|>`, no
  BOS; PSM only; its repository format opens with `<|repo_name|>NAME\n` and
  puts `<|file_sep|>PATH\n` before each file. Told from CodeGemma, which
  shares the three FIM tokens, by `<|file_sep|>`.
- CodeGemma: `<|fim_prefix|>`, `<|fim_suffix|>`, `<|fim_middle|>` after
  `<bos>`; trained on PSM and SPM, but only PSM's order is published; files
  are `PATH\n` then their code, each ended by `<|file_separator|>`.

Where they differ: the cursor's file's path goes before the FIM tokens for
Qwen and CodeGemma, but inside `<fim_prefix>` for StarCoder2 (left out here:
a prefix window cut from the file's middle cannot start with it); only
Qwen has a line break after the repository's name; DeepSeek and CodeGemma
add BOS. Tools disagree with the families too: llama.cpp's `--spm-infill`
order (`<SUF>S<PRE>P<MID>`) is not bigcode's, and its server puts BOS after
the repository context; Continue and Tabby frame other files as comments.

Where each fact comes from is in `FAMILIES`' `source` fields. The byte-level
BPE families and CodeGemma add no dummy space, so for them text encodes the
same first or after other text. Text the user typed never becomes a
control token: the tokenizers encode special-token text as text
(`tokenizer_files.prepared_backend`), and control tokens enter a prompt only
as ids placed here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from code_llama_ls.context.assemble import FileFrame
from code_llama_ls.tokens.tokenizer import PerTokenizer, TokenizerLike, encode_infilling


class FimMode(StrEnum):
    """Order of the infilling prompt: prefix-suffix-middle, suffix-prefix-middle, or the
    family's best (SPM where the family was trained on it: as the user types at the end of
    the prefix, the prompt's head stays the same and its keys/values are reused)."""

    AUTO = "auto"
    PSM = "psm"
    SPM = "spm"


@dataclass(frozen=True)
class RepoFormat:
    """How a family's training data joins a repository's files (token texts)."""

    file_start: str | None
    """The token before each file's path (None: the path alone starts a file)."""
    file_end: str | None = None
    """The token after each file (CodeGemma's `<|file_separator|>`)."""
    repo_name: str | None = None
    """The token before the repository's name, which opens the repository."""
    name_end: str = ""
    """Text between the repository's name and the first file."""
    content_end: str = ""
    """Text after a file's content, before what ends it or the next file."""
    own_path: bool = True
    """Whether the cursor's file's path goes before the FIM tokens. StarCoder2's
    goes inside its prefix, where a prefix window cut from the file's middle cannot
    hold it; its maintainers call it optional."""


@dataclass(frozen=True)
class FimFamily:
    """One family's FIM tokens and rules, as token texts."""

    key: str
    """Its name in status and reports."""
    name: str
    prefix: str
    suffix: str
    middle: str
    stops: tuple[str, ...]
    """Control tokens that end the middle when the model writes one (those in the vocabulary)."""
    spm: bool
    """Its SPM order is documented: the layout may be asked for (`fimMode`)."""
    spm_by_default: bool
    """Trained on SPM as much as PSM: `auto` takes SPM, whose head stays put as the user types."""
    source: str
    marker: str | None = None
    """A token that must also be there: it tells families that share the FIM tokens apart."""
    repo: RepoFormat | None = None


CODE_LLAMA = FimFamily(
    key="code-llama",
    name="Code Llama",
    prefix="▁<PRE>",
    suffix="▁<SUF>",
    middle="▁<MID>",
    stops=("▁<EOT>",),
    spm=True,
    spm_by_default=True,
    source="meta-llama/codellama: llama/generation.py (infilling_prompt_tokens)",
    marker="▁<EOT>",
)
STARCODER = FimFamily(
    key="starcoder",
    name="StarCoder",
    prefix="<fim_prefix>",
    suffix="<fim_suffix>",
    middle="<fim_middle>",
    stops=(
        "<|endoftext|>",
        "<file_sep>",
        "<fim_prefix>",
        "<fim_suffix>",
        "<fim_middle>",
        "<fim_pad>",
        "<repo_name>",
    ),
    # bigcode-project/Megatron-LM: megatron/data/gpt_dataset.py `permute` ("SPM (variant
    # 2 from FIM paper)": [prefix, suffix] suffix [middle] prefix); the share of SPM in
    # StarCoder's training is not published, so it is not the default.
    spm=True,
    spm_by_default=False,
    source=(
        "bigcode-project/starcoder2#10 (PSM, <file_sep> stops); StarCoder2 paper "
        "(arXiv:2402.19173) section 5.1 (repository format)"
    ),
    # <repo_name>NAME<file_sep>PATH\nCODE<file_sep>PATH\nCODE ... (no newline after NAME).
    repo=RepoFormat(file_start="<file_sep>", repo_name="<repo_name>", own_path=False),
)
DEEPSEEK_CODER = FimFamily(
    key="deepseek-coder",
    name="DeepSeek-Coder",
    prefix="<｜fim▁begin｜>",
    suffix="<｜fim▁hole｜>",
    middle="<｜fim▁end｜>",
    stops=(
        "<｜end▁of▁sentence｜>",
        "<|EOT|>",
        "<｜fim▁begin｜>",
        "<｜fim▁hole｜>",
        "<｜fim▁end｜>",
    ),
    spm=False,
    spm_by_default=False,
    # Other files go in as comment headers ("# utils.py"): the family has no file tokens.
    source=(
        "deepseek-ai/DeepSeek-Coder: README.md (Code Insertion; Repository Level Code "
        "Completion); deepseek-ai/DeepSeek-Coder#80 (base models only)"
    ),
)
QWEN_CODER = FimFamily(
    key="qwen-coder",
    name="Qwen2.5-Coder",
    prefix="<|fim_prefix|>",
    suffix="<|fim_suffix|>",
    middle="<|fim_middle|>",
    stops=(
        "<|endoftext|>",
        "<|fim_prefix|>",
        "<|fim_suffix|>",
        "<|fim_middle|>",
        "<|fim_pad|>",
        "<|repo_name|>",
        "<|file_sep|>",
        "<|im_start|>",
        "<|im_end|>",
    ),
    spm=False,
    spm_by_default=False,
    source=(
        "QwenLM/Qwen2.5-Coder: README.md and examples/Qwen2.5-Coder-repolevel-fim.py; "
        "qwencoder-eval/base/benchmarks/ExecRepoBench/eval.py (repository FIM)"
    ),
    marker="<|file_sep|>",
    # <|repo_name|>NAME\n<|file_sep|>PATH\nCODE\n<|file_sep|>PATH\n<|fim_prefix|>...
    repo=RepoFormat(
        file_start="<|file_sep|>", repo_name="<|repo_name|>", name_end="\n", content_end="\n"
    ),
)
CODEGEMMA = FimFamily(
    key="codegemma",
    name="CodeGemma",
    prefix="<|fim_prefix|>",
    suffix="<|fim_suffix|>",
    middle="<|fim_middle|>",
    stops=(
        "<|fim_prefix|>",
        "<|fim_suffix|>",
        "<|fim_middle|>",
        "<|file_separator|>",
        "<eos>",
        "<end_of_turn>",
    ),
    # Trained on PSM and SPM (CodeGemma report, arXiv:2406.11409), but the SPM order
    # is not published.
    spm=False,
    spm_by_default=False,
    source=(
        "ai.google.dev/gemma/docs/codegemma/prompt-structure; CodeGemma report "
        "(arXiv:2406.11409) figures 2 and 4; huggingface/blog: codegemma.md (stops)"
    ),
    marker="<|file_separator|>",
    # PATH\nCODE<|file_separator|>PATH\n<|fim_prefix|>...
    repo=RepoFormat(file_start=None, file_end="<|file_separator|>"),
)
FAMILIES: tuple[FimFamily, ...] = (CODE_LLAMA, STARCODER, DEEPSEEK_CODER, QWEN_CODER, CODEGEMMA)
"""Looked for in this order; the first whose tokens are all in the vocabulary is the one."""


@dataclass(frozen=True)
class FimTokens:
    """A family's FIM tokens as one tokenizer's ids."""

    family: FimFamily
    prefix: int
    suffix: int
    middle: int
    stop_ids: frozenset[int]
    """The family's stop tokens in this vocabulary (the tokenizer's own stops not included)."""
    file_start: int | None = None
    file_end: int | None = None
    repo_name: int | None = None

    @classmethod
    def from_tokenizer(cls, tok: TokenizerLike) -> FimTokens | None:
        """The FIM tokens of the family `tok` belongs to; None when it has none (cached)."""
        return _found(tok)

    @property
    def frames_files(self) -> bool:
        """Whether other files go in the family's repository format, before the FIM tokens
        (else under comment headers, after the prefix token)."""
        return self.file_start is not None or self.file_end is not None

    def mode(self, wanted: FimMode) -> FimMode:
        """The order to lay out: `wanted` where the family's order for it is known, AUTO
        the family's default; PSM otherwise."""
        family = self.family
        if wanted is FimMode.SPM and family.spm:
            return FimMode.SPM
        if wanted is FimMode.AUTO and family.spm_by_default:
            return FimMode.SPM
        return FimMode.PSM

    def lay_out(
        self,
        head: Sequence[int],
        prefix_ids: Sequence[int],
        suffix_ids: Sequence[int],
        mode: FimMode,
    ) -> list[int]:
        """The family's FIM prompt for these ids after `head` (BOS, a repository's files), in
        `self.mode(mode)` order."""
        if self.mode(mode) is FimMode.SPM:
            return [*head, self.prefix, self.suffix, *suffix_ids, self.middle, *prefix_ids]
        return [*head, self.prefix, *prefix_ids, self.suffix, *suffix_ids, self.middle]

    def file_frame(self, tok: TokenizerLike, repo_name: str | None) -> FileFrame | None:
        """How the context marks files in the family's repository format (None: it has
        none), `repo_name` opening it where the family names repositories."""
        repo = self.family.repo
        if repo is None or not self.frames_files:
            return None
        opening: tuple[int, ...] = ()
        opening_text = ""
        if repo_name and self.repo_name is not None and repo.repo_name is not None:
            named = repo_name + repo.name_end
            opening = (self.repo_name, *encode_infilling(tok, named))
            opening_text = repo.repo_name + named
        start = () if self.file_start is None else (self.file_start,)
        end = () if self.file_end is None else (self.file_end,)
        return FileFrame(
            comment_headers=False,
            opening=opening,
            opening_text=opening_text,
            path_lead=start,
            path_lead_text=repo.file_start or "",
            content_end=repo.content_end,
            closing=end,
            closing_text=repo.file_end or "",
            own_path=repo.own_path,
        )


def _detect(tok: TokenizerLike) -> FimTokens | None:
    return next((f for f in (_resolve(tok, family) for family in FAMILIES) if f), None)


_found = PerTokenizer(_detect)


def _resolve(tok: TokenizerLike, family: FimFamily) -> FimTokens | None:
    ids = [tok.token_to_id(piece) for piece in (family.prefix, family.suffix, family.middle)]
    if None in ids or len(set(ids)) != 3:
        return None
    if family.marker is not None and tok.token_to_id(family.marker) is None:
        return None
    prefix, suffix, middle = (int(i) for i in ids if i is not None)
    stops = {tok.token_to_id(stop) for stop in family.stops}
    repo = family.repo

    def repo_token(text: str | None) -> int | None:
        return None if text is None else tok.token_to_id(text)

    return FimTokens(
        family,
        prefix,
        suffix,
        middle,
        frozenset(int(i) for i in stops if i is not None),
        file_start=None if repo is None else repo_token(repo.file_start),
        file_end=None if repo is None else repo_token(repo.file_end),
        repo_name=None if repo is None else repo_token(repo.repo_name),
    )


def describe_prompt(tok: TokenizerLike, wanted: FimMode) -> str:
    """What completion prompts for this tokenizer are, for status and `doctor`: the FIM
    family, its layout and how other files go in; or left-to-right."""
    fim = FimTokens.from_tokenizer(tok)
    if fim is None:
        return "left-to-right (the tokenizer has no FIM tokens code-llama-ls knows)"
    files = "its repository format" if fim.frames_files else "comment headers"
    return f"{fim.family.name} FIM, {fim.mode(wanted).value.upper()}, other files as {files}"
