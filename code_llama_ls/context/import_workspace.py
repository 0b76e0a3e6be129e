"""The workspace as import resolution sees it: its files, indexed, and its config files.

`FileIndex` keeps the workspace's paths in a few dictionaries (by path, by
directory, by file name, by directory name), so every lookup the language
rules (`import_rules`) make is a handful of dict hits, never a scan of all
files. `Workspace` adds the config files those rules depend on (go.mod,
package.json, tsconfig*.json/jsconfig*.json, Cargo.toml): read lazily through
the `read_text` callback, parsed leniently (JSON comments and trailing
commas allowed, a tsconfig's relative `extends` chain merged) and cached
until `forget_configs()`.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["FileIndex", "PackageJson", "ReadText", "TsConfig", "Workspace"]

ReadText = Callable[[str], str | None]
"""Returns a small config file's text, or None when it cannot be read."""

_T = TypeVar("_T")
_EMPTY: frozenset[str] = frozenset()
_MAX_EXTENDS_DEPTH = 8


# --------------------------------------------------------------------------- index


class FileIndex:
    """The workspace's files by path, by directory and by name."""

    def __init__(self) -> None:
        self.files: set[str] = set()
        self.dir_files: dict[str, set[str]] = {}
        """Directory -> names of the files directly in it."""
        self.by_name: dict[str, set[str]] = {}
        """File name -> paths."""
        self.dirs_by_tail: dict[str, set[str]] = {}
        """"name" and "parent/name" -> directories so named (those directly holding files)."""

    def add(self, path: str) -> bool:
        """Index `path`; False when it already was."""
        if path in self.files:
            return False
        self.files.add(path)
        directory, name = posixpath.split(path)
        names = self.dir_files.get(directory)
        if names is None:
            names = self.dir_files[directory] = set()
            for key in _dir_keys(directory):
                self.dirs_by_tail.setdefault(key, set()).add(directory)
        names.add(name)
        self.by_name.setdefault(name, set()).add(path)
        return True

    def remove(self, path: str) -> bool:
        """Forget `path`; False when it was not indexed."""
        if path not in self.files:
            return False
        self.files.discard(path)
        directory, name = posixpath.split(path)
        _discard(self.by_name, name, path)
        names = self.dir_files.get(directory, set())
        names.discard(name)
        if not names:
            self.dir_files.pop(directory, None)
            for key in _dir_keys(directory):
                _discard(self.dirs_by_tail, key, directory)
        return True

    def listdir(self, directory: str) -> frozenset[str] | set[str]:
        """Names of the indexed files directly in `directory`."""
        return self.dir_files.get(directory, _EMPTY)

    def first_file(self, candidates: Iterable[str]) -> str | None:
        """The first candidate path that is an indexed file."""
        return next((c for c in candidates if c in self.files), None)

    def tail_matches(self, tail: str) -> list[tuple[str, str]]:
        """(root, path) for every file whose path is `root/tail`.

        Looks up the tail's directory by its last two names (or the file by
        name when the tail has no directory), so the cost is the number of
        directories so named, not the number of files.
        """
        head, name = posixpath.split(tail)
        if not head:
            return [(posixpath.dirname(p), p) for p in self.by_name.get(name, _EMPTY)]
        return [
            (d[: -len(head) - 1], f"{d}/{name}")
            for d in self.dirs_ending_with(head)
            if name in self.listdir(d)
        ]

    def dirs_ending_with(self, tail: str) -> list[str]:
        """Directories holding files whose path ends with `/tail`."""
        key = "/".join(tail.rsplit("/", 2)[-2:])
        suffix = "/" + tail
        return [d for d in self.dirs_by_tail.get(key, _EMPTY) if d.endswith(suffix)]

    def nearest(self, start_dir: str, names: tuple[str, ...]) -> str | None:
        """The first of `names` found in `start_dir` or the closest directory above it."""
        directory = start_dir
        while True:
            present = self.listdir(directory)
            for name in names:
                if name in present:
                    return posixpath.join(directory, name)
            parent = posixpath.dirname(directory)
            if parent == directory:
                return None
            directory = parent


def _dir_keys(directory: str) -> tuple[str, ...]:
    """The keys `FileIndex.dirs_by_tail` files a directory under: its name, parent/name."""
    parent, name = posixpath.split(directory)
    parent_name = posixpath.basename(parent)
    return (name, f"{parent_name}/{name}") if parent_name else (name,)


def _discard(index: dict[str, set[str]], key: str, value: str) -> None:
    """Remove `value` from `index[key]`, dropping the key when its set empties."""
    values = index.get(key)
    if values is not None:
        values.discard(value)
        if not values:
            del index[key]


# --------------------------------------------------------------------------- config files

_JSON_COMMENT = re.compile(r'("(?:\\.|[^"\\])*")|//[^\n]*|/\*.*?\*/', re.DOTALL)
_JSON_TRAILING_COMMA = re.compile(r'("(?:\\.|[^"\\])*")|,(\s*[}\]])')
_GO_MODULE = re.compile(r'^\s*module\s+"?([^\s"]+)"?', re.MULTILINE)


def _loads_lenient_json(text: str) -> object:
    """JSON with comments and trailing commas allowed; None when it still does not parse."""
    text = text.lstrip("\ufeff")
    try:
        return json.loads(text)
    except ValueError:
        pass
    text = _JSON_COMMENT.sub(lambda m: m.group(1) or " ", text)
    text = _JSON_TRAILING_COMMA.sub(lambda m: m.group(1) or m.group(2), text)
    try:
        return json.loads(text)
    except ValueError:
        return None


def _parse_go_module(_path: str, text: str) -> str | None:
    """The `module` path a go.mod declares."""
    match = _GO_MODULE.search(text)
    return match.group(1) if match else None


def _parse_cargo_crate(_path: str, text: str) -> str | None:
    """The crate name other crates `use`: `[lib] name`, else the package name with `_`."""
    import tomllib  # only for Rust workspaces

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None
    lib, package = data.get("lib"), data.get("package")
    if isinstance(lib, dict) and isinstance(lib.get("name"), str):
        return str(lib["name"])
    if isinstance(package, dict) and isinstance(package.get("name"), str):
        return str(package["name"]).replace("-", "_")
    return None


@dataclass(frozen=True)
class PackageJson:
    """What resolution needs of a package.json."""

    name: str | None
    entries: tuple[str, ...]
    """Entry points relative to the package, most useful first."""


_PACKAGE_ENTRY_FIELDS = ("source", "types", "typings", "module", "main")


def _first_string(value: object) -> str | None:
    """The first string in a package.json `exports` value (string, or nested conditions)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        main = value.get(".", value)
        if main is not value:
            return _first_string(main)
        return next((s for v in value.values() if (s := _first_string(v))), None)
    return None


def _parse_package_json(_path: str, text: str) -> PackageJson | None:
    data = _loads_lenient_json(text)
    if not isinstance(data, dict):
        return None
    name = data.get("name")
    fields = [data.get(f) for f in _PACKAGE_ENTRY_FIELDS]
    fields.insert(3, _first_string(data.get("exports")))
    entries = tuple(f for f in fields if isinstance(f, str) and f)
    return PackageJson(name if isinstance(name, str) and name else None, entries)


@dataclass(frozen=True)
class _TsOptions:
    """One tsconfig.json file's own resolution options (absolute paths)."""

    directory: str
    base_url: str | None
    paths: tuple[tuple[str, tuple[str, ...]], ...] | None
    extends: tuple[str, ...]


def _parse_tsconfig(path: str, text: str) -> _TsOptions | None:
    data = _loads_lenient_json(text)
    if not isinstance(data, dict):
        return None
    directory = posixpath.dirname(path)
    options = data.get("compilerOptions")
    options = options if isinstance(options, dict) else {}
    base_url = options.get("baseUrl")
    raw_paths = options.get("paths")
    paths = None
    if isinstance(raw_paths, dict):
        paths = tuple(
            (pattern, tuple(t for t in targets if isinstance(t, str)))
            for pattern, targets in raw_paths.items()
            if isinstance(targets, list)
        )
    return _TsOptions(
        directory=directory,
        base_url=posixpath.normpath(posixpath.join(directory, base_url))
        if isinstance(base_url, str)
        else None,
        paths=paths,
        extends=_tsconfig_extends(directory, data.get("extends")),
    )


def _tsconfig_extends(directory: str, value: object) -> tuple[str, ...]:
    """Absolute paths of the relative configs a tsconfig extends (package names are skipped)."""
    values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    out: list[str] = []
    for v in values:
        if isinstance(v, str) and v.startswith((".", "/")):
            target = posixpath.normpath(posixpath.join(directory, v))
            out.append(target if target.endswith(".json") else target + ".json")
    return tuple(out)


@dataclass(frozen=True)
class TsConfig:
    """Effective module resolution settings after `extends`."""

    base_url: str | None
    paths: tuple[tuple[str, tuple[str, ...]], ...]
    paths_dir: str
    """Where `paths` targets are relative to when there is no baseUrl."""

    def candidates(self, spec: str) -> list[str]:
        """Absolute paths (before extension probing) a bare specifier may name."""
        out: list[str] = []
        match = _match_ts_paths(self.paths, spec)
        if match is not None:
            targets, star = match
            root = self.base_url or self.paths_dir
            out = [posixpath.normpath(posixpath.join(root, t.replace("*", star))) for t in targets]
        if self.base_url is not None:
            out.append(posixpath.normpath(posixpath.join(self.base_url, spec)))
        return out


def _match_ts_paths(
    paths: tuple[tuple[str, tuple[str, ...]], ...], spec: str
) -> tuple[tuple[str, ...], str] | None:
    """The targets of the `paths` pattern TypeScript would pick, and what `*` matched."""
    best: tuple[int, tuple[str, ...], str] | None = None
    for pattern, targets in paths:
        if "*" not in pattern:
            if pattern == spec:
                return targets, ""
            continue
        prefix, suffix = pattern.split("*", 1)
        fits = len(spec) >= len(prefix) + len(suffix)
        fits = fits and spec.startswith(prefix) and spec.endswith(suffix)
        if fits and (best is None or len(prefix) > best[0]):
            best = (len(prefix), targets, spec[len(prefix) : len(spec) - len(suffix)])
    return None if best is None else (best[1], best[2])


# --------------------------------------------------------------------------- workspace


class Workspace:
    """The index plus lazily parsed config files and the maps derived from them."""

    def __init__(self, read_text: ReadText) -> None:
        self.index = FileIndex()
        self._read_text = read_text
        self._go_modules: dict[str, str | None] = {}
        self._crates: dict[str, str | None] = {}
        self._packages: dict[str, PackageJson | None] = {}
        self._tsconfigs: dict[str, _TsOptions | None] = {}
        self._module_dirs: dict[str, list[str]] | None = None
        self._crate_dirs: dict[str, list[str]] | None = None
        self._package_dirs: dict[str, list[str]] | None = None

    def forget_configs(self) -> None:
        """Drop everything read from config files; it is read again on demand."""
        for cache in (self._go_modules, self._crates, self._packages, self._tsconfigs):
            cache.clear()
        self._module_dirs = self._crate_dirs = self._package_dirs = None

    def _parsed(
        self, cache: dict[str, _T | None], path: str, parse: Callable[[str, str], _T | None]
    ) -> _T | None:
        if path in cache:
            return cache[path]
        try:
            text = self._read_text(path)
        except (OSError, ValueError):
            text = None
        value = parse(path, text) if text is not None else None
        cache[path] = value
        return value

    def go_module(self, go_mod: str) -> str | None:
        return self._parsed(self._go_modules, go_mod, _parse_go_module)

    def package_json(self, path: str) -> PackageJson | None:
        return self._parsed(self._packages, path, _parse_package_json)

    def tsconfig(self, path: str, depth: int = 0) -> TsConfig | None:
        """A tsconfig's effective settings, its relative `extends` chain merged in."""
        own = self._parsed(self._tsconfigs, path, _parse_tsconfig)
        if own is None:
            return None
        base_url: str | None = None
        paths: tuple[tuple[str, tuple[str, ...]], ...] = ()
        paths_dir = own.directory
        for parent_path in own.extends if depth < _MAX_EXTENDS_DEPTH else ():
            parent = self.tsconfig(parent_path, depth + 1)
            if parent is not None:
                base_url = parent.base_url or base_url
                if parent.paths:
                    paths, paths_dir = parent.paths, parent.paths_dir
        if own.base_url is not None:
            base_url = own.base_url
        if own.paths is not None:
            paths, paths_dir = own.paths, own.directory
        return TsConfig(base_url, paths, paths_dir)

    def module_dirs(self) -> dict[str, list[str]]:
        """Go module path -> directories of the go.mod files declaring it."""
        if self._module_dirs is None:
            self._module_dirs = self._config_map("go.mod", self.go_module)
        return self._module_dirs

    def crate_dirs(self) -> dict[str, list[str]]:
        """Rust crate name -> directories of the Cargo.toml files declaring it."""
        if self._crate_dirs is None:
            self._crate_dirs = self._config_map(
                "Cargo.toml", lambda p: self._parsed(self._crates, p, _parse_cargo_crate)
            )
        return self._crate_dirs

    def package_dirs(self) -> dict[str, list[str]]:
        """npm package name -> directories of the package.json files declaring it."""
        if self._package_dirs is None:

            def name(path: str) -> str | None:
                package = self.package_json(path)
                return package.name if package else None

            self._package_dirs = self._config_map("package.json", name)
        return self._package_dirs

    def _config_map(self, file_name: str, key: Callable[[str], str | None]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for path in sorted(self.index.by_name.get(file_name, _EMPTY)):
            if "/node_modules/" in path:
                continue
            value = key(path)
            if value:
                out.setdefault(value, []).append(posixpath.dirname(path))
        return out
