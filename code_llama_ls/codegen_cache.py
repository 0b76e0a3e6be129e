"""Compiled code that attrs, cattrs and dataclasses generate, kept between starts.

attrs writes Python source for the `__init__`, `__eq__` and `__repr__` of
each class it defines, cattrs for each structure/unstructure function, and
dataclasses for each dataclass's methods, and all compile that source on the
spot. lsprotocol defines 554 attrs classes: compiling their methods was 0.25
s of every server start (of 0.37 s importing `lsprotocol.types`), cattrs'
functions for `initialize` more, and this project's dataclasses 40 ms.
The source is the same on every start of the same versions, so, like
Python's own `.pyc` files, the code objects are kept: one marshal file per
Python, attrs, cattrs and lsprotocol version under the cache directory,
looked up by a hash of (source, file name). Only the compiling is skipped:
the modules run on as they would (they still `eval` or `exec` the code with
their own globals). A missing, stale or unreadable file costs nothing but the
compiling; the file is written atomically, once new code was compiled.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import marshal
import os
import sys
import threading
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any

log = logging.getLogger(__name__)

MODULES_SEEN = ("attr._make", "cattrs.gen", "lsprotocol.types", "dataclasses")
"""Whose files name the cache file: a new version of any of them starts a new one."""
GENERATING_MODULES = ("attr._make", "cattrs.gen", "cattrs.gen.typeddicts", "dataclasses")
"""The modules that call `compile` (or, dataclasses, `exec`) on generated source."""


class CodegenCache:
    """Code objects by hash of (source, file name); `compile` for the modules that generate code."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._code: dict[bytes, CodeType] = _read(path)
        self._new = 0
        self._lock = threading.Lock()

    def compile(self, source: Any, filename: Any, mode: str, *args: Any, **kwargs: Any) -> Any:
        """`compile`, answered from the cache for source strings compiled before."""
        if args or kwargs or not isinstance(source, str) or not isinstance(filename, str):
            return compile(source, filename, mode, *args, **kwargs)
        key = hashlib.blake2b(f"{mode}\0{filename}\0{source}".encode(), digest_size=16).digest()
        code = self._code.get(key)
        if code is None:
            code = compile(source, filename, mode)
            with self._lock:
                self._code[key] = code
                self._new += 1
        return code

    def exec(self, source: Any, globals: Any = None, locals: Any = None, /) -> None:
        """`exec`, with source strings compiled through the cache (as `exec` names them)."""
        code = self.compile(source, "<string>", "exec") if isinstance(source, str) else source
        exec(code, globals, locals)

    def install(self, module: ModuleType) -> None:
        """Make `module`'s calls of `compile` and `exec` go through this cache."""
        module.compile = self.compile  # type: ignore[attr-defined]
        module.exec = self.exec  # type: ignore[attr-defined]

    def save(self) -> bool:
        """Write the file when code was compiled since it was read; whether it was written."""
        with self._lock:
            if not self._new:
                return False
            kept, self._new = dict(self._code), 0
        import tempfile  # here, after the start

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
            try:
                with os.fdopen(handle, "wb") as out:
                    marshal.dump(kept, out)
                os.replace(temporary, self.path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except (OSError, ValueError) as exc:  # a read-only cache: start as fast as before
            log.debug("could not keep generated code in %s: %s", self.path, exc)
            return False
        return True


def _read(path: Path) -> dict[bytes, CodeType]:
    try:
        # `loads` of the whole file: `marshal.load` reading from the file took 40-70 ms
        # of the start for 1.4 MB, `loads` 8-11 ms.
        kept = marshal.loads(path.read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    return kept if isinstance(kept, dict) else {}


def cache_file(cache_dir: Path) -> Path:
    """The file for this Python (marshal's format) and these installed modules.

    The modules are told apart by their files' size and time, not their
    versions: `importlib.metadata` alone would take 30 ms of the start.
    """
    stamps = [importlib.util.MAGIC_NUMBER.hex()]
    for name in MODULES_SEEN:
        spec = importlib.util.find_spec(name)
        try:
            stat = os.stat(spec.origin) if spec is not None and spec.origin else None
        except OSError:
            stat = None
        stamps.append(f"{name}:{stat.st_size}:{stat.st_mtime_ns}" if stat else f"{name}:-")
    digest = hashlib.blake2b("|".join(stamps).encode(), digest_size=8).hexdigest()
    return cache_dir / "generated-code" / f"{sys.implementation.cache_tag}-{digest}.marshal"


def keep_generated_code(cache_dir: Path) -> CodegenCache:
    """Install a cache for the modules in `GENERATING_MODULES` (importing them, not lsprotocol)."""
    import importlib

    cache = CodegenCache(cache_file(cache_dir))
    for name in GENERATING_MODULES:
        try:
            cache.install(importlib.import_module(name))
        except ImportError:  # another cattrs layout: its code is compiled as before
            log.debug("no %s to keep generated code for", name)
    return cache
