"""Which page the review screen shows (the queue, a break, the lock) and the idle lock's rule.

Only one page is ever visible; the break and the lock show nothing of the queue. The lock
remembers the page it covered: unlocking returns there (the break screen stays a break screen),
and the presenter then applies the break rules, so a daily limit passed by the reveal the lock
ended is shown, never silently agreed to.
"""

from __future__ import annotations

from enum import StrEnum

from app.core.review.ports import Clock


class Page(StrEnum):
    REVIEW = "review"
    BREAK = "break"
    LOCK = "lock"


class IdleLock:
    """Locks after ``seconds`` without a key press or a mouse move (0: never)."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        self.clock = clock
        self.seconds = seconds
        self.last_activity = clock()

    def activity(self) -> None:
        self.last_activity = self.clock()

    def due(self) -> bool:
        return bool(self.seconds) and self.clock() - self.last_activity >= self.seconds
