"""What users do with suggestions: offered, shown, accepted, partly accepted, dismissed.

Counted per language and model, on this machine only: in memory, and with
`keepAcceptanceStats` in one small JSON file in the user's state folder
(`config.state_dir()`: `$XDG_STATE_HOME/code-llama-ls/acceptance.json`),
which `code-llama-ls stats` prints. Nothing is ever sent anywhere.

Each suggestion the server answers with gets an id (`offered`); clients
report it shown (`textDocument/didShowCompletion`), accepted (the item's
command) or partly accepted (`textDocument/didPartiallyAcceptCompletion`).
A shown suggestion is dismissed when the next answer for its document does
not continue it (the user typed something else) and it was not accepted.
Only the last MAX_TRACKED suggestions are remembered: reports of older ones
are ignored.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

STATS_FILE = "acceptance.json"
MAX_TRACKED = 256
"""Suggestions remembered for their reports (ids, documents, sizes: no text)."""
FORMAT = 1


@dataclass
class Counts:
    """What happened to the suggestions of one language and model."""

    offered: int = 0
    shown: int = 0
    accepted: int = 0
    partially_accepted: int = 0
    dismissed: int = 0
    accepted_chars: int = 0
    """Characters accepted: whole suggestions and the parts of partial accepts."""
    taken: int = 0
    """Suggestions accepted, whole or in part, each counted once."""

    def add(self, other: Counts) -> None:
        for field in dataclasses.fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    def to_json(self) -> dict[str, Any]:
        """camelCase counts, and the acceptance rate: of the suggestions shown, those taken;
        of those offered when the client reports no shows (Neovim's own inline completion)."""
        rate_of = "shown" if self.shown else "offered" if self.offered else None
        base = self.shown or self.offered
        return {
            "offered": self.offered,
            "shown": self.shown,
            "accepted": self.accepted,
            "partiallyAccepted": self.partially_accepted,
            "dismissed": self.dismissed,
            "acceptedChars": self.accepted_chars,
            "taken": self.taken,
            "acceptanceRate": round(min(self.taken / base, 1.0), 4) if base else None,
            "rateOf": rate_of,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Counts:
        names = {
            "offered": "offered",
            "shown": "shown",
            "accepted": "accepted",
            "partiallyAccepted": "partially_accepted",
            "dismissed": "dismissed",
            "acceptedChars": "accepted_chars",
            "taken": "taken",
        }
        values = {name: data.get(key, 0) for key, name in names.items()}
        return cls(**{k: v for k, v in values.items() if isinstance(v, int) and v >= 0})


@dataclass
class _Offer:
    """What became of one answer: its suggestion and the alternatives offered with it."""

    shown: bool = False
    taken: bool = False
    """Accepted, whole or in part."""
    dismissed: bool = False

    def ended(self, continues: bool) -> bool:
        """Whether a new answer leaves it be: it was taken or dismissed, or the answer
        continues it."""
        return self.taken or self.dismissed or continues


@dataclass
class _Suggestion:
    uri: str
    key: tuple[str, str]
    chars: int
    offer: _Offer = dataclasses.field(default_factory=_Offer)


class AcceptanceStats:
    """The counts, the suggestions they are about, and their file (event loop only)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path: Path | None = None
        self._counts: dict[tuple[str, str], Counts] = {}
        self._suggestions: OrderedDict[str, _Suggestion] = OrderedDict()
        self._last_by_uri: dict[str, str] = {}
        self.dirty = False
        self.keep_in(path)

    def keep_in(self, path: Path | None) -> None:
        """Keep the counts in `path` from now on (None: in memory only), adding those it
        already holds to this session's."""
        if path == self.path:
            return
        self.path = path
        if path is None:
            return
        for key, counts in read_counts(path).items():
            self._counts.setdefault(key, Counts()).add(counts)
        self.dirty = True

    def offered(self, uri: str, language: str | None, model: str, text: str) -> str:
        """A new suggestion at `uri`; its id, for the client's reports."""
        suggestion = _Suggestion(uri, (language or "unknown", model), len(text))
        self._count(suggestion).offered += 1
        return self._track(suggestion)

    def alternative(self, suggestion_id: str, text: str) -> str:
        """An alternative offered with the suggestion `suggestion_id`; its own id. The two
        count as one offer: shown once, taken once, whichever the user takes."""
        first = self._suggestions[suggestion_id]
        return self._track(_Suggestion(first.uri, first.key, len(text), first.offer))

    def _track(self, suggestion: _Suggestion) -> str:
        suggestion_id = uuid.uuid4().hex[:12]
        self._suggestions[suggestion_id] = suggestion
        while len(self._suggestions) > MAX_TRACKED:
            old_id, old = self._suggestions.popitem(last=False)
            if self._last_by_uri.get(old.uri) == old_id:
                del self._last_by_uri[old.uri]
        return suggestion_id

    def answered(self, uri: str, *, continues: bool) -> None:
        """A new answer for `uri`: the last shown suggestion there was dismissed unless the
        answer continues it (typed through, or the generation it came from) or it was taken."""
        last = self._suggestions.get(self._last_by_uri.get(uri, ""))
        offer = None if last is None else last.offer
        if last is not None and offer is not None and offer.shown and not offer.ended(continues):
            self._count(last).dismissed += 1
            offer.dismissed = True
        if not continues:
            self._last_by_uri.pop(uri, None)

    def shown(self, suggestion_id: str) -> bool:
        """The client showed the suggestion; False for an id not (or no longer) known."""
        suggestion = self._suggestions.get(suggestion_id)
        if suggestion is None:
            return False
        self._last_by_uri[suggestion.uri] = suggestion_id
        if suggestion.offer.shown:  # another of its offer (the user cycles)
            return False
        suggestion.offer.shown = True
        self._count(suggestion).shown += 1
        return True

    def accepted(self, suggestion_id: str) -> bool:
        """The user accepted the whole suggestion."""
        suggestion = self._suggestions.get(suggestion_id)
        if suggestion is None:
            return False
        counts = self._count(suggestion)
        counts.accepted += 1
        counts.accepted_chars += suggestion.chars
        self._take(suggestion, counts)
        return True

    def partially_accepted(self, suggestion_id: str, length: int) -> bool:
        """The user accepted the first `length` characters (a word, a line)."""
        suggestion = self._suggestions.get(suggestion_id)
        if suggestion is None or length <= 0:
            return False
        counts = self._count(suggestion)
        counts.partially_accepted += 1
        counts.accepted_chars += min(length, suggestion.chars)
        self._take(suggestion, counts)
        return True

    def to_json(self) -> dict[str, Any]:
        """All counts together, then by language and model."""
        total = Counts()
        for counts in self._counts.values():
            total.add(counts)
        rows = [
            {"language": language, "model": model, **counts.to_json()}
            for (language, model), counts in sorted(self._counts.items())
        ]
        return {"total": total.to_json(), "byLanguageAndModel": rows, "file": _text(self.path)}

    def save(self) -> None:
        """Write the counts to the file, if there is one and they changed (atomic)."""
        if self.path is None or not self.dirty:
            return
        self.dirty = False
        payload = {
            "format": FORMAT,
            "counts": [
                {"language": language, "model": model, **counts.to_json()}
                for (language, model), counts in sorted(self._counts.items())
            ],
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(
                "w", dir=self.path.parent, prefix=".acceptance-", delete=False, encoding="utf-8"
            ) as file:
                json.dump(payload, file, indent=1)
            os.replace(file.name, self.path)
        except OSError as exc:
            log.warning("cannot keep the acceptance stats in %s: %s", self.path, exc)

    @staticmethod
    def _take(suggestion: _Suggestion, counts: Counts) -> None:
        if not suggestion.offer.taken:
            suggestion.offer.taken = True
            counts.taken += 1

    def _count(self, suggestion: _Suggestion) -> Counts:
        self.dirty = True
        return self._counts.setdefault(suggestion.key, Counts())


def read_counts(path: Path) -> dict[tuple[str, str], Counts]:
    """The counts kept in `path` (none when it is missing or unreadable)."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        rows = payload["counts"] if payload.get("format") == FORMAT else []
        return {
            (str(row["language"]), str(row["model"])): Counts.from_json(row)
            for row in rows
            if isinstance(row, dict) and "language" in row and "model" in row
        }
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("ignoring the acceptance stats in %s: %s", path, exc)
        return {}


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)
