"""The review screen's exposure meter, and the rule that one held key is one reveal.

:class:`ExposureMeter` turns "the preview is unblurred now" / "blurred again" into one
:class:`~app.core.model.exposure.ExposureEvent` each, handed to ``record`` (the presenter
journals it like a decision), and keeps the person's tally for the status line and the break
rules. Time comes from an injected clock (``time.monotonic``; tests move a fake one).

:class:`RevealHold` reads the reveal key's presses and releases. Under X11 key auto-repeat a
held key arrives as press, release, press, release ... 25 times a second, most of them not
flagged as repeats: a release followed by a press within :data:`HOLD_GRACE_SECONDS` is the same
hold, so a hold is one reveal however the platform delivers it (and the picture does not
flicker). The caller ends a reveal only when a release has stood that long.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import Enum

from app.core.model.domain import utcnow
from app.core.model.exposure import (
    BreakPolicy,
    ExposureEvent,
    ExposureKind,
    SessionTally,
    break_due,
    format_exposure,
)
from app.core.reports import plural
from app.core.review.ports import Clock

# X11 repeats at 25/s (40 ms apart) after a 660 ms delay by default; a person cannot let go
# of a key and press it again within 60 ms.
HOLD_GRACE_SECONDS = 0.060


class ExposureMeter:
    def __init__(
        self,
        user_id: int,
        policy: BreakPolicy,
        clock: Clock,
        record: Callable[[ExposureEvent], None],
        wall: Callable[[], datetime] = utcnow,
    ) -> None:
        self.user_id = user_id
        self.policy = policy
        self.clock = clock
        self.record = record
        self.wall = wall
        self.tally = SessionTally()
        self.paused = False  # on a break or locked: review time does not run
        self._open: tuple[int | None, ExposureKind, float, float, datetime] | None = None
        self._last_tick = clock()
        #: When this meter began: moments from before it are today's earlier sessions
        #: (:meth:`load_today`), the rest it tallies itself.
        self.since = wall()

    @property
    def revealing(self) -> bool:
        return self._open is not None

    def begin(self, item_id: int | None, kind: ExposureKind, area: float = 1.0) -> None:
        """The preview shows ``item_id`` unblurred (``area``: the share of the picture)."""
        if self._open is not None:
            same = self._open[0] == item_id and self._open[1] is kind
            if same and abs(self._open[3] - area) < 1e-9:
                return
            self.end()
        self._open = (item_id, kind, self.clock(), area, self.wall())

    def end(self) -> ExposureEvent | None:
        """Blurred again: one event, handed to ``record``."""
        if self._open is None:
            return None
        item_id, kind, start, area, wall = self._open
        self._open = None
        event = ExposureEvent(
            user_id=self.user_id,
            item_id=item_id,
            kind=kind,
            started_at=wall,
            seconds=max(0.0, self.clock() - start),
            area=area,
        )
        self.tally.add(event)
        self.record(event)
        return event

    def load_today(self, seconds: float, items: set[int]) -> None:
        """What the database held for today from before :attr:`since` (earlier sessions)."""
        self.tally.today_seconds += seconds
        self.tally.today_items |= items

    def tick(self) -> None:
        """About once a second: review time runs unless on a break or locked."""
        now = self.clock()
        if not self.paused:
            self.tally.review_seconds += max(0.0, now - self._last_tick)
        self._last_tick = now

    def break_reason(self) -> str | None:
        """Why a break is due now, or None (never while paused)."""
        return None if self.paused else break_due(self.policy, self.tally)

    def limit_reached(self) -> bool:
        p = self.policy
        return bool(p.daily_limit_minutes) and self.tally.today_seconds >= (
            p.daily_limit_minutes * 60
        )

    def resume(self, acknowledge_limit: bool) -> None:
        """Back from a break (or the lock): the break counters start again, today's totals
        stay. Only an explicit "go on" past the daily limit acknowledges it."""
        if acknowledge_limit and self.limit_reached():
            self.tally.limit_acknowledged = True
        self.tally.took_break()
        self.paused = False
        self._last_tick = self.clock()

    def status_text(self) -> str:
        t = self.tally
        seen = plural(len(t.today_items), "graphic item")
        return f"unblurred today {format_exposure(t.today_seconds)} · {seen} seen"


class Hold(Enum):
    START = "start"  # a new hold: reveal now
    SAME = "same"  # the hold goes on (a repeat, or a press within the grace of a release)
    IGNORED = "ignored"


class RevealHold:
    """The reveal key's presses and releases, as holds."""

    def __init__(self) -> None:
        self.down = False
        self.spent = False  # the hold's reveal was ended by something else (item, lock)
        self._release: int | None = None  # the release waiting out the grace
        self._count = 0

    def press(self, auto_repeat: bool = False) -> Hold:
        if auto_repeat:
            return Hold.SAME if self.down else Hold.IGNORED
        if self._release is not None or self.down:
            self._release = None  # a repeat delivered as release + press: the same hold
            self.down = True
            return Hold.IGNORED if self.spent else Hold.SAME
        self.down = True
        self.spent = False
        return Hold.START

    def release(self, auto_repeat: bool = False) -> int | None:
        """A release: the token to :meth:`settle` after the grace, or None."""
        if auto_repeat or not self.down:
            return None
        self._count += 1
        self._release = self._count
        return self._count

    def settle(self, token: int) -> bool:
        """The grace after release ``token`` passed: True if no press came, the hold is over."""
        if self._release != token:
            return False
        self._release = None
        self.down = False
        spent, self.spent = self.spent, False
        return not spent

    def spend(self) -> None:
        """The reveal ended while the key is still held: the hold reveals nothing more."""
        if self.down:
            self.spent = True
