"""The workspace: its folders (indexed in the background, with progress), folder changes,
and files changed on disk (watched through the client)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path

from lsprotocol import types

from code_llama_ls.context.index import IndexProgress
from code_llama_ls.lsp.server import CodeLlamaServer
from code_llama_ls.text.uri import uri_to_path

log = logging.getLogger(__name__)


def register(server: CodeLlamaServer) -> None:
    """Register the workspace handlers on `server`."""

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    async def did_change_folders(
        ls: CodeLlamaServer, params: types.DidChangeWorkspaceFoldersParams
    ) -> None:
        for folder in params.event.removed:
            if folder.uri in ls.workspace_folders:
                ls.workspace_folders.remove(folder.uri)
            ls.indexer.remove_folder(Path(uri_to_path(folder.uri)))
        added = [f.uri for f in params.event.added if f.uri not in ls.workspace_folders]
        ls.workspace_folders += added
        await index_workspace(ls, added)

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched_files(
        ls: CodeLlamaServer, params: types.DidChangeWatchedFilesParams
    ) -> None:
        for change in params.changes:
            if change.uri.startswith("file:") and change.uri not in ls.documents:
                deleted = change.type == types.FileChangeType.Deleted
                ls.indexer.file_changed(uri_to_path(change.uri), deleted=deleted)


async def index_workspace(ls: CodeLlamaServer, folders: list[str]) -> None:
    """Index workspace folders (file uris) in the background, showing progress."""
    if not folders or not ls.settings.context.workspace:
        return
    async with ls.work_progress("code-llama-ls: indexing workspace") as report:
        for uri in folders:
            root = Path(uri_to_path(uri))
            if not root.is_dir():
                continue

            def progress(p: IndexProgress) -> None:
                report(
                    f"{Path(p.root).name}: {p.files_done}/{p.files_total} files",
                    p.files_done / max(p.files_total, 1),
                )

            began = time.perf_counter()
            count = await asyncio.wrap_future(ls.indexer.index_folder(root, progress))
            log.info(
                "indexed %s: %d files, %d lines in %.2f s",
                root,
                count,
                ls.index.total_lines,
                time.perf_counter() - began,
            )


def workspace_folder_uris(params: types.InitializeParams) -> list[str]:
    """The workspace folders' uris: workspaceFolders, else rootUri, else rootPath."""
    if params.workspace_folders:
        return [folder.uri for folder in params.workspace_folders]
    if params.root_uri:
        return [params.root_uri]
    if params.root_path:
        return [Path(params.root_path).resolve().as_uri()]
    return []


def can_register_file_watchers(capabilities: types.ClientCapabilities) -> bool:
    """Whether the client lets us register file watchers."""
    watched = capabilities.workspace.did_change_watched_files if capabilities.workspace else None
    return bool(watched and watched.dynamic_registration)


async def register_file_watchers(ls: CodeLlamaServer) -> None:
    """Ask the client to tell us when workspace files change on disk."""
    options = types.DidChangeWatchedFilesRegistrationOptions(
        watchers=[types.FileSystemWatcher(glob_pattern="**/*")]
    )
    registration = types.Registration(
        id=f"code-llama-ls/watch/{uuid.uuid4().hex[:8]}",
        method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
        register_options=options,
    )
    try:
        await ls.client_register_capability_async(
            types.RegistrationParams(registrations=[registration])
        )
    except Exception:  # a client may refuse; the index then only follows open documents
        log.info("the client did not accept file watchers", exc_info=True)
