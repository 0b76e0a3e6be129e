"""The model's jobs: each one pipeline call, run in order on the model worker's thread.

Where a request meets its engine: `complete` runs `pipeline.complete` on the
engine its request names (loading it on first use), with the workspace's
context when the request wants it; `prepare` stops before the model (the
prompt inspector); `explain` writes an explanation; `load` and `connect`
bring an engine up. Awaited from the event loop; cancelling the awaiting
task cancels the job's token.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from code_llama_ls.cancel import CancelToken
from code_llama_ls.config import EngineSettings
from code_llama_ls.context.builder import ContextBuilder
from code_llama_ls.engine.base import Engine, ProgressCallback, ServedModel
from code_llama_ls.pipeline.complete import PreparedPrompt, complete, prepare_prompt
from code_llama_ls.pipeline.explain import ExplainRequest, Explanation, explain
from code_llama_ls.pipeline.request import Completion, CompletionRequest
from code_llama_ls.serving.engines import EngineHolder
from code_llama_ls.serving.worker import ModelWorker


class ModelJobs:
    """Runs completions, prompts, explanations and loads on the model thread."""

    def __init__(self, worker: ModelWorker, engines: EngineHolder, context: ContextBuilder) -> None:
        self.worker = worker
        self.engines = engines
        self.context = context

    async def load(
        self, settings: EngineSettings, on_progress: ProgressCallback | None = None
    ) -> Engine:
        """The engine for `settings`, loaded (and warmed up) if it is not yet."""
        return await self.worker.run(lambda: self.engines.get(settings, on_progress), CancelToken())

    async def connect(self, engine: Engine) -> ServedModel | None:
        """Reach what serves `engine`'s model (`Engine.connect`)."""
        return await self.worker.run(engine.connect, CancelToken())

    async def complete(
        self,
        request: CompletionRequest,
        cancel: CancelToken,
        on_text: Callable[[str], None] | None = None,
        waited_s: float = 0.0,
    ) -> Completion:
        """The completion `request` asks for.

        Its time budget counts the `waited_s` the request waited for typing
        to pause, as the user waited them too, but not a model still loading.
        """

        def run() -> Completion:
            engine = self.engines.get(request.engine)
            timed = dataclasses.replace(request, budget_from=time.perf_counter() - waited_s)
            return complete(timed, engine, cancel, context=self._context(request), on_text=on_text)

        return await self.worker.run(run, cancel)

    async def prepare(self, request: CompletionRequest) -> tuple[PreparedPrompt, Engine]:
        """The prompt `request` would send, and the engine it would go to (no generation)."""

        def run() -> tuple[PreparedPrompt, Engine]:
            engine = self.engines.get(request.engine)
            return prepare_prompt(request, engine, self._context(request)), engine

        return await self.worker.run(run, CancelToken())

    async def explain(
        self,
        request: ExplainRequest,
        cancel: CancelToken,
        on_text: Callable[[str], None] | None = None,
    ) -> Explanation:
        """The explanation `request` asks for."""
        return await self.worker.run(
            lambda: explain(request, self.engines.get(request.engine), cancel, on_text), cancel
        )

    def _context(self, request: CompletionRequest) -> ContextBuilder | None:
        return self.context if request.options.workspace_context else None
