"""The context engine end to end, without a model: workspaces on disk to prompt ids.

Small multi-file workspaces per language: the import is resolved, the
definition lands in the prompt under its file's header, budgets hold to the
token, nothing repeats the local window, and typing at the cursor leaves
the context's ids unchanged (so their KV cache is reused).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from code_llama_ls.context.builder import ContextBuilder
from code_llama_ls.context.index import WorkspaceIndex
from code_llama_ls.context.recent import RecentEdits
from code_llama_ls.pipeline.complete import PreparedPrompt, prepare_prompt
from code_llama_ls.pipeline.fim import FimMode, FimTokens
from code_llama_ls.pipeline.prompt import PromptFormat
from code_llama_ls.pipeline.request import CompletionOptions, CompletionRequest
from code_llama_ls.text.documents import DocumentStore, Snapshot
from code_llama_ls.tokens.tokenizer import TokenizerLike, encode_infilling
from tests.tiny_models import TokenizerAdapter, TokenizerOnlyEngine, build_code_llama_tokenizer

CURSOR = "<|>"


@pytest.fixture(scope="module")
def tok(tmp_path_factory: pytest.TempPathFactory) -> TokenizerAdapter:
    from transformers import AutoTokenizer

    directory = build_code_llama_tokenizer(tmp_path_factory.mktemp("tokenizer"))
    return TokenizerAdapter(AutoTokenizer.from_pretrained(str(directory)))


def write_workspace(root: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace(CURSOR, ""))


def prepare(
    tok: TokenizerLike,
    root: Path,
    files: Mapping[str, str],
    current: str,
    *,
    budget: int = 4096,
    mode: FimMode = FimMode.SPM,
    recent: RecentEdits | None = None,
    builder: ContextBuilder | None = None,
) -> tuple[PreparedPrompt, ContextBuilder, Snapshot]:
    """Index `files` under `root`, open `current` (with its CURSOR) and prepare the prompt."""
    write_workspace(root, files)
    if builder is None:
        index = WorkspaceIndex()
        index.index_root(root)
        builder = ContextBuilder(index, recent)
    text = files[current]
    offset = text.index(CURSOR)
    snapshot = DocumentStore().open(
        (root / current).resolve().as_uri(), "", 1, text.replace(CURSOR, "")
    )
    options = CompletionOptions(mode, 64, budget + 64)
    engine = TokenizerOnlyEngine(tok)
    return (
        prepare_prompt(CompletionRequest(snapshot, offset, options), engine, builder),
        builder,
        snapshot,
    )  # type: ignore[arg-type]


def snippets(prepared: PreparedPrompt) -> list[tuple[str, str | None, str]]:
    """(display path, symbol, kind) of each symbol shown (blocks can merge adjacent snippets)."""
    return [
        (b.display_path, symbol, b.kind)
        for b in prepared.context.blocks
        if b.is_code
        for symbol in (b.symbol.split(", ") if b.symbol else [None])
    ]


PYTHON = {
    "pkg/__init__.py": "",
    "pkg/geometry.py": (
        "import math\n\n\n"
        "def scale(vector, factor):\n"
        '    """Multiply each coordinate of `vector` by `factor`."""\n'
        "    return [x * factor for x in vector]\n\n\n"
        "class Shape:\n"
        '    """A polygon."""\n\n'
        "    def __init__(self, points):\n"
        "        self.points = points\n\n"
        "    def area(self):\n"
        '        """Shoelace formula."""\n'
        "        total = 0.0\n"
        "        for (x1, y1), (x2, y2) in zip(self.points, self.points[1:]):\n"
        "            total += x1 * y2 - x2 * y1\n"
        "        return abs(total) / 2\n"
    ),
    "pkg/app.py": (
        "from .geometry import Shape, scale\n\n\n"
        "def grow(shape):\n"
        "    points = [scale(p, 2) for p in shape.points]\n"
        "    return Shape(<|>)\n"
    ),
}


def test_imported_definitions_are_in_the_prompt_under_their_file_header(
    tok: TokenizerAdapter, tmp_path: Path
) -> None:
    prepared, _, _ = prepare(tok, tmp_path, PYTHON, "pkg/app.py")
    found = snippets(prepared)
    assert ("pkg/geometry.py", "Shape", "imported definition") in found
    assert ("pkg/geometry.py", "scale", "imported definition") in found
    text = prepared.context.text
    assert text.startswith("# pkg/geometry.py\n")
    assert "def scale(vector, factor):\n" in text
    assert "    def area(self):\n" in text
    assert text.endswith("# pkg/app.py\n")  # the cursor's own file comes last
    assert prepared.prompt is not None
    assert prepared.prompt.prefix.startswith("from .geometry import Shape, scale")


def test_token_counts_are_exact_and_the_budget_is_never_exceeded(
    tok: TokenizerAdapter, tmp_path: Path
) -> None:
    write_workspace(tmp_path, PYTHON)
    index = WorkspaceIndex()
    index.index_root(tmp_path)
    builder = ContextBuilder(index)
    sizes = set()
    for budget in range(40, 420, 9):
        prepared, _, _ = prepare(
            tok, tmp_path, PYTHON, "pkg/app.py", budget=budget, builder=builder
        )
        assert prepared.prompt is not None
        assert len(prepared.prompt.ids) <= budget
        assert sum(b.tokens for b in prepared.context.blocks) == len(prepared.context.ids)
        sizes.add(len(prepared.context.ids))
    assert len(sizes) > 3  # the context really grows with the budget


def test_summaries_come_first_and_bodies_when_the_budget_allows(
    tok: TokenizerAdapter, tmp_path: Path
) -> None:
    small, builder, _ = prepare(tok, tmp_path, PYTHON, "pkg/app.py", budget=250)
    large, _, _ = prepare(tok, tmp_path, PYTHON, "pkg/app.py", budget=2000, builder=builder)
    small_blocks = {b.symbol: b for b in small.context.blocks if b.symbol}
    assert small_blocks["Shape"].summarized
    assert "total += " not in small.context.text
    assert (
        '    def area(self):\n        """Shoelace formula."""\n        ...\n' in small.context.text
    )
    assert not any(b.summarized for b in large.context.blocks)
    assert "total += x1 * y2 - x2 * y1" in large.context.text


def test_the_context_goes_before_the_prefix_in_each_layout(
    tok: TokenizerAdapter, tmp_path: Path
) -> None:
    fim = FimTokens.from_tokenizer(tok)
    assert fim is not None
    for mode in (FimMode.SPM, FimMode.PSM):
        prepared, _, _ = prepare(tok, tmp_path, PYTHON, "pkg/app.py", mode=mode)
        prompt, local = prepared.prompt, prepared.local
        assert prompt is not None and local is not None
        context = list(prepared.context.ids)
        assert context[: len(tok.encode("# pkg"))] == tok.encode("# pkg")  # dummy space first
        assert local.prefix_ids == encode_infilling(tok, local.prefix)
        body = [*context, *local.prefix_ids]
        suffix = local.suffix_ids
        bos = [tok.bos_token_id]
        if mode is FimMode.SPM:
            expected = [*bos, fim.prefix, fim.suffix, *suffix, fim.middle, *body]
            assert prompt.format is PromptFormat.FIM_SPM
        else:
            expected = [*bos, fim.prefix, *body, fim.suffix, *suffix, fim.middle]
        assert list(prompt.ids) == expected


def test_typing_at_the_cursor_keeps_the_context_ids(tok: TokenizerAdapter, tmp_path: Path) -> None:
    before, builder, _ = prepare(tok, tmp_path, PYTHON, "pkg/app.py")
    typed = dict(PYTHON, **{"pkg/app.py": PYTHON["pkg/app.py"].replace("<|>", "[p for<|>")})
    after, _, _ = prepare(tok, tmp_path, typed, "pkg/app.py", builder=builder)
    assert before.context.ids == after.context.ids
    assert before.prompt is not None and after.prompt is not None
    shared = len(before.prompt.ids) - len(before.local.prefix_ids if before.local else [])
    assert after.prompt.ids[:shared] == before.prompt.ids[:shared]


def test_no_context_means_the_plain_infilling_prompt(tok: TokenizerAdapter, tmp_path: Path) -> None:
    alone = {"solo.py": "def f(x):\n    return <|>\n"}
    with_builder, _, snapshot = prepare(tok, tmp_path, alone, "solo.py")
    options = CompletionOptions(FimMode.SPM, 64, 4096 + 64)
    offset = alone["solo.py"].index(CURSOR)
    plain = prepare_prompt(
        CompletionRequest(snapshot, offset, options), TokenizerOnlyEngine(tok), None
    )  # type: ignore[arg-type]
    assert with_builder.context.blocks == ()
    assert with_builder.prompt == plain.prompt


def test_same_file_definitions_outside_the_local_window_only(
    tok: TokenizerAdapter, tmp_path: Path
) -> None:
    helper = "def far_helper(value):\n    return value * 3\n\n\n"
    filler = "".join(f"def filler_{i}(a, b):\n    return a + b + {i}\n\n\n" for i in range(60))
    near = "def near_helper(value):\n    return value - 1\n\n\n"
    caller = "def main():\n    x = far_helper(near_helper(1))\n    return <|>\n"
    files = {"long.py": helper + filler + near + caller}
    prepared, _, _ = prepare(tok, tmp_path, files, "long.py", budget=300)
    found = snippets(prepared)
    assert ("long.py", "far_helper", "definition in this file") in found
    assert all(symbol != "near_helper" for _, symbol, _ in found)  # in the local window
    local = prepared.local
    assert local is not None
    assert "def near_helper" in local.prefix
    assert local.prefix.startswith("def ")  # the window starts at a statement


def test_recent_edits_of_other_files_are_shown(tok: TokenizerAdapter, tmp_path: Path) -> None:
    files = {
        "notes.py": "".join(f"value_{i} = {i}\n" for i in range(30)),
        "main.py": "print(<|>)\n",
    }
    write_workspace(tmp_path, files)
    recent = RecentEdits()
    recent.record((tmp_path / "notes.py").resolve().as_posix(), 20)
    prepared, _, _ = prepare(tok, tmp_path, files, "main.py", recent=recent)
    block = next(b for b in prepared.context.blocks if b.kind == "recent edit")
    assert (block.start_line, block.end_line) == (14, 26)
    assert "value_20 = 20\n" in block.text


def test_similar_code_in_other_files_is_shown(tok: TokenizerAdapter, tmp_path: Path) -> None:
    shared = (
        "    request = build_request(session, endpoint, headers)\n"
        "    response = session.send(request, timeout=timeout_seconds)\n"
        "    payload = decode_payload(response, encoding)\n"
    )
    files = {
        "client_a.py": (
            f"def fetch_users(session, endpoint, headers, timeout_seconds, encoding):\n"
            f"{shared}    return payload['users']\n"
        ),
        "unrelated.py": "def colour(r, g, b):\n    return (r, g, b)\n",
        "client_b.py": (
            f"def fetch_groups(session, endpoint, headers, timeout_seconds, encoding):\n"
            f"{shared}    return <|>\n"
        ),
    }
    prepared, _, _ = prepare(tok, tmp_path, files, "client_b.py")
    assert ("client_a.py", None, "similar code") in snippets(prepared)
    assert all(path != "unrelated.py" for path, _, _ in snippets(prepared))


OTHER_LANGUAGES = {
    "javascript": (
        {
            "src/math.js": (
                "export function clamp(value, low, high) {\n"
                "  return Math.min(Math.max(value, low), high);\n"
                "}\n"
            ),
            "src/app.js": (
                "import { clamp } from './math';\n"
                "\n"
                "export function level(x) {\n"
                "  return clamp(<|>);\n"
                "}\n"
            ),
        },
        "src/app.js",
        "src/math.js",
        "clamp",
    ),
    "typescript": (
        {
            "src/shapes.ts": "export interface Point {\n  x: number;\n  y: number;\n}\n",
            "src/main.ts": "import { Point } from './shapes';\n\nconst origin: Point = <|>;\n",
        },
        "src/main.ts",
        "src/shapes.ts",
        "Point",
    ),
    "go": (
        {
            "go.mod": "module example.com/shop\n\ngo 1.22\n",
            "pricing/pricing.go": (
                "package pricing\n"
                "\n"
                "// Discount applies a rate.\n"
                "func Discount(price float64, rate float64) float64 {\n"
                "\treturn price * (1 - rate)\n"
                "}\n"
            ),
            "main.go": (
                "package main\n"
                "\n"
                'import "example.com/shop/pricing"\n'
                "\n"
                "func main() {\n"
                "\ttotal := pricing.Discount(<|>)\n"
                "\t_ = total\n"
                "}\n"
            ),
        },
        "main.go",
        "pricing/pricing.go",
        "Discount",
    ),
    "rust": (
        {
            "Cargo.toml": '[package]\nname = "shop"\nversion = "0.1.0"\n',
            "src/lib.rs": "pub mod pricing;\n",
            "src/pricing.rs": (
                "pub fn discount(price: f64, rate: f64) -> f64 {\n    price * (1.0 - rate)\n}\n"
            ),
            "src/main.rs": (
                "use crate::pricing::discount;\n\nfn main() {\n    let total = discount(<|>);\n}\n"
            ),
        },
        "src/main.rs",
        "src/pricing.rs",
        "discount",
    ),
    "java": (
        {
            "src/main/java/com/shop/Pricing.java": (
                "package com.shop;\n"
                "\n"
                "public class Pricing {\n"
                "    public static double discount(double price, double rate) {\n"
                "        return price * (1 - rate);\n"
                "    }\n"
                "}\n"
            ),
            "src/main/java/com/shop/app/Main.java": (
                "package com.shop.app;\n"
                "\n"
                "import com.shop.Pricing;\n"
                "\n"
                "public class Main {\n"
                "    public static void main(String[] args) {\n"
                "        double total = Pricing.discount(<|>);\n"
                "    }\n"
                "}\n"
            ),
        },
        "src/main/java/com/shop/app/Main.java",
        "src/main/java/com/shop/Pricing.java",
        "Pricing",
    ),
}


@pytest.mark.parametrize("language", sorted(OTHER_LANGUAGES))
def test_imports_are_resolved_in_each_language(
    tok: TokenizerAdapter, tmp_path: Path, language: str
) -> None:
    files, current, defining, symbol = OTHER_LANGUAGES[language]
    prepared, _, _ = prepare(tok, tmp_path, files, current)
    assert (defining, symbol, "imported definition") in snippets(prepared)
    assert f"// {defining}\n" in prepared.context.text


def test_words_in_comments_and_strings_fetch_nothing(tok: TokenizerAdapter, tmp_path: Path) -> None:
    files = {
        "tools.py": "def frobnicate(widget):\n    return widget.spin()\n",
        "main.py": (
            '"""Run frobnicate on every widget, see tools.frobnicate."""\n\n'
            "# frobnicate later\n"
            "print('frobnicate')\n"
            "value = <|>\n"
        ),
    }
    prepared, _, _ = prepare(tok, tmp_path, files, "main.py")
    assert prepared.context.blocks == ()
    used = dict(files, **{"main.py": files["main.py"].replace("<|>", "frobnicate(<|>)")})
    prepared, _, _ = prepare(tok, tmp_path, used, "main.py")
    assert ("tools.py", "frobnicate", "definition by name") in snippets(prepared)
