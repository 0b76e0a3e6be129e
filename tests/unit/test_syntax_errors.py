"""InsertionParser: syntax errors of a document with text inserted at the cursor."""

from __future__ import annotations

import pytest

from code_llama_ls.syntax import parser_for
from code_llama_ls.syntax.errors import InsertionParser, count_errors


def _judge(document: str, cursor: str = "<|cursor|>", crlf: bool = False) -> InsertionParser:
    offset = document.index(cursor)
    text = document.replace(cursor, "", 1)
    if crlf:
        offset += document[:offset].count("\n")
        text = text.replace("\n", "\r\n")
    tree = parser_for("python").parse(text.encode("utf-8"))
    return InsertionParser("python", tree, text, offset, crlf)


def _errors_of_whole(text: str) -> int:
    return count_errors(parser_for("python").parse(text.encode("utf-8")).root_node)


@pytest.mark.parametrize("crlf", [False, True])
def test_counts_match_a_parse_of_the_whole_text(crlf: bool) -> None:
    document = "def f(x):\n    y = 'é'\n    <|cursor|>\n    return y\n"
    judge = _judge(document, crlf=crlf)
    for inserted in ("y += x", "y += (x", "y += x)\n    z = [", "if x:\n        y = 1", ""):
        whole = document.replace("<|cursor|>", inserted)
        assert judge.errors_with(inserted) == _errors_of_whole(whole), inserted


def test_a_clean_insertion_has_no_errors_and_a_broken_one_has_some() -> None:
    judge = _judge("items = [1, 2]\n<|cursor|>\nprint(items)\n")
    assert judge.errors_with("items.append(3)") == 0
    assert judge.errors_with("items.append(3))") > 0
    assert judge.errors_with("") == 0


def test_the_document_tree_is_not_changed() -> None:
    text = "x = 1\n"
    tree = parser_for("python").parse(text.encode("utf-8"))
    before = str(tree.root_node)
    InsertionParser("python", tree, text, len(text), False).errors_with("y = (")
    assert str(tree.root_node) == before
    assert tree.root_node.end_byte == len(text)
