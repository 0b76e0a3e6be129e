"""FILE:LINE:COL on the command line counts lines as LSP does and columns in characters."""

from __future__ import annotations

from pathlib import Path

import pytest

from code_llama_ls.cli import _cursor
from code_llama_ls.config import Settings
from code_llama_ls.errors import CodeLlamaLsError

TEXT = "a = 1\r\nb = '😀'\rc = 3\fd\u2028e\nlast"


@pytest.mark.parametrize(
    ("line", "column", "before"),
    [
        (1, 1, ""),
        (2, 6, "a = 1\r\nb = '"),
        (2, 8, "a = 1\r\nb = '😀'"),  # the end of a line ended by a lone \r
        (3, 9, "a = 1\r\nb = '😀'\rc = 3\fd\u2028"),  # \f and U+2028 do not end lines
        (4, 5, TEXT),
    ],
)
def test_positions_follow_lsp_lines(tmp_path: Path, line: int, column: int, before: str) -> None:
    path = tmp_path / "f.py"
    path.write_bytes(TEXT.encode())
    snapshot, offset = _cursor(Settings(), f"{path}:{line}:{column}")
    assert snapshot.text[:offset] == before


@pytest.mark.parametrize("location", ["9:1", "1:7", "2:10", "0:1"])
def test_positions_outside_the_file_are_errors(tmp_path: Path, location: str) -> None:
    path = tmp_path / "f.py"
    path.write_bytes(TEXT.encode())
    with pytest.raises(CodeLlamaLsError, match="outside the file"):
        _cursor(Settings(), f"{path}:{location}")
