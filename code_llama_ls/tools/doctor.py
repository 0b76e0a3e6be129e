"""`code-llama-ls doctor`: what is installed, what the model resolves to, what to fix.

Each check prints one line, `ok` or `MISSING`/`PROBLEM` with the command or
setting that fixes it. Exit status 1 when something required is missing.
"""

from __future__ import annotations

import importlib.metadata
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from code_llama_ls.config import Settings
from code_llama_ls.errors import CodeLlamaLsError


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    ok: bool
    detail: str
    required: bool = True

    def render(self) -> str:
        status = "ok" if self.ok else ("MISSING" if self.required else "note")
        return f"{status:>7}  {self.name:<18} {self.detail}"


def _package(name: str, fix: str) -> Check:
    try:
        return Check(name, True, importlib.metadata.version(name))
    except importlib.metadata.PackageNotFoundError:
        return Check(name, False, f"not installed: {fix}")


def _torch_device() -> Check:
    from code_llama_ls.engine.loading import torch_device_report

    try:
        return Check("device", True, torch_device_report())
    except ImportError as exc:
        return Check("device", False, f"torch does not import: {exc}")


def _model(settings: Settings) -> Check:
    if settings.engine.model:
        path = Path(settings.engine.model).expanduser()
        if path.exists():
            return Check("model", True, f"local: {path}")
        if settings.engine.model.count("/") == 1:
            return Check(
                "model",
                True,
                f"hub id {settings.engine.model}: must already be in the Hugging Face cache "
                "(no hub is contacted); otherwise download it elsewhere and set model to its "
                "directory",
            )
        return Check("model", False, f"{settings.engine.model} is neither a path nor a hub id")
    from code_llama_ls.engine import default_model

    try:
        gguf = default_model.find_default_gguf()
    except CodeLlamaLsError as exc:
        return Check("model", False, str(exc))
    converted = default_model.converted_dir(settings.engine.cache_path)
    state = (
        f"converted at {converted}"
        if converted.is_dir()
        else f"will be converted once into {converted}"
    )
    return Check("model", True, f"default {default_model.DEFAULT_MODEL_NAME} from {gguf}; {state}")


def _prompt(settings: Settings) -> Check:
    """Which FIM family the model's tokenizer carries, and the layout prompts will take."""
    from code_llama_ls.engine import default_model
    from code_llama_ls.engine.tokenizer_files import TOKENIZER_FILE, load_tokenizer
    from code_llama_ls.pipeline.fim import FimMode, describe_prompt

    model = settings.engine.model
    if model:
        directory = Path(model).expanduser()
    else:
        directory = default_model.converted_dir(settings.engine.cache_path)
    if not (directory / TOKENIZER_FILE).is_file():
        return Check("prompt", True, "told once the model is loaded (codeLlama/status)", False)
    try:
        tokenizer = load_tokenizer(directory)
    except CodeLlamaLsError as exc:
        return Check("prompt", False, str(exc), required=False)
    mode = FimMode(settings.completion.fim_mode)
    return Check("prompt", True, describe_prompt(tokenizer, mode), required=False)


def _grammars() -> list[Check]:
    from code_llama_ls.syntax.languages import available_languages

    checks = []
    for name, status in available_languages().items():
        ok = status is True
        detail = "loads" if ok else f"{status}: pip install tree-sitter-{name}"
        checks.append(Check(f"grammar {name}", ok, detail, required=False))
    return checks


def run_checks(settings: Settings) -> list[Check]:
    """Every check, in the order printed."""
    python_ok = sys.version_info >= (3, 11)
    checks = [
        Check("python", python_ok, f"{platform.python_version()} (3.11 or newer needed)"),
        _package("torch", "pip install torch==2.13.0"),
        _package("transformers", "pip install transformers==4.57.6"),
        _package("pygls", "pip install 'pygls>=2.1,<3'"),
        _package("tree-sitter", "pip install 'tree-sitter>=0.25,<0.26'"),
        _package("gguf", "pip install gguf (needed to convert the default model)"),
    ]
    probes: list[Callable[[], Check]] = [
        _torch_device,
        lambda: _model(settings),
        lambda: _prompt(settings),
    ]
    for probe in probes:
        try:
            checks.append(probe())
        except Exception as exc:
            checks.append(Check(probe.__name__.strip("_"), False, f"check failed: {exc}"))
    checks.extend(_grammars())
    return checks


def doctor(settings: Settings) -> int:
    """Print the report; 1 if a required part is missing."""
    checks = run_checks(settings)
    for check in checks:
        print(check.render())
    missing = [check for check in checks if check.required and not check.ok]
    print("all required parts present" if not missing else f"{len(missing)} problem(s) found")
    return 1 if missing else 0
