"""Trim the model's raw middle text down to what the editor should show as ghost text.

The rules follow the syntax at the cursor (`CursorContext`):

* One line or one block. A block ends where the cursor's block ends. In
  Python, when the model saw the code after the cursor (a fill-in-the-middle
  prompt), it may go on in the enclosing blocks (a `return` after a loop, an
  `elif` whose body is that code) until top-level code or a new definition,
  and is then cut where the code after the cursor fits (which takes a parse:
  without one the block ends with the cursor's).
* Dropped: text that re-types the first lines after the cursor (exactly or but
  for whitespace), a line or block the model repeats, a closing line the
  document already has, and trailing blank lines.
* A multi-line body the model forgot to indent under a block opener is
  indented to the block, and indentation in the wrong character (tabs or
  spaces) is converted to the file's.
* With a parse of the document (`InsertionParser`), a block is cut where
  the document is left with the fewest syntax errors (the longest such cut);
  brackets and quotes the completion opened and nothing after it closes are
  closed when that removes errors.

Strings and comments are told from code by `syntax.lexer`'s table, as at the cursor.

`should_stop` asks the same questions per token (all but the parse), so
generation ends as soon as more text cannot change the result. That is why
this is one file, a little over 500 lines: the per-token check and the final
cut share every rule, and split they would drift apart.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

from code_llama_ls.syntax.cursor import (
    MAX_LEX_CHARS,
    NEXT_LINES,
    CompletionMode,
    CursorContext,
    indent_width,
    scan_line,
)
from code_llama_ls.syntax.errors import InsertionParser
from code_llama_ls.syntax.lexer import LexicalRules, rules_for

_PAIRS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = frozenset(_PAIRS.values())
# Characters that pair up in text after the cursor; in a string, a backtick too (`code`).
_QUOTE_CHARS = frozenset("\"'`")
# Characters that may end a line after its last expression: closers, quotes, ";" and ",".
_CLOSING_RUN = frozenset(")]}\"'`;, \t")
# A Python line that starts a new definition: never part of the block before it.
_PY_DEFINITION = re.compile(r"\s*(?:(?:async\s+)?def\s|class\s|@[\w.]+)")
# Longest block of lines (in non-blank lines) looked for when the model repeats itself.
_MAX_REPEATED_LINES = 4
# How many line ends, from the last, the syntax check tries as cuts, and for how long.
_MAX_SYNTAX_CUTS = 8
_SYNTAX_CUT_BUDGET_S = 0.02


def postprocess(
    generated: str,
    ctx: CursorContext,
    suffix: str,
    *,
    sees_suffix: bool = True,
    parse: InsertionParser | None = None,
) -> str:
    """The part of `generated` (LF line endings) to show at the cursor; "" for nothing.

    `suffix` is the document after the cursor, LF-normalized. `sees_suffix`
    says whether the prompt showed the model that suffix (fill-in-the-middle)
    rather than only the code before the cursor. `parse` judges candidate
    texts by the syntax errors they leave in the document.
    """
    if ctx.mode is CompletionMode.NONE:
        return ""
    generated = generated.replace("\r\n", "\n")
    if ctx.mode is CompletionMode.SINGLE_LINE:
        line = generated.split("\n", 1)[0]
        text = _trim_line_suffix(line.rstrip(), ctx)
        if text == line.rstrip() and not ctx.line_suffix.strip():
            text = line  # nothing after the cursor: the model's own line, as written
    else:
        lines = _reindent(generated.split("\n"), ctx)
        following = _following_lines(suffix)
        # Without a parse to judge where the code after the cursor fits, the block stays put.
        relaxed = parse is not None and _may_leave_block(ctx, sees_suffix)
        kept, _ = _block_lines(lines, ctx, following, relaxed, final=True)
        text = _without_trailing_blank_lines(kept)
    if parse is not None and text.strip() and ctx.literal is None:
        text = _close_what_is_open(_syntax_cut(text, parse), ctx, parse)
    return text if text.strip() else ""


def should_stop(text_so_far: str, ctx: CursorContext, *, sees_suffix: bool = True) -> bool:
    """True once no continuation of `text_so_far` can change what `postprocess` keeps.

    Uses `ctx.next_lines` for the lines after the cursor (postprocess reads them
    from the suffix; the two agree when the context came from the same text).
    """
    if ctx.mode is CompletionMode.NONE:
        return True
    if ctx.mode is CompletionMode.SINGLE_LINE:
        return "\n" in text_so_far
    complete_lines = _reindent(text_so_far.split("\n")[:-1], ctx)
    relaxed = _may_leave_block(ctx, sees_suffix)
    return _block_lines(complete_lines, ctx, list(ctx.next_lines), relaxed, final=False)[1]


class StopCheck:
    """`should_stop` for one growing generation: judged again only when a line completes.

    The engine asks after every token with the whole text so far; in
    multi-line mode the answer depends on the complete lines only.
    """

    def __init__(self, ctx: CursorContext, *, sees_suffix: bool = True) -> None:
        self._ctx, self._sees_suffix = ctx, sees_suffix
        self._judged_up_to = -2  # where the text's last line break was when last judged
        self._stop = False

    def __call__(self, text_so_far: str) -> bool:
        if self._ctx.mode is not CompletionMode.MULTI_LINE:
            return should_stop(text_so_far, self._ctx, sees_suffix=self._sees_suffix)
        last_break = text_so_far.rfind("\n")
        if last_break != self._judged_up_to:
            self._judged_up_to = last_break
            self._stop = should_stop(text_so_far, self._ctx, sees_suffix=self._sees_suffix)
        return self._stop


def _following_lines(suffix: str) -> list[str]:
    """The first NEXT_LINES non-blank lines after the cursor's line in `suffix`."""
    found: list[str] = []
    start = suffix.find("\n")
    while start >= 0 and len(found) < NEXT_LINES:
        end = suffix.find("\n", start + 1)
        line = suffix[start + 1 : end if end >= 0 else len(suffix)]
        if line.strip():
            found.append(line)
        start = end
    return found


def _without_trailing_blank_lines(lines: list[str]) -> str:
    """`lines` joined, without the blank lines at the end (the last line keeps its spaces)."""
    end = len(lines)
    while end > 0 and not lines[end - 1].strip():
        end -= 1
    return "\n".join(lines[:end])


def _block_lines(
    lines: list[str],
    ctx: CursorContext,
    following: list[str],
    relaxed: bool,
    final: bool,
) -> tuple[list[str], bool]:
    """The leading `lines` that belong to the block at the cursor, and whether the block ended.

    `following` holds the first non-blank lines after the cursor. `relaxed`:
    a Python block may leave the cursor's (`_may_leave_block`). `final`:
    `lines` is the whole text (else the complete lines so far, more may come).
    """
    # Only the end of a very long (minified) line is read: this runs once per token.
    rules = rules_for(ctx.language)
    stack = _push_brackets(ctx.line_prefix[-MAX_LEX_CHARS:], [], rules)
    outside = len(stack)  # brackets opened before the completion
    kept: list[str] = []
    code: list[tuple[int, str]] = []  # (index in kept, whole line) of the kept non-blank lines
    for number, line in enumerate(lines):
        if not line.strip():
            kept.append(line)
            continue
        whole = ctx.line_prefix + line if number == 0 else line
        closing = _is_closing_line(line)
        depth = _depth_after_closing(line, stack) if closing else None
        closes_own = depth is not None and depth >= outside  # the completion's own brackets
        if not closes_own and _echoes(lines, number, ctx, following, final):
            return kept, True  # the code after the cursor, again
        repeated = _repeated_lines(code, whole)
        if repeated:
            return kept[: code[-repeated + 1][0]] if repeated > 1 else kept, True
        width = indent_width(line)
        if number > 0 and width < ctx.block_indent_width:
            if relaxed:
                if not closing and (width == 0 or _PY_DEFINITION.match(line)):
                    return kept, True  # top level, or a new definition: the block ended
            else:
                following_line = following[0] if following else None
                if closing and (
                    closes_own
                    or _document_needs_closer(line, following_line, ctx.block_indent_width)
                ):
                    kept.append(line)  # a closer the document does not have
                return kept, True
        code.append((len(kept), whole))
        kept.append(line)
        _push_brackets(line, stack, rules)
    return kept, False


def _may_leave_block(ctx: CursorContext, sees_suffix: bool) -> bool:
    """Whether a block may go on below the cursor's block (down to anything but top level).

    Only in Python, when the model saw the code after the cursor: there a
    fill-in may close the cursor's block and go on in an outer one (`return`
    after a loop, `elif` whose body that code is). What is kept is then cut
    where the code after the cursor fits (`_syntax_cut`).
    """
    return sees_suffix and ctx.language == "python" and ctx.block_indent_width > 0


def _squashed(line: str) -> str:
    return "".join(line.split())


def _same_code(mine: str, theirs: str, language: str | None, partial: bool) -> bool:
    """Whether two lines are the same code but for whitespace (in Python, same indentation).

    `partial`: `mine` may be cut short, so being the start of `theirs` is enough.
    """
    if language == "python" and indent_width(mine) != indent_width(theirs):
        return False
    mine, theirs = _squashed(mine), _squashed(theirs)
    return theirs.startswith(mine) if partial else mine == theirs


def _echoes(
    lines: list[str], number: int, ctx: CursorContext, following: list[str], final: bool
) -> bool:
    """Whether `lines` from `number` on re-type `following`, ignoring whitespace.

    All of `following` must be matched, line by line; when `final`, text that
    runs out while matching (its last line may be cut short) counts too.
    """
    if not following:
        return False
    matched = 0
    for i in range(number, len(lines)):
        line = lines[i]
        if not line.strip():
            continue
        if matched == len(following):
            return True
        mine = ctx.line_prefix + line if i == 0 else line
        if _same_code(mine, following[matched], ctx.language, partial=False):
            matched += 1
            continue
        last = final and i == len(lines) - 1
        return last and matched > 0 and _same_code(mine, following[matched], ctx.language, True)
    return matched == len(following) or (final and matched > 0)


def _repeated_lines(code: list[tuple[int, str]], whole: str) -> int:
    """k > 0 when `whole` ends a run of k non-blank lines equal to the k just before them."""
    lines = [line for _, line in code[-(2 * _MAX_REPEATED_LINES - 1) :]] + [whole]
    for k in range(1, _MAX_REPEATED_LINES + 1):
        if len(lines) < 2 * k:
            break
        block = lines[-k:]
        if block == lines[-2 * k : -k] and any(_is_meaningful(line) for line in block):
            return k
    return 0


def _is_meaningful(line: str) -> bool:
    """A line whose repetition is suspicious: code with a word in it, not just closers."""
    return not _is_closing_line(line) and any(char.isalnum() for char in line)


def _reindent(lines: list[str], ctx: CursorContext) -> list[str]:
    """`lines` with the model's indentation mended.

    Indentation in the other character than the file's (tabs vs spaces) is
    converted. After a block opener (the cursor at the end of `def f():`), a
    body whose first line is not indented past the opener is moved into the block.
    """
    unit = ctx.indent_unit
    if unit:
        lines = [_convert_indent(line, unit) if n else line for n, line in enumerate(lines)]
    unit = unit or "    "
    if not ctx.line_prefix.strip():
        return _align_to_first_line(lines, ctx)
    first = next((i for i in range(1, len(lines)) if lines[i].strip()), None)
    if first is None or indent_width(lines[first]) > indent_width(ctx.indent):
        return lines
    body = -(-ctx.block_indent_width // len(unit)) * len(unit)  # rounded up to whole units
    shift = unit[0] * (body - indent_width(lines[first]))
    return [
        shift + line if number >= first and line.strip() else line
        for number, line in enumerate(lines)
    ]


def _align_to_first_line(lines: list[str], ctx: CursorContext) -> list[str]:
    """On a blank cursor line, `lines` with the model's later lines aligned to its first.

    When the first line opens a bracket and the line that closes it sits
    deeper than the first line (the model indented as if the cursor were
    further right), the later lines move left by the difference (or as far
    as they can).
    """
    if not lines or not lines[0].strip():
        return lines
    first = indent_width(ctx.line_prefix + lines[0])
    rules = rules_for(ctx.language)
    stack = _push_brackets(lines[0], [], rules)
    if not stack:
        return lines
    for line in lines[1:]:
        _push_brackets(line, stack, rules)
        if not stack and line.strip()[:1] in _CLOSERS:
            extra = indent_width(line) - first
            if extra <= 0:
                return lines
            return lines[:1] + [_dedented(line, extra) for line in lines[1:]]
        if not stack:
            return lines
    return lines


def _dedented(line: str, columns: int) -> str:
    """`line` with up to `columns` characters of its leading whitespace removed."""
    return line[min(columns, indent_width(line)) :]


def _convert_indent(line: str, unit: str) -> str:
    """`line` with its leading spaces as tabs when `unit` is a tab, or its tabs as `unit`."""
    width = indent_width(line)
    leading = line[:width]
    if unit == "\t" and " " in leading and "\t" not in leading:
        tabs, spaces = divmod(width, 4)
        return "\t" * tabs + " " * spaces + line[width:]
    if unit[0] == " " and "\t" in leading:
        return leading.replace("\t", unit) + line[width:]
    return line


def _syntax_cut(text: str, parse: InsertionParser) -> str:
    """`text`, or the longest of its cuts that leaves the document with the fewest syntax errors.

    The cuts, longest first: without the closing brackets at its end that
    close nothing it opened, then at each line end (up to _MAX_SYNTAX_CUTS),
    while _SYNTAX_CUT_BUDGET_S lasts (each try is a parse: ~0.1 ms in a
    200-line file, ~4 ms in a 6,000-line one).
    """
    deadline = time.perf_counter() + _SYNTAX_CUT_BUDGET_S
    best, fewest = text, parse.errors_with(text)
    for candidate in _cuts(text):
        if fewest == 0 or time.perf_counter() > deadline:
            break
        errors = parse.errors_with(candidate)
        if errors < fewest:
            best, fewest = candidate, errors
    return best


def _cuts(text: str) -> Iterator[str]:
    """Shorter versions of `text` for `_syntax_cut`, longest first."""
    opener_of = _bracket_pairs(text, "")
    end = len(text)
    while end > 0 and text[end - 1] in _CLOSERS and end - 1 not in opener_of:
        end -= 1
    if end < len(text) and text[:end].strip():
        yield text[:end].rstrip()  # no line or space left behind by the closers
    lines = text.split("\n")
    ends = [count for count in range(len(lines) - 1, 0, -1) if lines[count - 1].strip()]
    for count in ends[:_MAX_SYNTAX_CUTS]:
        yield "\n".join(lines[:count])


def _close_what_is_open(text: str, ctx: CursorContext, parse: InsertionParser) -> str:
    """`text` with the quote and brackets it opened and left open closed, if that removes errors."""
    closers = _unclosed(text, rules_for(ctx.language))
    if not closers or parse.errors_with(text + closers) >= parse.errors_with(text):
        return text
    return text + closers


def _unclosed(text: str, rules: LexicalRules) -> str:
    """The closers of what `text` opens and leaves open: its last line's quote, then brackets."""
    quotes, comments, starts = rules.quotes, rules.line_comments, rules.comment_starts
    opened: list[str] = []
    quote = ""
    i = 0
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 1
            elif text.startswith(quote, i):
                i += len(quote) - 1
                quote = ""
            elif char == "\n" and quote in ("'", '"'):
                quote = ""  # an unterminated one-line string: the line is broken anyway
        elif char in starts and text.startswith(comments, i):
            newline = text.find("\n", i)
            if newline < 0:
                break
            i = newline
        elif char in quotes:
            triple = rules.triple_quotes and text.startswith(char * 3, i)
            quote = char * 3 if triple else char
            i += len(quote) - 1
        elif char in _PAIRS:
            opened.append(_PAIRS[char])
        elif char in _CLOSERS:
            if not opened or opened[-1] != char:
                return ""  # closes something from before the completion: leave it alone
            opened.pop()
        i += 1
    return quote + "".join(reversed(opened))


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


def _push_brackets(line: str, stack: list[str], rules: LexicalRules) -> list[str]:
    """Update `stack` with the brackets `line` opens and closes outside strings and comments."""
    quotes, comments = rules.quotes, rules.line_comments
    quote = ""
    skip_to = 0  # the character after a backslash in a string is not special
    for match in rules.tokens.finditer(line):  # the rest of the line is skipped in C
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
        elif token in comments:
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
    opener_of = _bracket_pairs(text, "" if in_string else rules_for(ctx.language).quotes)
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
