"""How fast the user types, per document, and so how long a request waits for a pause."""

from __future__ import annotations


class TypingPace:
    """How fast the user types, per document, and how long to wait for a pause.

    Each edit's time is recorded; the gaps between edits under a second
    (typing, not thinking) feed a moving average. A completion request waits
    1.5 typical gaps, at most `max_ms`, for the next keystroke: a fast typist's
    request is dropped before it costs model time, and one after a pause
    waits only as long as a keystroke would have taken to arrive.
    """

    TYPING_GAP_S = 1.0
    """Gaps longer than this are pauses, not typing speed."""
    SMOOTHING = 0.3
    """Weight of the newest gap in the moving average."""

    def __init__(self) -> None:
        self._last_edit: dict[str, float] = {}
        self._typical_gap: dict[str, float] = {}

    def edited(self, uri: str, now: float) -> None:
        """Record an edit of `uri` at monotonic time `now` (seconds)."""
        last = self._last_edit.get(uri)
        self._last_edit[uri] = now
        if last is None or not 0 <= now - last < self.TYPING_GAP_S:
            return
        gap = now - last
        typical = self._typical_gap.get(uri)
        self._typical_gap[uri] = (
            gap if typical is None else typical + self.SMOOTHING * (gap - typical)
        )

    def delay_s(self, uri: str, max_ms: int) -> float:
        """Seconds a completion request for `uri` should wait for the next keystroke."""
        cap = max_ms / 1000
        typical = self._typical_gap.get(uri)
        return cap if typical is None else min(cap, 1.5 * typical)

    def forget(self, uri: str) -> None:
        """Drop what was learnt about `uri` (document closed)."""
        self._last_edit.pop(uri, None)
        self._typical_gap.pop(uri, None)
