"""Keeping the workspace index current, off the event loop.

Indexing runs on its own thread (never the model's, so a completion never
waits for it). Workspace folders are indexed when they are opened; open
documents are re-indexed from their live text a moment after the user stops
typing; watched-file events re-read, drop or re-resolve single files. The
event loop only schedules: nothing here blocks it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from code_llama_ls.context.files import IgnoreRules, path_language
from code_llama_ls.context.index import IndexProgress, WorkspaceIndex

log = logging.getLogger(__name__)

DOCUMENT_DEBOUNCE_S = 0.5
"""How long after the last keystroke an open document is re-indexed."""

# Files that change how imports resolve rather than what a file defines.
_RESOLUTION_FILES = frozenset({"go.mod", "package.json", "tsconfig.json", "Cargo.toml"})


class WorkspaceIndexer:
    """Schedules index work on one background thread."""

    def __init__(self, index: WorkspaceIndex, enabled: bool = True) -> None:
        self.index = index
        self.enabled = enabled
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="indexer")
        self._rules: dict[str, IgnoreRules] = {}
        self._pending: dict[str, asyncio.TimerHandle] = {}
        self._stop = threading.Event()

    def index_folder(
        self, root: Path, on_progress: Callable[[IndexProgress], None] | None = None
    ) -> Future[int]:
        """Index a workspace folder in the background; the future gives the files indexed."""
        self._rules[root.resolve().as_posix()] = IgnoreRules(root)
        return self._executor.submit(self.index.index_root, root, self._stop.is_set, on_progress)

    def remove_folder(self, root: Path) -> None:
        """Forget a workspace folder."""
        self._rules.pop(root.resolve().as_posix(), None)
        self._executor.submit(self.index.remove_root, root)

    def document_changed(self, path: str, language: str | None, text: str) -> None:
        """An open document's text changed: re-index it once typing pauses (event loop only)."""
        if not self.enabled or language is None:
            return
        handle = self._pending.pop(path, None)
        if handle is not None:
            handle.cancel()
        loop = asyncio.get_running_loop()
        self._pending[path] = loop.call_later(
            DOCUMENT_DEBOUNCE_S, self._submit_document, path, language, text
        )

    def document_opened(self, path: str, language: str | None, text: str) -> None:
        """A document was opened: index its text now."""
        if self.enabled and language is not None:
            self._submit_document(path, language, text)

    def document_closed(self, path: str, language: str | None) -> None:
        """A document was closed: the disk's version counts again."""
        handle = self._pending.pop(path, None)
        if handle is not None:
            handle.cancel()
        if self.enabled and language is not None:
            self._executor.submit(self.index.close, path, language)

    def file_changed(self, path: str, *, deleted: bool) -> None:
        """A watched file was created, changed or deleted on disk."""
        if not self.enabled:
            return
        name = Path(path).name
        if name == ".gitignore":
            for rules in self._rules.values():
                rules.reload(Path(path))
        elif name in _RESOLUTION_FILES:
            self._executor.submit(self.index.resolution_file_changed, path)
        elif deleted:
            self._executor.submit(self.index.remove, path)
        elif (language := path_language(path)) is not None and not self._ignored(path):
            self._executor.submit(self.index.update_from_disk, path, language)

    def after_queued_work(self, work: Callable[[], object]) -> None:
        """Run `work` on the index thread once the work queued before it is done."""
        if not self._stop.is_set():
            self._executor.submit(work)

    def shutdown(self) -> None:
        """Stop: a running scan ends at its next file, queued work is dropped."""
        self._stop.set()
        for handle in self._pending.values():
            handle.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _submit_document(self, path: str, language: str, text: str) -> None:
        self._pending.pop(path, None)
        self._executor.submit(self.index.update, path, language, text, is_open=True)

    def _ignored(self, path: str) -> bool:
        holders = [root for root in self._rules if path.startswith(root.rstrip("/") + "/")]
        if not holders:
            return True  # outside every workspace folder
        return self._rules[max(holders, key=len)].is_ignored(Path(path))
