"""The decision record as leads read it: filters, rows, an item's timeline, period statistics.
Plain data, no Qt, no SQL: these cross to the GUI thread and into reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from app.core.model.agreement import Agreement
from app.core.model.domain import DecisionMethod, Verdict
from app.core.model.exposure import ExposureSummary

SYSTEM_USER = "(system)"  # auto-match decisions have no human author


@dataclass(frozen=True, slots=True)
class HistoryFilter:
    """Every field narrows the history; empty means "any". ``until`` is exclusive."""

    usernames: tuple[str, ...] = ()
    verdicts: tuple[Verdict, ...] = ()
    categories: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    methods: tuple[DecisionMethod, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    text: str = ""  # in the note, or an external id, or a hash (SHA-256, MD5, PDQ...) prefix
    item_id: int | None = None

    def describe(self) -> str:
        parts = []
        for name, values in (
            ("moderator", self.usernames),
            ("verdict", [str(v) for v in self.verdicts]),
            ("category", self.categories),
            ("source", self.sources),
            ("method", [str(m) for m in self.methods]),
        ):
            if values:
                parts.append(f"{name} {', '.join(values)}")
        if self.since:
            parts.append(f"from {self.since:%Y-%m-%d %H:%M}")
        if self.until:
            parts.append(f"before {self.until:%Y-%m-%d %H:%M}")
        if self.text:
            parts.append(f"text {self.text!r}")
        if self.item_id is not None:
            parts.append(f"item #{self.item_id}")
        return "; ".join(parts) or "all decisions"


@dataclass(frozen=True, slots=True)
class HistoryCursor:
    """Keyset position: the last row seen (newest-first order is decided_at, then id)."""

    decided_at: datetime
    id: int


@dataclass(frozen=True, slots=True)
class HistoryRow:
    id: int
    uuid: str
    decided_at: datetime
    item_id: int
    username: str
    verdict: Verdict
    category: str | None
    category_label: str | None
    note: str | None
    method: DecisionMethod
    supersedes: str | None
    parent_uuid: str | None
    match_distance: int | None
    source: str | None  # the item's first sighting
    external_id: str | None
    deadline: datetime | None
    deadline_state: str  # "met", "missed", "" (no deadline, or not a deciding verdict)
    superseded_by: str | None = None  # uuid of the undo/overturn that took it back
    superseded_verdict: Verdict | None = None

    @property
    def overturned(self) -> bool:
        return self.superseded_verdict is Verdict.OVERTURN

    @property
    def can_overturn(self) -> bool:
        return (
            self.superseded_by is None
            and self.verdict in (Verdict.CONFIRM, Verdict.REJECT, Verdict.OVERTURN)
            and self.method is not DecisionMethod.SECOND_REVIEW
        )


@dataclass(frozen=True, slots=True)
class HistoryPage:
    rows: tuple[HistoryRow, ...]
    next_cursor: HistoryCursor | None  # None: this was the last page


@dataclass(frozen=True, slots=True)
class FilterOptions:
    usernames: tuple[str, ...]
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    at: datetime
    kind: (
        str  # sighting, decision, overturn, undo, second_review, match, hash_added, hash_retracted
    )
    title: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Timeline:
    item_id: int
    sha256: str
    md5: str
    kind: str
    status: str
    deadline: datetime | None
    preview_key: str | None
    preview_frames: int
    error: str | None
    signals: tuple[tuple[str, str, int], ...]  # (algorithm, first value, count)
    events: tuple[TimelineEvent, ...]
    active_hashes: int
    retracted_hashes: int


@dataclass(slots=True)
class FlagToDecision:
    count: int = 0
    median_s: float | None = None
    p90_s: float | None = None
    mean_s: float | None = None


@dataclass(slots=True)
class PeriodStats:
    since: datetime
    until: datetime
    # Human decisions (app.storage.stats): per hour, per moderator and verdict, per method.
    per_hour: list[tuple[datetime, int]] = field(default_factory=list)
    per_moderator: list[tuple[str, dict[str, int]]] = field(default_factory=list)
    # The export's breakdowns of those same human decisions (each adds up to human_decided).
    by_verdict: dict[str, int] = field(default_factory=dict)
    by_category: dict[str, int] = field(default_factory=dict)
    by_source: dict[str, int] = field(default_factory=dict)
    by_method: dict[str, int] = field(default_factory=dict)
    # Standing skips and escalations in the period: recorded, but not decisions.
    other_actions: dict[str, int] = field(default_factory=dict)
    queue_open: int = 0
    queue_escalated: int = 0
    queue_second_review: int = 0
    queue_age: list[tuple[str, int]] = field(default_factory=list)
    oldest_open_s: float | None = None
    deadlines_met: int = 0
    deadlines_missed: int = 0
    overdue_open: int = 0
    overturns: int = 0
    deciding: int = 0  # confirm/reject decisions (overturn rate denominator)
    agreement: Agreement | None = None
    agreement_by_moderator: list[tuple[str, Agreement]] = field(default_factory=list)
    flag_to_decision: FlagToDecision = field(default_factory=FlagToDecision)
    # What people saw unblurred (app.core.model.exposure): zero-exposure share, per decision, days.
    exposure: ExposureSummary = field(default_factory=ExposureSummary)

    @property
    def overturn_rate(self) -> float | None:
        return 100.0 * self.overturns / self.deciding if self.deciding else None

    @property
    def deadlines_judged(self) -> int:
        """Met, missed, and still open past the deadline (none of them met)."""
        return self.deadlines_met + self.deadlines_missed + self.overdue_open

    @property
    def deadline_rate(self) -> float | None:
        n = self.deadlines_judged
        return 100.0 * self.deadlines_met / n if n else None

    @property
    def auto_matched(self) -> int:
        return self.by_method.get(DecisionMethod.AUTO_MATCH.value, 0)

    @property
    def human_decided(self) -> int:
        return sum(v for k, v in self.by_method.items() if k != DecisionMethod.AUTO_MATCH.value)
