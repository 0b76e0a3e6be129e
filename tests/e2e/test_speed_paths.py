"""The speed paths through the real server: typed-through answers, prefix-KV reuse, off switches.

The tiny Code Llama-shaped model answers ADD_FILE's hole with ADD_MIDDLE.
Typing the suggestion's first character must be answered from the
suggestion (no model call); with the completion cache off the model runs
again, reusing the keys/values of the prompt it shares (prefix-KV), unless
`prefixCacheEntries` is 0. The counters come from `codeLlama/getStatus`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.e2e.lsp_client import inline_text, insert_text, open_document, plain, start_client
from tests.scenarios import ADD_FILE, ADD_MIDDLE, ADD_URI, cursor_position, split_cursor


async def _stats(client: LanguageClient) -> dict[str, Any]:
    status = plain(await client.protocol.send_request_async("codeLlama/getStatus", None))
    return plain(status["stats"])


async def _suggest_then_type_one_character(
    tiny_model: Path, options: dict[str, object]
) -> tuple[list[str], list[str], dict[str, Any]]:
    settings = {"debounceMs": 0, "speculate": False, **options}
    client, _ = await start_client("visual-studio-code", tiny_model, settings)
    try:
        open_document(client, ADD_URI, "python", "".join(split_cursor(ADD_FILE)))
        cursor = cursor_position(ADD_FILE)
        first = await inline_text(client, ADD_URI, cursor)
        insert_text(client, ADD_URI, 2, cursor, ADD_MIDDLE[0])
        moved = types.Position(cursor.line, cursor.character + 1)
        second = await inline_text(client, ADD_URI, moved)
        return first, second, await _stats(client)
    finally:
        await client.shutdown_session()
        await client.stop()


async def test_typing_the_suggestion_is_answered_without_the_model(tiny_model: Path) -> None:
    first, second, stats = await _suggest_then_type_one_character(tiny_model, {})
    assert first == [ADD_MIDDLE]
    assert second == [ADD_MIDDLE[1:]]
    assert (stats["completions"], stats["modelCalls"], stats["typedThroughHits"]) == (2, 1, 1)


async def test_without_the_completion_cache_the_model_reuses_the_shared_prefix(
    tiny_model: Path,
) -> None:
    first, _, stats = await _suggest_then_type_one_character(tiny_model, {"completionCache": False})
    assert first == [ADD_MIDDLE]
    assert (stats["modelCalls"], stats["typedThroughHits"]) == (2, 0)
    assert stats["cachedTokens"] > 0  # the second prompt's keys/values mostly reused
    assert stats["prefilledTokens"] < stats["promptTokens"] / 2 + 5


async def test_naive_settings_compute_every_prompt_in_full(tiny_model: Path) -> None:
    _, _, stats = await _suggest_then_type_one_character(
        tiny_model, {"completionCache": False, "prefixCacheEntries": 0}
    )
    assert stats["modelCalls"] == 2
    assert stats["cachedTokens"] == 0
    assert stats["prefilledTokens"] == stats["promptTokens"]


async def _stats_when(
    client: LanguageClient, ready: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The status' counters once `ready` holds of them and of the state (60 s at most)."""
    for _ in range(3000):
        status = plain(await client.protocol.send_request_async("codeLlama/getStatus", None))
        stats = {**plain(status["stats"]), "state": status["state"]}
        if ready(stats):
            return stats
        await asyncio.sleep(0.02)
    completions = [m.message[:200] for m in client.log_messages if "completion" in m.message]
    raise AssertionError(f"never: {stats}; the server logged {completions}")


async def test_the_suggestion_after_an_accept_is_written_ahead(tiny_model: Path) -> None:
    client, _ = await start_client("visual-studio-code", tiny_model, {"debounceMs": 0})
    try:
        open_document(client, ADD_URI, "python", "".join(split_cursor(ADD_FILE)))
        cursor = cursor_position(ADD_FILE)
        assert await inline_text(client, ADD_URI, cursor) == [ADD_MIDDLE]
        written = await _stats_when(
            client, lambda s: s["writtenAhead"] == 1 and s["state"] == "ready"
        )
        assert written["modelCalls"] == 2
        insert_text(client, ADD_URI, 2, cursor, ADD_MIDDLE)  # the accept
        accepted = types.Position(cursor.line, cursor.character + len(ADD_MIDDLE))
        await inline_text(client, ADD_URI, accepted)
        stats = await _stats(client)
        assert (stats["aheadHits"], stats["modelCalls"]) == (1, 2), "answered from the cache"
    finally:
        await client.shutdown_session()
        await client.stop()


async def test_a_keystroke_cancels_writing_ahead(babbling_model: Path) -> None:
    # The babbling model never stops: only the time budget (2 s) or a cancel ends the
    # suggestion written ahead; the keystroke comes 0.3 s after it began.
    settings = {"debounceMs": 0, "maxNewTokens": 1000, "timeBudgetMs": 2000}
    client, _ = await start_client("visual-studio-code", babbling_model, settings)
    try:
        open_document(client, ADD_URI, "python", "".join(split_cursor(ADD_FILE)))
        cursor = cursor_position(ADD_FILE)
        await inline_text(client, ADD_URI, cursor)
        await _stats_when(client, lambda s: s["writtenAhead"] == 1)
        # Counted when it is started, maybe before the model thread takes it up: let it run a
        # moment (it runs for 2 s) so that the cancel usually reaches the model mid-generation.
        await asyncio.sleep(0.3)
        insert_text(client, ADD_URI, 2, cursor, "x")  # not the suggestion
        stats = await _stats_when(
            client, lambda s: s["aheadCancelled"] == 1 and s["state"] == "ready"
        )
        assert stats["aheadHits"] == 0
        # Had the model begun, it stopped for the cancel, not for the time budget.
        ahead = [m.message for m in client.log_messages if f"+ {ADD_URI} v1:" in m.message]
        assert all(", cancelled, " in line for line in ahead), ahead
    finally:
        await client.shutdown_session()
        await client.stop()
