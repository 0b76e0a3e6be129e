"""The cross-file context in each FIM family's own format (`context/assemble.py`'s `FileFrame`).

Each family's prompt, context included, is checked id for id against the
family's documented format written out as a string and encoded by its
transformers tokenizer (control tokens parsed from the text, BOS added where
the tokenizer adds one), with the snippets the context engine chose:

- Qwen2.5-Coder (its evaluation code, `ExecRepoBench/eval.py`):
  `<|repo_name|>{repo}` + `\\n<|file_sep|>{path}\\n{content}` per file +
  `\\n<|file_sep|>{path}\\n<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>`;
- StarCoder2 (its paper, section 5.1): `<repo_name>{repo}` +
  `<file_sep>{path}\\n{content}` per file + `<file_sep><fim_prefix>{prefix}...`;
- CodeGemma (its report, figures 2 and 4): `{path}\\n{content}<|file_separator|>`
  per file + `{path}\\n<|fim_prefix|>{prefix}...`;
- DeepSeek-Coder, without file tokens: comment headers inside the prefix,
  as Code Llama's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from code_llama_ls.engine.tokenizer_files import load_tokenizer
from code_llama_ls.pipeline.complete import PreparedPrompt
from code_llama_ls.pipeline.fim import FimMode
from code_llama_ls.tokens.tokenizer import TokenizerLike, encode_infilling
from tests.fim_families import build_family_tokenizer
from tests.unit.test_context_engine import PYTHON, prepare

REPO = "shapes"


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[TokenizerLike, Any]]:
    """Each family's tokenizer as the server loads it, and as transformers does."""
    from transformers import AutoTokenizer

    built: dict[str, tuple[TokenizerLike, Any]] = {}
    for family in ("qwen-coder", "starcoder", "codegemma", "deepseek-coder"):
        directory = build_family_tokenizer(family, tmp_path_factory.mktemp(family))
        built[family] = (load_tokenizer(directory), AutoTokenizer.from_pretrained(str(directory)))
    return built


def _prepared(tok: TokenizerLike, tmp_path: Path) -> PreparedPrompt:
    prepared, _, _ = prepare(tok, tmp_path / REPO, PYTHON, "pkg/app.py", mode=FimMode.AUTO)
    assert prepared.prompt is not None and prepared.local is not None
    assert any(block.is_code for block in prepared.context.blocks), "no snippet was chosen"
    return prepared


def _contents(prepared: PreparedPrompt) -> dict[str, str]:
    """Each other file's shown lines (and elisions), in the order the context has them."""
    shown: dict[str, str] = {}
    for block in prepared.context.blocks:
        if block.kind not in ("header", "separator"):
            shown[block.display_path] = shown.get(block.display_path, "") + block.text
    return shown


def _expect(hf: Any, text: str) -> list[int]:
    return list(hf(text).input_ids)


def test_qwen_coder_context_is_its_repository_format(
    tokenizers: dict[str, tuple[TokenizerLike, Any]], tmp_path: Path
) -> None:
    tok, hf = tokenizers["qwen-coder"]
    prepared = _prepared(tok, tmp_path)
    local = prepared.local
    assert local is not None and prepared.prompt is not None
    # Each file's lines end in a line break; the blank line after them is the format's.
    files = "".join(
        f"\n<|file_sep|>{path}\n{body.removesuffix(chr(10))}"
        for path, body in _contents(prepared).items()
    )
    reference = (
        f"<|repo_name|>{REPO}{files}\n<|file_sep|>pkg/app.py\n"
        f"<|fim_prefix|>{local.prefix}<|fim_suffix|>{local.suffix}<|fim_middle|>"
    )
    assert list(prepared.prompt.ids) == _expect(hf, reference)
    assert prepared.context.text.startswith(f"<|repo_name|>{REPO}\n<|file_sep|>pkg/geometry.py\n")


def test_starcoder2_context_is_its_repository_format(
    tokenizers: dict[str, tuple[TokenizerLike, Any]], tmp_path: Path
) -> None:
    tok, hf = tokenizers["starcoder"]
    prepared = _prepared(tok, tmp_path)
    local = prepared.local
    assert local is not None and prepared.prompt is not None
    files = "".join(f"<file_sep>{path}\n{body}" for path, body in _contents(prepared).items())
    # The cursor file's path would go inside <fim_prefix>, where a window cut from the
    # middle of the file cannot hold it: it is left out (optional, say its maintainers).
    reference = (
        f"<repo_name>{REPO}{files}<file_sep>"
        f"<fim_prefix>{local.prefix}<fim_suffix>{local.suffix}<fim_middle>"
    )
    assert list(prepared.prompt.ids) == _expect(hf, reference)


def test_codegemma_context_is_paths_and_file_separators(
    tokenizers: dict[str, tuple[TokenizerLike, Any]], tmp_path: Path
) -> None:
    tok, hf = tokenizers["codegemma"]
    prepared = _prepared(tok, tmp_path)
    local = prepared.local
    assert local is not None and prepared.prompt is not None
    files = "".join(
        f"{path}\n{body}<|file_separator|>" for path, body in _contents(prepared).items()
    )
    reference = (
        f"{files}pkg/app.py\n<|fim_prefix|>{local.prefix}<|fim_suffix|>{local.suffix}<|fim_middle|>"
    )
    ids = list(prepared.prompt.ids)
    assert ids == _expect(hf, reference)
    assert ids[0] == hf.bos_token_id  # BOS first, then the files


def test_deepseek_coder_context_has_comment_headers_inside_the_prefix(
    tokenizers: dict[str, tuple[TokenizerLike, Any]], tmp_path: Path
) -> None:
    tok, hf = tokenizers["deepseek-coder"]
    prepared = _prepared(tok, tmp_path)
    local = prepared.local
    assert local is not None and prepared.prompt is not None
    reference = (
        f"<｜fim▁begin｜>{prepared.context.text}{local.prefix}"
        f"<｜fim▁hole｜>{local.suffix}<｜fim▁end｜>"
    )
    assert prepared.context.text.startswith("# pkg/geometry.py\n")
    assert list(prepared.prompt.ids) == _expect(hf, reference)


def test_without_a_snippet_the_prompt_is_the_plain_fim_format(
    tokenizers: dict[str, tuple[TokenizerLike, Any]], tmp_path: Path
) -> None:
    tok, hf = tokenizers["qwen-coder"]
    alone = {"pkg/app.py": "def grow(shape):\n    return <|>\n"}
    prepared, _, _ = prepare(tok, tmp_path / REPO, alone, "pkg/app.py", mode=FimMode.AUTO)
    local = prepared.local
    assert local is not None and prepared.prompt is not None
    assert prepared.context.ids == ()
    reference = f"<|fim_prefix|>{local.prefix}<|fim_suffix|>{local.suffix}<|fim_middle|>"
    assert list(prepared.prompt.ids) == _expect(hf, reference)


def _canonical(tok: TokenizerLike, ids: list[int]) -> list[int]:
    """`ids` with each run between control tokens re-encoded whole by the tokenizer."""
    out: list[int] = []
    run: list[int] = []
    for token in [*ids, -1]:
        text = tok.decode([token]) if token >= 0 else ""
        control = token < 0 or (text.startswith("<") and tok.token_to_id(text) == token)
        if control and run:
            out += encode_infilling(tok, tok.decode(run))
            run = []
        if not control:
            run.append(token)
        elif token >= 0:
            out.append(token)
    return out


@pytest.mark.parametrize("budget", [120, 200, 400])
@pytest.mark.parametrize("family", ["qwen-coder", "starcoder", "codegemma", "deepseek-coder"])
def test_the_context_has_the_ids_the_tokenizer_gives_its_text(
    tokenizers: dict[str, tuple[TokenizerLike, Any]], tmp_path: Path, family: str, budget: int
) -> None:
    """Small budgets show parts of classes: elisions and indented lines meet at piece ends."""
    tok, _ = tokenizers[family]
    prepared, _, _ = prepare(
        tok, tmp_path / REPO, PYTHON, "pkg/app.py", mode=FimMode.AUTO, budget=budget
    )
    ids = list(prepared.context.ids)
    assert ids, "no context at this budget"
    assert ids == _canonical(tok, ids)
    assert sum(block.tokens for block in prepared.context.blocks) == len(ids)
