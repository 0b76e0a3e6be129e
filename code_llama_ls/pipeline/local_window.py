"""Where the local window around the cursor may be cut: whole statements, not over context.

The prompt module cuts the window around the cursor at line boundaries to
fit the budget; these helpers move the cut to the start (or end) of a
statement at one of the levels enclosing the cursor, so the model never sees
half a function. Only the cursor's ancestors and those of their children that
lie within the window's rows are looked at, never the whole tree (a minified
file's root can have tens of thousands of children). `window_cuts` also keeps
the window off the snippets of its own file that the cross-file context shows.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import tree_sitter

from code_llama_ls.context.builder import PromptContext
from code_llama_ls.pipeline.prompt import Snap
from code_llama_ls.text.documents import Snapshot


@dataclass(frozen=True)
class Boundaries:
    """Rows where a statement enclosing or beside the cursor's ancestors starts or ends."""

    starts: tuple[int, ...]
    """Sorted rows a prefix window may start at."""
    ends: tuple[int, ...]
    """Sorted rows a suffix window may end after."""


def boundaries(
    tree: tree_sitter.Tree, cursor_byte: int, rows: tuple[int, int] | None = None
) -> Boundaries:
    """The statement boundaries around a cursor (children of each of its ancestors).

    `rows`: the first and last row a window can cover; children outside them
    are skipped (a cut never lands there).
    """
    node: tree_sitter.Node | None = tree.root_node.descendant_for_byte_range(
        cursor_byte, cursor_byte
    )
    starts: set[int] = set()
    ends: set[int] = set()
    while node is not None:
        for child in _named_children(node, rows):
            starts.add(child.start_point.row)
            ends.add(child.end_point.row)
        node = node.parent
    return Boundaries(tuple(sorted(starts)), tuple(sorted(ends)))


def _named_children(
    node: tree_sitter.Node, rows: tuple[int, int] | None
) -> Iterator[tree_sitter.Node]:
    """`node`'s named children, only those reaching into `rows` when given."""
    if rows is None:
        yield from node.named_children
        return
    cursor = node.walk()
    # The first child that ends after the first row's start, then on while they start in range.
    if cursor.goto_first_child_for_point((rows[0], 0)) is None:
        return
    while cursor.node is not None and cursor.node.start_point.row <= rows[1]:
        if cursor.node.is_named:
            yield cursor.node
        if not cursor.goto_next_sibling():
            return


def prefix_snap(
    bounds: Boundaries, prefix: str, cursor_row: int | None = None
) -> Callable[[int], int]:
    """Moves a prefix window's start forward to the next statement start before the cursor.

    `cursor_row`: the cursor's row in the document when `prefix` is not all the
    text before it (default: the rows of `prefix`).
    """
    if cursor_row is None:
        cursor_row = prefix.count("\n")

    def snap(offset: int) -> int:
        row = cursor_row - prefix.count("\n", offset)
        if offset > 0 and prefix[offset - 1] != "\n":  # not a line start: a cut line
            return offset
        i = bisect.bisect_left(bounds.starts, row)
        if i == len(bounds.starts) or bounds.starts[i] >= cursor_row:
            return offset
        for _ in range(bounds.starts[i] - row):
            offset = prefix.index("\n", offset) + 1
        return offset

    return snap


def suffix_snap(bounds: Boundaries, suffix: str, cursor_row: int) -> Callable[[int], int]:
    """Moves a suffix window's end back to the last statement end within it (if any)."""

    def snap(end: int) -> int:
        if end == 0 or suffix[end - 1] != "\n":  # the window ends mid-line or is empty
            return end
        last_row = cursor_row + suffix.count("\n", 0, end) - 1  # the window's last whole row
        i = bisect.bisect_right(bounds.ends, last_row) - 1
        if i < 0 or bounds.ends[i] <= cursor_row:
            return end
        for _ in range(last_row - bounds.ends[i]):
            end = suffix.rindex("\n", 0, end - 1) + 1
        return end

    return snap


def window_cuts(
    snapshot: Snapshot,
    offset: int,
    prefix: str,
    suffix: str,
    cursor_row: int,
    context: PromptContext,
    path: str,
) -> tuple[Snap | None, Snap | None]:
    """How the prompt may move the local window's start and end (None: anywhere).

    `prefix` and `suffix` are the text around the cursor the prompt can reach
    (LF line breaks); `path` is the document's, to find its own snippets in
    `context`. Text with CR line breaks gets no syntax moves: its offsets differ from
    the tree's rows.
    """
    starts, ends = None, None
    if snapshot.tree is not None and "\r" not in snapshot.text:
        rows = (cursor_row - prefix.count("\n"), cursor_row + suffix.count("\n"))
        bounds = boundaries(snapshot.tree, snapshot.byte_offset(offset), rows)
        starts = prefix_snap(bounds, prefix, cursor_row)
        ends = suffix_snap(bounds, suffix, cursor_row)
    floor, ceiling = _own_snippet_limits(context, path, cursor_row)
    return _clamped_start(starts, prefix, cursor_row, floor), _clamped_end(
        ends, suffix, cursor_row, ceiling
    )


def _own_snippet_limits(
    context: PromptContext, path: str, cursor_row: int
) -> tuple[int | None, int | None]:
    """The first row the local window may start at and the last it may end at."""
    own = [b for b in context.blocks if b.path == path and b.is_code]
    above = [b.end_line + 1 for b in own if b.end_line < cursor_row]
    below = [b.start_line - 1 for b in own if b.start_line > cursor_row]
    return (max(above) if above else None), (min(below) if below else None)


def _clamped_start(
    snap: Snap | None, prefix: str, cursor_row: int, floor: int | None
) -> Snap | None:
    if floor is None:
        return snap
    skip = max(floor - (cursor_row - prefix.count("\n")), 0)  # rows of the whole prefix to skip
    floor_offset = 0
    for _ in range(skip):
        floor_offset = prefix.index("\n", floor_offset) + 1

    def clamp(start: int) -> int:
        start = max(start, floor_offset)
        return snap(start) if snap is not None else start

    return clamp


def _clamped_end(
    snap: Snap | None, suffix: str, cursor_row: int, ceiling: int | None
) -> Snap | None:
    if ceiling is None:
        return snap
    ceiling_offset = 0
    for _ in range(ceiling - cursor_row + 1):  # the suffix's rows up to and including `ceiling`
        nxt = suffix.find("\n", ceiling_offset)
        if nxt < 0:
            ceiling_offset = len(suffix)
            break
        ceiling_offset = nxt + 1

    def clamp(end: int) -> int:
        end = min(end, ceiling_offset)
        return snap(end) if snap is not None else end

    return clamp
