"""Build a directory of the model cache once, atomically: converted models, ONNX exports.

The directory is written under a temporary name beside its target and renamed
into place when complete, so a build that is killed never leaves a half
directory that a later run would use. Leftover temporaries older than an
hour are deleted; when two processes race, the second uses the first's.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from code_llama_ls.errors import ModelLoadError

STALE_TMP_SECONDS = 3600.0
"""Temporaries older than this belong to builds that were killed."""


def build_once(
    target: Path,
    is_complete: Callable[[Path], bool],
    build: Callable[[Path], None],
    failure: Callable[[Exception], str],
) -> Path:
    """`target`, built by `build(temporary_dir)` unless `is_complete(target)` already.

    A failed build raises ModelLoadError with `failure(exc)` as its message
    (a ModelLoadError from `build` passes through as it is).
    """
    if is_complete(target):
        return target
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelLoadError(
            f"Cannot create the model cache {parent}: {exc}. "
            "Set CODE_LLAMA_LS_CACHE to a writable directory."
        ) from exc
    _remove_stale_temporaries(parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=parent))
    try:
        build(tmp)
        if target.exists() and not is_complete(target):
            shutil.rmtree(target, ignore_errors=True)  # an incomplete one from older code
        try:
            tmp.rename(target)
        except OSError:
            if not is_complete(target):  # else another process finished it first
                raise
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(failure(exc)) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _remove_stale_temporaries(directory: Path) -> None:
    now = time.time()
    for entry in directory.glob(".tmp-*"):
        with contextlib.suppress(OSError):
            if now - entry.stat().st_mtime > STALE_TMP_SECONDS:
                shutil.rmtree(entry, ignore_errors=True)
