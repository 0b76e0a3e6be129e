"""The source files of a workspace folder that the context index should read.

`scan_workspace` walks a folder iteratively with `os.scandir` and keeps every
file whose extension maps to a grammar (`path_language`), skipping:

* what git would ignore: nested `.gitignore` files at every level (patterns
  relative to their own directory, deeper files win over shallower ones, the
  last matching line wins within a file, `!` re-includes) and the root's
  `.git/info/exclude` (lowest priority), as `pathspec.GitIgnoreSpec` reads them;
* built-in defaults, skipped even without a `.gitignore` and not re-includable:
  `DEFAULT_EXCLUDED_DIRS`, hidden directories other than `VISIBLE_HIDDEN_DIRS`,
  directories holding one of `EXCLUDING_MARKERS` (a virtualenv's `pyvenv.cfg`,
  a cache's `CACHEDIR.TAG`), a `target` directory next to a `Cargo.toml`, and
  files ending in one of `DEFAULT_EXCLUDED_FILE_SUFFIXES`;
* directory symlinks (never followed, so symlink loops cannot trap the walk),
  directories deeper than `ScanLimits.max_depth`, and files over
  `ScanLimits.max_file_bytes`.

Ignore rules are evaluated per directory during the walk, so an ignored
directory is never listed. `IgnoreRules` is public so the server can ask about
single paths from `workspace/didChangeWatchedFiles`. `read_source` reads one
file's text, refusing binary, non-UTF-8 and oversized files.

It is one file, over 500 lines, because the walk applies the ignore rules
directory by directory through `IgnoreRules`' own cache of `.gitignore` files
(refreshed as each directory is listed); split, the rules and the walk would
each reach into the other's internals.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from pathspec import GitIgnoreSpec

from code_llama_ls.syntax.languages import language_name

__all__ = [
    "BINARY_SNIFF_BYTES",
    "DEFAULT_EXCLUDED_DIRS",
    "DEFAULT_EXCLUDED_FILE_SUFFIXES",
    "EXCLUDING_MARKERS",
    "VISIBLE_HIDDEN_DIRS",
    "IgnoreRules",
    "ScanLimits",
    "ScanReport",
    "WorkspaceFile",
    "path_language",
    "read_source",
    "scan_workspace",
]

DEFAULT_EXCLUDED_DIRS: frozenset[str] = frozenset(
    {
        # version control
        ".git",
        ".hg",
        ".svn",
        # dependencies, environments and tool caches
        "node_modules",
        "__pycache__",
        ".venv",
        "venv",
        ".tox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        "vendor",  # third-party code (Go, PHP, Ruby), even when it is real source
        # build outputs
        "dist",
        "build",
        ".next",
    }
)
"""Directory names skipped at any depth below the workspace root."""

VISIBLE_HIDDEN_DIRS: frozenset[str] = frozenset({".github"})
"""Hidden directories (name starting with ".") that are walked; all others are skipped."""

EXCLUDING_MARKERS: frozenset[str] = frozenset({"pyvenv.cfg", "CACHEDIR.TAG"})
"""A directory holding one of these files is skipped (a virtualenv; a tagged cache, e.g. cargo's
`target/`)."""

CARGO_MANIFEST = "Cargo.toml"
CARGO_TARGET = "target"
"""A `target` directory next to a `Cargo.toml` is cargo's build output and is skipped."""

DEFAULT_EXCLUDED_FILE_SUFFIXES: tuple[str, ...] = (".min.js",)
"""Files whose name ends with one of these (minified bundles) are skipped."""

BINARY_SNIFF_BYTES = 8192
"""`read_source` calls a file binary when a NUL byte appears within its first this many bytes."""

GITIGNORE = ".gitignore"
_INFO_EXCLUDE = (".git", "info", "exclude")
_CANCEL_CHECK_EVERY = 256  # entries of one directory between two cancelled() calls


@dataclass(frozen=True)
class ScanLimits:
    """Bounds on one scan."""

    max_files: int = 20_000
    """Source files kept per scan; the scan stops (truncated) at the next one."""
    max_file_bytes: int = 1_000_000
    """Bigger files are skipped (counted as too large)."""
    max_total_bytes: int = 200_000_000
    """The scan stops (truncated) before the kept files' sizes would exceed this."""
    max_depth: int = 32
    """Directories nested deeper than this below the root are not walked."""


@dataclass(frozen=True)
class WorkspaceFile:
    """One source file found by a scan."""

    path: str
    """Absolute POSIX path."""
    language: str
    """Canonical grammar name (see `code_llama_ls.syntax.languages.LANGUAGES`)."""
    size: int
    mtime_ns: int


@dataclass
class ScanReport:
    """What a scan kept, what it skipped and why, for logs and progress."""

    files: int = 0
    """Source files kept."""
    total_bytes: int = 0
    """Sum of the kept files' sizes."""
    ignored: int = 0
    """Directories and source files excluded by the defaults or the ignore rules."""
    unsupported: int = 0
    """Files with no supported language (checked before the ignore rules)."""
    too_large: int = 0
    """Files over `max_file_bytes` (and, counted by `read_source`, files grown past it)."""
    too_deep: int = 0
    """Directories deeper than `max_depth`, not walked."""
    symlinked_dirs: int = 0
    """Directory symlinks, never followed."""
    unreadable: int = 0
    """Directories that could not be listed, files that could not be stat'ed or read."""
    binary: int = 0
    """Files `read_source` found binary (only counted when a report is passed to it)."""
    not_utf8: int = 0
    """Files `read_source` could not decode as UTF-8 (likewise)."""
    limit_reached: str | None = None
    """"max_files" or "max_total_bytes" when that limit stopped the scan early."""
    cancelled: bool = False
    """Whether `cancelled()` stopped the scan."""
    other_files: list[str] = field(default_factory=list)
    """Paths of the files of no language that the scan was asked to list too."""

    @property
    def truncated(self) -> bool:
        """Whether a limit stopped the scan before it saw every file."""
        return self.limit_reached is not None

    def __str__(self) -> str:
        return self.summary()

    def summary(self) -> str:
        """One line for a log or a progress message."""
        skipped = {
            "ignored": self.ignored,
            "unsupported": self.unsupported,
            "too large": self.too_large,
            "too deep": self.too_deep,
            "symlinked dirs": self.symlinked_dirs,
            "unreadable": self.unreadable,
            "binary": self.binary,
            "not UTF-8": self.not_utf8,
        }
        parts = [f"{self.files} files ({self.total_bytes} bytes)"]
        counts = ", ".join(f"{count} {reason}" for reason, count in skipped.items() if count)
        if counts:
            parts.append(f"skipped {counts}")
        if self.limit_reached is not None:
            parts.append(f"truncated at {self.limit_reached}")
        if self.cancelled:
            parts.append("cancelled")
        return "; ".join(parts)


def path_language(path: str) -> str | None:
    """The canonical grammar name for a file path by its extension, or None when none fits."""
    return _extension_language(os.path.splitext(path)[1])


@lru_cache(maxsize=256)
def _extension_language(extension: str) -> str | None:
    # language_name reads the extension off the uri's path; quote() keeps "#" and "?" in it.
    return language_name("", "file:///x" + quote(extension)) if extension else None


# --- ignore rules ------------------------------------------------------------------------------

_Scope = tuple[str, GitIgnoreSpec]
"""A `.gitignore`'s directory (relative POSIX path, "" for the root) and its patterns."""
_Chain = tuple[_Scope, ...]
"""The scopes that apply inside one directory, deepest (highest priority) first."""


def _read_spec(path: str) -> GitIgnoreSpec | None:
    """The patterns of an ignore file, or None when it is missing or unreadable."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    try:
        return GitIgnoreSpec.from_lines(lines)
    except ValueError:  # like git, drop the lines that are not valid patterns
        return GitIgnoreSpec.from_lines(line for line in lines if _valid_pattern(line))


def _valid_pattern(line: str) -> bool:
    try:
        GitIgnoreSpec.from_lines([line])
    except ValueError:
        return False
    return True


def _join(rel_dir: str, name: str) -> str:
    return f"{rel_dir}/{name}" if rel_dir else name


def _chain_ignores(chain: _Chain, rel_path: str, is_dir: bool) -> bool:
    """Whether the deepest scope with a matching pattern excludes `rel_path`."""
    for base, spec in chain:
        sub = rel_path[len(base) + 1 :] if base else rel_path
        include = spec.check_file(sub + "/" if is_dir else sub).include
        if include is not None:
            return include
    return False


def _excluded_dir_name(name: str, next_to_cargo_manifest: Callable[[], bool]) -> bool:
    """Whether the defaults skip a directory called `name` (markers inside it aside)."""
    if name in DEFAULT_EXCLUDED_DIRS:
        return True
    if name.startswith(".") and name not in VISIBLE_HIDDEN_DIRS:
        return True
    return name == CARGO_TARGET and next_to_cargo_manifest()


def _excluded_file_name(name: str) -> bool:
    return name.endswith(DEFAULT_EXCLUDED_FILE_SUFFIXES)


def _has_marker(names: Container[str]) -> bool:
    return any(marker in names for marker in EXCLUDING_MARKERS)


class IgnoreRules:
    """Git's ignore rules plus the built-in defaults for one workspace root.

    `.gitignore` files are read lazily and cached; call `reload` when one changes
    (or appears, or goes). A scan given this object refreshes the cache as it walks.
    The root is resolved (symlinks followed once, there), so paths are reported under
    `root.resolve()`; symlinks below it are never resolved.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self._root = self.root.as_posix()
        self._given = Path(os.path.abspath(root)).as_posix()  # as the client may spell it
        self._specs: dict[str, GitIgnoreSpec] = {}
        self._exclude: GitIgnoreSpec | None = None
        self._load_exclude()

    def is_ignored(self, path: Path, is_dir: bool = False) -> bool:
        """Whether `path` (absolute, or relative to the root) is excluded.

        True when the path or any directory between it and the root is excluded,
        and for paths outside the root; False for the root itself. Language is not
        considered (see `path_language`).
        """
        rel = self._relative(path)
        if rel is None:
            return True
        if not rel:
            return False
        parts = rel.split("/")
        chain = self._base_chain()
        rel_dir = ""
        for index, name in enumerate(parts):
            chain = self._enter(rel_dir, chain, has_gitignore=None)
            entry_is_dir = is_dir or index < len(parts) - 1
            rel_path = _join(rel_dir, name)
            if self._entry_ignored(rel_dir, name, entry_is_dir, chain):
                return True
            rel_dir = rel_path
        return False

    def reload(self, gitignore: Path) -> None:
        """Re-read a changed, created or deleted `.gitignore` (or the root's .git/info/exclude)."""
        rel = self._relative(gitignore)
        if rel is None:
            return
        if rel == "/".join(_INFO_EXCLUDE):
            self._load_exclude()
            return
        rel_dir, _, name = rel.rpartition("/")
        if name == GITIGNORE:
            self._load(rel_dir)

    # The walk below uses these per directory, so it never re-reads or re-checks a parent.

    def _load_exclude(self) -> None:
        self._exclude = _read_spec(os.path.join(self._root, *_INFO_EXCLUDE))

    def _base_chain(self) -> _Chain:
        return (("", self._exclude),) if self._exclude is not None else ()

    def _enter(self, rel_dir: str, parent: _Chain, has_gitignore: bool | None) -> _Chain:
        """The chain inside `rel_dir`; `has_gitignore` None means look it up (cached)."""
        spec: GitIgnoreSpec | None
        if has_gitignore is None and rel_dir in self._specs:
            spec = self._specs[rel_dir]
        elif has_gitignore is False:
            self._specs.pop(rel_dir, None)  # it went: forget it
            spec = None
        else:
            spec = self._load(rel_dir)
        return ((rel_dir, spec), *parent) if spec is not None else parent

    def _load(self, rel_dir: str) -> GitIgnoreSpec | None:
        """(Re)read `rel_dir`'s `.gitignore` into the cache; None when it has none."""
        spec = _read_spec(os.path.join(self._root, rel_dir, GITIGNORE))
        if spec is None:
            self._specs.pop(rel_dir, None)
        else:
            self._specs[rel_dir] = spec
        return spec

    def _entry_ignored(self, rel_dir: str, name: str, is_dir: bool, chain: _Chain) -> bool:
        """Whether the entry `name` of directory `rel_dir` is excluded (disk checks included)."""
        rel_path = _join(rel_dir, name)
        if is_dir:
            parent = os.path.join(self._root, rel_dir)
            if _excluded_dir_name(
                name, lambda: os.path.isfile(os.path.join(parent, CARGO_MANIFEST))
            ):
                return True
            directory = os.path.join(self._root, rel_path)
            if any(os.path.exists(os.path.join(directory, m)) for m in EXCLUDING_MARKERS):
                return True
        elif _excluded_file_name(name):
            return True
        return _chain_ignores(chain, rel_path, is_dir)

    def _relative(self, path: Path) -> str | None:
        """`path` relative to the root as POSIX ("" for the root), None when outside it."""
        for root in (self._root, self._given):
            rel = _relative_to(os.path.join(root, os.fspath(path)), root)
            if rel is not None:
                return rel
        return None


def _relative_to(path: str, root: str) -> str | None:
    try:
        rel = Path(os.path.relpath(os.path.normpath(path), root)).as_posix()
    except ValueError:  # another drive (Windows)
        return None
    if rel == ".":
        return ""
    return None if rel == ".." or rel.startswith("../") else rel


# --- the walk ----------------------------------------------------------------------------------


def _posix(path: str) -> str:
    return path if os.sep == "/" else path.replace(os.sep, "/")


_Pending = tuple[str, str, int, _Chain]
"""A directory still to walk: absolute POSIX path, path relative to the root, depth, chain."""


class _Walk:
    """One scan's state; `run` fills `files` and `report`."""

    def __init__(
        self,
        rules: IgnoreRules,
        limits: ScanLimits,
        cancelled: Callable[[], bool],
        on_file: Callable[[WorkspaceFile], None] | None,
        wanted: Callable[[str], bool] | None = None,
    ) -> None:
        self.rules = rules
        self.wanted = wanted
        self.limits = limits
        self.cancelled = cancelled
        self.on_file = on_file
        self.files: list[WorkspaceFile] = []
        self.report = ScanReport()

    def run(self) -> None:
        self.rules._load_exclude()  # a scan reads the disk afresh, as it does for .gitignore
        stack: list[_Pending] = [(self.rules.root.as_posix(), "", 0, self.rules._base_chain())]
        while stack and not self._stopped():
            if self.cancelled():
                self.report.cancelled = True
                break
            stack.extend(reversed(self._walk_directory(*stack.pop())))

    def _stopped(self) -> bool:
        return self.report.cancelled or self.report.limit_reached is not None

    def _walk_directory(
        self, abs_dir: str, rel_dir: str, depth: int, chain: _Chain
    ) -> list[_Pending]:
        """Visit one directory's files; return its subdirectories to walk, in name order."""
        entries = self._list(abs_dir)
        if entries is None:
            return []
        names = {entry.name for entry in entries}
        if rel_dir and _has_marker(names):
            self.report.ignored += 1
            return []
        chain = self.rules._enter(rel_dir, chain, has_gitignore=GITIGNORE in names)
        subdirs: list[_Pending] = []
        for index, entry in enumerate(entries):
            if index % _CANCEL_CHECK_EVERY == _CANCEL_CHECK_EVERY - 1 and self.cancelled():
                self.report.cancelled = True
            if self._stopped():
                break
            pending = self._visit(entry, rel_dir, depth, chain, names)
            if pending is not None:
                subdirs.append(pending)
        return subdirs

    def _list(self, abs_dir: str) -> list[os.DirEntry[str]] | None:
        try:
            with os.scandir(abs_dir) as scan:
                entries = list(scan)
        except OSError:
            self.report.unreadable += 1
            return None
        entries.sort(key=lambda entry: entry.name)
        return entries

    def _visit(
        self,
        entry: os.DirEntry[str],
        rel_dir: str,
        depth: int,
        chain: _Chain,
        names: Container[str],
    ) -> _Pending | None:
        """Handle one entry; a directory to walk comes back as a pending item."""
        try:
            if entry.is_dir(follow_symlinks=False):
                return self._visit_directory(entry, rel_dir, depth, chain, names)
            if entry.is_file():
                self._visit_file(entry, rel_dir, chain)
            elif entry.is_symlink() and entry.is_dir():
                self.report.symlinked_dirs += 1
        except OSError:
            self.report.unreadable += 1
        return None

    def _visit_directory(
        self,
        entry: os.DirEntry[str],
        rel_dir: str,
        depth: int,
        chain: _Chain,
        names: Container[str],
    ) -> _Pending | None:
        rel_path = _join(rel_dir, entry.name)
        if _excluded_dir_name(entry.name, lambda: CARGO_MANIFEST in names) or _chain_ignores(
            chain, rel_path, is_dir=True
        ):
            self.report.ignored += 1
            return None
        if depth + 1 > self.limits.max_depth:
            self.report.too_deep += 1
            return None
        return (_posix(entry.path), rel_path, depth + 1, chain)

    def _visit_file(self, entry: os.DirEntry[str], rel_dir: str, chain: _Chain) -> None:
        language = path_language(entry.name)
        if language is None:
            if self.wanted is not None and self.wanted(entry.name):
                if not _chain_ignores(chain, _join(rel_dir, entry.name), is_dir=False):
                    self.report.other_files.append(_posix(entry.path))
                return
            self.report.unsupported += 1
            return
        if _excluded_file_name(entry.name) or _chain_ignores(
            chain, _join(rel_dir, entry.name), is_dir=False
        ):
            self.report.ignored += 1
            return
        info = entry.stat()
        if info.st_size > self.limits.max_file_bytes:
            self.report.too_large += 1
            return
        if self._limit_reached(info.st_size):
            return
        self._keep(WorkspaceFile(_posix(entry.path), language, info.st_size, info.st_mtime_ns))

    def _limit_reached(self, size: int) -> bool:
        if len(self.files) >= self.limits.max_files:
            self.report.limit_reached = "max_files"
        elif self.report.total_bytes + size > self.limits.max_total_bytes:
            self.report.limit_reached = "max_total_bytes"
        return self.report.limit_reached is not None

    def _keep(self, found: WorkspaceFile) -> None:
        self.files.append(found)
        self.report.files += 1
        self.report.total_bytes += found.size
        if self.on_file is not None:
            self.on_file(found)


def _never_cancelled() -> bool:
    return False


def scan_workspace(
    root: Path,
    limits: ScanLimits = ScanLimits(),  # frozen, so sharing it is safe
    cancelled: Callable[[], bool] = _never_cancelled,
    on_file: Callable[[WorkspaceFile], None] | None = None,
    rules: IgnoreRules | None = None,
    other_files: Callable[[str], bool] | None = None,
) -> tuple[list[WorkspaceFile], ScanReport]:
    """The supported source files under `root`, in depth-first name order, and what was skipped.

    `cancelled` is polled per directory (and every few hundred entries); when it
    returns True the scan stops and returns what it found so far. `on_file` is
    called for each file as it is kept. Pass the server's `rules` to share (and
    refresh) its `.gitignore` cache; by default the scan uses fresh rules.
    Files of no supported language whose name `other_files` accepts (such as
    go.mod) are listed in the report's `other_files`.
    """
    rules = rules if rules is not None else IgnoreRules(root)
    walk = _Walk(rules, limits, cancelled, on_file, other_files)
    walk.run()
    return walk.files, walk.report


# --- reading -----------------------------------------------------------------------------------


def read_source(path: Path, max_bytes: int, *, report: ScanReport | None = None) -> str | None:
    """The UTF-8 text of a regular file, newlines and any BOM untouched, else None.

    None for a missing or unreadable path, a non-regular file (never blocks on a
    FIFO), a file over `max_bytes`, a binary file (a NUL byte within the first
    `BINARY_SNIFF_BYTES`) and text that is not valid UTF-8. When `report` is given
    the reason is counted in it (unreadable, too_large, binary, not_utf8).
    """
    data = _read_bytes(path, max_bytes)
    reason: str | None
    if isinstance(data, str):
        reason, text = data, None
    elif b"\0" in data[:BINARY_SNIFF_BYTES]:
        reason, text = "binary", None
    else:
        try:
            reason, text = None, data.decode("utf-8")
        except UnicodeDecodeError:
            reason, text = "not_utf8", None
    if report is not None and reason is not None:
        setattr(report, reason, getattr(report, reason) + 1)
    return text


def _read_bytes(path: Path, max_bytes: int) -> bytes | str:
    """The file's bytes, or the ScanReport field naming why not ("unreadable", "too_large")."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError:
        return "unreadable"
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return "unreadable"
        data = _read_up_to(descriptor, max_bytes + 1)
    except OSError:
        return "unreadable"
    finally:
        os.close(descriptor)
    return "too_large" if len(data) > max_bytes else data


def _read_up_to(descriptor: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    remaining = limit
    while remaining > 0:
        chunk = os.read(descriptor, min(remaining, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
