"""Where context comes from: each source proposes scored snippets of other code.

1. definitions of the symbols used near the cursor, resolved through the
   file's imports (then the same file, then the workspace by name), and the
   file's other imported symbols at a lower score;
2. recently edited ranges of other open documents;
3. windows of other files most similar to the code at the cursor;
4. text the user yanked or copied lately (`yanks.py`), unless the local
   window shows it already.

The local window itself is the prompt module's, and the path header the
assembler's. Each source stops when its deadline passes and returns what it
has: a late snippet is worth less than a fast completion.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from code_llama_ls.context.identifiers import (
    attribute_pairs,
    by_proximity,
    identifier_set,
    without_prose,
)
from code_llama_ls.context.index import WorkspaceIndex
from code_llama_ls.context.outline import Definition, DefinitionKind, FileOutline, Import
from code_llama_ls.context.recent import RecentEdit
from code_llama_ls.context.yanks import Yank
from code_llama_ls.syntax.cursor import MAX_LINE_CHARS

# Names defined in more files than this are too ambiguous to look up by name alone.
_MAX_SAME_NAME = 4
# Lines around the cursor whose identifiers count as "used near the cursor".
_NEAR_BEFORE, _NEAR_AFTER = 40, 10
# Lines of code the similarity query is made of (the ones just before the cursor).
_QUERY_LINES = 20
_SIMILAR_WINDOWS = 6
# Lines shown around a recent edit.
_EDIT_RADIUS = 6
# A definition longer than this many lines is only ever shown summarized.
MAX_FULL_LINES = 80
# The smallest view of a definition (its signature and docstring) is cut to this.
_MAX_BRIEF_LINES = 40
# A module outline shows this many lines of each top-level definition, this many in all.
_OUTLINE_LINES_EACH, _OUTLINE_LINES = 3, 60
_IDENTIFIER_TAIL = re.compile(r"[A-Za-z0-9_$]*$")
_OWNER_AT_CURSOR = re.compile(r"([A-Za-z_$][A-Za-z0-9_$]*)\s*(?:\.|::|->)\s*[A-Za-z0-9_$]*$")
# File names that stand for their directory's module.
_PACKAGE_FILES = frozenset({"__init__", "index", "mod", "lib", "main"})


class Source(StrEnum):
    """Why a snippet was chosen (shown by the prompt inspector)."""

    IMPORTED = "imported definition"
    SAME_FILE = "definition in this file"
    WORKSPACE = "definition by name"
    RECENT_EDIT = "recent edit"
    SIMILAR = "similar code"
    YANKED = "yanked text"


@dataclass(frozen=True)
class Candidate:
    """A snippet some source proposes: views of a file's lines, smallest first."""

    path: str
    views: tuple[tuple[int, ...], ...]
    """Line numbers shown, per view: e.g. a signature and docstring, then the whole body."""
    source: Source
    score: float
    symbol: str | None = None


@dataclass(frozen=True)
class CursorScope:
    """What the sources need to know of the document at the cursor."""

    path: str
    language: str | None
    lines: Sequence[str]
    cursor_line: int
    cursor_column: int
    outline: FileOutline | None
    local_lines: tuple[int, int]
    """First and last line of the local window (already in the prompt)."""


def near_lines(text: str, cursor: int) -> tuple[list[str], int]:
    """The lines of `text` that the sources read, by line number, and the cursor's line.

    Lines further from the cursor's line than any source looks are left
    blank, and lines but the cursor's longer than MAX_LINE_CHARS (minified
    code, no words worth a look-up) are cut to it: the cost is that of the
    lines around the cursor, however large the file.
    """
    cursor_line = text.count("\n", 0, cursor)
    start, first = text.rfind("\n", 0, cursor) + 1, cursor_line
    while first > cursor_line - _NEAR_BEFORE and start > 0:
        start, first = text.rfind("\n", 0, start - 1) + 1, first - 1
    lines = [""] * first
    for row in range(first, cursor_line + _NEAR_AFTER + 1):
        end = text.find("\n", start)
        stop = len(text) if end < 0 else end
        if row != cursor_line:
            stop = min(stop, start + MAX_LINE_CHARS)
        lines.append(text[start:stop])
        if end < 0:
            break
        start = end + 1
    return lines, cursor_line


def near_identifiers(scope: CursorScope) -> list[str]:
    """Identifiers near the cursor, nearest first; the word being typed is left out."""
    first = max(scope.cursor_line - _NEAR_BEFORE, 0)
    last = min(scope.cursor_line + _NEAR_AFTER, len(scope.lines) - 1)
    window = list(scope.lines[first : last + 1])
    cursor = scope.cursor_line - first
    typed = window[cursor][: scope.cursor_column]
    window[cursor] = _IDENTIFIER_TAIL.sub("", typed)
    window[cursor] += scope.lines[scope.cursor_line][scope.cursor_column :]
    code = without_prose("\n".join(window), scope.language).split("\n")
    return by_proximity(code, cursor)


def definition_candidates(
    index: WorkspaceIndex, scope: CursorScope, deadline: float
) -> list[Candidate]:
    """Definitions of the symbols near the cursor and of the file's imports."""
    outline = scope.outline or FileOutline(scope.language or "", (), ())
    imports = {imp.local_name: imp for imp in outline.imports if imp.local_name}
    wildcards = [imp for imp in outline.imports if imp.name == "*" and not imp.alias]
    near = near_identifiers(scope)
    members = _members_by_owner(scope)
    after_dot = {member for names in members.values() for member in names}
    owner = _owner_at_cursor(scope)
    out: list[Candidate] = []
    for i, name in enumerate(near):
        if time.perf_counter() > deadline:
            return out
        closeness = 1.0 / (1.0 + 0.05 * i)
        imp = imports.get(name)
        if imp is not None:
            used = _Use(members.get(name, ()), typed_after=name == owner)
            out += _imported(index, scope, imp, 3.0 + closeness, used)
        elif (own := _same_file(scope, outline, name, 2.5 + closeness)) is not None:
            out += own
        else:
            found = _by_name(index, scope, name, 1.5 + closeness, members_too=name in after_dot)
            out += found or _from_wildcards(index, scope, wildcards, name, 2.0 + closeness)
    unused = [imp for local, imp in imports.items() if local not in near]
    for order, imp in enumerate(unused):  # imported but not used near the cursor
        if time.perf_counter() > deadline:
            break
        out += _imported(index, scope, imp, 1.6 + 0.1 / (1 + order), _Use((), typed_after=False))
    return out


def recent_edit_candidates(
    index: WorkspaceIndex, scope: CursorScope, edits: Sequence[RecentEdit], now: float
) -> list[Candidate]:
    """Lines around recent edits of other files, the newest scoring highest."""
    out = []
    for edit in edits:
        if edit.path == scope.path:
            continue
        record = index.file(edit.path)
        if record is None or edit.line >= len(record.lines):
            continue
        start = max(edit.line - _EDIT_RADIUS, 0)
        end = min(edit.line + _EDIT_RADIUS, len(record.lines) - 1)
        age = max(now - edit.time, 0.0)
        score = 1.2 + 1.0 / (1.0 + age / 60)
        out.append(Candidate(edit.path, (tuple(range(start, end + 1)),), Source.RECENT_EDIT, score))
    return out


def similar_candidates(index: WorkspaceIndex, scope: CursorScope) -> list[Candidate]:
    """Windows of other files that share the most identifiers with the lines before the cursor."""
    first = max(scope.cursor_line - _QUERY_LINES + 1, 0)
    query = identifier_set(
        without_prose("\n".join(scope.lines[first : scope.cursor_line + 1]), scope.language)
    )
    out = []
    for window in index.similar_windows(query, exclude=scope.path, limit=_SIMILAR_WINDOWS):
        start, end = window.file.window_range(window.index)
        lines = (tuple(range(start, end + 1)),)
        out.append(Candidate(window.file.path, lines, Source.SIMILAR, 1.0 + window.score))
    return out


def yank_candidates(yanks: Sequence[Yank], local_text: str, now: float) -> list[Candidate]:
    """The yanks (newest scoring highest, above most other snippets: the user is about to
    paste or adapt one) that `local_text`, the code the prompt shows anyway, does not hold."""
    out: list[Candidate] = []
    if not yanks:
        return out
    shown = _squeezed(local_text)
    for yank in yanks:
        if _squeezed(yank.text) in shown:
            continue
        age = max(now - yank.time, 0.0)
        lines = (tuple(range(len(yank.record.lines))),)
        score = 1.5 + 1.0 / (1.0 + age / 120)
        out.append(Candidate(yank.record.path, lines, Source.YANKED, score))
    return out


def _squeezed(text: str) -> str:
    """`text` without its white space, so that indentation does not tell copies apart."""
    return "".join(text.split())


# -- definitions ---------------------------------------------------------------


@dataclass(frozen=True)
class _Use:
    """How the code near the cursor uses an imported module."""

    members: Sequence[str]
    """Members used as `module.member`."""
    typed_after: bool
    """Whether the cursor is right after `module.` (a member is being typed)."""


def _members_by_owner(scope: CursorScope) -> dict[str, list[str]]:
    """`owner.member` pairs near the cursor: which members of a module are used."""
    first = max(scope.cursor_line - _NEAR_BEFORE, 0)
    text = "\n".join(scope.lines[first : scope.cursor_line + _NEAR_AFTER + 1])
    members: dict[str, list[str]] = {}
    for owner, member in attribute_pairs(text):
        members.setdefault(owner, []).append(member)
    return members


def _owner_at_cursor(scope: CursorScope) -> str | None:
    """`owner` when the cursor follows `owner.` (or `owner::`, `owner->`), else None."""
    typed = scope.lines[scope.cursor_line][: scope.cursor_column]
    match = _OWNER_AT_CURSOR.search(typed)
    return match.group(1) if match else None


def _module_name(path: str) -> str:
    """The name a file is imported by: its stem, or its directory's for a package file."""
    parent, _, name = path.rpartition("/")
    stem = name.split(".", 1)[0]
    return parent.rpartition("/")[2] if stem in _PACKAGE_FILES else stem


def _imported(
    index: WorkspaceIndex, scope: CursorScope, imp: Import, score: float, use: _Use
) -> list[Candidate]:
    """The definitions an import binds; for a bound module, the members used (or its outline)."""
    for path in index.resolve(scope.path, scope.language or "", imp):
        record = index.file(path)
        if record is None:
            continue
        tops = [d for d in record.outline.definitions if d.container is None]
        module = imp.name is None or imp.name == "*" or _module_name(path) == imp.name
        if module:  # members used; a CommonJS module's export is often named as bound
            wanted = {*use.members, imp.local_name}
            found = [d for d in tops if d.name in wanted]
        else:
            found = [d for d in tops if d.name == imp.name]
            if imp.name == "default" and not found:
                found = tops[:1]
        out = [
            _definition_candidate(path, record.outline, d, Source.IMPORTED, score) for d in found
        ]
        outline = _module_outline(path, record.outline, imp, score + use.typed_after)
        if module and (use.typed_after or not found) and outline.views[0]:
            out.append(outline)
        if found or module:
            return out
    return []


def _module_outline(path: str, outline: FileOutline, imp: Import, score: float) -> Candidate:
    """A module's top-level definitions, a few lines each: what `module.` can be followed by."""
    lines: list[int] = []
    for definition in outline.definitions:
        if definition.container is None and len(lines) < _OUTLINE_LINES:
            last = min(definition.summary_end_line, definition.start_line + _OUTLINE_LINES_EACH - 1)
            lines += range(definition.start_line, last + 1)
    return Candidate(path, (tuple(lines[:_OUTLINE_LINES]),), Source.IMPORTED, score, imp.local_name)


def _from_wildcards(
    index: WorkspaceIndex, scope: CursorScope, wildcards: Sequence[Import], name: str, score: float
) -> list[Candidate]:
    """`name` defined in a module the file imports everything from."""
    for imp in wildcards:
        for path in index.resolve(scope.path, scope.language or "", imp):
            record = index.file(path)
            if record is None:
                continue
            found = [d for d in record.outline.definitions if d.name == name and not d.container]
            if found:
                return [
                    _definition_candidate(path, record.outline, d, Source.IMPORTED, score)
                    for d in found
                ]
    return []


def _same_file(
    scope: CursorScope, outline: FileOutline, name: str, score: float
) -> list[Candidate] | None:
    """Definitions of `name` in the cursor's own file, outside the local window (None: none)."""
    found = [d for d in outline.definitions if d.name == name]
    if not found:
        return None
    first, last = scope.local_lines
    return [
        _definition_candidate(scope.path, outline, d, Source.SAME_FILE, score)
        for d in found
        if d.end_line < first or d.start_line > last
    ]


def _by_name(
    index: WorkspaceIndex, scope: CursorScope, name: str, score: float, *, members_too: bool
) -> list[Candidate]:
    """Workspace definitions called `name`, when few enough files define it.

    Members (methods, fields) only when the name follows a `.` near the
    cursor: a parameter called `config` is not a call of some `config()` method.
    """
    found = [
        (f, d)
        for f, d in index.definitions_named(name)
        if f.path != scope.path and (members_too or d.container is None)
    ]
    if not found or len({f.path for f, _ in found}) > _MAX_SAME_NAME:
        return []
    return [
        _definition_candidate(f.path, f.outline, d, Source.WORKSPACE, score / len(found))
        for f, d in found
    ]


def _definition_candidate(
    path: str, outline: FileOutline, definition: Definition, source: Source, score: float
) -> Candidate:
    return Candidate(path, _views(outline, definition), source, score, definition.name)


def _views(outline: FileOutline, definition: Definition) -> tuple[tuple[int, ...], ...]:
    """Signature and docstring; for a class, then its members' too; then the whole, if short."""
    start, end = definition.start_line, definition.end_line
    brief = tuple(range(start, min(definition.summary_end_line, start + _MAX_BRIEF_LINES - 1) + 1))
    views = [brief]
    if definition.kind is DefinitionKind.CLASS:
        members = list(brief)
        for member in outline.definitions:
            if member.container == definition.name and start < member.start_line <= end:
                last = min(member.summary_end_line, member.start_line + _MAX_BRIEF_LINES - 1)
                members += range(member.start_line, last + 1)
        if len(members) > len(brief):
            views.append(tuple(members))
    if end - start + 1 <= MAX_FULL_LINES and end > brief[-1]:
        views.append(tuple(range(start, end + 1)))
    return tuple(views)
