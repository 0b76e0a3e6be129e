"""The status clients show: state derived from loading, errors and work in flight."""

from __future__ import annotations

from code_llama_ls.serving.status import ServerStatus, State, model_display_name


def test_state_precedence_error_loading_generating_ready() -> None:
    status = ServerStatus("model")
    assert status.state is State.READY
    with status.generating(), status.generating():
        assert status.state is State.GENERATING
    assert status.state is State.READY
    status.loading = True
    assert status.state is State.LOADING
    assert status.to_json()["message"] == "loading model"
    status.error = "no such model"
    assert status.state is State.ERROR
    assert status.to_json()["message"] == "no such model"


def test_generating_counter_survives_errors() -> None:
    status = ServerStatus("model")
    try:
        with status.generating():
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert status.busy == 0


def test_json_shape_matches_the_protocol() -> None:
    status = ServerStatus("CodeLlama-7b-hf", device="cuda:0", last_completion_ms=123.456)
    assert status.to_json() == {
        "state": "ready",
        "model": "CodeLlama-7b-hf",
        "device": "cuda:0",
        "message": None,
        "lastCompletionMs": 123.5,
        "prompt": None,
    }


def test_display_names() -> None:
    assert model_display_name(None) == "SmolLM2-135M-Instruct"
    assert model_display_name("default") == "SmolLM2-135M-Instruct"
    assert model_display_name("/models/CodeLlama-7b-hf/") == "CodeLlama-7b-hf"
    assert model_display_name("codellama/CodeLlama-7b-hf") == "CodeLlama-7b-hf"
    assert model_display_name("~/m/codellama-7b.Q4_K_M.gguf") == "codellama-7b.Q4_K_M.gguf"
