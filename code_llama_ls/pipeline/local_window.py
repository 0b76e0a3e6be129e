"""Syntax boundaries for the local window: where a cut leaves whole statements.

The prompt module cuts the window around the cursor at line boundaries to
fit the budget; these helpers move the cut to the start (or end) of a
statement at one of the levels enclosing the cursor, so the model never sees
half a function. Only the cursor's ancestors and those of their children that
lie within the window's rows are looked at, never the whole tree (a minified
file's root can have tens of thousands of children).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import tree_sitter


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
