"""The prompt inspector: what the model would see at a position, and why.

Shared by the `codeLlama.showPrompt` command and `code-llama-ls prompt`: the
exact token ids, the prompt's text with its special tokens marked, and each
part's source and token count (every context snippet, the local prefix and
suffix), so a user can see why a completion came out as it did. The text is
what the model reads: a lone surrogate in the document shows as U+FFFD.
"""

from __future__ import annotations

from typing import Any

from code_llama_ls.pipeline.complete import PreparedPrompt
from code_llama_ls.pipeline.prompt import Prompt, PromptFormat
from code_llama_ls.tokens.tokenizer import tokenizable


def prompt_report(prepared: PreparedPrompt, model: str) -> dict[str, Any]:
    """A JSON-ready description of a prepared completion prompt."""
    report: dict[str, Any] = {
        "model": model,
        "mode": prepared.cursor.mode.value,
        "reason": prepared.cursor.reason,
        "budget": prepared.budget,
        "timingsMs": prepared.timings_ms,
    }
    prompt, local = prepared.prompt, prepared.local
    if prompt is None or local is None:
        return {**report, "format": None, "tokens": 0, "ids": [], "parts": [], "text": ""}
    context = prepared.context
    parts = [
        {
            "kind": block.kind,
            "path": block.display_path,
            "startLine": block.start_line + 1,
            "endLine": block.end_line + 1,
            "symbol": block.symbol,
            "summarized": block.summarized,
            "tokens": block.tokens,
        }
        for block in context.blocks
        if block.is_code
    ]
    parts.append(
        {"kind": "local prefix", "tokens": len(local.prefix_ids), "chars": len(local.prefix)}
    )
    if prompt.format is not PromptFormat.LEFT_TO_RIGHT:
        parts.append(
            {"kind": "local suffix", "tokens": len(local.suffix_ids), "chars": len(local.suffix)}
        )
    fixed = len(prompt.ids) - len(context.ids) - len(local.prefix_ids) - len(local.suffix_ids)
    return {
        **report,
        "format": prompt.format.value,
        "tokens": len(prompt.ids),
        "contextTokens": len(context.ids),
        "fixedTokens": fixed,
        "headerTokens": sum(b.tokens for b in context.blocks if not b.is_code),
        "ids": list(prompt.ids),
        "parts": parts,
        "family": None if prompt.family is None else prompt.family.key,
        "text": tokenizable(_marked_text(prompt, context.text, local.prefix, local.suffix)),
    }


def _marked_text(prompt: Prompt, context: str, prefix: str, suffix: str) -> str:
    """The prompt as text, its FIM tokens spelled as the model's family spells them."""
    family = prompt.family
    if family is None:
        return context + prefix
    # Code Llama's "▁<PRE>" is " <PRE>"; DeepSeek's "<｜fim▁begin｜>" keeps its "▁".
    pre, suf, mid = (
        " " + token[1:] if token.startswith("▁") else token
        for token in (family.prefix, family.suffix, family.middle)
    )
    head, body = (context, prefix) if prompt.context_first else ("", context + prefix)
    if prompt.format is PromptFormat.FIM_SPM:
        return f"{head}{pre}{suf}{suffix}{mid}{body}".lstrip(" ")
    return f"{head}{pre}{body}{suf}{suffix}{mid}".lstrip(" ")


def render_report(report: dict[str, Any]) -> str:
    """The report as Markdown: a table of the parts, then the prompt text."""
    head = (
        f"# Prompt at the cursor\n\n"
        f"- model: {report['model']}\n"
        f"- cursor: {report['mode']} ({report['reason']})\n"
    )
    if not report["parts"]:
        return head + "\nNo completion is requested here, so there is no prompt.\n"
    lines = [
        head,
        f"- format: {report['format']} ({report.get('family') or 'no FIM tokens'}); "
        f"{report['tokens']} of {report['budget']} tokens "
        f"({report['contextTokens']} context, {report['headerTokens']} of them headers "
        f"and separators, {report['fixedTokens']} fixed)\n",
        "\n| part | where | symbol | tokens |\n|---|---|---|---:|\n",
    ]
    for part in report["parts"]:
        where = (
            f"{part['path']}:{part['startLine']}-{part['endLine']}"
            + (" (summary)" if part.get("summarized") else "")
            if "path" in part
            else f"{part['chars']} characters"
        )
        lines.append(
            f"| {part['kind']} | {where} | {part.get('symbol') or ''} | {part['tokens']} |\n"
        )
    timings = ", ".join(f"{k} {v}" for k, v in report["timingsMs"].items())
    lines.append(f"\nBuilt in: {timings}\n\n## Prompt text\n\n````\n{report['text']}\n````\n")
    return "".join(lines)
