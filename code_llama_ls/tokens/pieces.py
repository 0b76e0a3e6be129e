"""Token counts of text windows from cached pieces: fitting the local window without re-encoding.

The prefix window is the text from some line start to the cursor. Cut the
text where the tokenizer always splits: just before every line break that
follows a visible character (SentencePiece has no piece that spans it, and
GPT-2-style pre-tokenizers start a new word at the whitespace run), or, for
pre-tokenizers that end a word of punctuation with the line breaks after it
(Qwen2's, Llama 3's: "):\n" is one word), just after the last line break of
a run. The pieces between cuts encode independently, so the ids of a window
are the ids of its first line's head followed by the ids of the whole pieces
after it. Which rule holds is probed once per tokenizer on a sample of code
(`cut_rule`); where neither does, windows are encoded whole. Pieces are encoded once and cached by
text, per tokenizer: while the user types, only the cursor's own piece is
new, so fitting a 16k-token window costs a few small encodes instead of
several encodes of the whole window.

`chars_per_token` gives a tokenizer's usual characters per token on code,
measured once on a fixed sample: a length in characters that stands for the
same number of tokens in every prompt (the prefix window's step, `prompt.py`).
"""

from __future__ import annotations

import bisect
import itertools
from collections import OrderedDict
from collections.abc import Callable
from enum import StrEnum

from code_llama_ls.errors import PromptError
from code_llama_ls.tokens.tokenizer import (
    PerTokenizer,
    TokenizerLike,
    adds_dummy_space,
    encode_infilling,
)

_CACHE_PIECES = 65_536
Encoder = Callable[[str], list[int]]

# Ordinary code in a few languages: what `chars_per_token` is measured on.
_RATIO_SAMPLE = """\
import os
from dataclasses import dataclass


@dataclass
class Entry:
    name: str
    size: int = 0

    def describe(self, width: int = 40) -> str:
        \"\"\"One line about the entry, cut to `width` characters.\"\"\"
        text = f"{self.name}: {self.size} bytes"
        return text if len(text) <= width else text[: width - 3] + "..."


def total_size(folder):
    return sum(os.path.getsize(os.path.join(folder, name)) for name in os.listdir(folder))

function parseQuery(query) {
  const params = {};
  for (const part of query.replace(/^\\?/, "").split("&")) {
    const [key, value] = part.split("=");
    if (key) params[decodeURIComponent(key)] = decodeURIComponent(value || "");
  }
  return params;
}

static int count_lines(const char *text) {
    int lines = 0;
    for (; *text; text++) {
        if (*text == '\\n') lines++;
    }
    return lines;
}
"""


class CutRule(StrEnum):
    """Where a tokenizer always splits code, so that pieces between cuts encode apart."""

    BEFORE_BREAK = "before a line break after a visible character"
    AFTER_BREAKS = "after the last line break of a run"
    NONE = "nowhere known: windows are encoded whole"


_CUT_PROBE = _RATIO_SAMPLE + (
    "if (a):\n\n\n    b = [c]  \n\t\td = {e: 'f'}\n  \n}\n\nx = 1;\n//\n#\n"
)


def cuts(text: str, rule: CutRule, start: int = 0, end: int | None = None) -> list[int]:
    """The cut positions in `text[start:end]` (ascending) under `rule`."""
    end = len(text) if end is None else end
    found: list[int] = []
    nl = text.find("\n", start, end)
    while nl >= 0:
        cut = _cut_at(text, nl, rule)
        if cut is not None and start < cut < end:
            found.append(cut)
        nl = text.find("\n", nl + 1, end)
    return found


def _cut_at(text: str, nl: int, rule: CutRule) -> int | None:
    """The cut that the line break at `nl` gives under `rule`, or None."""
    if rule is CutRule.BEFORE_BREAK:
        return nl if nl > 0 and text[nl - 1] not in " \t\n" else None
    if rule is CutRule.AFTER_BREAKS:
        after = nl + 1
        return after if text[after : after + 1] not in ("", "\r", "\n") else None
    return None


def _probe_cut_rule(tokenizer: TokenizerLike) -> CutRule:
    """The first rule under which the probe's pieces encode as the whole probe does."""
    try:
        whole = encode_infilling(tokenizer, _CUT_PROBE)
        for rule in (CutRule.BEFORE_BREAK, CutRule.AFTER_BREAKS):
            if rule is CutRule.AFTER_BREAKS and adds_dummy_space(tokenizer):
                continue  # a window may start at a cut: its first piece needs the dummy space
            bounds = [0, *cuts(_CUT_PROBE, rule), len(_CUT_PROBE)]
            pieces = [
                i
                for a, b in itertools.pairwise(bounds)
                for i in encode_infilling(tokenizer, _CUT_PROBE[a:b])
            ]
            if pieces == whole:
                return rule
    except PromptError:
        pass
    return CutRule.NONE


class _PieceCache:
    """Ids of continuation pieces, least recently used dropped first, and the tokenizer's
    cut rule."""

    def __init__(self, tokenizer: TokenizerLike) -> None:
        self._tokenizer = tokenizer
        self._ids: OrderedDict[str, tuple[int, ...]] = OrderedDict()
        self._chars_per_token: float | None = None
        self.rule = _probe_cut_rule(tokenizer)

    def chars_per_token(self) -> float:
        if self._chars_per_token is None:
            ids = self._tokenizer.encode(_RATIO_SAMPLE)
            self._chars_per_token = len(_RATIO_SAMPLE) / max(len(ids), 1)
        return self._chars_per_token

    def ids(self, piece: str) -> tuple[int, ...]:
        found = self._ids.get(piece)
        if found is not None:
            self._ids.move_to_end(piece)
            return found
        found = tuple(encode_infilling(self._tokenizer, piece))
        self._ids[piece] = found
        if len(self._ids) > _CACHE_PIECES:
            self._ids.popitem(last=False)
        return found


_cache_for = PerTokenizer(_PieceCache)


def cut_rule(tokenizer: TokenizerLike) -> CutRule:
    """Where the tokenizer always splits code (probed once)."""
    return _cache_for(tokenizer).rule


def chars_per_token(tokenizer: TokenizerLike) -> float:
    """The tokenizer's characters per token on ordinary code (a fixed sample), measured once."""
    return _cache_for(tokenizer).chars_per_token()


class PrefixPieces:
    """Ids and counts of windows `text[start:]` that start at line starts.

    `encode` encodes the head of a window (the text before its first cut),
    as the prompt needs it: with or without a leading dummy space.
    """

    def __init__(self, tokenizer: TokenizerLike, text: str, encode: Encoder) -> None:
        self.text = text
        self.encode = encode
        self._cache = _cache_for(tokenizer)
        self._cuts: list[int] = []  # cut positions found so far, descending
        self._sums: list[int] = [0]  # _sums[i]: ids of text[_cuts[i - 1]:] (0 for none)
        self._scanned = len(text)  # cuts are known in text[_scanned:]

    def _cut_index(self, start: int) -> int | None:
        """Index in `_cuts` of the first cut >= start (scanning back to `start`), None if none."""
        self._scan_to(start)
        i = bisect.bisect_right(self._cuts, -start, key=lambda cut: -cut) - 1
        return i if i >= 0 else None

    def _scan_to(self, start: int) -> None:
        text, rule = self.text, self._cache.rule
        before = rule is CutRule.BEFORE_BREAK
        while self._scanned > start:
            nl = text.rfind("\n", start, self._scanned)
            if nl < 0:
                self._scanned = start
                return
            self._scanned = nl
            if before:  # the usual rule, inline: this loop runs once per line of a window
                cut: int | None = nl if nl > 0 and text[nl - 1] not in " \t\n" else None
            else:
                cut = _cut_at(text, nl, rule)
            if cut is not None:
                end = self._cuts[-1] if self._cuts else len(text)
                self._cuts.append(cut)
                self._sums.append(self._sums[-1] + len(self._cache.ids(text[cut:end])))

    def lower_bound(self, start: int) -> int:
        """Ids of the whole pieces of `text[start:]`: its count less its head's."""
        i = self._cut_index(start)
        return 0 if i is None else self._sums[i + 1]

    def count(self, start: int) -> int:
        """Ids of the window `text[start:]`."""
        i = self._cut_index(start)
        if i is None:
            return len(self.encode(self.text[start:]))
        head = self.text[start : self._cuts[i]]
        return (len(self.encode(head)) if head else 0) + self._sums[i + 1]

    def ids(self, start: int) -> list[int]:
        """The ids of the window `text[start:]`: its head's, then the cached pieces'."""
        i = self._cut_index(start)
        if i is None:
            return self.encode(self.text[start:])
        head = self.text[start : self._cuts[i]]
        ids = self.encode(head) if head else []
        bounds = [*self._cuts[i::-1], len(self.text)]
        for a, b in itertools.pairwise(bounds):
            ids.extend(self._cache.ids(self.text[a:b]))
        return ids


class SuffixPieces:
    """Ids and counts of windows `text[:end]`, the suffix counterpart of `PrefixPieces`."""

    def __init__(self, tokenizer: TokenizerLike, text: str, encode: Encoder) -> None:
        self.text = text
        self.encode = encode
        self._cache = _cache_for(tokenizer)
        self._cuts: list[int] = []  # ascending
        self._sums: list[int] = [0]  # _sums[i]: ids of the pieces between the first i+1 cuts
        self._scanned = 0

    def _cuts_before(self, end: int) -> int:
        """How many cuts lie before `end` (scanning as far as `end`)."""
        text, rule = self.text, self._cache.rule
        while self._scanned < end:
            nl = text.find("\n", self._scanned, end)
            if nl < 0:
                self._scanned = end
                break
            self._scanned = nl + 1
            cut = _cut_at(text, nl, rule)
            if cut is not None:
                if self._cuts:
                    piece = text[self._cuts[-1] : cut]
                    self._sums.append(self._sums[-1] + len(self._cache.ids(piece)))
                self._cuts.append(cut)
        return bisect.bisect_left(self._cuts, end)

    def lower_bound(self, end: int) -> int:
        """Ids of the whole pieces inside `text[:end]` (its head and tail not counted)."""
        cuts = self._cuts_before(end)
        return self._sums[cuts - 1] if cuts else 0

    def count(self, end: int) -> int:
        """Ids of the window `text[:end]`."""
        return len(self.ids(end))

    def ids(self, end: int) -> list[int]:
        """The ids of the window `text[:end]`: its head's, the cached pieces', its tail's."""
        cuts = self._cuts_before(end)
        if not cuts:
            return self.encode(self.text[:end])
        ids = self.encode(self.text[: self._cuts[0]])
        bounds = self._cuts[:cuts]
        for a, b in itertools.pairwise(bounds):
            ids.extend(self._cache.ids(self.text[a:b]))
        ids.extend(self._cache.ids(self.text[bounds[-1] : end]))
        return ids
