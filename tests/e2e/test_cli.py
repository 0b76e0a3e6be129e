"""The `code-llama-ls` command line: complete, explain and doctor, as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.scenarios import ADD_FILE, ADD_MIDDLE, EXPLAINED_CODE, EXPLANATION, split_cursor


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "code_llama_ls", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_complete_prints_the_infilled_middle(tiny_model: Path, tmp_path: Path) -> None:
    path = tmp_path / "add.py"
    path.write_text("".join(split_cursor(ADD_FILE)))
    prefix, _ = split_cursor(ADD_FILE)
    line = prefix.count("\n") + 1
    column = len(prefix.rsplit("\n", 1)[-1]) + 1
    result = run_cli("complete", "--model", str(tiny_model), f"{path}:{line}:{column}")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ADD_MIDDLE + "\n"
    where = f"{path}:{line}:{column}"
    several = run_cli("complete", "--model", str(tiny_model), "--candidates", "3", where)
    assert several.returncode == 0, several.stderr
    best, *others = several.stdout.split("--- alternative ")
    assert best == ADD_MIDDLE + "\n" and 1 <= len(others) <= 2
    assert [other.split(" ---", 1)[0] for other in others] == [
        str(2 + i) for i in range(len(others))
    ]
    refused = run_cli("complete", "--model", str(tiny_model), "--candidates", "9", where)
    assert refused.returncode == 2 and "--candidates takes 1 to 8" in refused.stderr


def test_explain_streams_the_explanation(tiny_model: Path, tmp_path: Path) -> None:
    path = tmp_path / "add.py"
    path.write_text(EXPLAINED_CODE + "\n\nprint(add(1, 2))\n")
    result = run_cli("explain", "--model", str(tiny_model), f"{path}:1-2")
    assert result.returncode == 0, result.stderr
    assert result.stdout == EXPLANATION + "\n"


def test_bad_positions_and_settings_are_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "add.py"
    path.write_text("x = 1\n")
    outside = run_cli("complete", "--model", str(tmp_path), f"{path}:9:1")
    assert outside.returncode == 1
    assert "line" in outside.stderr and "Traceback" not in outside.stderr
    bad = run_cli("complete", "--max-new-tokens", "0", f"{path}:1:1")
    assert bad.returncode == 2
    assert "maxNewTokens" in bad.stderr


def test_doctor_reports_every_part() -> None:
    result = run_cli("doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    for part in ("python", "torch", "device", "model", "prompt", "grammar python", "grammar cpp"):
        assert part in result.stdout


def test_doctor_names_the_fim_family_and_layout(tmp_path: Path) -> None:
    from tests.fim_families import build_family_tokenizer

    model = build_family_tokenizer("qwen-coder", tmp_path / "qwen")
    result = run_cli("doctor", "--model", str(model), "--fim-mode", "spm")
    prompt = next(line for line in result.stdout.splitlines() if " prompt " in line)
    # SPM asked for, but Qwen2.5-Coder was trained on PSM alone.
    assert prompt.split(None, 2)[2] == (
        "Qwen2.5-Coder FIM, PSM, other files as its repository format"
    ), result.stdout
