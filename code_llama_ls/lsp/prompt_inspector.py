"""The prompt inspector: `codeLlama.showPrompt` reports the prompt a completion at a position
would send, part by part, without generating."""

from __future__ import annotations

from typing import Any

from code_llama_ls.lsp.arguments import uri_and_position
from code_llama_ls.lsp.completion import completion_request
from code_llama_ls.lsp.methods import SHOW_PROMPT_COMMAND
from code_llama_ls.lsp.server import CodeLlamaServer
from code_llama_ls.tools.prompt_report import prompt_report, render_report


def register(server: CodeLlamaServer) -> None:
    """Register the prompt inspector's command on `server`."""

    @server.command(SHOW_PROMPT_COMMAND)
    async def show_prompt(ls: CodeLlamaServer, *args: Any) -> dict[str, Any]:
        uri, position = uri_and_position(SHOW_PROMPT_COMMAND, args)
        request = completion_request(ls, ls.documents.get(uri), position)
        prepared, engine = await ls.jobs.prepare(request)
        report = prompt_report(prepared, engine.name)
        return {**report, "markdown": render_report(report)}
