"""Model-free "oracle" benchmark of the completion post-processing (`pipeline.postprocess`).

No model runs. Each HumanEval-infilling problem (prompt, suffix and the true
middle, MIT licence, read from `benchmarks/data/human-eval-infilling/`) gives a
document and a cursor; the "model output" is synthesized as the true middle
followed by what models typically emit after it, one case type at a time:

* ``exact``: the true middle alone (the model stopped by itself);
* ``suffix-copy-1/2/3``: the middle, then a copy of the suffix up to the end of
  its first 1, 2 or 3 non-blank lines (the model re-types the code after the hole);
* ``next-function``: the middle, then two blank lines and ``def helper(x):``;
* ``unbalanced-closers``: the middle, then the closing brackets that are open at
  the end of the middle and that the suffix closes: right after the middle
  when the suffix closes them on the middle's last line, else on a line of
  their own at the indentation of the suffix's closer; problems with no such
  bracket do not have this case;
* ``trailing-blank``: the middle, then ``"\\n\\n\\n"``;
* ``repetition``: the middle, then its last line again (optional: a repeated
  line may be meant, so it is left out of the overall figures and reported
  as its own row).

Each output goes through the server's pipeline (`completion.complete`):
`classify_cursor` on the document without the middle at the cursor (the
snapshot of `DocumentStore.open`, so the same tree and language), generation
emulated by feeding the output to `StopCheck` (`should_stop`) one character at a time and
cutting after the character where it says stop (the engine calls it per token
with the text so far), then `postprocess(text, cursor, suffix)` with the
LF-normalized document after the cursor. A case is **exact** when the result
equals the true middle and **lenient** when they are equal after removing
trailing whitespace from every line and trailing blank lines from both. A
cursor classified NONE shows nothing: such cases are counted as
**suppressed** (and as not exact).

Two cursor placements are measured:

* ``as-given``: document = prompt + suffix, cursor at len(prompt), exactly the
  data set's split. In the single- and multi-line subsets the hole is whole
  lines, so the cursor sits at column 0 of a line that holds the suffix's first
  line of code, the true middle ends with "\\n", and the server classifies
  most of these cursors NONE ("before code on the line").
* ``editor``: where the hole is whole lines, the cursor is on an empty line
  opened for the middle, after the indentation of the middle's first line
  (what an editor shows after Enter and auto-indent): document = prompt +
  indent + "\\n" + suffix; the true middle loses that indentation and its
  final newline. Holes that are not whole lines keep the as-given placement.

The failing cases are grouped by cause (see `diagnose`), with examples, in the
output JSON; `--golden-dir` (tests/data/postprocess/humaneval) also writes one
JSON file per representative failure (see `choose_golden`): the prompt's tail
from the cursor's top-level definition, the suffix's head to its end, the
emitted and the expected text; a case is written only if, reduced so, it is
classified and cleaned exactly as in the whole document.

Run from the repository root:

    /work/venv/bin/python -m benchmarks.postprocess_oracle [--subsets a,b]
        [--placements as-given,editor] [--limit N] [--stop-check char|line]
        [--examples 3] [--golden-dir tests/data/postprocess/humaneval]
        [--out benchmarks/results/postprocess_oracle.json]

About a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import hashlib
import json
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tree_sitter

from benchmarks.environment import machine, percentile
from code_llama_ls.pipeline.postprocess import StopCheck, postprocess
from code_llama_ls.pipeline.prompt import normalize_newlines
from code_llama_ls.syntax import parser_for
from code_llama_ls.syntax.cursor import CompletionMode, CursorContext, classify_cursor
from code_llama_ls.syntax.errors import InsertionParser
from code_llama_ls.text.documents import DocumentStore

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "benchmarks" / "data" / "human-eval-infilling"
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "postprocess_oracle.json"

SUBSETS: dict[str, str] = {
    "single-line": "HumanEval-SingleLineInfilling.jsonl.gz",
    "multi-line": "HumanEval-MultiLineInfilling.jsonl.gz",
    "random-span-light": "HumanEval-RandomSpanInfillingLight.jsonl.gz",
}
PLACEMENTS = ("as-given", "editor")
CASE_TYPES = (
    "exact",
    "suffix-copy-1",
    "suffix-copy-2",
    "suffix-copy-3",
    "next-function",
    "unbalanced-closers",
    "trailing-blank",
    "repetition",
)
REQUIRED_TYPES = CASE_TYPES[:-1]
"""The case types of the overall figures and the goal (all but ``repetition``)."""
GOAL_SUBSETS = ("single-line", "multi-line")
GOAL_EXACT = 0.98
"""The issue's goal: at least this share exact on the single- and multi-line subsets."""

NEXT_FUNCTION = "\n\ndef helper(x):\n    return x\n"
_CLOSER_OF = {"(": ")", "[": "]", "{": "}"}
_STRING_NODES = frozenset({"string", "string_content", "comment"})
_TOP_LEVEL_DEF = re.compile(r"(?:async\s+def|def|class)\b")
_URI = "file:///humaneval/oracle.py"


# --- data -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One HumanEval-infilling record: the true program is prompt + middle + suffix."""

    task_id: str
    prompt: str
    middle: str
    suffix: str


@dataclass(frozen=True)
class Hole:
    """A document split at the cursor, and the middle that belongs there."""

    problem: Problem
    subset: str
    placement: str
    prefix: str
    """The document before the cursor."""
    suffix: str
    """The document after the cursor."""
    middle: str
    """The true middle: what the ghost text should be."""

    @property
    def document(self) -> str:
        return self.prefix + self.suffix


def load_problems(data_dir: Path, subset: str) -> list[Problem]:
    """The problems of one subset, in file order."""
    path = data_dir / SUBSETS[subset]
    if not path.is_file():
        raise SystemExit(
            f"{path} is missing: this benchmark reads HumanEval-infilling (MIT, "
            f"github.com/openai/human-eval-infilling) from {data_dir}"
        )
    problems = []
    with gzip.open(path, "rt", encoding="utf-8") as file:
        for line in file:
            if line.strip():
                record = json.loads(line)
                problems.append(
                    Problem(
                        record["task_id"],
                        record["prompt"],
                        record["canonical_solution"],
                        record["suffix"],
                    )
                )
    return problems


def place(problem: Problem, subset: str, placement: str) -> Hole:
    """Where the cursor is and what the middle is, for one placement (see the module doc)."""
    prompt, middle, suffix = problem.prompt, problem.middle, problem.suffix
    whole_lines = (not prompt or prompt.endswith("\n")) and middle.endswith("\n")
    if placement == "editor" and whole_lines:
        first = middle.split("\n", 1)[0]
        indent = first[: len(first) - len(first.lstrip(" \t"))]
        return Hole(
            problem, subset, placement, prompt + indent, "\n" + suffix, middle[len(indent) : -1]
        )
    return Hole(problem, subset, placement, prompt, suffix, middle)


# --- synthesized model output ------------------------------------------------------------


def _suffix_lines(suffix: str, count: int) -> str | None:
    """`suffix` up to the end of its `count`-th non-blank line, with that line's newline."""
    seen, start = 0, 0
    while start <= len(suffix):
        end = suffix.find("\n", start)
        end = len(suffix) if end < 0 else end
        if suffix[start:end].strip():
            seen += 1
            if seen == count:
                return suffix[: end + 1]
        if end == len(suffix):
            return None
        start = end + 1
    return None


def _open_closers(tree: tree_sitter.Tree, text: bytes, at: int) -> tuple[str, int] | None:
    """The closers of the brackets open at byte `at` whose closers come after it.

    Returns them innermost first, with the byte offset of the first one; None
    when there are none or `at` is inside a string or comment.
    """
    node: tree_sitter.Node | None = tree.root_node.descendant_for_byte_range(at, at)
    closers: list[tuple[str, int]] = []
    while node is not None:
        if node.type in _STRING_NODES and node.start_byte < at < node.end_byte:
            return None
        children = node.children
        for i, child in enumerate(children):
            if child.type in _CLOSER_OF and child.end_byte <= at:
                closer = _CLOSER_OF[child.type]
                for later in children[i + 1 :]:
                    if later.type == closer and later.start_byte >= at:
                        closers.append((closer, later.start_byte))
                        break
        node = node.parent
    if not closers:
        return None
    return "".join(closer for closer, _ in closers), closers[0][1]


def synthesize(hole: Hole, case_type: str, full_tree: tree_sitter.Tree) -> str | None:
    """What the model emits for `case_type` at `hole`; None when the case does not apply."""
    middle = hole.middle
    if case_type == "exact":
        return middle
    if case_type.startswith("suffix-copy-"):
        copied = _suffix_lines(hole.suffix, int(case_type.rsplit("-", 1)[1]))
        return None if copied is None else middle + copied
    if case_type == "next-function":
        return middle + ("" if middle.endswith("\n") else "\n") + NEXT_FUNCTION
    if case_type == "unbalanced-closers":
        text = (hole.prefix + middle + hole.suffix).encode("utf-8")
        end = len((hole.prefix + middle).encode("utf-8"))
        found = _open_closers(full_tree, text, end)
        if found is None:
            return None
        closers, first_at = found
        if b"\n" not in text[end:first_at]:
            return middle + closers  # the suffix closes them on the middle's last line
        line_start = text.rfind(b"\n", 0, first_at) + 1
        line = text[line_start:first_at].decode("utf-8")
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        return middle + ("" if middle.endswith("\n") else "\n") + indent + closers + "\n"
    if case_type == "trailing-blank":
        return middle + "\n\n\n"
    if case_type == "repetition":
        body = middle.removesuffix("\n")
        last = (hole.prefix + body).rsplit("\n", 1)[-1]  # the middle's last line, whole
        if not last.strip():
            return None
        return middle + last + "\n" if middle.endswith("\n") else middle + "\n" + last
    raise ValueError(case_type)


# --- the pipeline ---------------------------------------------------------------------------


def stream(emitted: str, ctx: CursorContext, every: str, sees_suffix: bool) -> str:
    """The text generation ends with: `emitted` cut after the first prefix `should_stop` stops.

    `every` is "char" (each prefix) or "line" (the prefixes that end with a
    newline: the same result, faster, while `should_stop` reads complete lines only).
    """
    if every == "char":
        ends: Iterator[int] = iter(range(1, len(emitted) + 1))
    else:
        ends = (i + 1 for i, char in enumerate(emitted) if char == "\n")
    stop_check = StopCheck(ctx, sees_suffix=sees_suffix)
    for end in ends:
        if stop_check(emitted[:end]):
            return emitted[:end]
    return emitted


@dataclass(frozen=True)
class Outcome:
    """One synthesized case through the pipeline."""

    hole: Hole
    case_type: str
    ctx: CursorContext
    emitted: str
    streamed: str
    cleaned: str
    unstreamed: str
    """`postprocess` of the whole emitted text, without `should_stop`."""
    postprocess_ms: float
    """Time `postprocess` took on the streamed text (the parse checks included)."""

    @property
    def mode(self) -> CompletionMode:
        return self.ctx.mode

    @property
    def suppressed(self) -> bool:
        return self.mode is CompletionMode.NONE

    @property
    def exact(self) -> bool:
        return not self.suppressed and self.cleaned == self.hole.middle

    @property
    def lenient(self) -> bool:
        return not self.suppressed and normalize(self.cleaned) == normalize(self.hole.middle)


def normalize(text: str) -> str:
    """`text` without trailing whitespace on its lines and without trailing blank lines."""
    return "\n".join(line.rstrip() for line in text.rstrip().split("\n"))


def run_hole(
    hole: Hole, store: DocumentStore, case_types: tuple[str, ...], every: str, sees_suffix: bool
) -> list[Outcome]:
    """All applicable case types at `hole`, as the server would process them."""
    snapshot = store.open(_URI, "python", 1, hole.document)
    offset = len(hole.prefix)
    ctx = classify_cursor(snapshot.text, offset, snapshot.tree, snapshot.language)
    suffix = normalize_newlines(snapshot.text[offset:])
    assert snapshot.tree is not None and snapshot.language is not None
    full = hole.prefix + hole.middle + hole.suffix
    full_tree = parser_for("python").parse(full.encode("utf-8"))
    outcomes = []
    for case_type in case_types:
        emitted = synthesize(hole, case_type, full_tree)
        if emitted is None:
            continue
        elapsed_ms = 0.0
        if ctx.mode is CompletionMode.NONE:  # complete() returns "" without generating
            streamed = cleaned = unstreamed = ""
        else:
            streamed = stream(emitted, ctx, every, sees_suffix)
            # A new judge per call, as per request in the server: its cache must not help.
            started = time.perf_counter()
            parse = InsertionParser(snapshot.language, snapshot.tree, snapshot.text, offset, False)
            cleaned = postprocess(streamed, ctx, suffix, sees_suffix=sees_suffix, parse=parse)
            elapsed_ms = 1000 * (time.perf_counter() - started)
            parse = InsertionParser(snapshot.language, snapshot.tree, snapshot.text, offset, False)
            unstreamed = postprocess(emitted, ctx, suffix, sees_suffix=sees_suffix, parse=parse)
        outcomes.append(
            Outcome(
                hole,
                case_type,
                ctx,
                emitted,
                streamed,
                cleaned,
                unstreamed,
                elapsed_ms,
            )
        )
    return outcomes


# --- failure causes ----------------------------------------------------------------------


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def diagnose(outcome: Outcome) -> str:
    """Why a case that is not exact failed, as a short label.

    Suppressed; equal but for trailing whitespace; `should_stop` cut the text
    where `postprocess` alone would have kept more; text after the middle
    kept (by case type); the middle cut short (single-line mode on a
    multi-line middle, the single-line trim cutting into the middle, a middle
    line taken for the suffix's next line, a dedent below the block width);
    anything else. Texts are compared without trailing whitespace.
    """
    ctx = outcome.ctx
    if outcome.suppressed:
        return f"suppressed (NONE): {ctx.reason}"
    middle, cleaned = normalize(outcome.hole.middle), normalize(outcome.cleaned)
    if cleaned == middle:
        if outcome.cleaned.rstrip() == outcome.hole.middle.rstrip():
            return "whitespace: the final newline/whitespace differs"
        return "whitespace: trailing spaces inside the middle stripped"
    if outcome.cleaned != outcome.unstreamed:
        return "should_stop cut changed the result"
    if cleaned and cleaned.startswith(middle):
        return f"{outcome.case_type}: text after the middle kept ({ctx.mode.value}, {ctx.reason})"
    if not middle.startswith(cleaned):
        return "other difference"
    if ctx.mode is CompletionMode.SINGLE_LINE:
        if "\n" in middle[len(cleaned) :]:
            return f"single-line mode: a multi-line middle cut at its first line ({ctx.reason})"
        return f"single-line trim cut into the middle ({ctx.reason})"
    lines = middle.split("\n")
    kept = cleaned.count("\n") + 1 if cleaned else 0
    number = next((i for i in range(kept, len(lines)) if lines[i].strip()), None)
    if number is None:
        return "multi-line: cut early (other)"
    line = lines[number]
    whole = ctx.line_prefix + line if number == 0 else line
    if ctx.next_line.strip() and whole.rstrip() == ctx.next_line.rstrip():
        return "multi-line: a middle line equal to the suffix's next line taken for an echo"
    if number > 0 and _indent(line) < ctx.block_indent_width:
        if number == 1 and not lines[0].strip():
            return "multi-line: the middle's first line indented less than the block width"
        if not ctx.next_line.strip():
            where = "no code after the cursor"
        elif _indent(line) >= _indent(ctx.next_line):
            where = "not below the suffix's next line"
        else:
            where = "below the suffix's next line"
        return f"multi-line: cut at a dedent below the block width ({where})"
    return "multi-line: cut early (other)"


# --- the run ------------------------------------------------------------------------------------


@dataclass
class Tally:
    """Counts for one group of cases."""

    n: int = 0
    suppressed: int = 0
    exact: int = 0
    lenient: int = 0

    def add(self, outcome: Outcome) -> None:
        self.n += 1
        self.suppressed += outcome.suppressed
        self.exact += outcome.exact
        self.lenient += outcome.lenient

    def merge(self, other: Tally) -> None:
        self.n += other.n
        self.suppressed += other.suppressed
        self.exact += other.exact
        self.lenient += other.lenient

    def as_dict(self) -> dict[str, Any]:
        shown = self.n - self.suppressed
        return {
            "n": self.n,
            "suppressed": self.suppressed,
            "exact": self.exact,
            "lenient": self.lenient,
            "exact_rate": _rate(self.exact, self.n),
            "lenient_rate": _rate(self.lenient, self.n),
            "suppressed_rate": _rate(self.suppressed, self.n),
            "exact_rate_shown": _rate(self.exact, shown),
            "lenient_rate_shown": _rate(self.lenient, shown),
        }


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.split("\n")[-lines:])


def _head(text: str, lines: int) -> str:
    return "\n".join(text.split("\n")[:lines])


def example(outcome: Outcome) -> dict[str, Any]:
    """A failing case, short enough to read."""
    hole = outcome.hole
    return {
        "task_id": hole.problem.task_id,
        "case_type": outcome.case_type,
        "mode": outcome.mode.value,
        "reason": outcome.ctx.reason,
        "block_indent_width": outcome.ctx.block_indent_width,
        "prompt_tail": _tail(hole.prefix, 4),
        "suffix_head": _head(hole.suffix, 3),
        "middle": hole.middle,
        "emitted": outcome.emitted,
        "streamed": outcome.streamed,
        "cleaned": outcome.cleaned,
    }


# --- golden cases ---------------------------------------------------------------------------------


def _function_start(prefix: str) -> int:
    """Where the top-level definition holding the end of `prefix` starts, decorators included."""
    lines = prefix.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    for number in range(len(lines) - 1, -1, -1):
        if _TOP_LEVEL_DEF.match(lines[number]):
            while number > 0 and lines[number - 1].startswith("@"):
                number -= 1
            return starts[number]
    return 0


def _function_end(suffix: str) -> int:
    """Where the suffix leaves the cursor's top-level definition (len(suffix) if it does not)."""
    at = 0
    for number, line in enumerate(suffix.splitlines(keepends=True)):
        if number > 0 and line.strip() and not line[0].isspace():
            return at
        at += len(line)
    return len(suffix)


def golden_case(
    outcome: Outcome, cause: str, every: str, sees_suffix: bool
) -> dict[str, Any] | None:
    """A test case for `outcome` reduced to its function, if the reduction fails the same way."""
    hole = outcome.hole
    prompt_tail = hole.prefix[_function_start(hole.prefix) :]
    suffix_head = hole.suffix[: _function_end(hole.suffix)]
    reduced = Hole(hole.problem, hole.subset, hole.placement, prompt_tail, suffix_head, hole.middle)
    again = run_hole(reduced, DocumentStore(), (outcome.case_type,), every, sees_suffix)
    if not again or (again[0].mode, again[0].cleaned) != (outcome.mode, outcome.cleaned):
        return None
    name = cause if cause.startswith(outcome.case_type) else f"{cause} [{outcome.case_type}]"
    return {
        "name": f"{hole.subset}: {name}",
        "source": hole.problem.task_id,
        "language": "python",
        "subset": hole.subset,
        "placement": hole.placement,
        "case_type": outcome.case_type,
        "cause": cause,
        "mode": outcome.mode.value,
        "reason": outcome.ctx.reason,
        "prompt_tail": prompt_tail,
        "suffix_head": suffix_head,
        "emitted": outcome.emitted,
        "expected": hole.middle,
        "actual": outcome.cleaned,
    }


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


GOLDEN_CANDIDATES = 8
"""Failing cases kept per cause to find one that still fails alike reduced to its function."""
_GOLDEN_ORDER = (
    ("editor", "multi-line"),
    ("editor", "single-line"),
    ("as-given", "multi-line"),
    ("as-given", "single-line"),
    ("as-given", "random-span-light"),
    ("editor", "random-span-light"),
)


def _family(cause: str, outcome: Outcome) -> str:
    """A cause without the cursor's reason for kept text (one golden case covers them)."""
    if ": text after the middle kept" in cause:
        return f"{outcome.case_type}: text after the middle kept ({outcome.mode.value})"
    return cause


def choose_golden(
    examples: dict[tuple[str, str, str], list[Outcome]],
) -> list[tuple[str, list[Outcome]]]:
    """Representative failures: per cause family, one per goal subset where it occurs there.

    Random-span cases only for families the goal subsets do not have. Whitespace-only
    differences are left out: what the editor should get there is a matter of taste.
    """
    chosen: dict[tuple[str, str], tuple[str, list[Outcome]]] = {}
    covered: set[str] = set()
    for placement, subset in _GOLDEN_ORDER:
        for (where, which, cause), outcomes in sorted(examples.items()):
            if (where, which) != (placement, subset) or cause.startswith("whitespace"):
                continue
            family = _family(cause, outcomes[0])
            slot = subset if subset in GOAL_SUBSETS else "other"
            if (slot == "other" and family in covered) or (family, slot) in chosen:
                continue
            chosen[(family, slot)] = (cause, outcomes)
            covered.add(family)
    return list(chosen.values())


def write_golden(
    directory: Path, chosen: list[tuple[str, list[Outcome]]], every: str, sees_suffix: bool
) -> list[dict[str, Any]]:
    """One JSON file per representative failure; returns the cases written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for cause, candidates in chosen:
        for outcome in candidates:
            case = golden_case(outcome, cause, every, sees_suffix)
            if case is not None:
                break
        else:
            print(f"no reproducible golden case for {cause!r}")
            continue
        name = f"{outcome.hole.subset}-{outcome.hole.placement}-{_slug(_family(cause, outcome))}"
        path = directory / f"{name[:90].rstrip('-')}.json"
        path.write_text(json.dumps(case, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(case)
    return written


# --- environment --------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def measured_code() -> dict[str, str]:
    """SHA-256 of the measured sources: others may edit them between commits."""
    files = (
        "pipeline/postprocess.py",
        "syntax/cursor.py",
        "syntax/lexer.py",
        "syntax/errors.py",
        "pipeline/complete.py",
        "text/documents.py",
    )
    return {f"code_llama_ls/{name}": _sha256(REPO_ROOT / "code_llama_ls" / name) for name in files}


# --- main -----------------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _row(label: str, tally: Tally) -> str:
    d = tally.as_dict()
    return (
        f"  {label:<22} {d['n']:>6} {d['suppressed']:>6} {_pct(d['exact_rate']):>7} "
        f"{_pct(d['lenient_rate']):>8} {_pct(d['exact_rate_shown']):>8} "
        f"{_pct(d['lenient_rate_shown']):>8}"
    )


def overall(
    tallies: dict[tuple[str, str, str], Tally], placement: str, subset: str, types: tuple[str, ...]
) -> Tally:
    """The cases of `types` together."""
    total = Tally()
    for case_type in types:
        tally = tallies.get((placement, subset, case_type))
        if tally is not None:
            total.merge(tally)
    return total


def print_tables(
    tallies: dict[tuple[str, str, str], Tally], placements: list[str], subsets: list[str]
) -> None:
    header = (
        f"  {'case type':<22} {'n':>6} {'supp':>6} {'exact':>7} {'lenient':>8} "
        f"{'exact*':>8} {'lenient*':>8}"
    )
    for placement in placements:
        for subset in subsets:
            print(f"\n[{placement}] {subset}")
            print(header)
            for case_type in CASE_TYPES:
                tally = tallies.get((placement, subset, case_type))
                if tally is not None:
                    print(_row(case_type, tally))
            print(_row("all (but repetition)", overall(tallies, placement, subset, REQUIRED_TYPES)))
            print(_row("all", overall(tallies, placement, subset, CASE_TYPES)))
    print(
        "\n  n: cases; supp: suppressed (cursor classified NONE); exact, lenient: share of"
        "\n  all cases; exact*, lenient*: share of the cases not suppressed"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subsets", default=",".join(SUBSETS))
    parser.add_argument("--placements", default=",".join(PLACEMENTS))
    parser.add_argument("--limit", type=int, default=0, help="problems per subset (0: all)")
    parser.add_argument("--stop-check", choices=("char", "line"), default="char")
    parser.add_argument(
        "--prompt",
        choices=("fim", "left-to-right"),
        default="fim",
        help="whether the model saw the code after the cursor (infilling) or not",
    )
    parser.add_argument("--examples", type=int, default=3, help="examples per failure cause")
    parser.add_argument("--golden-dir", type=Path, help="write representative failures here")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    subsets = [s for s in args.subsets.split(",") if s]
    placements = [p for p in args.placements.split(",") if p]
    for name, known in ((subsets, SUBSETS), (placements, PLACEMENTS)):
        unknown = set(name) - set(known)
        if unknown:
            parser.error(f"unknown: {', '.join(sorted(unknown))}")

    started = time.perf_counter()
    store = DocumentStore()
    tallies: dict[tuple[str, str, str], Tally] = defaultdict(Tally)
    causes: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    by_type: dict[tuple[str, str], dict[str, Counter[str]]] = defaultdict(
        lambda: defaultdict(Counter)
    )
    examples: dict[tuple[str, str, str], list[Outcome]] = defaultdict(list)
    disagreements: Counter[tuple[str, str]] = Counter()
    problem_counts: dict[str, int] = {}
    sees_suffix = args.prompt == "fim"
    timings_ms: list[float] = []
    for subset in subsets:
        problems = load_problems(DATA_DIR, subset)
        if args.limit:
            problems = problems[: args.limit]
        problem_counts[subset] = len(problems)
        for placement in placements:
            for problem in problems:
                hole = place(problem, subset, placement)
                for outcome in run_hole(hole, store, CASE_TYPES, args.stop_check, sees_suffix):
                    tallies[(placement, subset, outcome.case_type)].add(outcome)
                    if not outcome.suppressed:
                        timings_ms.append(outcome.postprocess_ms)
                    if outcome.cleaned != outcome.unstreamed:
                        disagreements[(placement, subset)] += 1
                    if outcome.exact:
                        continue
                    cause = diagnose(outcome)
                    causes[(placement, subset)][cause] += 1
                    by_type[(placement, subset)][outcome.case_type][cause] += 1
                    kept = examples[(placement, subset, cause)]
                    if len(kept) < max(args.examples, GOLDEN_CANDIDATES):
                        kept.append(outcome)
    elapsed = time.perf_counter() - started

    print_tables(tallies, placements, subsets)
    for placement in placements:
        for subset in subsets:
            print(f"\nnot exact [{placement}] {subset}:")
            for cause, count in causes[(placement, subset)].most_common():
                print(f"  {count:>6}  {cause}")
    latency = {
        "calls": len(timings_ms),
        "p50_ms": percentile(timings_ms, 0.5),
        "p95_ms": percentile(timings_ms, 0.95),
        "max_ms": round(max(timings_ms, default=0.0), 3),
    }
    print(
        f"\npostprocess per call (parse checks included): p50 {latency['p50_ms']} ms, "
        f"p95 {latency['p95_ms']} ms, max {latency['max_ms']} ms over {latency['calls']} calls"
    )
    print(f"{elapsed:.1f} s")

    results: dict[str, Any] = {}
    for placement in placements:
        results[placement] = {}
        for subset in subsets:
            per_type = {
                case_type: tallies[(placement, subset, case_type)].as_dict()
                for case_type in CASE_TYPES
                if (placement, subset, case_type) in tallies
            }
            total = overall(tallies, placement, subset, REQUIRED_TYPES)
            results[placement][subset] = {
                "overall": total.as_dict(),
                "overall_with_repetition": overall(
                    tallies, placement, subset, CASE_TYPES
                ).as_dict(),
                "case_types": per_type,
                "should_stop_changed_result": disagreements[(placement, subset)],
                "failure_causes": dict(causes[(placement, subset)].most_common()),
                "failure_causes_by_case_type": {
                    case_type: dict(counter.most_common())
                    for case_type, counter in by_type[(placement, subset)].items()
                },
                "failure_examples": {
                    cause: [
                        example(o) for o in examples[(placement, subset, cause)][: args.examples]
                    ]
                    for cause, _ in causes[(placement, subset)].most_common()
                },
            }
    goals = {
        placement: {
            subset: {
                "exact_rate": results[placement][subset]["overall"]["exact_rate"],
                "lenient_rate": results[placement][subset]["overall"]["lenient_rate"],
                "met": (results[placement][subset]["overall"]["exact_rate"] or 0) >= GOAL_EXACT,
            }
            for subset in GOAL_SUBSETS
            if subset in subsets
        }
        for placement in placements
    }
    golden: list[dict[str, Any]] = []
    if args.golden_dir is not None:
        golden = write_golden(
            args.golden_dir, choose_golden(examples), args.stop_check, sees_suffix
        )
        print(f"{len(golden)} golden cases written to {args.golden_dir}")
    report = {
        "benchmark": "postprocess_oracle",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(("tree-sitter",)),
        "measured_code_sha256": measured_code(),
        "data": {
            "source": "openai/human-eval-infilling (MIT)",
            "directory": str(DATA_DIR.relative_to(REPO_ROOT)),
            "sha256": {
                SUBSETS[subset]: hashlib.sha256(
                    (DATA_DIR / SUBSETS[subset]).read_bytes()
                ).hexdigest()
                for subset in subsets
            },
            "problems": problem_counts,
        },
        "parameters": {
            "placements": placements,
            "case_types": list(CASE_TYPES),
            "overall_case_types": list(REQUIRED_TYPES),
            "stop_check": args.stop_check,
            "prompt": args.prompt,
            "limit": args.limit or None,
            "next_function": NEXT_FUNCTION,
        },
        "goal": {"exact_rate": GOAL_EXACT, "subsets": list(GOAL_SUBSETS), "by_placement": goals},
        "elapsed_s": round(elapsed, 1),
        "postprocess_latency": latency,
        "results": results,
        "golden_cases_written": [case["name"] for case in golden],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
