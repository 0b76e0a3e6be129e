"""The server's state and what every feature shares: failures, messages, status, sessions.

`CodeLlamaServer` holds the open documents, the settings, the model jobs and
the completion scheduler, the workspace index, the status and the
acceptance counts; the features (`lifecycle`, `acceptance`, `document_sync`,
`completion`, `explain`, `prompt_inspector`, `workspace`, `memory`) register
their handlers on it in `create_server`.
Handlers translate LSP to plain calls and back, nothing else. Model work
goes to the single model worker; the event loop only ever does document
sync and bookkeeping, so `initialize`, `shutdown` and `didChange` are
answered at once while a model loads or generates. Every failure, from any
handler, goes through `CodeLlamaServer.fail`: `lsp.errors` decides the
reply, and model trouble becomes a red status and one `window/showMessage`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from code_llama_ls import __version__
from code_llama_ls.cancel import CancelToken
from code_llama_ls.config import Settings, settings_from_client, state_dir
from code_llama_ls.context.builder import ContextBuilder
from code_llama_ls.context.index import WorkspaceIndex
from code_llama_ls.context.indexer import WorkspaceIndexer
from code_llama_ls.context.recent import RecentEdits
from code_llama_ls.errors import (
    CodeLlamaLsError,
    ConfigError,
    EngineUnreachableError,
    ModelLoadError,
)
from code_llama_ls.lsp.client_log import ClientLogHandler
from code_llama_ls.lsp.errors import Failure, Kind, classify
from code_llama_ls.lsp.methods import STATUS_NOTIFICATION
from code_llama_ls.lsp.progress import WorkProgress
from code_llama_ls.lsp.protocol import CodeLlamaProtocol
from code_llama_ls.memory import release_free_memory
from code_llama_ls.serving.acceptance import STATS_FILE, AcceptanceStats
from code_llama_ls.serving.engines import EngineHolder, EngineLoader
from code_llama_ls.serving.jobs import ModelJobs
from code_llama_ls.serving.scheduler import CompletionScheduler
from code_llama_ls.serving.status import ServerStatus, model_display_name
from code_llama_ls.serving.worker import ModelWorker
from code_llama_ls.text.documents import DocumentStore
from code_llama_ls.text.uri import uri_to_path

log = logging.getLogger(__name__)

MEMORY_RELEASE_DELAY_S = 1.0
"""After the last didClose, how long to wait before returning freed memory to the system."""


class CodeLlamaServer(LanguageServer):
    """Server state: settings, open documents, the model's jobs and the workspace index."""

    protocol: CodeLlamaProtocol

    def __init__(self, loader: EngineLoader, settings: Settings) -> None:
        super().__init__("code-llama-ls", __version__, protocol_cls=CodeLlamaProtocol)
        self.settings = settings
        self.documents = DocumentStore(max_bytes=settings.max_document_bytes)
        self.status = ServerStatus(model_display_name(settings.engine.model))
        self.status.on_busy_change = self.publish_status
        self.index = WorkspaceIndex()
        self.recent_edits = RecentEdits()
        self.context_builder = ContextBuilder(self.index, self.recent_edits)
        self.indexer = WorkspaceIndexer(self.index)
        self.jobs = ModelJobs(ModelWorker(), EngineHolder(loader), self.context_builder)
        self.completions = CompletionScheduler(self.jobs, self.status)
        self.acceptance = AcceptanceStats(_stats_path(settings))
        self.acceptance_save: asyncio.TimerHandle | None = None
        self.supports_progress = False
        self.client_progress_tokens: dict[int | str, types.ProgressToken] = {}
        self.model_loading: asyncio.Future[None] | None = None
        self.workspace_folders: list[str] = []
        self.initialized = False
        self.watch_files = False
        self.workspace_indexing: asyncio.Future[None] | None = None
        self.log_handler: ClientLogHandler | None = None
        self._shown_errors: set[str] = set()
        self._engine_down: str | None = None
        self._tokens_by_request: dict[int | str, CancelToken] = {}
        self._published_status: dict[str, object] | None = None
        self._memory_release: asyncio.TimerHandle | None = None

    @contextlib.contextmanager
    def cancellable(self, token: CancelToken) -> Iterator[CancelToken]:
        """Tie `token` to the request being handled, so `$/cancelRequest` reaches it."""
        request_id = self.protocol.msg_id
        if request_id is not None:
            self._tokens_by_request[request_id] = token
        try:
            yield token
        finally:
            if request_id is not None:
                self._tokens_by_request.pop(request_id, None)

    def cancel_model_work(self, request_id: int | str) -> None:
        """Cancel the model work of a request, if it has any."""
        token = self._tokens_by_request.get(request_id)
        if token is not None:
            token.cancel()

    # -- sessions ------------------------------------------------------------

    def forget_document(self, uri: str) -> None:
        """Drop an open document and everything kept for it (didClose, or its client left)."""
        self.completions.closed(uri)
        language = self.documents.get(uri).language if uri in self.documents else None
        self.documents.close(uri)
        self.recent_edits.forget(uri_to_path(uri))
        self.indexer.document_closed(uri_to_path(uri), language)
        self._release_memory_soon()

    def _release_memory_soon(self) -> None:
        """Return freed memory to the system once documents stop closing (event loop only).

        The index forgets a closed document on its own thread, after the work
        queued there: the release waits for that too.
        """
        if self._memory_release is not None:
            self._memory_release.cancel()
        self._memory_release = asyncio.get_running_loop().call_later(
            MEMORY_RELEASE_DELAY_S, self.indexer.after_queued_work, release_free_memory
        )

    def end_session(self) -> None:
        """The client is gone: cancel its work and forget its documents and folders.

        The engines stay loaded, so the next client of a TCP server is served at once.
        """
        self.completions.cancel_all()
        for token in self._tokens_by_request.values():
            token.cancel()
        self._tokens_by_request.clear()
        for snapshot in self.documents.snapshots():
            self.forget_document(snapshot.uri)
        for folder in self.workspace_folders:
            self.indexer.remove_folder(Path(uri_to_path(folder)))
        self.workspace_folders = []
        self.initialized = False
        self.acceptance.save()
        self._published_status = None
        self._shown_errors.clear()
        if self.log_handler is not None:
            self.log_handler.detach()
            self.log_handler = None
        self.protocol.reset_session()

    def close(self) -> None:
        """Stop the model worker and the indexer, and keep the counts (the process is ending)."""
        self.jobs.worker.shutdown()
        self.indexer.shutdown()
        self.acceptance.save()

    # -- failures ------------------------------------------------------------

    def fail(self, exc: BaseException, what: str) -> Failure:
        """Log a failure, tell the user when they must act, and say what to answer."""
        failure = classify(exc)
        if failure.kind is Kind.BUG:
            log.error("%s failed: %s", what, failure.message, exc_info=exc)
        else:
            log.log(failure.log_level, "%s: %s", what, failure.message)
        if failure.kind is Kind.MODEL_TROUBLE and isinstance(exc, CodeLlamaLsError):
            self.note_model_failure(exc)
        return failure

    def report_server_error(self, error: Exception, source: Any) -> None:
        # pygls pops up its own failures as "Error in server: …"; what reaches
        # here is logged only (the user acts on `fail`'s messages, not these).
        log.error("pygls: %s (%s)", error, getattr(source, "__name__", source))

    # -- settings and messages -----------------------------------------------

    def apply_settings(self, payload: object, source: str) -> None:
        """Layer what the client sent over the current settings; show bad keys."""
        try:
            self.settings = self.settings.with_values(settings_from_client(payload, source), source)
        except ConfigError as exc:
            self.show_error(f"code-llama-ls: {exc}. The previous value is kept.")
            return
        self.documents.max_bytes = self.settings.max_document_bytes
        self.indexer.enabled = self.settings.context.workspace
        self.acceptance.keep_in(_stats_path(self.settings))
        logging.getLogger("code_llama_ls").setLevel(self.settings.log_level.upper())

    def show_error(self, message: str, *, once: bool = False) -> None:
        """Tell the user through window/showMessage (once per text when asked)."""
        if once and message in self._shown_errors:
            return
        self._shown_errors.add(message)
        log.error("%s", message)
        self.window_show_message(
            types.ShowMessageParams(type=types.MessageType.Error, message=message)
        )

    def show_message(self, message: str, kind: types.MessageType) -> None:
        """Tell the user something that is not an error (warning or info)."""
        level = logging.WARNING if kind == types.MessageType.Warning else logging.INFO
        log.log(level, "%s", message)
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def work_progress(
        self,
        title: str,
        cancel: CancelToken | None = None,
        *,
        token: types.ProgressToken | None = None,
    ) -> WorkProgress:
        """Progress on the client's `token`, else on ours when the client supports it."""
        return WorkProgress(self, title, cancel, token=token, supported=self.supports_progress)

    # -- the model and the status --------------------------------------------

    def note_model_failure(self, exc: CodeLlamaLsError) -> None:
        """Show why model work failed; an unreachable server marks the status until it answers."""
        message = f"code-llama-ls: {exc}"
        if isinstance(exc, ModelLoadError) and self.status.error != str(exc):
            self.status.error = str(exc)
            self.publish_status()
        if not isinstance(exc, EngineUnreachableError):
            self.show_error(message, once=True)
            return
        if self._engine_down is None:
            message += ". Completions resume when it answers."
            self._engine_down = self.status.error = message
            self.publish_status()
            self.show_error(self._engine_down)

    def note_model_success(self) -> None:
        """After an outage of the inference server: say it answers again and clear the status."""
        if self._engine_down is None:
            return
        if self.status.error == self._engine_down:
            self.status.error = None
        self._engine_down = None
        self.publish_status()
        answered = "code-llama-ls: the inference server answers again."
        self.show_message(answered, types.MessageType.Info)

    def publish_status(self) -> None:
        """Send `codeLlama/status` when it changed (event loop only)."""
        payload = self.status.to_json()
        if self.initialized and payload != self._published_status:
            self._published_status = payload
            self.protocol.notify(STATUS_NOTIFICATION, payload)


def _stats_path(settings: Settings) -> Path | None:
    return state_dir() / STATS_FILE if settings.keep_acceptance_stats else None


def create_server(loader: EngineLoader, settings: Settings) -> CodeLlamaServer:
    """A server with every feature registered."""
    from code_llama_ls.lsp import (
        acceptance,
        completion,
        document_sync,
        explain,
        lifecycle,
        memory,
        prompt_inspector,
        workspace,
        yanks,
    )

    server = CodeLlamaServer(loader, settings)
    for feature in (
        lifecycle,
        acceptance,
        document_sync,
        completion,
        explain,
        prompt_inspector,
        workspace,
        yanks,
        memory,
    ):
        feature.register(server)
    return server
