"""Identifiers in source text: what the code near the cursor talks about.

A regular expression, not a parse: it runs on every keystroke over a few
dozen lines and over every indexed window, and keywords are the only words
it must not count. Similarity between two pieces of code is the Jaccard
index of their identifier sets (as Copilot's neighbouring-tab snippets do).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_ATTRIBUTE = re.compile(r"([A-Za-z_$][A-Za-z0-9_$]*)\s*(?:\.|::|->)\s*([A-Za-z_$][A-Za-z0-9_$]*)")

# Keywords and names so common they say nothing about which file to look in.
_STOP_WORDS = frozenset(
    """
    abstract and as assert async await break case catch char class const continue
    crate def default defer del delete do double elif else enum except export extends
    false final finally float fn for from func function go goto if impl implements
    import in instanceof int interface is lambda let long loop match mod module mut
    new nil none not null or package pass private protected pub public raise ref
    return self static struct super switch this throw throws true try type typeof
    use var void while with yield string str bool boolean i32 i64 u8 u32 u64 usize
    isize f32 f64 byte rune error len print println range make map list dict set
    tuple object any undefined
    """.split()  # noqa: SIM905 - a word list reads better as prose
)


# String literals and comments: words there name no code to look up.
_PROSE = {
    "python": re.compile(
        r'"""[\s\S]*?(?:"""|$)|\'\'\'[\s\S]*?(?:\'\'\'|$)|"[^"\n]*"?|\'[^\'\n]*\'?|#[^\n]*'
    ),
    "c-like": re.compile(r'/\*[\s\S]*?(?:\*/|$)|//[^\n]*|"(?:\\.|[^"\\\n])*"?|`[^`]*`?'),
}


def without_prose(text: str, language: str | None) -> str:
    """`text` with string literals and comments blanked out (line breaks kept)."""
    pattern = _PROSE["python" if language == "python" else "c-like"]
    return pattern.sub(lambda m: "\n" * m.group().count("\n"), text)


def identifiers(text: str) -> Iterator[str]:
    """Identifiers in `text`, in order, keywords and one-letter names left out."""
    for match in _IDENTIFIER.finditer(text):
        word = match.group()
        if len(word) > 1 and word.lower() not in _STOP_WORDS:
            yield word


def identifier_set(text: str) -> frozenset[str]:
    """The distinct identifiers of `text` (words filtered once each, not per occurrence)."""
    return frozenset(
        word
        for word in set(_IDENTIFIER.findall(text))
        if len(word) > 1 and word.lower() not in _STOP_WORDS
    )


def attribute_pairs(text: str) -> Iterator[tuple[str, str]]:
    """(owner, member) for each `owner.member`, `owner::member` or `owner->member`."""
    for match in _ATTRIBUTE.finditer(text):
        yield match.group(1), match.group(2)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a ∩ b| / |a ∪ b|; 0 for two empty sets."""
    if not a or not b:
        return 0.0
    common = len(a & b)
    return common / (len(a) + len(b) - common)


def by_proximity(lines: list[str], cursor_line: int) -> list[str]:
    """Distinct identifiers of `lines`, nearest to `cursor_line` first (ties: earlier line)."""
    order = sorted(range(len(lines)), key=lambda i: (abs(i - cursor_line), i))
    return list(dict.fromkeys(_words(lines[i] for i in order)))


def _words(texts: Iterable[str]) -> Iterator[str]:
    for text in texts:
        yield from identifiers(text)
