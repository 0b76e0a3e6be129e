"""Trim the model's raw middle text down to what the editor should show as ghost text.

The rules follow the syntax at the cursor (`CursorContext`): one line or one
block, ending where the block ends; text that re-types what already follows
the cursor is dropped; a closing bracket the document already supplies is not
repeated; blank results become "". Nothing is ever added: the output is
always a trimmed copy of what the model wrote. `should_stop` asks the same
question per token, so generation ends as soon as more text cannot change
the result.
"""

from __future__ import annotations

import re

from code_llama_ls.syntax.cursor import (
    MAX_LEX_CHARS,
    CompletionMode,
    CursorContext,
    indent_width,
    scan_line,
)

_PAIRS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = frozenset(_PAIRS.values())
_QUOTE_CHARS = frozenset("\"'`")
# Characters that may end a line after its last expression: closers, quotes, ";" and ",".
_CLOSING_RUN = frozenset(")]}\"'`;, \t")
# What `_push_brackets` looks at; the rest of a line is skipped in C.
_SPECIAL = re.compile(r"//|[()\[\]{}\"'`\\#]")


def postprocess(generated: str, ctx: CursorContext, suffix: str) -> str:
    """The part of `generated` (LF line endings) to show at the cursor; "" for nothing.

    `suffix` is the document after the cursor, LF-normalized.
    """
    if ctx.mode is CompletionMode.NONE:
        return ""
    generated = generated.replace("\r\n", "\n")
    if ctx.mode is CompletionMode.SINGLE_LINE:
        text = _trim_line_suffix(generated.split("\n", 1)[0].rstrip(), ctx)
    else:
        lines, _ = _block_lines(generated.split("\n"), ctx, _following_line(suffix))
        text = "\n".join(line.rstrip() for line in lines).rstrip()
    return text if text.strip() else ""


def should_stop(text_so_far: str, ctx: CursorContext) -> bool:
    """True once no continuation of `text_so_far` can change what `postprocess` keeps.

    Uses `ctx.next_line` for the line after the cursor (postprocess reads it
    from the suffix; the two agree when the context came from the same text).
    """
    if ctx.mode is CompletionMode.NONE:
        return True
    if ctx.mode is CompletionMode.SINGLE_LINE:
        return "\n" in text_so_far
    complete_lines = text_so_far.split("\n")[:-1]
    return _block_lines(complete_lines, ctx, ctx.next_line or None)[1]


def _following_line(suffix: str) -> str | None:
    """The first non-blank line after the cursor's line in `suffix`, if any."""
    start = suffix.find("\n")
    while start >= 0:
        end = suffix.find("\n", start + 1)
        line = suffix[start + 1 : end if end >= 0 else len(suffix)]
        if line.strip():
            return line
        start = end
    return None


def _block_lines(
    lines: list[str], ctx: CursorContext, following: str | None
) -> tuple[list[str], bool]:
    """The leading `lines` that belong to the block at the cursor, and whether the block ended.

    The block ended when a line dedents below `ctx.block_indent_width` (a
    closing-bracket line is kept when the document needs it) or when a line
    re-types `following`, the first non-blank line after the cursor.
    """
    # Only the end of a very long (minified) line is read: this runs once per token.
    stack = _push_brackets(ctx.line_prefix[-MAX_LEX_CHARS:], [], ctx.language)
    outside = len(stack)  # brackets opened before the completion
    kept: list[str] = []
    for number, line in enumerate(lines):
        if not line.strip():
            kept.append(line)
            continue
        if following is not None:
            whole = ctx.line_prefix + line if number == 0 else line
            if whole.rstrip() == following.rstrip() and not (_is_closing_line(line) and stack):
                return kept, True  # an unneeded closer, or the code after the cursor, again
        if number > 0 and indent_width(line) < ctx.block_indent_width:
            depth = _depth_after_closing(line, stack) if _is_closing_line(line) else None
            if depth is not None and (
                depth >= outside  # it closes the completion's own brackets
                or _document_needs_closer(line, following, ctx.block_indent_width)
            ):
                kept.append(line)
            return kept, True
        kept.append(line)
        _push_brackets(line, stack, ctx.language)
    return kept, False


def _is_closing_line(line: str) -> bool:
    """A line of closing brackets, perhaps with ";" or ",": "}", "});", "],"."""
    stripped = line.strip()
    return bool(stripped) and stripped[0] in _CLOSERS and set(stripped) <= _CLOSING_RUN


def _depth_after_closing(line: str, stack: list[str]) -> int | None:
    """How deep `stack` is after `line` closes its brackets; None if one of them is not open."""
    depth = len(stack)
    for char in line:
        if char in _CLOSERS:
            if depth == 0 or _PAIRS[stack[depth - 1]] != char:
                return None
            depth -= 1
    return depth


def _document_needs_closer(line: str, following: str | None, block_indent: int) -> bool:
    """Whether the document after the cursor lacks the closing `line` the model wrote."""
    if following is None:
        return True
    if indent_width(following) >= block_indent:
        return False  # the block goes on after the cursor: its closer is further down
    theirs, mine = following.strip(), line.strip()
    echo = theirs.startswith(mine) or mine.startswith(theirs)
    return not (echo and indent_width(following) >= indent_width(line))


def _push_brackets(line: str, stack: list[str], language: str | None) -> list[str]:
    """Update `stack` with the brackets `line` opens and closes outside strings and comments."""
    quotes, comment = _quotes(language), "#" if language == "python" else "//"
    quote = ""
    skip_to = 0  # the character after a backslash in a string is not special
    for match in _SPECIAL.finditer(line):
        token, at = match.group(), match.start()
        if at < skip_to:
            continue
        if quote:
            if token == "\\":
                skip_to = at + 2
            elif token == quote:
                quote = ""
        elif token in quotes:
            quote = token
        elif token == comment:
            break
        elif token in _PAIRS:
            stack.append(token)
        elif token in _CLOSERS and stack and _PAIRS[stack[-1]] == token:
            stack.pop()
    return stack


def _trim_line_suffix(text: str, ctx: CursorContext) -> str:
    """Drop the end of a one-line completion that the rest of the cursor's line already has.

    Either the completion ends by re-typing that rest, or it closes what the
    rest closes (the bracket or quote right after the cursor) and goes on:
    the document keeps its own closer, so the completion stops before its copy.
    """
    wanted = ctx.line_suffix.rstrip()
    if not wanted.strip() or not text:
        return text
    in_string = ctx.literal == "string" or scan_line(ctx.line_prefix, ctx.language)[1] == "string"
    opener_of = _bracket_pairs(text, "" if in_string else _quotes(ctx.language))
    cut = None
    for tail in (wanted, wanted.lstrip()):  # the whole rest, then without its leading space
        start = len(text) - len(tail)
        # An echo, unless it closes a bracket the completion opened before it ("f()" vs ")").
        if text.endswith(tail) and all(
            opener_of.get(i, start) >= start for i in range(start, len(text))
        ):
            cut = start
            break
    if cut is None:
        cut = _closing_index(text, wanted.lstrip()[0], opener_of, in_string)
        if cut is None:
            return text
    kept = text[:cut]
    if ctx.line_suffix[:1].isspace() or ctx.line_suffix[:1] in _CLOSING_RUN:
        kept = kept.rstrip()  # the line's own text supplies any space before it
    return kept


def _quotes(language: str | None) -> str:
    return '"' if language == "rust" else "\"'`"  # Rust's ' starts lifetimes, not strings


def _bracket_pairs(text: str, quotes: str) -> dict[int, int]:
    """Index of each closing bracket in `text` that closes one `text` opened -> the opener's.

    Brackets inside strings opened by one of `quotes` do not count.
    """
    opened: list[int] = []
    pairs: dict[int, int] = {}
    quote = ""
    for i, char in enumerate(text):
        if quote:
            if char == quote and text[i - 1] != "\\":
                quote = ""
        elif char in quotes:
            quote = char
        elif char in _PAIRS:
            opened.append(i)
        elif char in _CLOSERS and opened and _PAIRS[text[opened[-1]]] == char:
            pairs[i] = opened.pop()
    return pairs


def _closing_index(
    text: str, closer: str, opener_of: dict[int, int], in_string: bool
) -> int | None:
    """Where `text` first closes what `closer`, the character after the cursor, closes."""
    if closer in _CLOSERS:
        for i, char in enumerate(text):
            if char in _CLOSERS and i not in opener_of:
                return i if char == closer else None  # a different bracket: leave it alone
    elif closer in _QUOTE_CHARS and in_string:
        for i, char in enumerate(text):
            if char == closer and text[i - 1 : i] != "\\":
                return i
    return None
