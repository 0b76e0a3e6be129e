"""The session's lifecycle: initialize, initialized (load the model, then index), settings
changes, the status request, shutdown."""

from __future__ import annotations

import asyncio

from lsprotocol import types

from code_llama_ls.engine.base import Engine
from code_llama_ls.errors import GenerationError
from code_llama_ls.lsp.client_log import forward_logs_to_client
from code_llama_ls.lsp.errors import classify
from code_llama_ls.lsp.methods import GET_STATUS_REQUEST
from code_llama_ls.lsp.server import CodeLlamaServer
from code_llama_ls.lsp.workspace import (
    can_register_file_watchers,
    index_workspace,
    register_file_watchers,
    workspace_folder_uris,
)
from code_llama_ls.pipeline.fim import FimMode, FimTokens, describe_prompt
from code_llama_ls.serving.status import model_display_name
from code_llama_ls.text.positions import PositionEncoding


def register(server: CodeLlamaServer) -> None:
    """Register the lifecycle handlers on `server`."""

    @server.feature(types.INITIALIZE)
    def initialize(ls: CodeLlamaServer, params: types.InitializeParams) -> None:
        window = params.capabilities.window
        ls.supports_progress = bool(window and window.work_done_progress)
        general = params.capabilities.general
        ls.documents.encoding = PositionEncoding.negotiate(
            general.position_encodings if general else None
        )
        ls.apply_settings(params.initialization_options, "initializationOptions")
        ls.workspace_folders = workspace_folder_uris(params)
        ls.watch_files = can_register_file_watchers(params.capabilities)
        ls.log_handler = forward_logs_to_client(ls)

    @server.feature(types.INITIALIZED)
    async def initialized(ls: CodeLlamaServer, params: types.InitializedParams) -> None:
        ls.initialized = True
        # The model first: indexing alongside it (both hold the GIL) delayed
        # ready from 1.5 to 2.1 s on this repository, and context is of no use
        # before the model can complete. Nor does it wait for the client to
        # register the file watchers (a round trip).
        loading = asyncio.ensure_future(load_model(ls))
        if ls.watch_files and ls.settings.context.workspace:
            await register_file_watchers(ls)
        await loading
        ls.workspace_indexing = asyncio.ensure_future(index_workspace(ls, ls.workspace_folders))
        await ls.workspace_indexing

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(
        ls: CodeLlamaServer, params: types.DidChangeConfigurationParams
    ) -> None:
        before = ls.settings
        ls.apply_settings(params.settings, "workspace/didChangeConfiguration")
        after = ls.settings
        if after.context.workspace and not before.context.workspace:
            ls.workspace_indexing = asyncio.ensure_future(index_workspace(ls, ls.workspace_folders))
        if after.engine != before.engine:
            ls.model_loading = asyncio.ensure_future(load_model(ls))
        elif after.completion.fim_mode != before.completion.fim_mode:
            _describe_prompt(ls, ls.jobs.engines.loaded(after.engine))
            ls.publish_status()
        elif after.explain_engine() != before.explain_engine():
            ls.jobs.engines.keep_only(after.engine, after.explain_engine())

    @server.feature(GET_STATUS_REQUEST)
    def get_status(ls: CodeLlamaServer, params: object) -> dict[str, object]:
        return {
            **ls.status.to_json(),
            "stats": ls.completions.stats.to_json(),
            "acceptance": ls.acceptance.to_json(),
        }

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: CodeLlamaServer, params: None) -> None:
        # The workers stay: over TCP another client may follow. `exit` or the
        # end of the stream ends the session and `close` stops them.
        ls.completions.cancel_all()


async def load_model(ls: CodeLlamaServer) -> None:
    """Load the completion model ahead of the first request, showing progress."""
    settings = ls.settings
    ls.jobs.engines.keep_only(settings.engine, settings.explain_engine())
    ls.status.model = model_display_name(settings.engine.model)
    ls.status.device, ls.status.error, ls.status.loading = None, None, True
    ls.publish_status()
    async with ls.work_progress("code-llama-ls: loading model") as report:
        try:
            engine = await ls.jobs.load(settings.engine, report)
        except Exception as exc:
            ls.fail(exc, "loading the model")
            if ls.status.error is None:  # a bug rather than a ModelLoadError
                ls.status.error = classify(exc).message
        else:
            ls.status.model, ls.status.device = engine.name, engine.device
            _describe_prompt(ls, engine)
            await _connect(ls, engine)
        finally:
            ls.status.loading = False
            ls.publish_status()


def _describe_prompt(ls: CodeLlamaServer, engine: Engine | None) -> None:
    mode = FimMode(ls.settings.completion.fim_mode)
    ls.status.prompt = None if engine is None else describe_prompt(engine.tokenizer, mode)


async def _connect(ls: CodeLlamaServer, engine: Engine) -> None:
    """Reach what serves the engine's model, and say what the user should know."""
    try:
        served = await ls.jobs.connect(engine)
    except GenerationError as exc:
        ls.fail(exc, "connecting to the inference server")
        return
    if served is None:  # nothing to connect to: a model of this process's own
        return
    ls.note_model_success()
    ls.status.model = engine.name
    if FimTokens.from_tokenizer(engine.tokenizer) is None:
        ls.show_message(
            f"code-llama-ls: {served.model or engine.name} at {engine.device} has no "
            "fill-in-the-middle tokens, so completions see only the code before the cursor. "
            "Serve a model that infills (Code Llama, StarCoder2, DeepSeek-Coder, "
            "Qwen2.5-Coder, CodeGemma), and set `model` to its tokenizer.",
            types.MessageType.Warning,
        )
