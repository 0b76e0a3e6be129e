"""Finding a workspace's source files (ignore rules, defaults, limits) and reading them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from code_llama_ls.context.files import (
    DEFAULT_EXCLUDED_DIRS,
    IgnoreRules,
    ScanLimits,
    ScanReport,
    WorkspaceFile,
    path_language,
    read_source,
    scan_workspace,
)


def make_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    """Write `files` (relative path -> content) under `root`; return `root`."""
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def scanned(root: Path, **limits: int) -> tuple[set[str], ScanReport]:
    """The kept files as POSIX paths relative to `root`, and the report."""
    found, report = scan_workspace(root, ScanLimits(**limits))
    base = root.resolve()
    return {Path(f.path).relative_to(base).as_posix() for f in found}, report


# --- what a scan keeps -------------------------------------------------------------------------


def test_scan_keeps_supported_files_with_their_metadata(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a.py": "x = 1\n", "src/b.ts": "let b = 2;\n", "src/c.rs": "fn c() {}\n"})
    found, report = scan_workspace(tmp_path)
    by_name = {Path(f.path).name: f for f in found}
    assert sorted(by_name) == ["a.py", "b.ts", "c.rs"]
    a = by_name["a.py"]
    assert a == WorkspaceFile(
        path=(tmp_path.resolve() / "a.py").as_posix(),
        language="python",
        size=6,
        mtime_ns=(tmp_path / "a.py").stat().st_mtime_ns,
    )
    assert os.path.isabs(a.path) and "\\" not in a.path
    assert by_name["b.ts"].language == "typescript"
    assert by_name["c.rs"].language == "rust"
    assert (report.files, report.total_bytes, report.truncated) == (3, 6 + 11 + 10, False)


def test_scan_order_is_depth_first_by_name(tmp_path: Path) -> None:
    make_tree(tmp_path, {"b/z.py": "", "b/a/y.py": "", "a/x.py": "", "top.py": ""})
    found, _ = scan_workspace(tmp_path)
    base = tmp_path.resolve()
    assert [Path(f.path).relative_to(base).as_posix() for f in found] == [
        "top.py",
        "a/x.py",
        "b/z.py",
        "b/a/y.py",
    ]


def test_unsupported_extensions_are_skipped_and_counted(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {"main.go": "", "README.md": "", "data.json": "{}", "Makefile": "", "img.png": b"\x89PNG"},
    )
    files, report = scanned(tmp_path)
    assert files == {"main.go"}
    assert report.unsupported == 4


def test_on_file_sees_each_kept_file(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a.py": "", "b/c.java": "", "d.txt": ""})
    seen: list[WorkspaceFile] = []
    found, _ = scan_workspace(tmp_path, on_file=seen.append)
    assert seen == found and len(seen) == 2


def test_path_language() -> None:
    assert path_language("/w/src/app.py") == "python"
    assert path_language("/w/src/App.TSX") == "tsx"
    assert path_language("lib.h") == "c"
    assert path_language("odd#name?.cpp") == "cpp"
    assert path_language("/w/README.md") is None
    assert path_language("/w/Makefile") is None
    assert path_language("/w/.py") is None  # a hidden file, not an extension


# --- .gitignore and .git/info/exclude ----------------------------------------------------------


def test_nested_gitignore_with_negation_and_directory_pattern(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            ".gitignore": "*.gen.py\ngenerated/\nlogs/*\n!logs/keep.py\n/only_root.py\n",
            "app.py": "",
            "schema.gen.py": "",
            "only_root.py": "",
            "generated/out.py": "",
            "generated.py": "",  # a file, so the directory pattern "generated/" misses it
            "logs/keep.py": "",
            "logs/drop.py": "",
            "pkg/only_root.py": "",  # "/only_root.py" is anchored to the root
            "pkg/.gitignore": "!special.gen.py\nlocal/\n",
            "pkg/special.gen.py": "",  # the deeper .gitignore re-includes it
            "pkg/other.gen.py": "",
            "pkg/local/x.py": "",
            "local/y.py": "",  # pkg's "local/" is relative to pkg/
        },
    )
    files, report = scanned(tmp_path)
    assert files == {
        "app.py",
        "generated.py",
        "logs/keep.py",
        "pkg/only_root.py",
        "pkg/special.gen.py",
        "local/y.py",
    }
    # schema.gen.py, only_root.py, logs/drop.py, pkg/other.gen.py; generated/, pkg/local/
    assert report.ignored == 6


def test_later_lines_win_within_a_gitignore(tmp_path: Path) -> None:
    make_tree(tmp_path, {".gitignore": "!a.py\n*.py\n", "a.py": "", "b.go": ""})
    files, _ = scanned(tmp_path)
    assert files == {"b.go"}


def test_git_info_exclude_applies_with_lowest_priority(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            ".git/info/exclude": "scratch/\nlocal_*.py\n",
            ".gitignore": "!local_keep.py\n",
            "main.py": "",
            "scratch/try.py": "",
            "local_notes.py": "",
            "local_keep.py": "",
        },
    )
    files, _ = scanned(tmp_path)
    assert files == {"main.py", "local_keep.py"}


def test_invalid_gitignore_lines_are_dropped_not_the_whole_file(tmp_path: Path) -> None:
    make_tree(tmp_path, {".gitignore": "!\nskip.py\ntrailing\\\n", "skip.py": "", "keep.py": ""})
    files, _ = scanned(tmp_path)
    assert files == {"keep.py"}


# --- built-in defaults -------------------------------------------------------------------------


def test_default_excludes_without_any_gitignore(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            "src/main.py": "",
            "node_modules/lodash/index.js": "",
            "web/node_modules/react/index.js": "",
            "src/__pycache__/main.py": "",
            "env/pyvenv.cfg": "home = /usr/bin\n",  # a virtualenv under any name
            "env/lib/site.py": "",
            ".venv/lib/x.py": "",
            "dist/bundle.js": "",
            "build/lib/y.py": "",
            "vendor/github.com/z/z.go": "",
            ".hidden/secret.py": "",
            ".github/scripts/release.py": "",  # the one hidden directory walked
            "web/app.min.js": "",
            "web/app.js": "",
            "cache/CACHEDIR.TAG": "Signature: 8a477f597d28d172789f06886806bc55\n",
            "cache/c.py": "",
        },
    )
    files, report = scanned(tmp_path)
    assert files == {"src/main.py", "web/app.js", ".github/scripts/release.py"}
    assert report.ignored == 11


def test_cargo_target_is_skipped_only_next_to_a_manifest(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            "crate/Cargo.toml": "[package]\n",
            "crate/src/lib.rs": "",
            "crate/target/debug/build.rs": "",
            "game/target/aim.py": "",  # just a directory called target
        },
    )
    files, _ = scanned(tmp_path)
    assert files == {"crate/src/lib.rs", "game/target/aim.py"}


def test_defaults_cannot_be_re_included(tmp_path: Path) -> None:
    make_tree(tmp_path, {".gitignore": "!node_modules/\n", "node_modules/m/i.js": "", "a.js": ""})
    files, _ = scanned(tmp_path)
    assert files == {"a.js"}


def test_default_list_is_documented() -> None:
    expected = {".git", "node_modules", "__pycache__", ".venv", "venv", "dist", "build", "vendor"}
    assert expected <= DEFAULT_EXCLUDED_DIRS


def test_root_itself_is_never_excluded(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "build", {"pyvenv.cfg": "", "tool.py": ""})
    files, _ = scanned(root)
    assert files == {"tool.py"}


# --- limits, cancellation, symlinks ------------------------------------------------------------


def test_file_over_max_file_bytes_is_skipped_and_counted(tmp_path: Path) -> None:
    make_tree(tmp_path, {"small.py": "x" * 100, "big.py": "x" * 101})
    files, report = scanned(tmp_path, max_file_bytes=100)
    assert files == {"small.py"}
    assert report.too_large == 1
    assert not report.truncated


def test_max_files_truncates_and_says_so(tmp_path: Path) -> None:
    make_tree(tmp_path, {f"m{i}.py": "" for i in range(10)})
    files, report = scanned(tmp_path, max_files=4)
    assert files == {"m0.py", "m1.py", "m2.py", "m3.py"}
    assert report.truncated and report.limit_reached == "max_files"
    assert "truncated at max_files" in str(report)


def test_exactly_max_files_is_not_truncated(tmp_path: Path) -> None:
    make_tree(tmp_path, {f"m{i}.py": "" for i in range(4)})
    files, report = scanned(tmp_path, max_files=4)
    assert len(files) == 4 and not report.truncated


def test_max_total_bytes_truncates(tmp_path: Path) -> None:
    make_tree(tmp_path, {f"m{i}.py": "x" * 10 for i in range(5)})
    files, report = scanned(tmp_path, max_total_bytes=35)
    assert len(files) == 3 and report.total_bytes == 30
    assert report.limit_reached == "max_total_bytes"


def test_directories_past_max_depth_are_not_walked(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a.py": "", "d1/b.py": "", "d1/d2/c.py": "", "d1/d2/d3/d.py": ""})
    files, report = scanned(tmp_path, max_depth=2)
    assert files == {"a.py", "d1/b.py", "d1/d2/c.py"}
    assert report.too_deep == 1


def test_cancellation_stops_the_walk(tmp_path: Path) -> None:
    make_tree(tmp_path, {f"d{i}/f.py": "" for i in range(20)})
    calls = 0

    def cancelled() -> bool:
        nonlocal calls
        calls += 1
        return calls > 3  # the root and two subdirectories, then stop

    found, report = scan_workspace(tmp_path, cancelled=cancelled)
    assert report.cancelled
    assert len(found) == 2


def test_cancellation_inside_one_huge_directory(tmp_path: Path) -> None:
    make_tree(tmp_path, {f"f{i:04}.py": "" for i in range(1000)})
    calls = 0

    def cancelled() -> bool:
        nonlocal calls
        calls += 1
        return calls > 1  # lets the root be listed, stops at the first in-directory poll

    found, report = scan_workspace(tmp_path, cancelled=cancelled)
    assert report.cancelled
    assert 0 < len(found) < 1000


@pytest.mark.skipif(sys.platform == "win32", reason="directory symlinks need privileges")
@pytest.mark.timeout(10)
def test_symlink_loop_does_not_hang(tmp_path: Path) -> None:
    make_tree(tmp_path, {"pkg/mod.py": "", "pkg/sub/deep.py": ""})
    (tmp_path / "pkg" / "sub" / "loop").symlink_to(tmp_path / "pkg", target_is_directory=True)
    (tmp_path / "pkg" / "self").symlink_to(".", target_is_directory=True)
    (tmp_path / "linked.py").symlink_to(tmp_path / "pkg" / "mod.py")  # file symlinks are kept
    files, report = scanned(tmp_path)
    assert files == {"pkg/mod.py", "pkg/sub/deep.py", "linked.py"}
    assert report.symlinked_dirs == 2


def test_unreadable_directory_is_counted_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(tmp_path, {"ok.py": "", "locked/x.py": ""})
    real_scandir = os.scandir
    locked = (tmp_path.resolve() / "locked").as_posix()

    def scandir(path: str) -> object:  # chmod 000 would not stop root, so refuse here
        if path == locked:
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    files, report = scanned(tmp_path)
    assert files == {"ok.py"}
    assert report.unreadable == 1


def test_missing_root_gives_an_empty_scan(tmp_path: Path) -> None:
    found, report = scan_workspace(tmp_path / "nope")
    assert found == [] and report.unreadable == 1


# --- IgnoreRules for single paths --------------------------------------------------------------


def test_is_ignored_for_single_paths(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            ".gitignore": "*.log\nout/\n",
            "pkg/.gitignore": "gen_*.py\n!gen_keep.py\n",
            "env/pyvenv.cfg": "",
            "Cargo.toml": "",
        },
    )
    rules = IgnoreRules(tmp_path)
    assert not rules.is_ignored(tmp_path / "pkg" / "mod.py")
    assert rules.is_ignored(tmp_path / "pkg" / "gen_x.py")
    assert not rules.is_ignored(tmp_path / "pkg" / "gen_keep.py")
    assert rules.is_ignored(tmp_path / "debug.log")
    assert rules.is_ignored(tmp_path / "out" / "a.py")  # inside an ignored directory
    assert rules.is_ignored(tmp_path / "out", is_dir=True)
    assert not rules.is_ignored(tmp_path / "out")  # a file named out: "out/" does not match
    assert rules.is_ignored(tmp_path / "a" / "node_modules" / "m.js")
    assert rules.is_ignored(tmp_path / "env" / "lib" / "x.py")  # a virtualenv
    assert rules.is_ignored(tmp_path / "target" / "x.rs")  # next to Cargo.toml
    assert rules.is_ignored(tmp_path / "x.min.js")
    assert rules.is_ignored(Path("pkg/gen_x.py"))  # relative to the root
    assert not rules.is_ignored(tmp_path)
    assert rules.is_ignored(tmp_path.parent / "elsewhere.py")  # outside the workspace


def test_reload_after_a_gitignore_edit(tmp_path: Path) -> None:
    make_tree(tmp_path, {"sub/.gitignore": "a.py\n"})
    rules = IgnoreRules(tmp_path)
    a, b = tmp_path / "sub" / "a.py", tmp_path / "sub" / "b.py"
    assert rules.is_ignored(a) and not rules.is_ignored(b)

    (tmp_path / "sub" / ".gitignore").write_text("b.py\n", encoding="utf-8")
    assert rules.is_ignored(a)  # cached until told
    rules.reload(tmp_path / "sub" / ".gitignore")
    assert not rules.is_ignored(a) and rules.is_ignored(b)

    (tmp_path / "sub" / ".gitignore").unlink()
    rules.reload(tmp_path / "sub" / ".gitignore")
    assert not rules.is_ignored(b)


def test_reload_of_git_info_exclude(tmp_path: Path) -> None:
    make_tree(tmp_path, {".git/info/exclude": ""})
    rules = IgnoreRules(tmp_path)
    assert not rules.is_ignored(tmp_path / "tmp.py")
    (tmp_path / ".git" / "info" / "exclude").write_text("tmp.py\n", encoding="utf-8")
    rules.reload(tmp_path / ".git" / "info" / "exclude")
    assert rules.is_ignored(tmp_path / "tmp.py")


def test_a_scan_refreshes_shared_rules(tmp_path: Path) -> None:
    make_tree(tmp_path, {"sub/.gitignore": "a.py\n", "sub/a.py": "", "sub/b.py": ""})
    rules = IgnoreRules(tmp_path)
    assert rules.is_ignored(tmp_path / "sub" / "a.py")
    (tmp_path / "sub" / ".gitignore").write_text("b.py\n", encoding="utf-8")
    files, _ = scan_workspace(tmp_path, rules=rules)
    assert [Path(f.path).name for f in files] == ["a.py"]
    assert rules.is_ignored(tmp_path / "sub" / "b.py")


# --- read_source -------------------------------------------------------------------------------


def test_read_source_returns_text_with_newlines_untouched(tmp_path: Path) -> None:
    path = tmp_path / "crlf.py"
    path.write_bytes(b"def f():\r\n    return 'caf\xc3\xa9'\r\n\rlast")
    assert read_source(path, 1000) == "def f():\r\n    return 'café'\r\n\rlast"


def test_read_source_refuses_binary(tmp_path: Path) -> None:
    path = tmp_path / "blob.py"
    path.write_bytes(b"abc\x00def")
    report = ScanReport()
    assert read_source(path, 1000, report=report) is None
    assert report.binary == 1


def test_read_source_looks_for_nul_only_in_the_first_8_kib(tmp_path: Path) -> None:
    path = tmp_path / "late_nul.py"
    path.write_bytes(b"x" * 8192 + b"\x00")
    assert read_source(path, 10_000) == "x" * 8192 + "\x00"


def test_read_source_refuses_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.py"
    path.write_bytes("s = 'café'\n".encode("latin-1"))
    report = ScanReport()
    assert read_source(path, 1000, report=report) is None
    assert report.not_utf8 == 1


def test_read_source_refuses_files_over_max_bytes(tmp_path: Path) -> None:
    path = tmp_path / "big.py"
    path.write_text("x" * 11, encoding="utf-8")
    report = ScanReport()
    assert read_source(path, 10, report=report) is None
    assert read_source(path, 11) == "x" * 11
    assert report.too_large == 1


def test_read_source_on_missing_and_non_regular_paths(tmp_path: Path) -> None:
    report = ScanReport()
    assert read_source(tmp_path / "missing.py", 1000, report=report) is None
    assert read_source(tmp_path, 1000, report=report) is None  # a directory
    assert report.unreadable == 2


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.timeout(10)
def test_read_source_does_not_block_on_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.py"
    os.mkfifo(fifo)
    assert read_source(fifo, 1000) is None
