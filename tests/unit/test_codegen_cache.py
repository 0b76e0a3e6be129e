"""The generated-code cache: attrs, cattrs and dataclasses compile nothing twice, and behave
the same."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from code_llama_ls.codegen_cache import CodegenCache, cache_file

# Run in a fresh interpreter: attrs and cattrs compile a class's code once per process.
PROGRAM = """
import json, sys
from pathlib import Path
from code_llama_ls.codegen_cache import keep_generated_code
cache = keep_generated_code(Path(sys.argv[1]))
read = len(cache._code)
import attrs, cattrs, dataclasses

@attrs.define
class Point:
    x: int
    y: int = 0

@dataclasses.dataclass(frozen=True, order=True)
class Size:
    width: int
    height: int = 1

converter = cattrs.Converter()
point = converter.structure({"x": 3, "y": 4}, Point)
unstructured = converter.unstructure(point)
print(json.dumps({
    "read": read,
    "compiled": cache._new,
    "point": repr(point),
    "equal": point == Point(3, 4),
    "unstructured": unstructured,
    "size": [repr(Size(2)), Size(2) == Size(2, 1), Size(1) < Size(2),
             hash(Size(2)) == hash(Size(2, 1))],
    "saved": cache.save(),
}))
"""


def run(cache_dir: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(cache_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_second_start_compiles_nothing_and_classes_behave_the_same(tmp_path: Path) -> None:
    first = run(tmp_path)
    second = run(tmp_path)
    assert first["read"] == 0 and first["compiled"] and first["saved"] is True
    assert second["read"] == first["compiled"], "the second start read what the first compiled"
    assert second["compiled"] == 0, "the second start compiled nothing"
    assert second["saved"] is False, "nothing new: nothing written"
    for result in (first, second):
        assert result["point"] == "Point(x=3, y=4)"
        assert result["equal"] is True
        assert result["unstructured"] == {"x": 3, "y": 4}
        assert result["size"] == ["Size(width=2, height=1)", True, True, True]


def test_the_cache_answers_what_compile_would(tmp_path: Path) -> None:
    cache = CodegenCache(tmp_path / "code.marshal")
    source = "def f(a):\n    return a * 2\n"
    code = cache.compile(source, "<generated f>", "exec")
    assert cache.compile(source, "<generated f>", "exec") is code
    assert cache.save()
    again = CodegenCache(tmp_path / "code.marshal")
    kept = again.compile(source, "<generated f>", "exec")
    assert kept == compile(source, "<generated f>", "exec")
    namespace: dict[str, object] = {}
    exec(kept, namespace)
    assert namespace["f"](21) == 42  # type: ignore[operator]
    # Other file names, modes or flags are compiled afresh.
    assert again.compile(source, "<another>", "exec") is not kept
    assert again.compile("1 + 1", "<e>", "eval") == compile("1 + 1", "<e>", "eval")


def test_a_damaged_or_unwritable_cache_costs_only_the_compiling(tmp_path: Path) -> None:
    damaged = tmp_path / "code.marshal"
    damaged.write_bytes(b"\x00not marshal")
    cache = CodegenCache(damaged)
    assert cache.compile("x = 1", "<x>", "exec") == compile("x = 1", "<x>", "exec")
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    unwritable = CodegenCache(blocked / "sub" / "code.marshal")
    unwritable.compile("x = 1", "<x>", "exec")
    assert unwritable.save() is False


def test_the_file_is_per_python_and_per_installed_modules(tmp_path: Path) -> None:
    path = cache_file(tmp_path)
    assert path.parent == tmp_path / "generated-code"
    assert path.name.startswith(sys.implementation.cache_tag)
    assert cache_file(tmp_path) == path
