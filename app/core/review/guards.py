"""The review screen's input guards: one key press records one decision.

A decision (or undo) is refused while the previous one is being handed off, from a keyboard
decision until a key is released (a held key, whatever its auto-repeat, decides once), and for
a short dwell after a new item appears (a double press cannot decide an item nobody has seen).
"""

from __future__ import annotations

from app.core.review.ports import Clock

DWELL_SECONDS = 0.2


class InputGuard:
    def __init__(self, clock: Clock, dwell_seconds: float = DWELL_SECONDS) -> None:
        self.clock = clock
        self.dwell_seconds = dwell_seconds
        self.busy = False  # a decision or undo is being handed off
        self.armed = True  # False from a keyboard decision until a key is released
        self.shown_at = clock()

    def item_shown(self) -> None:
        self.shown_at = self.clock()

    def key_released(self) -> None:
        self.armed = True

    def pressed(self, by_key: bool) -> None:
        """A keyboard decision was taken: the next needs the key released first."""
        if by_key:
            self.armed = False

    def accepts(self, by_key: bool) -> bool:
        """Whether a key (or a button) may record a decision now."""
        if self.busy or (by_key and not self.armed):
            return False
        return self.clock() - self.shown_at >= self.dwell_seconds


class RepeatFilter:
    """Auto-repeat the platform did not flag. X11 delivers a held key as release + press pairs
    at the same server time, and Qt flags only some of them: a release re-arms the guard and
    the next "press" decides again (holding N rejected 8 items in 2 s). A press of the key
    just released within the grace, by the platform's own event times (milliseconds; 0 for
    synthetic events, which are never repeats), is the same hold: the window drops it."""

    def __init__(self, grace_ms: int) -> None:
        self.grace_ms = grace_ms
        self._released: tuple[int, int] | None = None  # (key, time) of the last release

    def released(self, key: int, time_ms: int) -> None:
        self._released = (key, time_ms) if time_ms else None

    def is_repeat(self, key: int, time_ms: int) -> bool:
        if not time_ms or self._released is None:
            return False
        last_key, last_ms = self._released
        return last_key == key and 0 <= time_ms - last_ms < self.grace_ms
