"""Settings: layering, camelCase/snake_case keys, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from code_llama_ls.config import Settings, load_config_file, settings_from_client
from code_llama_ls.errors import ConfigError


def test_defaults_work_without_any_configuration() -> None:
    settings = Settings()
    engine, completion = settings.engine, settings.completion
    assert engine.model is None
    assert completion.fim_mode == "auto"
    assert engine.backend == "auto"
    assert engine.prefix_cache_entries == 4 and completion.reuse
    assert completion.debounce_ms > 0 and completion.time_budget_ms > 0
    assert completion.max_new_tokens == 64
    assert engine.trust_remote_code is False
    assert settings.context.workspace and settings.explain.model is None


def test_later_layers_win_and_keep_earlier_values() -> None:
    from_file = Settings().with_values({"maxNewTokens": 32, "fimMode": "psm"}, "config file")
    from_editor = from_file.with_values({"max_new_tokens": 16}, "initializationOptions")
    assert from_editor.completion.max_new_tokens == 16
    assert from_editor.completion.fim_mode == "psm"


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"maxNewTokens": -1}, "maxNewTokens"),
        ({"maxNewTokens": True}, "maxNewTokens"),
        ({"fimMode": "middle"}, "fimMode"),
        ({"trustRemoteCode": "yes"}, "trustRemoteCode"),
        ({"device": "tpu"}, "device"),
        ({"contextTokens": 10}, "contextTokens"),
        ({"model": 7}, "model"),
        ({"temprature": 0.2}, "temprature"),
    ],
)
def test_bad_values_name_the_key_and_the_source(values: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings().with_values(values, "initializationOptions")
    assert caught.value.key == key
    assert key in str(caught.value)
    assert "initializationOptions" in str(caught.value)


def test_choices_are_case_insensitive_and_empty_model_means_default() -> None:
    settings = Settings().with_values({"fimMode": "PSM", "model": ""}, "test")
    assert settings.completion.fim_mode == "psm"
    assert settings.engine.model is None


def test_client_payload_may_be_nested_under_the_section_or_flat() -> None:
    assert settings_from_client({"codeLlama": {"maxNewTokens": 8}}, "x") == {"maxNewTokens": 8}
    assert settings_from_client({"maxNewTokens": 8}, "x") == {"maxNewTokens": 8}
    assert settings_from_client(None, "x") == {}
    with pytest.raises(ConfigError):
        settings_from_client(["not", "an", "object"], "x")


def test_config_file_is_read_and_validated(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[codeLlama]\nmodel = "/models/codellama"\nmax_new_tokens = 99\n')
    settings = Settings().with_values(load_config_file(path), str(path))
    assert settings.engine.model == "/models/codellama"
    assert settings.completion.max_new_tokens == 99

    path.write_text("model = [unclosed\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config_file(path)
    with pytest.raises(ConfigError, match="not found"):
        load_config_file(tmp_path / "missing.toml")


def test_engine_settings_change_only_with_model_shaping_settings() -> None:
    base = Settings()
    assert base.with_values({"maxNewTokens": 5}, "t").engine == base.engine
    assert base.with_values({"model": "/x"}, "t").engine != base.engine
    assert base.with_values({"backend": "auto"}, "t").engine == base.engine
    assert base.with_values({"backend": "onnx"}, "t").engine != base.engine
    assert base.with_values({"prefixCacheEntries": 0}, "t").engine != base.engine
    for cheap in ({"debounceMs": 0}, {"timeBudgetMs": 0}, {"completionCache": False}):
        assert base.with_values(cheap, "t").engine == base.engine


def test_speed_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match="prefixCacheEntries"):
        Settings().with_values({"prefixCacheEntries": -1}, "t")
    with pytest.raises(ConfigError, match="debounceMs"):
        Settings().with_values({"debounceMs": "fast"}, "t")
    with pytest.raises(ConfigError, match="completionCache"):
        Settings().with_values({"completionCache": 1}, "t")


def test_fim_modes_are_read_in_any_case() -> None:
    for mode in ("psm", "spm", "auto"):
        assert Settings().with_values({"fimMode": mode.upper()}, "t").completion.fim_mode == mode


def test_explain_model_defaults_to_the_completion_model() -> None:
    settings = Settings().with_values({"model": "/models/a"}, "t")
    assert settings.explain_engine() == settings.engine
    split = settings.with_values({"explainModel": "/models/b"}, "t")
    assert split.explain_engine().model == "/models/b"
    assert split.engine == settings.engine
    assert split.with_values({"explainModel": ""}, "t").explain_engine().model == "/models/a"


def test_unknown_backend_names_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"backend.*transformers"):
        Settings().with_values({"backend": "vllm"}, "initializationOptions")


def test_every_key_lands_in_its_group_and_groups_change_alone() -> None:
    settings = Settings().with_values(
        {"remoteUrl": "http://localhost:8080", "remoteTimeoutMs": 500, "debounceMs": 7}, "t"
    )
    assert settings.engine.remote.url == "http://localhost:8080"
    assert settings.engine.remote.timeout_ms == 500
    assert settings.completion.debounce_ms == 7
    assert settings.explain == Settings().explain and settings.context == Settings().context


def test_the_command_line_and_the_server_build_the_same_options() -> None:
    """One conversion: the options a completion runs with come from the settings alone."""
    from code_llama_ls.cli import build_parser, resolve_settings
    from code_llama_ls.pipeline.request import CompletionOptions

    args = build_parser().parse_args(["complete", "--time-budget-ms", "250", "f.py:1:1"])
    options = CompletionOptions.from_settings(resolve_settings(args))
    assert (options.time_budget_ms, options.max_new_tokens) == (250, 64)
    default = CompletionOptions.from_settings(Settings())
    assert default.time_budget_ms == Settings().completion.time_budget_ms > 0
    assert default.workspace_context and default.reuse


def test_the_neovim_help_names_every_setting_the_server_takes() -> None:
    from pathlib import Path

    from code_llama_ls import config

    help_text = (
        Path(__file__).parents[2] / "extensions" / "nvim" / "doc" / "code_llama_ls.txt"
    ).read_text(encoding="utf-8")
    missing = [key for key in config._FIELDS if f"`{key}`" not in help_text]
    assert missing == []
