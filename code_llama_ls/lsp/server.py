"""The LSP edge: capabilities, handlers, progress and cancellation wiring (pygls 2).

Handlers translate LSP to plain calls and back, nothing else. Model work
goes to the single model worker; the event loop only ever does document
sync and bookkeeping, so `initialize`, `shutdown` and `didChange` are
answered at once while a model loads or generates. Every failure, from any
handler, goes through `CodeLlamaServer.fail`: `lsp_errors` decides the
reply, and model trouble becomes a red status and one `window/showMessage`.
Completion requests answer model trouble with an empty list: editors ask on
every keystroke and would show each failed request.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from code_llama_ls import __version__
from code_llama_ls.config import Settings, settings_from_client
from code_llama_ls.context.builder import ContextBuilder, uri_to_path
from code_llama_ls.context.index import IndexProgress, WorkspaceIndex
from code_llama_ls.context.indexer import WorkspaceIndexer
from code_llama_ls.context.recent import RecentEdits
from code_llama_ls.engine.base import CancelToken, Engine, ProgressCallback
from code_llama_ls.errors import (
    CodeLlamaLsError,
    ConfigError,
    EngineUnreachableError,
    GenerationError,
    InvalidRequestError,
    ModelLoadError,
    UnknownDocumentError,
)
from code_llama_ls.lsp.errors import Failure, Kind, classify, is_client_mistake
from code_llama_ls.lsp.progress import ClientLogHandler, WorkProgress, forward_logs_to_client
from code_llama_ls.lsp.protocol import CodeLlamaProtocol
from code_llama_ls.memory import release_free_memory
from code_llama_ls.pipeline.complete import Completion, CompletionOptions, complete, prepare_prompt
from code_llama_ls.pipeline.explain import explain
from code_llama_ls.pipeline.prompt import FimMode, FimTokens
from code_llama_ls.serving.scheduler import CompletionScheduler, SchedulerSettings
from code_llama_ls.serving.status import (
    GET_STATUS_REQUEST,
    STATUS_NOTIFICATION,
    ServerStatus,
    model_display_name,
)
from code_llama_ls.serving.worker import EngineHolder, ModelWorker, RequestCancelled
from code_llama_ls.text.documents import DocumentStore, Snapshot, TextChange
from code_llama_ls.text.positions import PositionEncoding
from code_llama_ls.tools.memory_report import MEMORY_REQUEST, memory_report
from code_llama_ls.tools.prompt_report import prompt_report, render_report

log = logging.getLogger(__name__)

EXPLAIN_COMMAND = "codeLlama.explain"
SHOW_PROMPT_COMMAND = "codeLlama.showPrompt"
DOCUMENT_REQUEST = "codeLlama/document"
MEMORY_RELEASE_DELAY_S = 1.0
"""After the last didClose, how long to wait before returning freed memory to the system."""

EngineLoader = Callable[[Settings, ProgressCallback | None], Engine]


class CodeLlamaServer(LanguageServer):
    """Server state: settings, open documents, the model worker and the engine."""

    protocol: CodeLlamaProtocol

    def __init__(self, loader: EngineLoader, settings: Settings) -> None:
        super().__init__("code-llama-ls", __version__, protocol_cls=CodeLlamaProtocol)
        self.settings = settings
        self.documents = DocumentStore(max_bytes=settings.max_document_bytes)
        self.worker = ModelWorker()
        self.engines = EngineHolder(loader)
        self.completions = CompletionScheduler(self.generate_completion)
        self.supports_progress = False
        self._shown_errors: set[str] = set()
        self._engine_down: str | None = None
        self._tokens_by_request: dict[int | str, CancelToken] = {}
        self.client_progress_tokens: dict[int | str, types.ProgressToken] = {}
        self.model_loading: asyncio.Future[None] | None = None
        self.status = ServerStatus(model_display_name(settings.model))
        self.index = WorkspaceIndex()
        self.recent_edits = RecentEdits()
        self.context_builder = ContextBuilder(self.index, self.recent_edits)
        self.indexer = WorkspaceIndexer(self.index)
        self.workspace_folders: list[str] = []
        self._published_status: dict[str, object] | None = None
        self.initialized = False
        self.watch_files = False
        self.workspace_indexing: asyncio.Future[None] | None = None
        self._log_handler: ClientLogHandler | None = None
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
        self._published_status = None
        self._shown_errors.clear()
        if self._log_handler is not None:
            self._log_handler.detach()
            self._log_handler = None
        self.protocol.reset_session()

    def close(self) -> None:
        """Stop the model worker and the indexer (the process is ending)."""
        self.worker.shutdown()
        self.indexer.shutdown()

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

    # -- settings and errors -------------------------------------------------

    def apply_settings(self, payload: object, source: str) -> None:
        """Layer what the client sent over the current settings; show bad keys."""
        try:
            self.settings = self.settings.with_values(settings_from_client(payload, source), source)
        except ConfigError as exc:
            self.show_error(f"code-llama-ls: {exc}. The previous value is kept.")
            return
        self.documents.max_bytes = self.settings.max_document_bytes
        self.indexer.enabled = self.settings.workspace_context
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

    async def connect_remote(self, engine: Engine) -> None:
        """Ask a remote engine's server what it serves, and say what the user should know."""
        # Only engines that talk to a server connect (not importing the remote
        # engine's HTTP client to ask: 50 ms of every start).
        connect: Callable[[], Any] | None = getattr(engine, "connect", None)
        if connect is None:
            return
        try:
            info = await self.worker.run(connect, CancelToken())
        except GenerationError as exc:
            self.fail(exc, "connecting to the inference server")
            return
        self.note_model_success()
        self.status.model = engine.name
        if FimTokens.from_tokenizer(engine.tokenizer) is None:
            self.show_message(
                f"code-llama-ls: {info.model or engine.name} at {engine.device} has no "
                "fill-in-the-middle tokens, so completions see only the code before the cursor. "
                "Serve a Code Llama model, and set `model` to its tokenizer, for infilling.",
                types.MessageType.Warning,
            )

    def publish_status(self) -> None:
        """Send `codeLlama/status` when it changed (event loop only)."""
        payload = self.status.to_json()
        if self.initialized and payload != self._published_status:
            self._published_status = payload
            self.protocol.notify(STATUS_NOTIFICATION, payload)

    @contextlib.contextmanager
    def generating(self) -> Iterator[None]:
        """Show the model as busy for as long as the block runs (event loop only)."""
        try:
            with self.status.generating():
                self.publish_status()
                yield
        finally:
            self.publish_status()

    # -- model work ----------------------------------------------------------

    def engine(self, on_progress: ProgressCallback | None = None) -> Engine:
        """The completion engine for the current settings (model thread only)."""
        return self.engines.get(self.settings, on_progress)

    def explain_engine(self, on_progress: ProgressCallback | None = None) -> Engine:
        """The engine that writes explanations (model thread only)."""
        return self.engines.get(self.settings.for_explanations(), on_progress)

    async def load_model(self) -> None:
        """Load the completion model ahead of the first request, showing progress."""
        self.engines.keep_only(self.settings, self.settings.for_explanations())
        self.status.model = model_display_name(self.settings.model)
        self.status.device, self.status.error, self.status.loading = None, None, True
        self.publish_status()
        async with self.work_progress("code-llama-ls: loading model") as report:
            try:
                engine = await self.worker.run(lambda: self.engine(report), CancelToken())
            except Exception as exc:
                self.fail(exc, "loading the model")
                if self.status.error is None:  # a bug rather than a ModelLoadError
                    self.status.error = classify(exc).message
            else:
                self.status.model, self.status.device = engine.name, engine.device
                await self.connect_remote(engine)
            finally:
                self.status.loading = False
                self.publish_status()

    async def index_workspace(self, folders: list[str]) -> None:
        """Index workspace folders (file uris) in the background, showing progress."""
        if not folders or not self.settings.workspace_context:
            return
        async with self.work_progress("code-llama-ls: indexing workspace") as report:
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
                count = await asyncio.wrap_future(self.indexer.index_folder(root, progress))
                log.info(
                    "indexed %s: %d files, %d lines in %.2f s",
                    root,
                    count,
                    self.index.total_lines,
                    time.perf_counter() - began,
                )

    def completion_options(self) -> CompletionOptions:
        """The completion settings now in force."""
        return CompletionOptions(
            FimMode(self.settings.infill_mode),
            self.settings.max_new_tokens,
            self.settings.context_tokens,
            self.settings.time_budget_ms,
        )

    def context(self) -> ContextBuilder | None:
        """The cross-file context builder, when the settings want one."""
        return self.context_builder if self.settings.workspace_context else None

    async def run_show_prompt(self, uri: str, position: types.Position) -> dict[str, Any]:
        """The prompt inspector's report for a position (no generation)."""
        snapshot = self.documents.get(uri)
        offset = snapshot.offset_at(position.line, position.character)
        options, context = self.completion_options(), self.context()
        report = await self.worker.run(
            lambda: prompt_report(
                prepare_prompt(self.engine(), snapshot, offset, options, context),
                self.engine().name,
            ),
            CancelToken(),
        )
        return {**report, "markdown": render_report(report)}

    async def completion_or_nothing(
        self, uri: str, position: types.Position, invoked: bool
    ) -> tuple[Snapshot, Completion] | None:
        """`run_completion`, with every failure but the client's own answered by nothing."""
        try:
            return await self.run_completion(uri, position, invoked=invoked)
        except Exception as exc:
            if is_client_mistake(exc):
                raise
            self.fail(exc, f"completion at {uri}")
            return None

    async def run_completion(
        self, uri: str, position: types.Position, *, invoked: bool = False
    ) -> tuple[Snapshot, Completion] | None:
        """The completion at a position, or None when there is nothing to show.

        `invoked`: the user asked for it explicitly (no debounce).
        """
        try:
            snapshot = self.documents.get(uri)
        except UnknownDocumentError:
            return None
        offset = snapshot.offset_at(position.line, position.character)
        settings = SchedulerSettings(self.settings.completion_cache, self.settings.debounce_ms)
        try:
            completion = await self.completions.complete(
                snapshot, offset, settings, invoked=invoked
            )
        except RequestCancelled:
            return None
        self.note_model_success()
        if completion is None or not self.is_current(snapshot):
            log.info("completion at %s v%d dropped: superseded", uri, snapshot.version)
            return None
        return snapshot, completion

    async def generate_completion(
        self,
        snapshot: Snapshot,
        offset: int,
        token: CancelToken,
        on_text: Callable[[str], None],
        debounced_s: float,
    ) -> Completion:
        """Run the model for a completion (the scheduler decides when).

        Its time budget counts the `debounced_s` the request waited for typing
        to pause, as the user waited them too, but not a model still loading.
        """
        options, context = self.completion_options(), self.context()
        request_id = uuid.uuid4().hex[:8]
        began = time.perf_counter()

        def run() -> Completion:
            engine = self.engine()
            budget_from = time.perf_counter() - debounced_s
            timed = dataclasses.replace(options, budget_from=budget_from)
            return complete(engine, snapshot, offset, timed, token, request_id, context, on_text)

        with self.generating():
            completion = await self.worker.run(run, token)
            if not token.cancelled:
                self.status.last_completion_ms = (time.perf_counter() - began) * 1000
        return completion

    def is_current(self, snapshot: Snapshot) -> bool:
        """Whether the document is still at the snapshot's version."""
        try:
            return self.documents.get(snapshot.uri).version == snapshot.version
        except UnknownDocumentError:
            return False

    async def run_explain(self, uri: str, selection: types.Range) -> str:
        """The Markdown explanation of a range, streamed as work-done progress."""
        snapshot = self.documents.get(uri)
        start = snapshot.offset_at(selection.start.line, selection.start.character)
        end = snapshot.offset_at(selection.end.line, selection.end.character)
        if end < start:
            raise InvalidRequestError("range end is before its start")
        cancel = CancelToken()
        progress_token = self.client_progress_tokens.get(self.protocol.msg_id or "")
        with self.cancellable(cancel), self.generating():
            return await self._explain(snapshot, start, end, cancel, progress_token)

    async def _explain(
        self,
        snapshot: Snapshot,
        start: int,
        end: int,
        cancel: CancelToken,
        progress_token: types.ProgressToken | None,
    ) -> str:
        progress = self.work_progress("Explaining selection", cancel, token=progress_token)
        async with progress as report:
            explanation = await self.worker.run(
                lambda: explain(
                    self.explain_engine(),
                    snapshot,
                    start,
                    end,
                    max_new_tokens=self.settings.explain_max_new_tokens,
                    context_tokens=self.settings.context_tokens,
                    cancel=cancel,
                    on_text=lambda text: report(text, None),
                ),
                cancel,
            )
        self.note_model_success()
        if cancel.cancelled:
            raise RequestCancelled("explanation cancelled")
        return explanation.markdown

    def work_progress(
        self,
        title: str,
        cancel: CancelToken | None = None,
        *,
        token: types.ProgressToken | None = None,
    ) -> WorkProgress:
        """Progress on the client's `token`, else on ours when the client supports it."""
        return WorkProgress(self, title, cancel, token=token, supported=self.supports_progress)


def create_server(loader: EngineLoader, settings: Settings) -> CodeLlamaServer:
    """A server with every feature registered."""
    server = CodeLlamaServer(loader, settings)
    _register_lifecycle(server)
    _register_documents(server)
    _register_completion(server)
    _register_explain(server)
    _register_workspace(server)
    _register_memory(server)
    return server


def _register_lifecycle(server: CodeLlamaServer) -> None:
    @server.feature(types.INITIALIZE)
    def initialize(ls: CodeLlamaServer, params: types.InitializeParams) -> None:
        window = params.capabilities.window
        ls.supports_progress = bool(window and window.work_done_progress)
        general = params.capabilities.general
        ls.documents.encoding = PositionEncoding.negotiate(
            general.position_encodings if general else None
        )
        ls.apply_settings(params.initialization_options, "initializationOptions")
        ls.workspace_folders = _workspace_folder_uris(params)
        ls.watch_files = _can_register_file_watchers(params.capabilities)
        ls._log_handler = forward_logs_to_client(ls)

    @server.feature(types.INITIALIZED)
    async def initialized(ls: CodeLlamaServer, params: types.InitializedParams) -> None:
        ls.initialized = True
        # The model first: indexing alongside it (both hold the GIL) delayed
        # ready from 1.5 to 2.1 s on this repository, and context is of no use
        # before the model can complete. Nor does it wait for the client to
        # register the file watchers (a round trip).
        loading = asyncio.ensure_future(ls.load_model())
        if ls.watch_files and ls.settings.workspace_context:
            await _register_file_watchers(ls)
        await loading
        ls.workspace_indexing = asyncio.ensure_future(ls.index_workspace(ls.workspace_folders))
        await ls.workspace_indexing

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(
        ls: CodeLlamaServer, params: types.DidChangeConfigurationParams
    ) -> None:
        before = ls.settings
        ls.apply_settings(params.settings, "workspace/didChangeConfiguration")
        after = ls.settings
        if after.workspace_context and not before.workspace_context:
            ls.workspace_indexing = asyncio.ensure_future(ls.index_workspace(ls.workspace_folders))
        if after.engine_key() != before.engine_key():
            ls.model_loading = asyncio.ensure_future(ls.load_model())
        elif after.for_explanations().engine_key() != before.for_explanations().engine_key():
            ls.engines.keep_only(after, after.for_explanations())

    @server.feature(GET_STATUS_REQUEST)
    def get_status(ls: CodeLlamaServer, params: object) -> dict[str, object]:
        return {**ls.status.to_json(), "stats": ls.completions.stats.to_json()}

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: CodeLlamaServer, params: None) -> None:
        # The workers stay: over TCP another client may follow. `exit` or the
        # end of the stream ends the session and `close` stops them.
        ls.completions.cancel_all()


def _register_documents(server: CodeLlamaServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: CodeLlamaServer, params: types.DidOpenTextDocumentParams) -> None:
        doc = params.text_document
        snapshot = ls.documents.open(doc.uri, doc.language_id, doc.version, doc.text)
        if not (snapshot.too_large or snapshot.binary):
            ls.indexer.document_opened(uri_to_path(doc.uri), snapshot.language, snapshot.text)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: CodeLlamaServer, params: types.DidChangeTextDocumentParams) -> None:
        changes = [_text_change(change) for change in params.content_changes]
        uri = params.text_document.uri
        try:
            snapshot = ls.documents.change(uri, params.text_document.version, changes)
        except InvalidRequestError as exc:
            # Our copy would drift from the editor's: forget it until the
            # document is reopened. The client erred, so it is logged, no popup.
            ls.forget_document(uri)
            raise InvalidRequestError(
                f"{exc}; {uri} is no longer served until it is opened again"
            ) from exc
        ls.completions.edited(uri)
        path = uri_to_path(uri)
        for change in changes:
            if change.range is not None:
                ls.recent_edits.record(path, change.range[0][0])
        if not (snapshot.too_large or snapshot.binary):
            ls.indexer.document_changed(path, snapshot.language, snapshot.text)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: CodeLlamaServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.forget_document(params.text_document.uri)

    @server.feature(DOCUMENT_REQUEST)
    def document(ls: CodeLlamaServer, params: object) -> dict[str, object]:
        # pygls hands methods lsprotocol does not know their params as a namedtuple.
        uri = getattr(params, "uri", None)
        if not isinstance(uri, str):
            raise InvalidRequestError(f"{DOCUMENT_REQUEST} expects {{uri}}")
        snapshot = ls.documents.get(uri)
        return {
            "uri": uri,
            "version": snapshot.version,
            "text": snapshot.text,
            "lineCount": snapshot.line_index.line_count,
            "encoding": snapshot.encoding.value,
            "language": snapshot.language,
            "tooLarge": snapshot.too_large,
            "binary": snapshot.binary,
        }


def _text_change(change: types.TextDocumentContentChangeEvent) -> TextChange:
    if isinstance(change, types.TextDocumentContentChangePartial):
        start, end = change.range.start, change.range.end
        return TextChange(((start.line, start.character), (end.line, end.character)), change.text)
    return TextChange(None, change.text)


def _register_completion(server: CodeLlamaServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: CodeLlamaServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList:
        invoked = params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked
        result = await ls.completion_or_nothing(params.text_document.uri, params.position, invoked)
        if result is None or not result[1].text:
            return types.InlineCompletionList(items=[])
        here = types.Range(params.position, params.position)
        return types.InlineCompletionList(
            items=[types.InlineCompletionItem(insert_text=result[1].text, range=here)]
        )

    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions())
    async def completion(
        ls: CodeLlamaServer, params: types.CompletionParams
    ) -> types.CompletionList:
        invoked = (
            params.context is not None
            and params.context.trigger_kind == types.CompletionTriggerKind.Invoked
        )
        result = await ls.completion_or_nothing(params.text_document.uri, params.position, invoked)
        if result is None or not result[1].text:
            return types.CompletionList(is_incomplete=True, items=[])
        snapshot, done = result
        return types.CompletionList(
            is_incomplete=True, items=[_completion_item(snapshot, params.position, done.text)]
        )


def _completion_item(
    snapshot: Snapshot, position: types.Position, text: str
) -> types.CompletionItem:
    """A completion item that replaces the word before the cursor with word + suggestion.

    Clients filter items by the word being typed; starting the edit at that
    word keeps the suggestion visible (the same trick Copilot's server uses).
    """
    offset = snapshot.offset_at(position.line, position.character)
    start = offset
    while start > 0 and (snapshot.text[start - 1].isalnum() or snapshot.text[start - 1] == "_"):
        start -= 1
    word = snapshot.text[start:offset]
    line, character = snapshot.position_at(start)
    edit_range = types.Range(types.Position(line, character), position)
    first_line = (word + text).strip().splitlines()[0] if (word + text).strip() else text
    return types.CompletionItem(
        label=first_line[:80],
        kind=types.CompletionItemKind.Snippet,
        detail="Code Llama",
        documentation=types.MarkupContent(
            kind=types.MarkupKind.Markdown,
            value=f"```{snapshot.language or ''}\n{word + text}\n```",
        ),
        filter_text=word + text,
        text_edit=types.TextEdit(range=edit_range, new_text=word + text),
        insert_text_format=types.InsertTextFormat.PlainText,
        sort_text="0",
    )


def _register_explain(server: CodeLlamaServer) -> None:
    @server.command(EXPLAIN_COMMAND)
    async def explain_command(ls: CodeLlamaServer, *args: Any) -> str:
        uri, selection = _explain_arguments(args)
        return await ls.run_explain(uri, selection)

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.RefactorRewrite]),
    )
    def code_action(ls: CodeLlamaServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        if params.text_document.uri not in ls.documents:
            return []
        start, end = params.range.start, params.range.end
        argument = {
            "uri": params.text_document.uri,
            "range": {
                "start": {"line": start.line, "character": start.character},
                "end": {"line": end.line, "character": end.character},
            },
        }
        command = types.Command(
            title="Explain selection", command=EXPLAIN_COMMAND, arguments=[argument]
        )
        return [
            types.CodeAction(
                title="Explain selection",
                kind=types.CodeActionKind.RefactorRewrite,
                command=command,
            )
        ]


def _explain_arguments(args: tuple[Any, ...]) -> tuple[str, types.Range]:
    """Read `{uri, range}` from a command's arguments; anything else is InvalidParams."""
    try:
        argument = args[0]
        uri = argument["uri"]
        start, end = argument["range"]["start"], argument["range"]["end"]
        selection = types.Range(
            types.Position(int(start["line"]), int(start["character"])),
            types.Position(int(end["line"]), int(end["character"])),
        )
    except (IndexError, KeyError, TypeError, ValueError) as exc:
        raise InvalidRequestError(
            f"{EXPLAIN_COMMAND} expects one argument {{uri, range}}: {exc!r}"
        ) from None
    if (
        not isinstance(uri, str)
        or min(
            selection.start.line,
            selection.start.character,
            selection.end.line,
            selection.end.character,
        )
        < 0
    ):
        raise InvalidRequestError(f"{EXPLAIN_COMMAND}: invalid uri or range")
    return uri, selection


def _workspace_folder_uris(params: types.InitializeParams) -> list[str]:
    """The workspace folders' uris: workspaceFolders, else rootUri, else rootPath."""
    if params.workspace_folders:
        return [folder.uri for folder in params.workspace_folders]
    if params.root_uri:
        return [params.root_uri]
    if params.root_path:
        return [Path(params.root_path).resolve().as_uri()]
    return []


def _can_register_file_watchers(capabilities: types.ClientCapabilities) -> bool:
    watched = capabilities.workspace.did_change_watched_files if capabilities.workspace else None
    return bool(watched and watched.dynamic_registration)


async def _register_file_watchers(ls: CodeLlamaServer) -> None:
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


def _register_workspace(server: CodeLlamaServer) -> None:
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
        await ls.index_workspace(added)

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched_files(
        ls: CodeLlamaServer, params: types.DidChangeWatchedFilesParams
    ) -> None:
        for change in params.changes:
            if change.uri.startswith("file:") and change.uri not in ls.documents:
                deleted = change.type == types.FileChangeType.Deleted
                ls.indexer.file_changed(uri_to_path(change.uri), deleted=deleted)

    @server.command(SHOW_PROMPT_COMMAND)
    async def show_prompt(ls: CodeLlamaServer, *args: Any) -> dict[str, Any]:
        uri, position = _position_argument(args)
        return await ls.run_show_prompt(uri, position)


def _register_memory(server: CodeLlamaServer) -> None:
    @server.feature(MEMORY_REQUEST)
    def memory(ls: CodeLlamaServer, params: object) -> dict[str, Any]:
        engines = [
            (role, engine)
            for role, settings in (
                ("completion", ls.settings),
                ("explanation", ls.settings.for_explanations()),
            )
            if (engine := ls.engines.loaded(settings)) is not None
        ]
        return memory_report(
            engines=engines,
            documents=ls.documents,
            index=ls.index,
            context=ls.context_builder,
            typed_through=ls.completions.typed_through,
            in_flight=ls.completions.in_flight,
        )


def _position_argument(args: tuple[Any, ...]) -> tuple[str, types.Position]:
    """Read `{uri, position}` from a command's arguments; anything else is InvalidParams."""
    try:
        argument = args[0]
        uri = argument["uri"]
        position = types.Position(
            int(argument["position"]["line"]), int(argument["position"]["character"])
        )
    except (IndexError, KeyError, TypeError, ValueError) as exc:
        raise InvalidRequestError(
            f"{SHOW_PROMPT_COMMAND} expects one argument {{uri, position}}: {exc!r}"
        ) from None
    if not isinstance(uri, str) or min(position.line, position.character) < 0:
        raise InvalidRequestError(f"{SHOW_PROMPT_COMMAND}: invalid uri or position")
    return uri, position
