"""`code-llama-ls stats`: the suggestions shown and accepted, as kept on this machine."""

from __future__ import annotations

import json
import sys
from typing import Any

from code_llama_ls.config import state_dir
from code_llama_ls.serving.acceptance import STATS_FILE, AcceptanceStats


def stats_command(*, as_json: bool) -> int:
    """Print the kept counts, all together and by language and model."""
    path = state_dir() / STATS_FILE
    if not path.is_file():
        print(
            f"code-llama-ls: no acceptance stats in {path}: the server keeps them there "
            "when the setting keepAcceptanceStats is true",
            file=sys.stderr,
        )
        return 0
    report = AcceptanceStats(path).to_json()
    if as_json:
        sys.stdout.write(json.dumps(report, indent=1) + "\n")
        return 0
    sys.stdout.write(render(report))
    return 0


COLUMNS = ("offered", "shown", "accepted", "partiallyAccepted", "dismissed", "acceptanceRate")
HEADINGS = ("offered", "shown", "accepted", "partly", "dismissed", "rate")


def render(report: dict[str, Any]) -> str:
    """The report as a table, one row per language and model, then the total."""
    rows = [*report["byLanguageAndModel"], {"language": "all", "model": "", **report["total"]}]
    lines = [f"{'language':<12} {'model':<28} " + " ".join(f"{h:>9}" for h in HEADINGS)]
    for row in rows:
        cells = [_cell(row[column]) for column in COLUMNS]
        name = f"{row['language']:<12} {row['model'][:28]:<28} "
        lines.append(name + " ".join(f"{cell:>9}" for cell in cells))
    lines.append(f"kept in {report['file']}; never sent anywhere")
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:.0%}" if isinstance(value, float) else str(value)
