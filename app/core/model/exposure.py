"""Exposure as a measured quantity: what a moderator saw unblurred, and when to stop.

Distress grows with dose (Spence et al. 2024) and just-in-time break prompts help (Mihalache &
Szostak 2025), so every unblurred moment is one :class:`ExposureEvent` (who, which item, how
long, how much of the picture), recorded through the workstation's journal like a decision.
The same rows give the status bar's "unblurred today", the per-person daily totals, the lead's
"daily limit passed" and a person's own trend: nothing is counted twice in two places.

:class:`BreakPolicy` says when to offer a break; :func:`break_due` is the rule, plain data in
and out, so it is tested without a window.
"""

from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from app.core.model.domain import utcnow


class ExposureKind(StrEnum):
    REVEAL = "reveal"  # the whole picture unblurred (hold Space)
    REGION = "region"  # a small circle unblurred under the pointer
    FRAME = "frame"  # a video frame unblurred


@dataclass(frozen=True)
class ExposureEvent:
    """One unblurred moment. ``area`` is the share of the picture shown unblurred (1.0 for a
    whole reveal); ``seconds * area`` is its weight in picture-seconds."""

    user_id: int
    item_id: int | None
    kind: ExposureKind
    started_at: datetime
    seconds: float
    area: float = 1.0
    uuid: str = field(default_factory=lambda: str(uuidlib.uuid4()))

    @property
    def picture_seconds(self) -> float:
        return self.seconds * self.area


@dataclass(frozen=True)
class DailyExposure:
    """One person's unblurred time on one day (UTC), and the distinct items it touched."""

    user: str
    day: date
    seconds: float
    items: int
    limit_passed: bool = False


@dataclass
class ExposureSummary:
    """The period's exposure figures for the statistics view (app.storage.exposure)."""

    resolved: int = 0  # items a person decided (confirm/reject) in the period
    resolved_unseen: int = 0  # ... of which nobody saw any of it unblurred
    decisions: int = 0  # human decisions in the period
    seconds: float = 0.0  # the team's unblurred time in the period
    daily_limit_s: float = 0.0  # the limit the days were judged against (0: none)
    days: list[DailyExposure] = field(default_factory=list)  # per person and day

    @property
    def zero_exposure_share(self) -> float | None:
        return 100.0 * self.resolved_unseen / self.resolved if self.resolved else None

    @property
    def seconds_per_decision(self) -> float | None:
        return self.seconds / self.decisions if self.decisions else None

    @property
    def limit_passed(self) -> list[DailyExposure]:
        return [d for d in self.days if d.limit_passed]

    def trend(self, user: str) -> list[DailyExposure]:
        """One person's days, oldest first (their own trend)."""
        return sorted((d for d in self.days if d.user == user), key=lambda d: d.day)


@dataclass(frozen=True)
class BreakPolicy:
    """When to offer a break; 0 turns a rule off. Defaults follow the break-prompt study's
    "every 45-60 minutes, sooner after graphic material"."""

    review_minutes: int = 50
    reveals: int = 30
    graphic_items: int = 20
    daily_limit_minutes: int = 20  # unblurred minutes a day (soft: passed after confirming)


@dataclass
class SessionTally:
    """What this person has seen since their last break, and today (UTC)."""

    review_seconds: float = 0.0
    reveals: int = 0
    graphic_items: set[int] = field(default_factory=set)
    today_seconds: float = 0.0
    today_items: set[int] = field(default_factory=set)
    limit_acknowledged: bool = False

    def add(self, event: ExposureEvent) -> None:
        self.reveals += 1
        self.today_seconds += event.seconds
        if event.item_id is not None:
            self.graphic_items.add(event.item_id)
            self.today_items.add(event.item_id)

    def took_break(self) -> None:
        self.review_seconds = 0.0
        self.reveals = 0
        self.graphic_items = set()


def break_due(policy: BreakPolicy, tally: SessionTally) -> str | None:
    """Why a break is due now (one line), or None."""

    def n_of(n: int, what: str) -> str:
        return f"{n} {what}" if n == 1 else f"{n} {what}s"

    limit = policy.daily_limit_minutes
    if limit and not tally.limit_acknowledged and tally.today_seconds >= limit * 60:
        return f"You have reached today's limit of {n_of(limit, 'minute')} unblurred."
    if policy.review_minutes and tally.review_seconds >= policy.review_minutes * 60:
        return f"You have been reviewing for {n_of(policy.review_minutes, 'minute')}."
    if policy.reveals and tally.reveals >= policy.reveals:
        pictures = len(tally.graphic_items)  # one picture unblurred 30 times is one picture
        if pictures == tally.reveals:
            return f"You have revealed {n_of(pictures, 'picture')} since your last break."
        return (
            f"You have unblurred {n_of(pictures, 'picture')} {n_of(tally.reveals, 'time')} "
            "since your last break."
        )
    if policy.graphic_items and len(tally.graphic_items) >= policy.graphic_items:
        return f"You have seen {len(tally.graphic_items)} graphic items since your last break."
    return None


def today_start(now: datetime | None = None) -> datetime:
    now = now or utcnow()
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def format_exposure(seconds: float) -> str:
    """0:00 style minutes:seconds (h:mm:ss past an hour) for the status bar and the view."""
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"
