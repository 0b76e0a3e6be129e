"""Choosing, ordering and rendering context snippets within a token budget.

Each candidate offers views from smallest to largest (a class's header and
docstring, then its members' signatures, then the whole class). The first
pass takes candidates best first at their smallest view; the second widens
the chosen ones, best first, while the budget allows. Nothing repeats the
local window, and lines chosen twice are shown once.

Per file, the chosen lines are merged and rendered in file order under one
comment header (`# a/b.py`), or the model family's own file separator and
path (`FileFrame`), with an elision line where code is skipped; files come
in path order and the cursor's own file's header last. The same
choice thus always gives the same tokens, so the engine's KV cache of this
part survives keystrokes. With no snippet there is no header either: the
prompt is then the family's plain infilling format.

Each piece (a header, a run of lines, an elision) is encoded on its own,
with a cache, and the ids are concatenated: the count is exact and the
budget is never exceeded. Pieces end where the tokenizer splits anyway
(`pieces.CutRule`; a line break before indentation moves to the indented
piece for GPT-2-style tokenizers), so the ids are the ones the tokenizer
gives the whole text.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from code_llama_ls.context.index import IndexedFile, WorkspaceIndex
from code_llama_ls.context.sources import Candidate
from code_llama_ls.tokens.pieces import CutRule, Encoder, PrefixPieces, cut_rule
from code_llama_ls.tokens.tokenizer import TokenizerLike, encode_infilling

_CACHE_ENTRIES = 8192
# A view mostly shown already (by other snippets) adds nothing worth a place.
_MAX_SHOWN_SHARE = 0.5

_LINE_COMMENT = {"python": "#"}
_ELISION = {"python": "..."}


def line_comment(language: str | None) -> str:
    """The line-comment marker of a language ("//" unless it is Python)."""
    return _LINE_COMMENT.get(language or "", "//")


class TokenCounter:
    """Encodes pieces of prompt text, remembering recent encodings."""

    def __init__(self, tokenizer: TokenizerLike) -> None:
        self.tokenizer = tokenizer
        self._cache: OrderedDict[tuple[str, bool], tuple[int, ...]] = OrderedDict()
        self.breaks_go_ahead = cut_rule(tokenizer) is CutRule.BEFORE_BREAK
        """Pieces split before a line break, not after it (`Assembler._joined`)."""

    def encode(self, text: str, *, first: bool = False) -> tuple[int, ...]:
        """Ids of `text` at the start of the prompt's text (first) or continuing it."""
        key = (text, first)
        ids = self._cache.get(key)
        if ids is not None:
            self._cache.move_to_end(key)
            return ids
        tok = self.tokenizer
        head: Encoder = (lambda s: tok.encode(s)) if first else (lambda s: encode_infilling(tok, s))
        # Line pieces are cached across texts: a run that grows by a line costs one small encode.
        ids = tuple(PrefixPieces(tok, text, head).ids(0)) if text else ()
        self._cache[key] = ids
        if len(self._cache) > _CACHE_ENTRIES:
            self._cache.popitem(last=False)
        return ids


@dataclass(frozen=True)
class ContextBlock:
    """One piece of the rendered context, for the prompt inspector."""

    path: str
    display_path: str
    start_line: int
    end_line: int
    kind: str
    """"header", "elision", "separator", or the Source of the best snippet shown here."""
    symbol: str | None
    text: str
    tokens: int
    summarized: bool = False

    @property
    def is_code(self) -> bool:
        """Whether the block shows lines of code (not a header, elision or blank line)."""
        return self.kind not in ("header", "elision", "separator")


@dataclass(frozen=True)
class PromptContext:
    """The context that goes before the local prefix, as text and exact ids."""

    blocks: tuple[ContextBlock, ...] = ()
    ids: tuple[int, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The rendered context."""
        return "".join(block.text for block in self.blocks)


@dataclass(frozen=True)
class FileFrame:
    """How the context marks where each file starts and ends.

    By default (`comment_headers`) a comment header (`# a/b.py`) and a
    blank line after the file. A model family with a repository format
    (`pipeline/fim.py`) gives its own tokens instead, as ids and as the text
    the prompt inspector shows for them: `opening` before the first file
    (the repository's name), `path_lead` before each file's path,
    `content_end` text and then `closing` after each file's lines. Its
    cursor file's header shows the path only where `own_path`.
    """

    comment_headers: bool = True
    opening: tuple[int, ...] = ()
    opening_text: str = ""
    path_lead: tuple[int, ...] = ()
    path_lead_text: str = ""
    content_end: str = "\n"
    closing: tuple[int, ...] = ()
    closing_text: str = ""
    own_path: bool = True


@dataclass(frozen=True)
class _Piece:
    """A part of a file's group: its header, a run of lines, an elision, or its end."""

    start: int
    end: int
    text: str
    """Encoded as text."""
    lead: tuple[int, ...] = ()
    """Control-token ids before `text` (a family's file separator)."""
    lead_text: str = ""
    trail: tuple[int, ...] = ()
    """Control-token ids after `text` (a family's end of file)."""
    trail_text: str = ""

    def with_text(self, text: str) -> _Piece:
        """This piece with other text (`dataclasses.replace` is 10 times slower)."""
        return _Piece(
            self.start, self.end, text, self.lead, self.lead_text, self.trail, self.trail_text
        )

    @property
    def shown(self) -> str:
        """The piece as the prompt inspector shows it."""
        return self.lead_text + self.text + self.trail_text


@dataclass(frozen=True)
class Layout:
    """What the assembler needs of the cursor's file."""

    path: str
    language: str | None
    display_path: str
    local_lines: tuple[int, int]


@dataclass
class _Choice:
    candidate: Candidate
    view: int
    """Index into candidate.views."""

    @property
    def lines(self) -> tuple[int, ...]:
        return self.candidate.views[self.view]


@dataclass
class _File:
    """The lines chosen in one file and what rendering them costs."""

    record: IndexedFile
    display_path: str
    shown: frozenset[int] = frozenset()
    cost: int = 0
    choices: list[_Choice] = field(default_factory=list)


class Assembler:
    """Turns candidates into a `PromptContext` within a budget."""

    def __init__(
        self,
        index: WorkspaceIndex,
        counter: TokenCounter,
        extra_files: Mapping[str, tuple[IndexedFile, str]] | None = None,
        frame: FileFrame | None = None,
    ) -> None:
        """`extra_files`: files the index does not hold (yanks), by path, with their headers'
        names. `frame`: how files are marked (comment headers by default)."""
        self.index = index
        self.counter = counter
        self.extra_files = extra_files or {}
        self.frame = frame or FileFrame()

    def assemble(
        self, candidates: Sequence[Candidate], layout: Layout, budget: int
    ) -> PromptContext:
        """The best context in at most `budget` ids (empty when nothing fits)."""
        comment = line_comment(layout.language)
        own_header = self._header(layout.display_path, comment, own=True)
        # One token of slack: the very first piece is encoded with the dummy space.
        spent = 1 + len(self.frame.opening) + len(self._ids(own_header))
        files: dict[str, _File] = {}
        ranked = sorted(candidates, key=lambda c: (-c.score, c.path, c.views[-1][:1]))
        chosen: list[_Choice] = []
        for candidate in ranked:
            file = self._file(files, candidate.path, layout)
            if file is None or not candidate.views:
                continue
            lines = candidate.views[0]
            if self._repeats(lines, file, candidate.path, layout):
                continue
            cost = self._cost(file, file.shown | frozenset(lines), comment)
            if spent + cost - file.cost <= budget:
                spent += cost - file.cost
                file.shown, file.cost = file.shown | frozenset(lines), cost
                choice = _Choice(candidate, 0)
                file.choices.append(choice)
                chosen.append(choice)
        for choice in chosen:  # widen, best first
            spent = self._widen(
                choice, files[choice.candidate.path], layout, comment, spent, budget
            )
        files = {path: f for path, f in files.items() if f.shown}
        if not files:
            return PromptContext()
        return self._render(files, layout, own_header, comment)

    # -- choosing --------------------------------------------------------------

    def _file(self, files: dict[str, _File], path: str, layout: Layout) -> _File | None:
        file = files.get(path)
        if file is None:
            if path in self.extra_files:
                record, display = self.extra_files[path]
            else:
                indexed = self.index.file(path)
                if indexed is None:
                    return None
                record = indexed
                own = path == layout.path
                display = layout.display_path if own else self.index.relative_path(path)
            file = files[path] = _File(record, display)
        return file

    def _repeats(self, lines: Sequence[int], file: _File, path: str, layout: Layout) -> bool:
        """Whether these lines are in the local window or mostly shown already."""
        if not lines or _in_local_window(lines, path, layout):
            return True
        shown = sum(1 for line in lines if line in file.shown)
        return shown > 0 and shown >= len(lines) * _MAX_SHOWN_SHARE

    def _widen(
        self, choice: _Choice, file: _File, layout: Layout, comment: str, spent: int, budget: int
    ) -> int:
        views = choice.candidate.views
        for view in range(len(views) - 1, choice.view, -1):
            lines = views[view]
            if _in_local_window(lines, file.record.path, layout):
                continue
            shown = file.shown | frozenset(lines)
            cost = self._cost(file, shown, comment)
            if spent + cost - file.cost <= budget:
                choice.view = view
                spent += cost - file.cost
                file.shown, file.cost = shown, cost
                break
        return spent

    def _cost(self, file: _File, shown: frozenset[int], comment: str) -> int:
        """Tokens of the file's group with these lines shown (header and file end included)."""
        return sum(len(self._ids(piece)) for piece in self._pieces(file, shown, comment))

    # -- rendering -------------------------------------------------------------

    def _header(self, display_path: str, comment: str, *, own: bool = False) -> _Piece:
        frame = self.frame
        if frame.comment_headers:
            return _Piece(0, 0, f"{comment} {display_path}\n")
        path = f"{display_path}\n" if frame.own_path or not own else ""
        return _Piece(0, 0, path, frame.path_lead, frame.path_lead_text)

    def _ids(self, piece: _Piece, *, first: bool = False) -> tuple[int, ...]:
        """The piece's ids; `first`: it starts the prompt's text (with a dummy space)."""
        text = self.counter.encode(piece.text, first=first and not piece.lead)
        return (*piece.lead, *text, *piece.trail)

    def _pieces(self, file: _File, shown: Iterable[int], comment: str) -> list[_Piece]:
        """The header, each run of lines and each elision, and the file's end."""
        lines = file.record.lines
        pieces = [self._header(file.display_path, comment)]
        runs = _runs(sorted(line for line in shown if line < len(lines)))
        for i, (start, end) in enumerate(runs):
            text = "".join(line + "\n" for line in lines[start : end + 1])
            pieces.append(_Piece(start, end, text))
            next_start = runs[i + 1][0] if i + 1 < len(runs) else len(lines)
            if any(line.strip() for line in lines[end + 1 : next_start]):  # code is skipped
                elision = _elision(lines[end], file.record.language)
                pieces.append(_Piece(end + 1, next_start - 1, elision))
        frame = self.frame
        if frame.comment_headers:
            pieces.append(_Piece(0, 0, frame.content_end))
        else:  # the end in one piece with the last lines: "\n\n" is one token to Qwen
            last = pieces.pop()
            text = last.text + frame.content_end
            pieces += [
                last.with_text(text),
                _Piece(0, 0, "", trail=frame.closing, trail_text=frame.closing_text),
            ]
        return self._joined(pieces) if self.counter.breaks_go_ahead else pieces

    @staticmethod
    def _joined(pieces: list[_Piece]) -> list[_Piece]:
        """Pieces whose line break before indentation goes with the indented piece.

        A GPT-2-style tokenizer reads "\n    def" as "\n   " and " def":
        encoded apart, "...:\n" and "    def" would give other ids than the
        text has. Moved, each piece ends after a visible character, where
        such a tokenizer always splits (`pieces.CutRule.BEFORE_BREAK`).
        """
        for i in range(1, len(pieces)):
            right = pieces[i]
            if right.text[:1] not in (" ", "\t") or right.lead:
                continue
            left = pieces[i - 1]
            text = left.text
            if text[-2:-1] not in ("", " ", "\t", "\n") and text[-1] == "\n" and not left.trail:
                pieces[i - 1] = left.with_text(text[:-1])
                pieces[i] = right.with_text("\n" + right.text)
        return pieces

    def _render(
        self, files: dict[str, _File], layout: Layout, own_header: _Piece, comment: str
    ) -> PromptContext:
        frame = self.frame
        blocks: list[ContextBlock] = []
        ids: list[int] = list(frame.opening)
        if frame.opening:
            blocks.append(ContextBlock("", "", 0, 0, "header", None, frame.opening_text, len(ids)))
        for path in sorted(files):
            file = files[path]
            pieces = self._pieces(file, file.shown, comment)
            for number, piece in enumerate(pieces):
                piece_ids = self._ids(piece, first=not ids)
                ids.extend(piece_ids)
                kind, symbol, summarized = _describe(
                    file, piece.start, piece.end, number, len(pieces)
                )
                blocks.append(
                    ContextBlock(
                        path,
                        file.display_path,
                        piece.start,
                        piece.end,
                        kind,
                        symbol,
                        piece.shown,
                        len(piece_ids),
                        summarized,
                    )
                )
        piece_ids = self._ids(own_header)
        ids.extend(piece_ids)
        blocks.append(
            ContextBlock(
                layout.path,
                layout.display_path,
                0,
                0,
                "header",
                None,
                own_header.shown,
                len(piece_ids),
            )
        )
        return PromptContext(tuple(blocks), tuple(ids))


def _describe(
    file: _File, start: int, end: int, number: int, count: int
) -> tuple[str, str | None, bool]:
    """Kind, symbols and summarized flag of a piece, from the choices that show its lines."""
    if number == 0 or number == count - 1:
        return "header" if number == 0 else "separator", None, False
    covering = [c for c in file.choices if any(start <= line <= end for line in c.lines)]
    if not covering:
        return "elision", None, False
    best = max(covering, key=lambda c: c.candidate.score)
    symbols = list(dict.fromkeys(c.candidate.symbol for c in covering if c.candidate.symbol))
    summarized = any(c.view < len(c.candidate.views) - 1 for c in covering)
    return best.candidate.source.value, ", ".join(symbols) or None, summarized


def _in_local_window(lines: Sequence[int], path: str, layout: Layout) -> bool:
    if path != layout.path:
        return False
    first, last = layout.local_lines
    return any(first <= line <= last for line in lines)


def _runs(lines: Sequence[int]) -> list[tuple[int, int]]:
    """Consecutive runs of sorted line numbers, as (first, last)."""
    runs: list[tuple[int, int]] = []
    for line in lines:
        if runs and line == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], line)
        else:
            runs.append((line, line))
    return runs


def _elision(last_line: str, language: str) -> str:
    """A line marking skipped code, indented as the code after `last_line` would be."""
    indent = last_line[: len(last_line) - len(last_line.lstrip(" \t"))]
    stripped = last_line.rstrip()
    if stripped.endswith((":", "{", "(", "[")):
        indent += "    "
    return f"{indent}{_ELISION.get(language, '// ...')}\n"
