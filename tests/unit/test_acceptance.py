"""The acceptance counts: what each report does, what is ignored, and the kept file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from code_llama_ls.serving import acceptance
from code_llama_ls.serving.acceptance import STATS_FILE, AcceptanceStats
from code_llama_ls.tools.acceptance_report import render, stats_command

URI = "file:///work/app.py"


def _total(stats: AcceptanceStats) -> dict[str, object]:
    total = stats.to_json()["total"]
    assert isinstance(total, dict)
    return total


def test_shown_accepted_and_partly_accepted_suggestions_are_counted() -> None:
    stats = AcceptanceStats()
    first = stats.offered(URI, "python", "tiny", "return a + b")
    assert stats.shown(first) and not stats.shown(first)  # a second show is the same one
    assert stats.accepted(first)
    second = stats.offered(URI, "python", "tiny", "print(x)\n")
    assert stats.shown(second)
    assert stats.partially_accepted(second, 6)
    assert not stats.partially_accepted(second, 0)
    total = _total(stats)
    assert total == {
        "offered": 2,
        "shown": 2,
        "accepted": 1,
        "partiallyAccepted": 1,
        "dismissed": 0,
        "acceptedChars": len("return a + b") + 6,
        "taken": 2,
        "acceptanceRate": 1.0,
        "rateOf": "shown",
    }


def test_typing_something_else_dismisses_the_shown_suggestion_once() -> None:
    stats = AcceptanceStats()
    shown = stats.offered(URI, "python", "tiny", "abc")
    stats.shown(shown)
    stats.answered(URI, continues=True)  # typed through it: not dismissed
    assert _total(stats)["dismissed"] == 0
    stats.answered(URI, continues=False)
    stats.answered(URI, continues=False)
    assert _total(stats)["dismissed"] == 1
    assert _total(stats)["acceptanceRate"] == 0.0
    accepted = stats.offered(URI, "python", "tiny", "xyz")
    stats.shown(accepted)
    stats.accepted(accepted)
    stats.answered(URI, continues=False)  # accepted, so not dismissed
    assert _total(stats)["dismissed"] == 1


def test_without_shows_the_rate_is_of_the_suggestions_offered() -> None:
    stats = AcceptanceStats()
    assert _total(stats)["acceptanceRate"] is None and _total(stats)["rateOf"] is None
    first = stats.offered(URI, "python", "tiny", "abc")
    stats.offered(URI, "python", "tiny", "def")
    stats.accepted(first)
    assert (_total(stats)["acceptanceRate"], _total(stats)["rateOf"]) == (0.5, "offered")


def test_reports_of_unknown_or_forgotten_suggestions_are_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(acceptance, "MAX_TRACKED", 2)
    stats = AcceptanceStats()
    old = stats.offered(URI, "python", "tiny", "a")
    for _ in range(2):
        stats.offered(URI, "python", "tiny", "b")
    assert not stats.shown(old) and not stats.accepted(old)
    assert not stats.shown("no-such-id")
    assert _total(stats)["shown"] == 0 and _total(stats)["offered"] == 3


def test_counts_are_kept_by_language_and_model_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "state" / STATS_FILE
    stats = AcceptanceStats(path)
    for language, model in (("python", "tiny"), ("rust", "tiny"), ("python", "tiny")):
        suggestion = stats.offered(URI, language, model, "text")
        stats.shown(suggestion)
        stats.accepted(suggestion)
    stats.save()
    again = AcceptanceStats(path)
    rows = {(row["language"], row["model"]): row for row in again.to_json()["byLanguageAndModel"]}
    assert rows[("python", "tiny")]["accepted"] == 2
    assert rows[("rust", "tiny")]["accepted"] == 1
    # A session that starts keeping them adds what the file holds to its own.
    later = AcceptanceStats()
    later.offered(URI, "go", "tiny", "x")
    later.keep_in(path)
    assert _total(later)["offered"] == 4
    assert "never sent anywhere" in render(later.to_json())


def test_a_damaged_file_is_ignored_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / STATS_FILE
    path.write_text("{not json")
    assert _total(AcceptanceStats(path))["offered"] == 0
    path.write_text(
        json.dumps({"format": 1, "counts": [{"language": "py", "model": "m", "shown": -3}]})
    )
    assert _total(AcceptanceStats(path))["shown"] == 0


def test_the_stats_command_prints_the_kept_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert stats_command(as_json=False) == 0
    assert "keepAcceptanceStats" in capsys.readouterr().err
    stats = AcceptanceStats(tmp_path / "code-llama-ls" / STATS_FILE)
    suggestion = stats.offered(URI, "python", "tiny", "text")
    stats.shown(suggestion)
    stats.accepted(suggestion)
    stats.save()
    assert stats_command(as_json=False) == 0
    table = capsys.readouterr().out
    assert "python" in table and "100%" in table
    assert stats_command(as_json=True) == 0
    assert json.loads(capsys.readouterr().out)["total"]["accepted"] == 1


def test_alternatives_count_as_one_offer_shown_and_taken_once() -> None:
    stats = AcceptanceStats()
    first = stats.offered(URI, "python", "tiny", "a + b")
    second = stats.alternative(first, "a - b")
    assert second != first
    assert stats.shown(first)
    assert not stats.shown(second), "cycling to the alternative shows the same offer"
    assert stats.accepted(second)
    assert stats.partially_accepted(first, 1)  # a second take of the same offer
    stats.answered(URI, continues=False)  # taken: not dismissed
    total = _total(stats)
    assert (total["offered"], total["shown"], total["accepted"], total["taken"]) == (1, 1, 1, 1)
    assert total["acceptedChars"] == len("a - b") + 1
    assert total["dismissed"] == 0
