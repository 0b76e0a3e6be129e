"""Settings: layering, camelCase/snake_case keys, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from code_llama_ls.config import Settings, load_config_file, settings_from_client
from code_llama_ls.errors import ConfigError


def test_defaults_work_without_any_configuration() -> None:
    settings = Settings()
    assert settings.model is None
    assert settings.fim_mode == "auto"
    assert settings.infill_mode == "spm"
    assert settings.backend == "auto"
    assert settings.prefix_cache_entries == 4 and settings.completion_cache
    assert settings.debounce_ms > 0 and settings.time_budget_ms > 0
    assert settings.max_new_tokens == 64
    assert settings.trust_remote_code is False


def test_later_layers_win_and_keep_earlier_values() -> None:
    from_file = Settings().with_values({"maxNewTokens": 32, "fimMode": "psm"}, "config file")
    from_editor = from_file.with_values({"max_new_tokens": 16}, "initializationOptions")
    assert from_editor.max_new_tokens == 16
    assert from_editor.fim_mode == "psm"


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
    assert settings.fim_mode == "psm"
    assert settings.model is None


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
    assert settings.model == "/models/codellama"
    assert settings.max_new_tokens == 99

    path.write_text("model = [unclosed\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config_file(path)
    with pytest.raises(ConfigError, match="not found"):
        load_config_file(tmp_path / "missing.toml")


def test_engine_key_changes_only_with_model_shaping_settings() -> None:
    base = Settings()
    assert base.with_values({"maxNewTokens": 5}, "t").engine_key() == base.engine_key()
    assert base.with_values({"model": "/x"}, "t").engine_key() != base.engine_key()
    assert base.with_values({"backend": "auto"}, "t").engine_key() == base.engine_key()
    assert base.with_values({"backend": "onnx"}, "t").engine_key() != base.engine_key()
    assert base.with_values({"prefixCacheEntries": 0}, "t").engine_key() != base.engine_key()
    for cheap in ({"debounceMs": 0}, {"timeBudgetMs": 0}, {"completionCache": False}):
        assert base.with_values(cheap, "t").engine_key() == base.engine_key()


def test_speed_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match="prefixCacheEntries"):
        Settings().with_values({"prefixCacheEntries": -1}, "t")
    with pytest.raises(ConfigError, match="debounceMs"):
        Settings().with_values({"debounceMs": "fast"}, "t")
    with pytest.raises(ConfigError, match="completionCache"):
        Settings().with_values({"completionCache": 1}, "t")


def test_fim_mode_auto_resolves_and_explicit_modes_are_kept() -> None:
    for mode in ("psm", "spm"):
        assert Settings().with_values({"fimMode": mode.upper()}, "t").infill_mode == mode
    assert Settings().with_values({"fimMode": "auto"}, "t").infill_mode == "spm"


def test_explain_model_defaults_to_the_completion_model() -> None:
    settings = Settings().with_values({"model": "/models/a"}, "t")
    assert settings.for_explanations() == settings
    split = settings.with_values({"explainModel": "/models/b"}, "t")
    assert split.for_explanations().model == "/models/b"
    assert split.engine_key() == settings.engine_key()
    assert split.with_values({"explainModel": ""}, "t").for_explanations().model == "/models/a"


def test_unknown_backend_names_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"backend.*transformers"):
        Settings().with_values({"backend": "vllm"}, "initializationOptions")


def test_the_neovim_help_names_every_setting_the_server_takes() -> None:
    from pathlib import Path

    from code_llama_ls import config

    help_text = (
        Path(__file__).parents[2] / "extensions" / "nvim" / "doc" / "code_llama_ls.txt"
    ).read_text(encoding="utf-8")
    missing = [key for key in config._FIELDS if f"`{key}`" not in help_text]
    assert missing == []
