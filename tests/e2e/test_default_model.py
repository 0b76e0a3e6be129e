"""The offline default model (SmolLM2-135M-Instruct) through the real server.

It has no FIM tokens: completions take the left-to-right path, and
explanations go through its ChatML template. Its answers are not fixed, so
these tests assert the shape of what comes back, not its words.
"""

from __future__ import annotations

import sys

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.e2e.conftest import capabilities

URI = "file:///project/fib.py"
TEXT = 'def fibonacci(n: int) -> int:\n    """Return the n-th Fibonacci number."""\n    \n'


async def test_default_model_completes_left_to_right_and_explains() -> None:
    config = ClientServerConfig(server_command=[sys.executable, "-m", "code_llama_ls", "serve"])
    client = await config.start()
    assert isinstance(client, LanguageClient)
    try:
        await client.initialize_session(
            types.InitializeParams(
                capabilities=capabilities("visual-studio-code"),
                initialization_options={
                    "maxNewTokens": 24,
                    "explainMaxNewTokens": 48,
                    "candidates": 1,
                },
            )
        )
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=URI, language_id="python", version=1, text=TEXT
                )
            )
        )
        result = await client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=URI),
                position=types.Position(2, 4),
                context=types.InlineCompletionContext(
                    trigger_kind=types.InlineCompletionTriggerKind.Invoked
                ),
            )
        )
        assert isinstance(result, types.InlineCompletionList)
        assert len(result.items) == 1, "the default model suggested nothing"
        text = result.items[0].insert_text
        assert isinstance(text, str) and text.strip()
        # Multi-line body of the function: every later line stays inside it.
        for line in text.split("\n")[1:]:
            assert not line.strip() or line.startswith("    "), text

        explanation = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="codeLlama.explain",
                arguments=[
                    {
                        "uri": URI,
                        "range": {
                            "start": {"line": 0, "character": 0},
                            "end": {"line": 3, "character": 0},
                        },
                    }
                ],
            )
        )
        assert isinstance(explanation, str) and len(explanation.split()) >= 5, explanation
        assert "<|im_end|>" not in explanation and "<|im_start|>" not in explanation
        assert not [m for m in client.messages if m.type == types.MessageType.Error]
    finally:
        await client.shutdown_session()
        await client.stop()
