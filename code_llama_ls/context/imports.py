"""Resolving an import to the workspace files that hold the module it names.

`ImportResolver` keeps a few dictionaries over the workspace's paths (by
path, by directory, by file name, by directory name), so every lookup is a
handful of dict hits, never a scan of all files. Per-language rules:

- Python: relative imports from the importer's package; absolute `a.b.c` as
  `a/b/c.py`, `a/b/c/__init__.py` (or `.pyi`) under any root, nearest to the
  importer first. `from pkg import name` gives `pkg/name.py` (when `name` is a
  submodule) before `pkg/__init__.py`.
- JavaScript/TypeScript: relative specifiers with extension and `index.*`
  probing (a TS file importing "./x.js" finds x.ts); bare specifiers through
  the nearest tsconfig.json/jsconfig.json `paths`/`baseUrl`, then workspace
  packages by their package.json `name`.
- Go: import paths under a workspace go.mod's `module` map to the package
  directory's non-test `.go` files.
- Rust: `crate::`, `self::`, `super::`, `mod x;`, child modules and workspace
  crates by name, resolved to the longest module path that has a file.
- Java: classes by path tail under any source root; `pkg.*` gives the
  package's files; static imports give the class's file.
- C/C++: `#include "x.h"` next to the includer, else any file ending in x.h.

Config files (go.mod, package.json, tsconfig*.json, Cargo.toml) are read
lazily through the `read_text` callback and cached until `add()`/`remove()`
reports that path again. Resolution is best effort and never raises: an
external or unresolvable import gives `()`.
"""

from __future__ import annotations

import json
import logging
import posixpath
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from code_llama_ls.context.outline import Import

__all__ = ["ImportResolver", "ReadText", "is_config_file"]

_log = logging.getLogger(__name__)

ReadText = Callable[[str], str | None]
"""Returns a small config file's text, or None when it cannot be read."""

_T = TypeVar("_T")
_EMPTY: frozenset[str] = frozenset()
_MAX_CACHED_RESULTS = 100_000
_MAX_EXTENDS_DEPTH = 8

_CONFIG_NAMES = frozenset({"go.mod", "package.json", "Cargo.toml"})
_TSCONFIG_NAMES = ("tsconfig.json", "jsconfig.json")


def is_config_file(name: str) -> bool:
    """Whether a file name is a config file whose contents resolution depends on."""
    return name in _CONFIG_NAMES or (
        name.endswith(".json") and name.startswith(("tsconfig", "jsconfig"))
    )


# --------------------------------------------------------------------------- paths


def _closeness(path: str, importer_dir: str) -> int:
    """Length of the leading directories `path` shares with `importer_dir`."""
    prefix = posixpath.commonprefix((path + "/", importer_dir + "/"))
    return prefix.rfind("/") + 1


def _nearest_first(paths: Iterable[str], importer_dir: str) -> list[str]:
    """`paths` ordered by how much of the importer's directory they share, then by name."""
    return sorted(paths, key=lambda p: (-_closeness(p, importer_dir), p))


def _up(directory: str, levels: int) -> str | None:
    """`directory` with `levels` trailing components removed; None past the root."""
    for _ in range(levels):
        parent = posixpath.dirname(directory)
        if parent == directory:
            return None
        directory = parent
    return directory


def _valid_parts(parts: list[str]) -> bool:
    """Whether dotted/`::` path components are all usable as path components."""
    return all(p and p not in (".", "..") and "/" not in p for p in parts)


def _unique(paths: Iterable[str | None]) -> tuple[str, ...]:
    """The non-None paths, first occurrence kept."""
    return tuple(dict.fromkeys(p for p in paths if p))


# --------------------------------------------------------------------------- index


class _Index:
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
    """The keys `_Index.dirs_by_tail` files a directory under: its name, parent/name."""
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
class _PackageJson:
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


def _parse_package_json(_path: str, text: str) -> _PackageJson | None:
    data = _loads_lenient_json(text)
    if not isinstance(data, dict):
        return None
    name = data.get("name")
    fields = [data.get(f) for f in _PACKAGE_ENTRY_FIELDS]
    fields.insert(3, _first_string(data.get("exports")))
    entries = tuple(f for f in fields if isinstance(f, str) and f)
    return _PackageJson(name if isinstance(name, str) and name else None, entries)


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
class _TsConfig:
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


class _Workspace:
    """The index plus lazily parsed config files and the maps derived from them."""

    def __init__(self, read_text: ReadText) -> None:
        self.index = _Index()
        self._read_text = read_text
        self._go_modules: dict[str, str | None] = {}
        self._crates: dict[str, str | None] = {}
        self._packages: dict[str, _PackageJson | None] = {}
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

    def package_json(self, path: str) -> _PackageJson | None:
        return self._parsed(self._packages, path, _parse_package_json)

    def tsconfig(self, path: str, depth: int = 0) -> _TsConfig | None:
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
        return _TsConfig(base_url, paths, paths_dir)

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


# --------------------------------------------------------------------------- Python

# Where module `a.b` may live relative to a root, most Python-like first.
_PY_FORMS = ("{}/__init__.py", "{}.py", "{}/__init__.pyi", "{}.pyi")
_PY_PACKAGE_MARKERS = ("__init__.py", "__init__.pyi")


def _py_at(ws: _Workspace, base: str, parts: list[str]) -> str | None:
    """Module `parts` under directory `base` (the package itself when `parts` is empty)."""
    if not parts:
        return ws.index.first_file(posixpath.join(base, m) for m in _PY_PACKAGE_MARKERS)
    rel = "/".join(parts)
    return ws.index.first_file(posixpath.join(base, form.format(rel)) for form in _PY_FORMS)


def _py_anywhere(ws: _Workspace, importer_dir: str, parts: list[str]) -> str | None:
    """Absolute module `parts` under any root, the root nearest the importer first.

    A root that is itself inside a package (has an __init__.py) would make
    the module's real name longer, so such roots only count when no other
    root has the module and it does not shadow a standard library name.
    """
    rel = "/".join(parts)
    found = [
        (root, rank, path)
        for rank, form in enumerate(_PY_FORMS)
        for root, path in ws.index.tail_matches(form.format(rel))
    ]
    top_level = [f for f in found if not _is_package_dir(ws, f[0])]
    if top_level:
        found = top_level
    elif parts[0] in sys.stdlib_module_names:
        return None
    if not found:
        return None
    return min(found, key=lambda f: (-_closeness(f[0], importer_dir), f[0], f[1]))[2]


def _is_package_dir(ws: _Workspace, directory: str) -> bool:
    names = ws.index.listdir(directory)
    return any(m in names for m in _PY_PACKAGE_MARKERS)


def _resolve_python(ws: _Workspace, importer: str, _language: str, imp: Import) -> tuple[str, ...]:
    module = imp.module.strip()
    level = len(module) - len(module.lstrip("."))
    rest = module[level:]
    parts = rest.split(".") if rest else []
    if not _valid_parts(parts) or (not parts and not level):
        return ()
    importer_dir = posixpath.dirname(importer)
    find: Callable[[list[str]], str | None]
    if level:
        base = _up(importer_dir, level - 1)
        if base is None:
            return ()
        find = partial(_py_at, ws, base)
    else:
        find = partial(_py_anywhere, ws, importer_dir)
    submodule = None
    if imp.name and imp.name != "*" and _valid_parts([imp.name]):
        submodule = find([*parts, imp.name])
    return _unique((submodule, find(parts)))


# --------------------------------------------------------------------------- JS / TS

_JS_EXTENSIONS = (".ts", ".tsx", ".d.ts", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts")
# The TypeScript sources an ESM-style ".js" specifier stands for.
_JS_TS_TWINS = {
    ".js": (".ts", ".tsx", ".d.ts"),
    ".jsx": (".tsx",),
    ".mjs": (".mts", ".d.mts"),
    ".cjs": (".cts", ".d.cts"),
}
_TS_LANGUAGES = frozenset({"typescript", "tsx"})


def _js_candidates(base: str, prefer_ts: bool) -> Iterator[str]:
    """Paths a specifier resolving to `base` may mean, in probing order."""
    stem, ext = posixpath.splitext(base)
    twins = [stem + t for t in _JS_TS_TWINS.get(ext, ())]
    yield from (*twins, base) if prefer_ts else (base, *twins)
    for extension in _JS_EXTENSIONS:
        yield base + extension
    for extension in _JS_EXTENSIONS:
        yield f"{base}/index{extension}"


def _js_file(ws: _Workspace, base: str, prefer_ts: bool) -> str | None:
    return ws.index.first_file(_js_candidates(base, prefer_ts))


def _split_package(spec: str) -> tuple[str, str]:
    """("@scope/name" or "name", subpath) of a bare specifier."""
    cut = 2 if spec.startswith("@") else 1
    parts = spec.split("/", cut)
    return "/".join(parts[:cut]), "/".join(parts[cut:])


def _js_package(ws: _Workspace, importer_dir: str, spec: str, prefer_ts: bool) -> str | None:
    """A workspace package's file for a bare specifier naming it."""
    name, subpath = _split_package(spec)
    dirs = ws.package_dirs().get(name)
    if not dirs:
        return None
    directory = _nearest_first(dirs, importer_dir)[0]
    if subpath:
        bases = [posixpath.join(directory, subpath), posixpath.join(directory, "src", subpath)]
    else:
        package = ws.package_json(posixpath.join(directory, "package.json"))
        entries = package.entries if package else ()
        bases = [posixpath.normpath(posixpath.join(directory, e)) for e in entries]
        bases += [posixpath.join(directory, "src", "index"), posixpath.join(directory, "index")]
    return next((f for b in bases if (f := _js_file(ws, b, prefer_ts))), None)


def _resolve_js(ws: _Workspace, importer: str, language: str, imp: Import) -> tuple[str, ...]:
    spec = imp.module.strip().split("?", 1)[0]
    if not spec or spec.startswith("node:") or "://" in spec:
        return ()
    importer_dir = posixpath.dirname(importer)
    prefer_ts = language in _TS_LANGUAGES
    if spec in (".", "..") or spec.startswith(("./", "../", "/")):
        base = posixpath.normpath(posixpath.join(importer_dir, spec))
        if spec in (".", "..") or spec.endswith("/"):  # a directory: only its index
            base = posixpath.join(base, "index")
        return _unique([_js_file(ws, base, prefer_ts)])
    tsconfig_path = ws.index.nearest(importer_dir, _TSCONFIG_NAMES)
    tsconfig = ws.tsconfig(tsconfig_path) if tsconfig_path else None
    for base in tsconfig.candidates(spec) if tsconfig else ():
        if found := _js_file(ws, base, prefer_ts):
            return (found,)
    return _unique([_js_package(ws, importer_dir, spec, prefer_ts)])


# --------------------------------------------------------------------------- Go


def _go_package_files(ws: _Workspace, directory: str) -> tuple[str, ...]:
    names = ws.index.listdir(directory)
    return tuple(
        posixpath.join(directory, n)
        for n in sorted(names)
        if n.endswith(".go") and not n.endswith("_test.go")
    )


def _resolve_go(ws: _Workspace, importer: str, _language: str, imp: Import) -> tuple[str, ...]:
    path = imp.module.strip().strip("/")
    if not path:
        return ()
    importer_dir = posixpath.dirname(importer)
    modules = ws.module_dirs()
    parts = path.split("/")
    # The longest module path that is a prefix of the import path provides the package.
    for cut in range(len(parts), 0, -1):
        dirs = modules.get("/".join(parts[:cut]))
        if dirs and _valid_parts(parts[cut:]):
            module_dir = _nearest_first(dirs, importer_dir)[0]
            return _go_package_files(ws, posixpath.join(module_dir, *parts[cut:]))
    return ()


# --------------------------------------------------------------------------- Rust

_RUST_TARGET_DIRS = frozenset({"tests", "examples", "benches"})


@dataclass(frozen=True)
class _RustModule:
    """A module's file and the directory its `mod child;` files live in."""

    file: str
    child_dir: str


def _crate_root_of(ws: _Workspace, importer: str) -> _RustModule | None:
    """The importer's crate root: src/lib.rs or src/main.rs, or a bin/test/example target."""
    cargo = ws.index.nearest(posixpath.dirname(importer), ("Cargo.toml",))
    if cargo is None:
        return None
    package_dir = posixpath.dirname(cargo)
    parts = importer[len(package_dir) + 1 :].split("/")
    if parts[:2] == ["src", "bin"] and len(parts) > 2:
        return _target_root(posixpath.join(package_dir, "src", "bin"), parts[2])
    if parts[0] == "src" and len(parts) > 1:
        return _src_root(ws, posixpath.join(package_dir, "src"), importer)
    if parts[0] in _RUST_TARGET_DIRS and len(parts) > 1:
        return _target_root(posixpath.join(package_dir, parts[0]), parts[1])
    return _RustModule(importer, posixpath.dirname(importer))  # build.rs and the like


def _target_root(target_dir: str, first: str) -> _RustModule:
    """A target whose crate root is `target_dir/first.rs` or `target_dir/first/main.rs`."""
    if first.endswith(".rs"):
        return _RustModule(posixpath.join(target_dir, first), target_dir)
    directory = posixpath.join(target_dir, first)
    return _RustModule(posixpath.join(directory, "main.rs"), directory)


def _src_root(ws: _Workspace, src: str, importer: str) -> _RustModule:
    """src/main.rs for itself, else the library root (src/main.rs when there is none)."""
    if importer == posixpath.join(src, "main.rs"):
        return _RustModule(importer, src)
    names = ws.index.listdir(src)
    root = "lib.rs" if "lib.rs" in names or "main.rs" not in names else "main.rs"
    return _RustModule(posixpath.join(src, root), src)


def _module_of(root: _RustModule, importer: str) -> _RustModule:
    """The importer's module: `foo.rs` keeps its children in `foo/`, `mod.rs` beside it."""
    if importer == root.file:
        return root
    directory, name = posixpath.split(importer)
    if name == "mod.rs":
        return _RustModule(importer, directory)
    return _RustModule(importer, posixpath.join(directory, name.removesuffix(".rs")))


def _module_path(root: _RustModule, module: _RustModule) -> list[str] | None:
    """`module`'s path from the crate root (`[]` for the root), None when outside it."""
    if module.child_dir == root.child_dir:
        return []
    if not module.child_dir.startswith(root.child_dir + "/"):
        return None
    return module.child_dir[len(root.child_dir) + 1 :].split("/")


def _rust_walk(ws: _Workspace, start: _RustModule, segments: list[str]) -> tuple[str | None, int]:
    """The file of the longest module prefix of `segments` below `start`, and its length."""
    found = start.file if start.file in ws.index.files else None
    directory = start.child_dir
    for used, segment in enumerate(segments):
        hit = ws.index.first_file((f"{directory}/{segment}.rs", f"{directory}/{segment}/mod.rs"))
        if hit is None:
            return found, used
        found, directory = hit, f"{directory}/{segment}"
    return found, len(segments)


def _rust_segments(imp: Import) -> list[str]:
    """The full path an import names, `use a::{self}` as `a`, raw identifiers unescaped."""
    segments = imp.module.strip().split("::")
    if imp.name and imp.name not in ("*", "self"):
        segments.append(imp.name)
    return [s.removeprefix("r#") for s in segments]


def _resolve_rust(ws: _Workspace, importer: str, _language: str, imp: Import) -> tuple[str, ...]:
    segments = _rust_segments(imp)
    if not _valid_parts(segments):
        return ()
    root = _crate_root_of(ws, importer)
    if root is None:
        return _rust_other_crate(ws, importer, segments)
    here = _module_of(root, importer)
    first, rest = segments[0], segments[1:]
    if first == "crate":
        return _unique([_rust_walk(ws, root, rest)[0]])
    if first == "self":
        return _unique([_rust_walk(ws, here, rest)[0]])
    if first == "super":
        return _rust_super(ws, root, here, segments)
    # `mod foo;`, or a path through a child module of the importer's module.
    found, used = _rust_walk(ws, here, segments)
    if used:
        return _unique([found])
    return _rust_other_crate(ws, importer, segments)


def _rust_super(
    ws: _Workspace, root: _RustModule, here: _RustModule, segments: list[str]
) -> tuple[str, ...]:
    """`super::…` and `super::super::…`, walked down from the crate root."""
    path = _module_path(root, here)
    ups = next((i for i, s in enumerate(segments) if s != "super"), len(segments))
    if path is None or ups > len(path):
        return ()
    return _unique([_rust_walk(ws, root, [*path[: len(path) - ups], *segments[ups:]])[0]])


def _rust_other_crate(ws: _Workspace, importer: str, segments: list[str]) -> tuple[str, ...]:
    """A path starting with the name of a workspace crate (its library)."""
    dirs = ws.crate_dirs().get(segments[0])
    if not dirs:
        return ()
    src = posixpath.join(_nearest_first(dirs, posixpath.dirname(importer))[0], "src")
    return _unique(
        [_rust_walk(ws, _RustModule(posixpath.join(src, "lib.rs"), src), segments[1:])[0]]
    )


# --------------------------------------------------------------------------- Java


def _java_class(ws: _Workspace, importer_dir: str, parts: list[str]) -> str | None:
    """The file of class `parts` (package components then class name) under any source root."""
    found = [path for _root, path in ws.index.tail_matches("/".join(parts) + ".java")]
    return _nearest_first(found, importer_dir)[0] if found else None


def _java_package(ws: _Workspace, importer_dir: str, parts: list[str]) -> tuple[str, ...]:
    """Every .java file of package `parts`, in the source root nearest the importer."""
    dirs = [d for d in ws.index.dirs_ending_with("/".join(parts)) if _has_java(ws, d)]
    if not dirs:
        return ()
    directory = _nearest_first(dirs, importer_dir)[0]
    names = sorted(n for n in ws.index.listdir(directory) if n.endswith(".java"))
    return tuple(posixpath.join(directory, n) for n in names)


def _has_java(ws: _Workspace, directory: str) -> bool:
    return any(n.endswith(".java") for n in ws.index.listdir(directory))


def _resolve_java(ws: _Workspace, importer: str, _language: str, imp: Import) -> tuple[str, ...]:
    parts = imp.module.strip().split(".")
    if not _valid_parts(parts):
        return ()
    importer_dir = posixpath.dirname(importer)
    if imp.name == "*":
        package = _java_package(ws, importer_dir, parts)
        return package or _unique([_java_class(ws, importer_dir, parts)])
    if imp.name and _valid_parts([imp.name]):
        parts = [*parts, imp.name]
    # `a.b.Outer.Inner` and static `a.b.Cls.member`: the longest prefix that is a file.
    for cut in range(len(parts), 1, -1):
        if found := _java_class(ws, importer_dir, parts[:cut]):
            return (found,)
    return ()


# --------------------------------------------------------------------------- C / C++


def _resolve_c(ws: _Workspace, importer: str, _language: str, imp: Import) -> tuple[str, ...]:
    header = imp.module.strip()
    if not header or header.endswith("/"):
        return ()
    importer_dir = posixpath.dirname(importer)
    local = posixpath.normpath(posixpath.join(importer_dir, header))
    if local in ws.index.files:
        return (local,)
    tail = posixpath.normpath(header).lstrip("/")
    if tail.startswith("../") or tail in (".", ".."):
        return ()
    found = [path for _root, path in ws.index.tail_matches(tail)]
    return (_nearest_first(found, importer_dir)[0],) if found else ()


# --------------------------------------------------------------------------- resolver

_Resolve = Callable[[_Workspace, str, str, Import], tuple[str, ...]]

_RESOLVERS: dict[str, _Resolve] = {
    "python": _resolve_python,
    "javascript": _resolve_js,
    "typescript": _resolve_js,
    "tsx": _resolve_js,
    "go": _resolve_go,
    "rust": _resolve_rust,
    "java": _resolve_java,
    "c": _resolve_c,
    "cpp": _resolve_c,
}

# Languages whose resolution depends on the importing file, not just its directory
# (a Rust `foo.rs` has its submodules in `foo/`, its sibling `mod.rs` in `.`).
_KEYED_BY_FILE = frozenset({"rust"})


class ImportResolver:
    """Maps imports to workspace files; kept current as files are added and removed.

    Thread-safe. `add()`/`remove()` are a few set operations each; `resolve()`
    answers repeated questions from a cache that any change to the file set
    clears.
    """

    def __init__(self, read_text: ReadText) -> None:
        """`read_text(path)` returns a config file's text (go.mod, package.json,
        tsconfig.json, Cargo.toml) or None; it is called lazily and cached."""
        self._workspace = _Workspace(read_text)
        self._results: dict[tuple[str, str, str, str | None], tuple[str, ...]] = {}
        self._lock = threading.Lock()

    def add(self, path: str) -> None:
        """Index a workspace file (absolute POSIX path); adding it again means it changed."""
        path = posixpath.normpath(path)
        with self._lock:
            added = self._workspace.index.add(path)
            self._changed(path, added)

    def remove(self, path: str) -> None:
        """Forget a workspace file."""
        path = posixpath.normpath(path)
        with self._lock:
            removed = self._workspace.index.remove(path)
            self._changed(path, removed)

    def _changed(self, path: str, file_set_changed: bool) -> None:
        is_config = is_config_file(posixpath.basename(path))
        if is_config:
            self._workspace.forget_configs()
        if (file_set_changed or is_config) and self._results:
            self._results.clear()

    def resolve(self, importer: str, language: str, imp: Import) -> tuple[str, ...]:
        """The workspace files holding the module `imp` names, most likely first.

        Usually zero or one path; a Go package or a Java wildcard gives all
        the package's files, and `from pkg import sub` gives the submodule's
        file before the package's. Empty for external modules (standard
        library, third-party packages), for languages without rules, and
        for anything unparsable. The importer itself is never returned.
        """
        resolver = _RESOLVERS.get(language)
        if resolver is None:
            return ()
        try:
            importer = posixpath.normpath(importer)
            scope = importer if language in _KEYED_BY_FILE else posixpath.dirname(importer)
            key = (scope, language, imp.module, imp.name)
            with self._lock:
                found = self._results.get(key)
                if found is None:
                    found = resolver(self._workspace, importer, language, imp)
                    if len(self._results) >= _MAX_CACHED_RESULTS:
                        self._results.clear()
                    self._results[key] = found
        except Exception:  # best effort: a resolution bug must not fail a completion
            _log.exception("could not resolve %r from %s", imp, importer)
            return ()
        return tuple(p for p in found if p != importer)
