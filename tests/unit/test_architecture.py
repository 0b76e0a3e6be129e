"""ARCHITECTURE.md's invariants, checked on the source: who may import what.

Every import counts, those inside functions and under TYPE_CHECKING too: a
lazy import is still a dependency a reader has to follow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "code_llama_ls"

LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"__init__", "errors", "cancel"}),
    frozenset({"config", "logs", "memory", "codegen_cache"}),
    frozenset({"tokens", "text", "syntax"}),
    frozenset({"engine"}),
    frozenset({"context"}),
    frozenset({"pipeline"}),
    frozenset({"serving", "host"}),
    frozenset({"tools"}),
    frozenset({"lsp"}),
    frozenset({"cli", "launch", "__main__"}),
)
"""Lowest first. A module imports from its own layer or lower ones, never higher: the
same order as ARCHITECTURE.md's code map. Within the third layer, documents parse with
`syntax`, and `syntax` converts positions with `text`; within the top one, `launch`
runs the `cli`, which takes its command-line helpers from `launch`."""

ONLY_IN: dict[str, frozenset[str]] = {
    **dict.fromkeys(("pygls", "lsprotocol"), frozenset({"lsp"})),
    **dict.fromkeys(
        ("torch", "onnx", "transformers", "optimum", "urllib3", "tokenizers"),
        frozenset({"engine"}),
    ),
    "onnxruntime": frozenset({"engine", "host"}),
}
"""Third-party packages that only one part of the server may know. The model host imports
ONNX Runtime while its settings are on their way, to load sooner."""

ENGINE_MAY_IMPORT = frozenset({"engine", "errors", "cancel", "tokens"})
"""The engine is plain model running: no settings, no documents, no prompts."""


def _unit(path: Path) -> str:
    """The top-level module or package a file belongs to (`lsp`, `cli`, ...)."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            base = node.module
            names += [f"{base}.{alias.name}" for alias in node.names]
    return names


def _edges() -> list[tuple[str, str, str]]:
    """(importing file, imported top-level unit or package, the import) for every import."""
    edges = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] != "code_llama_ls":
                target = "third-party:" + parts[0]
            elif len(parts) > 1 and _is_part(parts[1]):
                target = parts[1]
            else:  # a name the package itself defines (`__version__`)
                target = "__init__"
            edges.append((str(path.relative_to(PACKAGE.parent)), target, name))
    return edges


def _is_part(name: str) -> bool:
    return (PACKAGE / f"{name}.py").is_file() or (PACKAGE / name).is_dir()


def _layer(unit: str) -> int:
    for number, layer in enumerate(LAYERS):
        if unit in layer:
            return number
    raise AssertionError(f"{unit} is in no layer of LAYERS: add it where it belongs")


def test_every_part_of_the_package_has_a_layer() -> None:
    for path in PACKAGE.rglob("*.py"):
        _layer(_unit(path))


def test_nothing_imports_upward() -> None:
    upward = [
        f"{source} imports {name}"
        for source, target, name in _edges()
        if not target.startswith("third-party:")
        and _layer(target) > _layer(_unit(PACKAGE.parent / source))
    ]
    assert upward == []


def test_the_engine_depends_only_on_errors_cancellation_and_tokens() -> None:
    wrong = [
        f"{source} imports {name}"
        for source, target, name in _edges()
        if source.startswith("code_llama_ls/engine/")
        and not target.startswith("third-party:")
        and target not in ENGINE_MAY_IMPORT
    ]
    assert wrong == []


@pytest.mark.parametrize("library", sorted(ONLY_IN))
def test_a_library_is_known_to_one_part_only(library: str) -> None:
    allowed = ONLY_IN[library]
    wrong = [
        source
        for source, target, _ in _edges()
        if target == f"third-party:{library}" and _unit(PACKAGE.parent / source) not in allowed
    ]
    assert wrong == [], f"only {sorted(allowed)} may import {library}"


def test_the_layer_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The checks above read real imports: a lazy upward one is found."""
    source = "def f():\n    from code_llama_ls.lsp.server import CodeLlamaServer\n"
    path = tmp_path / "example.py"
    path.write_text(source)
    assert _imports(path) == ["code_llama_ls.lsp.server.CodeLlamaServer"]
    assert _layer("lsp") > _layer("pipeline")
