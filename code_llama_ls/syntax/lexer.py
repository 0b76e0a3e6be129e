"""The one lexical table: per language, what opens a string and what starts a comment.

Both hand-written lexers read it: `cursor.scan_line` (is the cursor in a
string or a comment, where does a line's code end) and the bracket counting
of `pipeline.postprocess`. Languages are the names `classify_cursor` gets (the
canonical grammar names of `languages.py`, or None for a document without
one); a few languages without a grammar are listed too (for now their
documents reach the lexers with None).

* Quotes: `"` and `'`; also a backtick in JavaScript, TypeScript and Go
  (template and raw strings); only `"` in Rust (its `'` starts a lifetime).
* Line comments: `#` in Python, Ruby, shell, Perl and R; `//` elsewhere;
  both for a document of unknown language (None).
* Block comments (`/* */`) wherever `//` is a comment.
* Triple-quoted strings in Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class LexicalRules:
    """How one language writes strings and comments, as far as a one-line lexer cares."""

    quotes: str  # each character opens a string that the same character closes
    line_comments: tuple[str, ...]  # each marker comments out the rest of its line
    block_comments: bool = False  # /* ... */
    triple_quotes: bool = False  # a quote written three times opens a string closed the same way
    # Derived for the per-character loops: the first character of each line-comment marker,
    comment_starts: str = field(init=False, repr=False, compare=False)
    # and a pattern for what a bracket counter reads: quotes, comment markers, brackets, "\".
    tokens: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        markers = "|".join(re.escape(marker) for marker in self.line_comments)
        pattern = re.compile(rf"{markers}|[()\[\]{{}}\\{re.escape(self.quotes)}]")
        object.__setattr__(self, "comment_starts", "".join(m[0] for m in self.line_comments))
        object.__setattr__(self, "tokens", pattern)


_C_LIKE = LexicalRules("\"'", ("//",), block_comments=True)
_BACKTICK = LexicalRules("\"'`", ("//",), block_comments=True)
_HASH = LexicalRules("\"'", ("#",))
UNKNOWN = LexicalRules("\"'", ("#", "//"), block_comments=True)
"""The rules for a document of unknown language (None): either comment marker."""

_RULES: dict[str, LexicalRules] = {
    "python": LexicalRules("\"'", ("#",), triple_quotes=True),
    "javascript": _BACKTICK,
    "typescript": _BACKTICK,
    "tsx": _BACKTICK,
    "go": _BACKTICK,
    "rust": LexicalRules('"', ("//",), block_comments=True),
    **dict.fromkeys(("ruby", "shellscript", "bash", "sh", "perl", "r"), _HASH),
}


def rules_for(language: str | None) -> LexicalRules:
    """The rules for `language`; a name not in the table gets C's (`//`, `"` and `'`)."""
    if language is None:
        return UNKNOWN
    return _RULES.get(language, _C_LIKE)
