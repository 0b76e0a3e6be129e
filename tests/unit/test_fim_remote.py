"""The remote backend with the FIM families: the family's ids and stops reach the server.

Against servers answering as vLLM and TGI document their APIs
(`tests/scripted_http.py`), with the look-alike tokenizers of
`tests/fim_families.py` on the client side: vLLM gets the prompt builder's
ids and the family's stop ids; TGI gets text that a tokenizer which parses
control tokens (as TGI's does) reads back as the same ids, its BOS left for
the server to add, and the client stops at the family's stop ids as they
stream.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from code_llama_ls.cancel import CancelToken
from code_llama_ls.engine.base import GenerationParams
from code_llama_ls.engine.tokenizer_files import load_tokenizer
from code_llama_ls.pipeline.fim import FimMode
from code_llama_ls.pipeline.prompt import Prompt, build_completion_prompt
from code_llama_ls.tokens.tokenizer import TokenizerLike
from tests.fim_families import build_family_tokenizer
from tests.scripted_http import Reply, ScriptedServer, as_tgi, as_vllm, openai_chunks
from tests.unit.test_remote_engine import engine_for

PREFIX = "def area(w, h):\n    return "
SUFFIX = "\n\n\nprint(area(2, 3))\n"


@pytest.fixture(scope="module")
def family_tokenizers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Any]]:
    built = {}
    for family in ("qwen-coder", "deepseek-coder"):
        built[family] = build_family_tokenizer(family, tmp_path_factory.mktemp(family))
    return {family: (directory, load_tokenizer(directory)) for family, directory in built.items()}


def _prompt(tok: TokenizerLike) -> Prompt:
    return build_completion_prompt(tok, PREFIX, SUFFIX, fim_mode=FimMode.AUTO, budget=1024)


def test_vllm_gets_the_familys_ids_and_stop_ids(
    family_tokenizers: dict[str, tuple[Path, Any]],
) -> None:
    _, tok = family_tokenizers["qwen-coder"]
    prompt = _prompt(tok)
    with ScriptedServer() as server:
        as_vllm(server, "Qwen/Qwen2.5-Coder-1.5B", max_model_len=4096)
        server.route("POST", "/v1/completions", lambda _: Reply(events=openai_chunks(["w * h"])))
        engine = engine_for(server.url, tok)
        engine.connect()
        params = GenerationParams(16, prompt.stop_ids)
        result = engine.generate(list(prompt.ids), params, CancelToken())

    body = server.requests[-1].body
    assert body["prompt"] == list(prompt.ids)
    stops = set(body["stop_token_ids"])
    for token in ("<|endoftext|>", "<|file_sep|>", "<|fim_pad|>", "<|repo_name|>"):
        assert tok.token_to_id(token) in stops, token
    assert result.text == "w * h"


@pytest.mark.parametrize("family", ["qwen-coder", "deepseek-coder"])
def test_tgi_reads_back_the_familys_prompt_and_the_client_stops_at_its_stop_ids(
    family_tokenizers: dict[str, tuple[Path, Any]], family: str
) -> None:
    from transformers import AutoTokenizer

    directory, tok = family_tokenizers[family]
    prompt = _prompt(tok)
    stop = tok.token_to_id("<|file_sep|>" if family == "qwen-coder" else "<|EOT|>")
    assert stop is not None and stop in prompt.stop_ids
    events = [
        {"token": {"id": 5, "text": "w * h", "special": False}},
        {"token": {"id": stop, "text": "", "special": True}},
        {"token": {"id": 6, "text": "never", "special": False}},
    ]
    with ScriptedServer() as server:
        as_tgi(server, "family-model", max_total_tokens=4096)
        server.route("POST", "/generate_stream", lambda _: Reply(events=events))
        engine = engine_for(server.url, tok)
        engine.connect()
        result = engine.generate(
            list(prompt.ids), GenerationParams(16, prompt.stop_ids), CancelToken()
        )

    text = server.requests[-1].body["inputs"]
    # The server's tokenizer parses the control tokens in the text and adds its BOS itself.
    assert AutoTokenizer.from_pretrained(str(directory))(text).input_ids == list(prompt.ids)
    assert result.text == "w * h" and result.finish_reason == "stop"
