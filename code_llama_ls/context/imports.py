"""Resolving an import to the workspace files that hold the module it names.

`ImportResolver` is the one entry point: the index reports files to it as
they come and go, and asks it where an import leads. The work is split in
two modules: `import_workspace` indexes the workspace's paths and reads its
config files (go.mod, package.json, tsconfig*.json, Cargo.toml) lazily,
cached until `add()`/`remove()` reports that path again; `import_rules` holds
the per-language rules (Python, JavaScript/TypeScript, Go, Rust, Java,
C/C++). Resolution is best effort and never raises: an external or
unresolvable import gives `()`.
"""

from __future__ import annotations

import logging
import posixpath
import threading

from code_llama_ls.context.import_rules import KEYED_BY_FILE, RESOLVERS
from code_llama_ls.context.import_workspace import ReadText, Workspace
from code_llama_ls.context.outline import Import

__all__ = ["ImportResolver", "ReadText", "is_config_file"]

_log = logging.getLogger(__name__)

_MAX_CACHED_RESULTS = 100_000

_CONFIG_NAMES = frozenset({"go.mod", "package.json", "Cargo.toml"})


def is_config_file(name: str) -> bool:
    """Whether a file name is a config file whose contents resolution depends on."""
    return name in _CONFIG_NAMES or (
        name.endswith(".json") and name.startswith(("tsconfig", "jsconfig"))
    )


class ImportResolver:
    """Maps imports to workspace files; kept current as files are added and removed.

    Thread-safe. `add()`/`remove()` are a few set operations each; `resolve()`
    answers repeated questions from a cache that any change to the file set
    clears.
    """

    def __init__(self, read_text: ReadText) -> None:
        """`read_text(path)` returns a config file's text (go.mod, package.json,
        tsconfig.json, Cargo.toml) or None; it is called lazily and cached."""
        self._workspace = Workspace(read_text)
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
        resolver = RESOLVERS.get(language)
        if resolver is None:
            return ()
        try:
            importer = posixpath.normpath(importer)
            scope = importer if language in KEYED_BY_FILE else posixpath.dirname(importer)
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
