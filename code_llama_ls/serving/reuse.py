"""Caches above the model: answer from a suggestion already made, or from one being made.

Typed-through: after a suggestion is shown, the user often types its first
characters themselves. While the document is the one the suggestion was
made for plus characters that match its start, the rest of the suggestion
is the answer, with no model call.

In flight: a request that arrives while the model writes for the same
place, after the user typed what the model has written so far (or the start
of it), waits for that generation instead of cancelling it and starting
again, then answers with what is left after the typed characters.

Both compare plain text: the document before and after the cursor. Pure
data, no LSP, no threads of their own; the server owns one of each.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from code_llama_ls.cancel import CancelToken

R = TypeVar("R")


@dataclass(frozen=True)
class Suggestion:
    """A suggestion made at a place: the document around the cursor, and the text."""

    before: str
    after: str
    text: str

    def rest_after(self, before: str, after: str) -> str | None:
        """What is left of `text` once the user typed its start, or None if they did not."""
        if after != self.after or not before.startswith(self.before):
            return None
        typed = before[len(self.before) :]
        if len(typed) >= len(self.text) or not self.text.startswith(typed):
            return None
        return self.text[len(typed) :]

    def answer_at(self, before: str, after: str) -> str | None:
        """What this answers at (before, after): its text at its very place, even when empty
        (nothing to suggest there is an answer too), else `rest_after`."""
        if (before, after) == (self.before, self.after):
            return self.text
        return self.rest_after(before, after)


MAX_SHOWN = 16
"""Documents whose last suggestion is remembered (each holds a copy of its document's text)."""


class TypedThrough:
    """The last suggestion shown per document, for the `MAX_SHOWN` documents shown in last."""

    def __init__(self, max_documents: int = MAX_SHOWN) -> None:
        self._shown: dict[str, Suggestion] = {}  # oldest first
        self.max_documents = max_documents

    def remember(self, uri: str, suggestion: Suggestion) -> None:
        """`suggestion` is what the user sees now in `uri` (an empty text forgets)."""
        self._shown.pop(uri, None)
        if suggestion.text:
            self._shown[uri] = suggestion
            while len(self._shown) > self.max_documents:
                del self._shown[next(iter(self._shown))]

    def __len__(self) -> int:
        return len(self._shown)

    def text_chars(self) -> int:
        """Characters the remembered suggestions hold (their documents' text, mostly)."""
        return sum(len(s.before) + len(s.after) + len(s.text) for s in self._shown.values())

    def lookup(self, uri: str, before: str, after: str) -> str | None:
        """The rest of the shown suggestion when the document is it, typed along; else None."""
        shown = self._shown.get(uri)
        return None if shown is None else shown.rest_after(before, after)

    def forget(self, uri: str) -> None:
        """Drop what `uri` showed (document closed)."""
        self._shown.pop(uri, None)


class WrittenAhead:
    """Per document, the suggestion written ahead for the place an accept leads to; unlike a
    shown one, an empty suggestion is kept too (nothing to suggest there is an answer)."""

    def __init__(self, max_documents: int = MAX_SHOWN) -> None:
        self._written: dict[str, Suggestion] = {}  # oldest first
        self.max_documents = max_documents

    def remember(self, uri: str, suggestion: Suggestion) -> None:
        """`suggestion` was written for `uri` (replacing the one before)."""
        self._written.pop(uri, None)
        self._written[uri] = suggestion
        while len(self._written) > self.max_documents:
            del self._written[next(iter(self._written))]

    def lookup(self, uri: str, before: str, after: str) -> str | None:
        """The suggestion at exactly its place, or its rest once typed along; else None."""
        written = self._written.get(uri)
        return None if written is None else written.answer_at(before, after)

    def forget(self, uri: str) -> None:
        """Drop what was written for `uri` (document closed)."""
        self._written.pop(uri, None)

    def text_chars(self) -> int:
        """Characters the suggestions hold (their documents' text, mostly)."""
        return sum(len(s.before) + len(s.after) + len(s.text) for s in self._written.values())


@dataclass
class Generating(Generic[R]):
    """A completion being generated: where, its cancel token, the text so far, the result."""

    before: str
    after: str
    token: CancelToken
    streamed: str = ""
    """The model's text so far (written by the model thread, read by the event loop)."""
    waiters: int = 0
    """Requests waiting for the result now."""
    ahead: bool = False
    """Written ahead: the suggestion that follows a shown one, were it accepted."""
    result: asyncio.Future[R | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    """The final result, or None when the generation was cancelled."""

    def saw(self, text: str) -> None:
        """The model has written `text` so far (any thread)."""
        self.streamed = text

    def may_continue_into(self, before: str, after: str) -> bool:
        """Whether a request at (before, after) can be answered from this generation.

        True when the document is this one plus typed characters that agree
        with the text written so far: all of them written already, or the
        model's first characters typed and more (a bet that it goes on as
        typed; before it wrote anything it is not taken).
        """
        if after != self.after or not before.startswith(self.before):
            return False
        typed, streamed = before[len(self.before) :], self.streamed
        return streamed.startswith(typed) or (bool(streamed) and typed.startswith(streamed))

    def finish(self, result: R | None) -> None:
        """Publish the final result (None: nothing to reuse); later calls are ignored."""
        if not self.result.done():
            self.result.set_result(result)

    def fail(self, error: BaseException) -> None:
        """Publish the error that ended the generation to everyone waiting."""
        if not self.result.done():
            self.result.set_exception(error)
            if self.waiters == 0:  # nobody will await it: mark it retrieved, or asyncio logs it
                self.result.exception()


class InFlight(Generic[R]):
    """The generation in flight per document."""

    def __init__(self) -> None:
        self._running: dict[str, Generating[R]] = {}

    def start(self, uri: str, before: str, after: str, token: CancelToken) -> Generating[R]:
        """Register the generation that begins now for `uri` (replacing any earlier one)."""
        generating: Generating[R] = Generating(before, after, token)
        self._running[uri] = generating
        return generating

    def get(self, uri: str) -> Generating[R] | None:
        """The generation registered for `uri`, if any."""
        return self._running.get(uri)

    def joinable(self, uri: str, before: str, after: str) -> Generating[R] | None:
        """The running generation a request at (before, after) can wait for, if any."""
        running = self._running.get(uri)
        if running is None or running.result.done() or running.token.cancelled:
            return None
        return running if running.may_continue_into(before, after) else None

    def end(self, uri: str, generating: Generating[R]) -> None:
        """Forget `generating` if it is still the one for `uri`."""
        if self._running.get(uri) is generating:
            del self._running[uri]

    def __len__(self) -> int:
        return len(self._running)
