"""Decide from the syntax at the cursor whether to complete nothing, one line or a block.

`classify_cursor` runs on every keystroke, so it only looks at the cursor's
line, its nearest non-blank neighbours and a handful of tree-sitter nodes
found by position (never a walk of the whole tree). Without a tree (an
unknown language, a file too big to parse) the same questions are answered
from indentation, brackets and a one-line lexer (`scan_line`, which knows
strings and comments from `lexer.rules_for`). A cursor on a minified line
(longer than MAX_LINE_CHARS) gets nothing, decided from the line's length
alone before anything else is looked at.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice

import tree_sitter

from code_llama_ls.syntax.lexer import rules_for
from code_llama_ls.text.positions import ts_point, utf8_byte_offset


class CompletionMode(enum.StrEnum):
    """How much text a completion at this cursor may show."""

    NONE = "none"
    SINGLE_LINE = "single-line"
    MULTI_LINE = "multi-line"


@dataclass(frozen=True)
class CursorContext:
    """What post-processing needs to know about the cursor."""

    mode: CompletionMode
    reason: str  # short, for logs: "mid-word", "block opener at line end", ...
    line_prefix: str  # the cursor's line before the cursor, no line terminator
    line_suffix: str  # the cursor's line after the cursor, no "\r" / "\n"
    indent: str  # leading whitespace of the cursor's line
    # Multi-line text ends at the first non-blank line indented less than this
    # (in characters of leading whitespace: a tab counts as one, as in the file).
    block_indent_width: int
    language: str | None
    # The first non-blank lines after the cursor's line (at most NEXT_LINES):
    # let `should_stop` end generation once the model starts re-typing them.
    next_lines: tuple[str, ...] = ()
    # "string" or "comment" when the cursor is inside one, else None.
    literal: str | None = None
    # One level of indentation in this file, as read above the cursor ("" if unknown).
    indent_unit: str = ""

    @property
    def next_line(self) -> str:
        """The first non-blank line after the cursor's line, "" if none."""
        return self.next_lines[0] if self.next_lines else ""


_C_LIKE = frozenset({"javascript", "typescript", "tsx", "go", "rust", "java", "c", "cpp"})

_STRING_NODES = frozenset(
    {
        "string",
        "template_string",
        "string_literal",
        "raw_string_literal",
        "interpreted_string_literal",
        "rune_literal",
        "char_literal",
        "character_literal",
        "system_lib_string",
        "regex",
    }
)
# Code nested in a string: f-string fields, JS template substitutions.
_CODE_IN_STRING_NODES = frozenset({"interpolation", "template_substitution"})
# Python statements whose header ends with ":" and opens an indented block.
_PY_BLOCK_OWNERS = frozenset(
    {
        "function_definition",
        "class_definition",
        "if_statement",
        "elif_clause",
        "else_clause",
        "for_statement",
        "while_statement",
        "try_statement",
        "except_clause",
        "except_group_clause",
        "finally_clause",
        "with_statement",
        "match_statement",
        "case_clause",
    }
)
_PY_HEADER = re.compile(
    r"\s*(?:async\s+)?(?:def|class|if|elif|else|for|while|try|except|finally|with|match|case)\b"
    r"|\s*[)\]]"  # the last line of a header split over several lines: "):" or ") -> int:"
)
_CASE_LABEL = re.compile(r"\s*(?:case\b.*|default\s*):$")
# What may follow the cursor and still leave room for a fill-in before it.
_CLOSING_CHARS = frozenset(")]}>\"'`;, \t")
# A whole line may be scanned to find its first non-blank neighbour; give up
# after this many lines (a run of blank lines that long ends the search).
_MAX_SCAN_LINES = 200
# Lines longer than this (minified code) are not lexed: per keystroke, in Python, too slow.
MAX_LEX_CHARS = 4000
MAX_LINE_CHARS = MAX_LEX_CHARS
"""A cursor on a longer line gets no completion.

Such a line is minified or generated code, or data: alone it fills a CPU
prompt (2048 tokens; minified code runs about 2 characters a token), so the
model would see a slice of one line and nothing of the file around it, and
every keystroke would pay a full prompt for a suggestion nobody wants there.
Editors give up on such lines too (VS Code stops highlighting lines past
20,000 characters), and completion tools commonly offer nothing in minified
files. Ordinary long lines, a few hundred characters, are far below this.
"""
MINIFIED_LINE = "minified line"
"""The reason given for a cursor on a line longer than MAX_LINE_CHARS."""
# How many non-blank lines after the cursor's line a context keeps (see `next_lines`).
NEXT_LINES = 2


def indent_width(line: str) -> int:
    """Width of `line`'s leading whitespace, one per character (a tab counts as one)."""
    return len(line) - len(line.lstrip(" \t"))


def classify_cursor(
    text: str, offset: int, tree: tree_sitter.Tree | None, language: str | None
) -> CursorContext:
    """Classify the cursor at string index `offset` of `text` (which may use CRLF).

    `tree` is a parse of `text.encode("utf-8")`, or None to use text rules only.
    """
    offset = min(max(offset, 0), len(text))
    if 0 < offset < len(text) and text[offset - 1] == "\r" and text[offset] == "\n":
        offset -= 1  # inside a CRLF: the cursor belongs at the end of its line
    start, end = _line_start(text, offset), _line_end(text, offset)
    if end - start > MAX_LINE_CHARS:  # before any copy of the line: it may be megabytes
        return CursorContext(CompletionMode.NONE, MINIFIED_LINE, "", "", "", 0, language)
    prefix, line_suffix = text[start:offset], text[offset:end]
    indent = text[start : start + indent_width(text[start:end])]
    following = list(islice(_next_lines(text, end), NEXT_LINES))
    # A minified next line is cut: no completion re-types it, and each stop check reads it.
    next_lines = tuple(text[a : min(b, a + MAX_LINE_CHARS)] for a, b in following)
    locator = _Locator(text, offset, tree) if tree is not None else None

    def result(
        mode: CompletionMode, reason: str, width: int = 0, literal: str | None = None
    ) -> CursorContext:
        multi = mode is CompletionMode.MULTI_LINE
        unit = _indent_unit(text, start, indent, language) if multi else ""
        return CursorContext(
            mode, reason, prefix, line_suffix, indent, width, language, next_lines, literal, unit
        )

    if offset < end and _is_word_char(text[offset]):
        return result(CompletionMode.NONE, "mid-word")
    literal = _literal_at(text, offset, start, locator, language)
    if literal is not None:
        return result(CompletionMode.SINGLE_LINE, f"in {literal}", literal=literal)
    after = line_suffix.strip()
    if after:
        if set(after) <= _CLOSING_CHARS:
            return result(CompletionMode.SINGLE_LINE, "closing brackets after cursor")
        if not prefix.strip():
            return result(CompletionMode.NONE, "before code on the line")
        return result(CompletionMode.SINGLE_LINE, "mid-line")

    next_indent = indent_width(next_lines[0]) if next_lines else None
    if prefix.strip():
        opener = _opener_indent(text, start, end, locator, language)
        if opener is None:
            return result(CompletionMode.SINGLE_LINE, "end of line")
        body = next_indent if next_indent is not None and next_indent > opener else opener + 1
        return result(CompletionMode.MULTI_LINE, "block opener at line end", body)

    reason, width = _blank_line_block(
        text, start, indent_width(prefix), next_indent, locator, language
    )
    return result(CompletionMode.MULTI_LINE, reason, width)


def _blank_line_block(
    text: str,
    start: int,
    ws: int,
    next_indent: int | None,
    locator: _Locator | None,
    language: str | None,
) -> tuple[str, int]:
    """Why a cursor on the blank line at `start` (`ws` columns in) gets a block, and its indent.

    The block is read from the neighbouring non-blank lines: the body of the
    opener above, or the level that the lines around the cursor share.
    """
    previous = next(_prev_lines(text, start), None)
    if previous is not None:
        opener = _opener_indent(text, previous[0], previous[1], locator, language)
        if opener is not None:
            if next_indent is not None and next_indent > opener:
                return "start of block body", ws if ws > opener else next_indent
            return "empty block body", ws if ws > opener else opener + 1
    if ws == 0:
        neighbours = [] if previous is None else [indent_width(text[previous[0] : previous[1]])]
        neighbours += [] if next_indent is None else [next_indent]
        ws = min(neighbours, default=0)
    if ws == 0:
        return "blank line between top-level statements", 0
    return "blank line in block", ws


def _indent_unit(text: str, line_start: int, indent: str, language: str | None) -> str:
    """One indentation step of the file: the first increase between lines above the cursor.

    Falls back to a tab when the cursor's line is indented with tabs or the
    language is Go (gofmt), else "" (unknown).
    """
    lower: str | None = None  # indentation of the line below the one being read
    for start, end in _prev_lines(text, line_start):
        line = text[start:end]
        upper = line[: indent_width(line)]
        if lower is not None and len(lower) > len(upper) and lower.startswith(upper):
            return lower[len(upper) :]
        lower = upper
    return "\t" if "\t" in indent or language == "go" else ""


class _Locator:
    """Finds tree-sitter nodes by string index, without encoding the whole prefix per call.

    In ASCII text (CPython knows that in O(1)) string indexes are byte
    offsets. Otherwise positions are points (row, UTF-8 column): one newline
    count for the cursor's row, then only single lines are encoded.
    """

    def __init__(self, text: str, offset: int, tree: tree_sitter.Tree) -> None:
        self._text, self._offset, self._root = text, offset, tree.root_node
        self._ascii = text.isascii()
        self._row = -1  # the cursor's row, counted on first need

    def position(self, pos: int) -> tuple[int, int]:
        """Where string index `pos` lies, comparable with `span`: (0, byte) or (row, column)."""
        if self._ascii:
            return 0, pos
        text, offset = self._text, self._offset
        if self._row < 0:
            self._row = ts_point(text, offset)[0]
        if pos <= offset:
            row = self._row - text.count("\n", pos, offset)
        else:
            row = self._row + text.count("\n", offset, pos)
        row_start = text.rfind("\n", 0, pos) + 1
        return row, utf8_byte_offset(text[row_start:pos], pos - row_start)

    def span(self, node: tree_sitter.Node) -> tuple[tuple[int, int], tuple[int, int]]:
        """`node`'s start and end, comparable with `position`."""
        if self._ascii:
            return (0, node.start_byte), (0, node.end_byte)
        return (node.start_point.row, node.start_point.column), (
            node.end_point.row,
            node.end_point.column,
        )

    def node_at(self, first: int, last: int | None = None) -> tree_sitter.Node | None:
        """The smallest node holding the characters at string indexes `first`..`last`."""
        start = self.position(first)
        end = start if last is None else self.position(last)
        if self._ascii:
            return self._root.descendant_for_byte_range(start[1], end[1])
        return self._root.descendant_for_point_range(start, end)


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char in "_$"


def _line_start(text: str, pos: int) -> int:
    newline = text.rfind("\n", 0, pos)
    return max(newline, text.rfind("\r", newline + 1, pos)) + 1  # "\r" alone ends a line too


def _line_end(text: str, pos: int) -> int:
    newline = text.find("\n", pos)
    newline = len(text) if newline < 0 else newline
    carriage_return = text.find("\r", pos, newline)
    return newline if carriage_return < 0 else carriage_return


def _prev_lines(text: str, line_start: int) -> Iterator[tuple[int, int]]:
    """(start, end) of the non-blank lines above the one starting at `line_start`, nearest first."""
    for _ in range(_MAX_SCAN_LINES):
        if line_start == 0:
            return
        end = line_start - 1
        if text[end] == "\n" and end > 0 and text[end - 1] == "\r":
            end -= 1
        line_start = _line_start(text, end)
        if text[line_start:end].strip():
            yield line_start, end


def _next_lines(text: str, line_end: int) -> Iterator[tuple[int, int]]:
    """(start, end) of the non-blank lines after the one ending at `line_end`, nearest first."""
    for _ in range(_MAX_SCAN_LINES):
        if line_end >= len(text):
            return
        start = line_end + (2 if text.startswith("\r\n", line_end) else 1)
        line_end = _line_end(text, start)
        if text[start:line_end].strip():
            yield start, line_end


def scan_line(line: str, language: str | None) -> tuple[int, str | None]:
    """Lex one line: where its code ends (before a trailing comment) and what is open at the end.

    The second item is "string" or "comment" when the line ends inside one,
    else None; `rules_for(language)` says what opens them. Strings and
    comments spanning lines are the tree's business. A line longer than
    MAX_LEX_CHARS is taken for code, unlexed.
    """
    if len(line) > MAX_LEX_CHARS:
        return len(line), None
    rules = rules_for(language)
    quotes, comments, starts = rules.quotes, rules.line_comments, rules.comment_starts
    blocks = rules.block_comments
    i, quote = 0, ""
    while i < len(line):
        char = line[i]
        if quote:
            if char == "\\":
                i += 2
            elif line.startswith(quote, i):
                i, quote = i + len(quote), ""
            else:
                i += 1
        elif char in starts and line.startswith(comments, i):
            return i, "comment"
        elif blocks and char == "/" and line.startswith("/*", i):
            close = line.find("*/", i + 2)
            if close < 0:
                return i, "comment"
            i = close + 2
        elif char in quotes:
            quote = char * 3 if rules.triple_quotes and line.startswith(char * 3, i) else char
            i += len(quote)
        else:
            i += 1
    return len(line), ("string" if quote else None)


def _literal_at(
    text: str,
    offset: int,
    line_start: int,
    locator: _Locator | None,
    language: str | None,
) -> str | None:
    """Whether the cursor is inside a "string" or a "comment" (None: in code)."""
    prefix = text[line_start:offset]
    if locator is not None and offset > 0:
        cursor = locator.position(offset)
        node = locator.node_at(offset - 1)
        while node is not None:  # from the character before the cursor up
            node_start, node_end = locator.span(node)
            inside = node_start < cursor < node_end
            if node.type in _CODE_IN_STRING_NODES and inside:
                return None
            # At its very end a line comment still holds the cursor; a closed /* */ does not.
            at_end = cursor == node_end and not prefix.endswith("*/")
            if "comment" in node.type and (inside or at_end):
                return "comment"
            if node.type in _STRING_NODES and inside:
                return "string"
            node = node.parent
        if not prefix:
            return None
        line_node = locator.node_at(line_start, offset - 1)
        if line_node is None or not line_node.has_error:
            return None  # the tree parsed this line cleanly: trust it
    # No tree, or a syntax error on this line (an unterminated string looks like one).
    return scan_line(prefix, language)[1]


def _opener_indent(
    text: str,
    start: int,
    end: int,
    locator: _Locator | None,
    language: str | None,
) -> int | None:
    """If the line text[start:end] ends by opening a block, the indentation that block closes at."""
    line = text[start:end]
    code_end, open_literal = scan_line(line, language)
    code = line[:code_end].rstrip()
    if open_literal == "string" or not code:
        return None
    last = code[-1]
    colon = last == ":" and language == "python"
    if last == ":" and language in _C_LIKE and _CASE_LABEL.match(code):
        return indent_width(line)
    if not colon and last not in "{([":
        return None
    node = None
    if locator is not None:
        node = locator.node_at(start + len(code) - 1)
    owner = node.parent if node is not None else None
    if node is None or owner is None or owner.type == "ERROR":
        if colon and not _PY_HEADER.match(code):
            return None  # a dict entry, a lambda, a slice...
        return indent_width(line)
    if colon:
        if owner.type not in _PY_BLOCK_OWNERS:
            return None
    elif owner.parent is not None and owner.parent.parent is not None:
        owner = owner.parent  # the bracket's container -> the statement that owns it
    # The owner may start lines above ("if (a &&\n    b) {"): its first line sets the indentation.
    rows_up = node.start_point.row - owner.start_point.row
    if not 0 < rows_up <= _MAX_SCAN_LINES:
        return indent_width(line)
    line_start = start
    for _ in range(rows_up):
        if line_start == 0:
            break
        stop = line_start - 1
        stop -= 1 if text[stop] == "\n" and stop > 0 and text[stop - 1] == "\r" else 0
        line_start = _line_start(text, stop)
    return indent_width(text[line_start : _line_end(text, line_start)])
