"""`codeLlama/memory`: what holds the server's memory, from each of its parts."""

from __future__ import annotations

from typing import Any

from code_llama_ls.lsp.methods import MEMORY_REQUEST
from code_llama_ls.lsp.server import CodeLlamaServer
from code_llama_ls.tools.memory_report import memory_report


def register(server: CodeLlamaServer) -> None:
    """Register the memory request on `server`."""

    @server.feature(MEMORY_REQUEST)
    def memory(ls: CodeLlamaServer, params: object) -> dict[str, Any]:
        roles = (("completion", ls.settings.engine), ("explanation", ls.settings.explain_engine()))
        engines = [
            (role, engine)
            for role, settings in roles
            if (engine := ls.jobs.engines.loaded(settings)) is not None
        ]
        return memory_report(
            engines=engines,
            documents=ls.documents,
            index=ls.index,
            context=ls.context_builder,
            typed_through=ls.completions.typed_through,
            in_flight=ls.completions.in_flight,
            written_ahead=ls.completions.ahead,
        )
