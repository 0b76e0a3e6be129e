"""DocumentStore: exact text after incremental edits, and a tree equal to a fresh parse."""

from __future__ import annotations

import random
import threading

import pytest
import tree_sitter

from code_llama_ls.errors import InvalidPositionError, UnknownDocumentError
from code_llama_ls.syntax import language_for
from code_llama_ls.text.documents import DocumentStore, Snapshot, TextChange, _edit_tree
from code_llama_ls.text.positions import LineIndex, PositionEncoding
from tests.lsp_reference import EditMaker, apply

U8 = PositionEncoding.UTF8
U16 = PositionEncoding.UTF16
U32 = PositionEncoding.UTF32
URI = "file:///work/example.py"

PY = 'def greet(name):\n    return "hi " + name\n\n\nclass A:\n    x = 1\n'


def nodes(tree: tree_sitter.Tree) -> list[tuple[str, int, int, tuple[int, int], tuple[int, int]]]:
    """Every node with its byte and point span, in document order."""
    out: list[tuple[str, int, int, tuple[int, int], tuple[int, int]]] = []
    cursor = tree.walk()
    while True:
        node = cursor.node
        assert node is not None
        out.append((node.type, node.start_byte, node.end_byte, node.start_point, node.end_point))
        if cursor.goto_first_child() or cursor.goto_next_sibling():
            continue
        while cursor.goto_parent():
            if cursor.goto_next_sibling():
                break
        else:
            return out


def assert_tree_fresh(snap: Snapshot) -> None:
    """The incrementally updated tree equals a full parse of the snapshot's text."""
    assert snap.language is not None
    assert snap.tree is not None
    fresh = tree_sitter.Parser(language_for(snap.language)).parse(
        snap.text.encode("utf-8", "surrogatepass")
    )
    assert str(snap.tree.root_node) == str(fresh.root_node)
    assert nodes(snap.tree) == nodes(fresh)


def change(rng: tuple[tuple[int, int], tuple[int, int]] | None, text: str) -> TextChange:
    return TextChange(range=rng, text=text)


# --- open / get / close --------------------------------------------------------------


def test_open_parses() -> None:
    store = DocumentStore()
    snap = store.open(URI, "python", 1, PY)
    assert (snap.uri, snap.language_id, snap.language, snap.version) == (URI, "python", "python", 1)
    assert snap.text is PY
    assert snap.encoding is U16
    assert (snap.too_large, snap.binary, snap.uses_crlf) == (False, False, False)
    assert snap.line_index.line_count == 7
    assert store.get(URI) is snap
    assert URI in store
    assert len(store) == 1
    assert store.snapshots() == [snap]
    assert_tree_fresh(snap)
    assert snap.tree is not None and not snap.tree.root_node.has_error


def test_unknown_uri() -> None:
    store = DocumentStore()
    assert "file:///nope.py" not in store
    with pytest.raises(UnknownDocumentError, match=r"file:///nope\.py"):
        store.get("file:///nope.py")
    with pytest.raises(UnknownDocumentError):
        store.change("file:///nope.py", 2, [change(None, "x")])
    store.close("file:///nope.py")  # closing twice or never-opened is harmless


def test_close() -> None:
    store = DocumentStore()
    snap = store.open(URI, "python", 1, PY)
    store.close(URI)
    assert URI not in store
    with pytest.raises(UnknownDocumentError):
        store.get(URI)
    assert snap.text == PY  # a snapshot outlives its document


def test_reopen_replaces() -> None:
    store = DocumentStore()
    store.open(URI, "python", 1, PY)
    snap = store.open(URI, "python", 1, "x = 2\n")
    assert store.get(URI) is snap
    assert snap.text == "x = 2\n"


def test_unknown_language_has_no_tree() -> None:
    store = DocumentStore()
    snap = store.open("file:///notes.txt", "plaintext", 1, "hello\n")
    assert (snap.language, snap.tree) == (None, None)
    snap = store.change("file:///notes.txt", 2, [change(((0, 5), (0, 5)), " world")])
    assert snap.text == "hello world\n"
    assert snap.tree is None


def test_broken_grammar_keeps_document(monkeypatch: pytest.MonkeyPatch) -> None:
    import code_llama_ls.text.documents as documents

    def broken(name: str) -> tree_sitter.Parser:
        raise ImportError(f"No module named 'tree_sitter_{name}'")

    monkeypatch.setattr(documents, "parser_for", broken)
    snap = DocumentStore().open(URI, "python", 1, PY)
    assert (snap.language, snap.tree, snap.text) == ("python", None, PY)


def test_language_from_extension_fallback() -> None:
    store = DocumentStore()
    snap = store.open("file:///src/main.rs", "plaintext", 1, "fn main() {}\n")
    assert snap.language == "rust"
    assert_tree_fresh(snap)


# --- incremental edits -----------------------------------------------------------------


def test_single_insert() -> None:
    store = DocumentStore()
    store.open(URI, "python", 1, PY)
    snap = store.change(URI, 2, [change(((1, 23), (1, 23)), ".upper()")])
    assert snap.version == 2
    assert snap.text == PY.replace("+ name\n", "+ name.upper()\n")
    assert_tree_fresh(snap)


def test_several_changes_in_one_notification() -> None:
    store = DocumentStore()
    store.open(URI, "python", 1, PY)
    snap = store.change(
        URI,
        2,
        [
            change(((0, 0), (0, 0)), "import os\n"),  # shifts every later line down
            change(((2, 11), (2, 16)), "os.sep"),  # "hi " -> os.sep, on the shifted line 2
            change(((6, 4), (6, 9)), "y = [\n        1,\n        2,\n    ]"),  # x = 1 -> list
            change(((0, 7), (0, 9)), "sys"),  # back at the top: "os" -> "sys"
        ],
    )
    assert snap.text == (
        "import sys\n"
        "def greet(name):\n"
        "    return os.sep + name\n"
        "\n\n"
        "class A:\n"
        "    y = [\n        1,\n        2,\n    ]\n"
    )
    assert_tree_fresh(snap)


def test_delete_across_lines_and_insert_lines() -> None:
    store = DocumentStore()
    store.open(URI, "python", 1, PY)
    snap = store.change(URI, 2, [change(((1, 4), (5, 4)), "")])
    assert snap.text == "def greet(name):\n    x = 1\n"
    assert_tree_fresh(snap)
    snap = store.change(URI, 3, [change(((1, 9), (1, 9)), "\n    if x:\n        return x\n")])
    assert snap.text == "def greet(name):\n    x = 1\n    if x:\n        return x\n\n"
    assert_tree_fresh(snap)
    snap = store.change(URI, 4, [change(((0, 0), (5, 0)), "")])  # delete everything
    assert snap.text == ""
    assert_tree_fresh(snap)


def test_full_replacement_then_range_in_one_batch() -> None:
    store = DocumentStore()
    store.open(URI, "python", 1, PY)
    snap = store.change(URI, 2, [change(None, "a = 1\nb = 2\n"), change(((1, 4), (1, 5)), "a + 1")])
    assert snap.text == "a = 1\nb = a + 1\n"
    assert_tree_fresh(snap)


def test_clamped_ranges() -> None:
    store = DocumentStore()
    store.open(URI, "python", 1, "x = 1\ny = 2")
    # end character past the line's end clamps to the line's end
    snap = store.change(URI, 2, [change(((0, 4), (0, 99)), "10")])
    assert snap.text == "x = 10\ny = 2"
    # a line past the end clamps to the end of the document: an append
    snap = store.change(URI, 3, [change(((9, 0), (9, 0)), "\nz = 3\n")])
    assert snap.text == "x = 10\ny = 2\nz = 3\n"
    assert_tree_fresh(snap)


def test_crlf_kept_and_edited() -> None:
    store = DocumentStore()
    text = "def f():\r\n    return 1\r\n\r\nx = f()\r\n"
    snap = store.open(URI, "python", 1, text)
    assert snap.uses_crlf
    assert snap.line_index.line_count == 5
    # join line 0 and 1 across the "\r\n" (character 99 clamps before the "\r")
    snap = store.change(URI, 2, [change(((0, 99), (1, 4)), " ")])
    assert snap.text == "def f(): return 1\r\n\r\nx = f()\r\n"
    assert_tree_fresh(snap)
    snap = store.change(
        URI,
        3,
        [
            change(((0, 8), (0, 8)), "\r\n    y = 2\r\n   "),
            change(((5, 0), (5, 0)), "print(x)\r\n"),
        ],
    )
    assert snap.text == "def f():\r\n    y = 2\r\n    return 1\r\n\r\nx = f()\r\nprint(x)\r\n"
    assert snap.uses_crlf
    assert_tree_fresh(snap)


def test_lone_cr_lines_are_lsp_lines() -> None:
    store = DocumentStore()
    store.open(URI, "python", 1, "a = 1\rb = 2\r")
    snap = store.change(URI, 2, [change(((1, 4), (1, 5)), "3")])
    assert snap.text == "a = 1\rb = 3\r"
    assert not snap.uses_crlf
    assert_tree_fresh(snap)


@pytest.mark.parametrize(
    ("encoding", "after_emoji", "end_of_line"),
    [(U16, 9, 15), (U8, 13, 20), (U32, 7, 13)],
)
def test_emoji_edits_in_each_encoding(
    encoding: PositionEncoding, after_emoji: int, end_of_line: int
) -> None:
    # line 1 is 's = "😀😀"  # é' : 😀 = 2 UTF-16 units / 4 bytes, é = 2 bytes
    text = 'x = 1\ns = "😀😀"  # é\ny = 2\n'
    store = DocumentStore(encoding=encoding)
    store.open(URI, "python", 1, text)
    snap = store.change(
        URI,
        2,
        [
            change(((1, end_of_line), (1, end_of_line)), "!"),
            change(((1, after_emoji), (1, after_emoji)), "🎉"),  # before the closing quote
        ],
    )
    assert snap.text == 'x = 1\ns = "😀😀🎉"  # é!\ny = 2\n'
    assert_tree_fresh(snap)
    assert snap.offset_at(1, after_emoji) == 13
    assert snap.text[13] == "🎉"


def test_split_surrogate_range_rejected_atomically() -> None:
    store = DocumentStore()
    before = store.open(URI, "python", 1, 's = "😀"\n')
    with pytest.raises(InvalidPositionError, match="splits a character"):
        store.change(URI, 2, [change(((0, 0), (0, 0)), "# ok\n"), change(((1, 6), (1, 6)), "x")])
    assert store.get(URI) is before  # the first change was not applied either


def test_range_ending_before_start_rejected() -> None:
    store = DocumentStore()
    store.open(URI, "python", 1, "abc\n")
    with pytest.raises(InvalidPositionError, match="ends before it starts"):
        store.change(URI, 2, [change(((0, 2), (0, 1)), "")])


def test_edit_after_multibyte_characters_uses_bytes() -> None:
    # A tree edited with string offsets instead of byte offsets reuses the stale
    # call node here; a fresh parse does not.
    text = 's = "😀😀😀😀😀😀😀😀"; value = foo(bar, baz); other = [1, 2, 3]\nz = foo(bar, baz)\n'
    store = DocumentStore(encoding=U32)
    store.open(URI, "python", 1, text)
    at = text.index("foo")
    snap = store.change(URI, 2, [change(((0, at), (0, at)), "xx + ")])
    assert snap.text == text.replace("= foo", "= xx + foo", 1)
    assert_tree_fresh(snap)
    snap = store.change(URI, 3, [change(((1, 4), (1, 17)), "[1, 2]")])
    assert snap.text.endswith("\nz = [1, 2]\n")
    assert_tree_fresh(snap)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("x", "😀é"),  # same row, multi-byte columns
        ("x", "a\nbb😀"),  # new rows: the column restarts after the last \n
        ("x", "a\r\nb"),
        ("x", "a\rb"),  # a lone \r is no tree-sitter row break
        ("x = 1; y = '😀'\nz", "w"),  # deleting across rows
    ],
)
def test_tree_edit_points(old: str, new: str) -> None:
    """Nodes after an edit move to where a fresh parse puts them, in bytes and Points.

    A reparse hides wrong edit Points (tree-sitter recomputes most positions), so
    this checks the edited tree before it is reparsed.
    """
    before = f"a = '中'; {old}; b = 2; c = [3]\nd = 4\n"
    after = before.replace(old, new, 1)
    parser = tree_sitter.Parser(language_for("python"))
    tree = parser.parse(before.encode())
    start = before.index(old)
    _edit_tree(tree, before, start, start + len(old), new)
    fresh = parser.parse(after.encode())
    boundary = len(after[: after.index("b = 2")].encode())  # nodes wholly after the edit
    moved = [n for n in nodes(tree) if n[1] >= boundary]
    assert len(moved) == 19  # "b = 2; c = [3]\nd = 4": statements, tokens, punctuation
    assert moved == [n for n in nodes(fresh) if n[1] >= boundary]


def test_old_snapshot_unchanged_by_later_edits() -> None:
    store = DocumentStore()
    old = store.open(URI, "python", 1, PY)
    assert old.tree is not None
    old_sexp = str(old.tree.root_node)
    old_nodes = nodes(old.tree)
    new = store.change(URI, 2, [change(((0, 4), (0, 9)), "welcome_someone")])
    assert old.text == PY
    assert old.version == 1
    assert str(old.tree.root_node) == old_sexp
    assert nodes(old.tree) == old_nodes
    assert new.tree is not old.tree
    assert_tree_fresh(new)


def test_random_edits_match_fresh_parse() -> None:
    """Many random edits (CRLF, emoji, CJK, lone CR), each checked against a fresh parse."""
    rand = random.Random(1234)
    pieces = [
        *("\n", "\r\n", "\r", "😀", "中", "é", "(", ")", ":", " ", "    ", "'", "a", "xx + "),
        *("def f(x):", "foo(bar, baz)", "[1, 2]", "😀😀😀😀", "; v = 1", "'中文'", "# é\n"),
    ]
    store = DocumentStore(encoding=U16)
    text = (
        "def f(x):\r\n    return '😀' + x\n\nclass 中:\r    pass\n"
        's = "😀😀😀😀😀😀😀😀"; value = foo(bar, baz); other = [1, 2, 3]\n'
    )
    snap = store.open(URI, "python", 1, text)
    for version in range(2, 150):
        batch = []
        for _ in range(rand.randint(1, 3)):
            a, b = sorted(rand.randint(0, len(text)) for _ in range(2))
            # never cut a "\r\n" in half: LSP positions cannot address its middle
            if text[a - 1 : a + 1] == "\r\n":
                a -= 1
            if text[b - 1 : b + 1] == "\r\n":
                b += 1
            new = "".join(rand.choice(pieces) for _ in range(rand.randint(0, 4)))
            # ranges are read against the text after the batch's earlier changes
            index = LineIndex(text)
            rng = (index.position_at(a, U16), index.position_at(b, U16))
            batch.append(change(rng, new))
            text = text[:a] + new + text[b:]
        snap = store.change(URI, version, batch)
        assert snap.text == text
        assert_tree_fresh(snap)


@pytest.mark.parametrize(
    ("uri", "language_id", "text", "edit", "expected"),
    [
        (
            "file:///a.js",
            "javascriptreact",
            "const A = () => <div>{x}</div>;\n",
            (((0, 22), (0, 23)), "y + 1"),
            "const A = () => <div>{y + 1}</div>;\n",
        ),
        (
            "file:///a.go",
            "go",
            "package main\n\nfunc f() int { return 1 }\n",
            (((2, 22), (2, 23)), "2 * 3"),
            "package main\n\nfunc f() int { return 2 * 3 }\n",
        ),
        (
            "file:///a.tsx",
            "typescriptreact",
            "const a: number = 1;\n",
            (((0, 9), (0, 15)), "string"),
            "const a: string = 1;\n",
        ),
    ],
)
def test_other_languages_incremental(
    uri: str,
    language_id: str,
    text: str,
    edit: tuple[tuple[tuple[int, int], tuple[int, int]], str],
    expected: str,
) -> None:
    store = DocumentStore()
    assert_tree_fresh(store.open(uri, language_id, 1, text))
    snap = store.change(uri, 2, [change(*edit)])
    assert snap.text == expected
    assert_tree_fresh(snap)


# --- huge and binary documents --------------------------------------------------------


def test_huge_document_kept_not_parsed() -> None:
    store = DocumentStore(max_bytes=100)
    text = "s = '" + "😀" * 30 + "'\n"  # 37 code points, 127 UTF-8 bytes
    snap = store.open(URI, "python", 1, text)
    assert (snap.too_large, snap.binary, snap.tree) == (True, False, None)
    assert snap.text == text
    snap = store.change(URI, 2, [change(((0, 5), (0, 65)), "")])  # 60 UTF-16 units: all emoji
    assert snap.text == "s = ''\n"
    assert (snap.too_large, snap.tree is None) == (False, False)
    assert_tree_fresh(snap)


def test_huge_by_code_points() -> None:
    store = DocumentStore(max_bytes=10)
    snap = store.open(URI, "python", 1, "x = 12345678\n")
    assert snap.too_large
    assert snap.tree is None


def test_binary_document_kept_not_parsed() -> None:
    store = DocumentStore()
    text = "x = 1\x00\x01\n"
    snap = store.open(URI, "python", 1, text)
    assert (snap.binary, snap.too_large, snap.tree) == (True, False, None)
    assert snap.text == text
    snap = store.change(URI, 2, [change(((0, 5), (0, 7)), "")])
    assert snap.text == "x = 1\n"
    assert not snap.binary
    assert_tree_fresh(snap)
    snap = store.change(URI, 3, [change(((0, 0), (0, 0)), "\x00")])
    assert (snap.binary, snap.tree) == (True, None)


# --- snapshot helpers and settings -------------------------------------------------------


def test_snapshot_conversions() -> None:
    store = DocumentStore(encoding=U16)
    snap = store.open(URI, "python", 1, "a = '😀'\r\nb = 2\n")
    assert snap.offset_at(0, 7) == 6
    assert snap.position_at(6) == (0, 7)
    assert snap.offset_at(1, 0) == 9
    with pytest.raises(InvalidPositionError):
        snap.offset_at(0, 6)  # inside the surrogate pair
    with pytest.raises(InvalidPositionError):
        snap.offset_at(0, 99)  # strict: past the line's end
    with pytest.raises(InvalidPositionError):
        snap.offset_at(3, 0)
    assert snap.byte_offset(6) == 9
    assert snap.offset_from_byte(9) == 6
    assert snap.ts_point(10) == (1, 1)
    ascii_snap = store.open("file:///b.py", "python", 1, "ab\ncd")
    assert ascii_snap.byte_offset(4) == 4
    assert ascii_snap.offset_from_byte(4) == 4


def test_encoding_setting_applies_to_open_documents() -> None:
    store = DocumentStore()
    store.open(URI, "python", 1, "s = '😀'\n")
    store.encoding = U8
    snap = store.get(URI)
    assert snap.encoding is U8
    assert snap.offset_at(0, 9) == 6
    snap = store.change(URI, 2, [change(((0, 5), (0, 9)), "x")])
    assert snap.text == "s = 'x'\n"
    assert snap.encoding is U8


def test_snapshot_is_frozen() -> None:
    snap = DocumentStore().open(URI, "python", 1, "x\n")
    with pytest.raises(AttributeError):
        snap.text = "y"  # type: ignore[misc]


def test_snapshot_read_from_another_thread() -> None:
    store = DocumentStore()
    snap = store.open(URI, "python", 1, PY)
    seen: list[str] = []

    def worker() -> None:
        assert snap.tree is not None
        seen.append(str(snap.tree.root_node))

    thread = threading.Thread(target=worker)
    thread.start()
    store.change(URI, 2, [change(((0, 0), (0, 0)), "import os\n")])
    thread.join()
    assert snap.tree is not None
    assert seen == [str(snap.tree.root_node)]


@pytest.mark.parametrize("encoding", [PositionEncoding.UTF16, PositionEncoding.UTF8])
def test_random_lsp_edits_match_the_reference_and_a_fresh_parse(encoding: PositionEncoding) -> None:
    """Edits from the independent reference (past line ends, form feed, U+2028, astral)."""
    maker = EditMaker(random.Random(f"store-{encoding.value}"), encoding.value)
    text = "def f(x):\r\n    return x\f + 1\n\u2028y = '😀'\rz = 2"
    store = DocumentStore(encoding=encoding)
    store.open(URI, "python", 1, text)
    for version in range(2, 120):
        batch = []
        for _ in range(3):
            entry = maker.change(text)  # read against the text after the batch's earlier edits
            text = apply(text, entry, encoding.value)
            if "range" not in entry:
                batch.append(TextChange(None, entry["text"]))
                continue
            start, end = entry["range"]["start"], entry["range"]["end"]
            rng = ((start["line"], start["character"]), (end["line"], end["character"]))
            batch.append(change(rng, entry["text"]))
        snap = store.change(URI, version, batch)
        assert snap.text == text
        assert_tree_fresh(snap)
