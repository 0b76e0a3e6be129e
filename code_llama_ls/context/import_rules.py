"""The per-language rules that map one import to the workspace files holding its module.

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

Each rule is a `Resolve` function over the `Workspace` (`import_workspace`),
listed by language in `RESOLVERS`; `ImportResolver` (`imports`) caches and
guards their answers.
"""

from __future__ import annotations

import posixpath
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial

from code_llama_ls.context.import_workspace import Workspace
from code_llama_ls.context.outline import Import

__all__ = ["KEYED_BY_FILE", "RESOLVERS", "Resolve"]

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


# --------------------------------------------------------------------------- Python

# Where module `a.b` may live relative to a root, most Python-like first.
_PY_FORMS = ("{}/__init__.py", "{}.py", "{}/__init__.pyi", "{}.pyi")
_PY_PACKAGE_MARKERS = ("__init__.py", "__init__.pyi")


def _py_at(ws: Workspace, base: str, parts: list[str]) -> str | None:
    """Module `parts` under directory `base` (the package itself when `parts` is empty)."""
    if not parts:
        return ws.index.first_file(posixpath.join(base, m) for m in _PY_PACKAGE_MARKERS)
    rel = "/".join(parts)
    return ws.index.first_file(posixpath.join(base, form.format(rel)) for form in _PY_FORMS)


def _py_anywhere(ws: Workspace, importer_dir: str, parts: list[str]) -> str | None:
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


def _is_package_dir(ws: Workspace, directory: str) -> bool:
    names = ws.index.listdir(directory)
    return any(m in names for m in _PY_PACKAGE_MARKERS)


def _resolve_python(ws: Workspace, importer: str, _language: str, imp: Import) -> tuple[str, ...]:
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
_TSCONFIG_NAMES = ("tsconfig.json", "jsconfig.json")


def _js_candidates(base: str, prefer_ts: bool) -> Iterator[str]:
    """Paths a specifier resolving to `base` may mean, in probing order."""
    stem, ext = posixpath.splitext(base)
    twins = [stem + t for t in _JS_TS_TWINS.get(ext, ())]
    yield from (*twins, base) if prefer_ts else (base, *twins)
    for extension in _JS_EXTENSIONS:
        yield base + extension
    for extension in _JS_EXTENSIONS:
        yield f"{base}/index{extension}"


def _js_file(ws: Workspace, base: str, prefer_ts: bool) -> str | None:
    return ws.index.first_file(_js_candidates(base, prefer_ts))


def _split_package(spec: str) -> tuple[str, str]:
    """("@scope/name" or "name", subpath) of a bare specifier."""
    cut = 2 if spec.startswith("@") else 1
    parts = spec.split("/", cut)
    return "/".join(parts[:cut]), "/".join(parts[cut:])


def _js_package(ws: Workspace, importer_dir: str, spec: str, prefer_ts: bool) -> str | None:
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


def _resolve_js(ws: Workspace, importer: str, language: str, imp: Import) -> tuple[str, ...]:
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


def _go_package_files(ws: Workspace, directory: str) -> tuple[str, ...]:
    names = ws.index.listdir(directory)
    return tuple(
        posixpath.join(directory, n)
        for n in sorted(names)
        if n.endswith(".go") and not n.endswith("_test.go")
    )


def _resolve_go(ws: Workspace, importer: str, _language: str, imp: Import) -> tuple[str, ...]:
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


def _crate_root_of(ws: Workspace, importer: str) -> _RustModule | None:
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


def _src_root(ws: Workspace, src: str, importer: str) -> _RustModule:
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


def _rust_walk(ws: Workspace, start: _RustModule, segments: list[str]) -> tuple[str | None, int]:
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


def _resolve_rust(ws: Workspace, importer: str, _language: str, imp: Import) -> tuple[str, ...]:
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
    ws: Workspace, root: _RustModule, here: _RustModule, segments: list[str]
) -> tuple[str, ...]:
    """`super::…` and `super::super::…`, walked down from the crate root."""
    path = _module_path(root, here)
    ups = next((i for i, s in enumerate(segments) if s != "super"), len(segments))
    if path is None or ups > len(path):
        return ()
    return _unique([_rust_walk(ws, root, [*path[: len(path) - ups], *segments[ups:]])[0]])


def _rust_other_crate(ws: Workspace, importer: str, segments: list[str]) -> tuple[str, ...]:
    """A path starting with the name of a workspace crate (its library)."""
    dirs = ws.crate_dirs().get(segments[0])
    if not dirs:
        return ()
    src = posixpath.join(_nearest_first(dirs, posixpath.dirname(importer))[0], "src")
    return _unique(
        [_rust_walk(ws, _RustModule(posixpath.join(src, "lib.rs"), src), segments[1:])[0]]
    )


# --------------------------------------------------------------------------- Java


def _java_class(ws: Workspace, importer_dir: str, parts: list[str]) -> str | None:
    """The file of class `parts` (package components then class name) under any source root."""
    found = [path for _root, path in ws.index.tail_matches("/".join(parts) + ".java")]
    return _nearest_first(found, importer_dir)[0] if found else None


def _java_package(ws: Workspace, importer_dir: str, parts: list[str]) -> tuple[str, ...]:
    """Every .java file of package `parts`, in the source root nearest the importer."""
    dirs = [d for d in ws.index.dirs_ending_with("/".join(parts)) if _has_java(ws, d)]
    if not dirs:
        return ()
    directory = _nearest_first(dirs, importer_dir)[0]
    names = sorted(n for n in ws.index.listdir(directory) if n.endswith(".java"))
    return tuple(posixpath.join(directory, n) for n in names)


def _has_java(ws: Workspace, directory: str) -> bool:
    return any(n.endswith(".java") for n in ws.index.listdir(directory))


def _resolve_java(ws: Workspace, importer: str, _language: str, imp: Import) -> tuple[str, ...]:
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


def _resolve_c(ws: Workspace, importer: str, _language: str, imp: Import) -> tuple[str, ...]:
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


# --------------------------------------------------------------------------- by language

Resolve = Callable[[Workspace, str, str, Import], tuple[str, ...]]

RESOLVERS: dict[str, Resolve] = {
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
KEYED_BY_FILE = frozenset({"rust"})
