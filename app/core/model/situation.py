"""An incident's situation in figures (issue 23, 4 and 5): what the leads watch while it runs
and what its debrief reports, as plain data computed from the times storage reads
(app.storage.situation). No Qt, no SQL.

The figures, counted over the incident's items (``items.incident_id``) from its start:

* **items seen**: distinct files (an item is one SHA-256); **variants**: their near-duplicate
  clusters (an item in no cluster is a variant of its own), by kind (video, image, other);
* **confirmed**: items whose standing decision is a confirm, by whatever path;
* **human decisions**: confirms and rejects a person made item by item (manual, second
  review); **resolved with a cluster**: the members a person's cluster confirm decided;
  **resolved at ingest**: known copies decided as they arrived; **resolved by re-scan**: open
  items a new hash decided later (app.storage.rescan);
* **hashes shared**: entries added by the incident's deltas delivered so far;
* **queue**: its items still open, and the oldest one's age;
* **milestones**: first sighting, first confirm, first delta out.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.core.model.exposure import ExposureSummary

#: How many intervals the incident's time is cut into for the chart and the CSV.
INTERVALS = 12


@dataclass(frozen=True)
class ItemTimes:
    """One item of the incident: when it arrived (first flagged), when it left the queue
    (None: still open), its kind and its variant (cluster; its own id when in none)."""

    arrived: datetime
    decided: datetime | None
    kind: str
    variant: int


@dataclass(frozen=True)
class DeltaFacts:
    seq: int
    cut: datetime
    written_at: datetime | None
    added: int
    retracted: int
    status: str
    last_error: str | None = None


@dataclass
class SituationEvents:
    """What storage reads for one incident: the times of everything counted."""

    name: str
    label: str
    started_at: datetime
    ended_at: datetime | None
    now: datetime
    items: list[ItemTimes] = field(default_factory=list)
    confirmed: list[datetime] = field(default_factory=list)  # each item's first confirm
    human: list[datetime] = field(default_factory=list)
    by_cluster: list[datetime] = field(default_factory=list)
    at_ingest: list[datetime] = field(default_factory=list)
    by_rescan: list[datetime] = field(default_factory=list)
    deltas: list[DeltaFacts] = field(default_factory=list)
    exposure: ExposureSummary | None = None
    people: list[str] = field(default_factory=list)  # who decided its items


@dataclass(frozen=True)
class Point:
    """The cumulative figures at the end of one interval (``per_*``: within it)."""

    at: datetime
    items_seen: int
    variants: int
    confirmed: int
    hashes_shared: int
    human: int
    by_cluster: int
    at_ingest: int
    by_rescan: int
    queue: int
    per_human: int
    per_auto: int


@dataclass(frozen=True)
class Situation:
    name: str
    label: str
    started_at: datetime
    ended_at: datetime | None
    now: datetime
    points: list[Point]
    first_sighting: datetime | None
    first_confirm: datetime | None
    first_delta: datetime | None
    queue: int
    oldest_open: datetime | None
    variants_by_kind: dict[str, tuple[int, int]]  # kind -> (variants, items)
    deltas: list[DeltaFacts]
    exposure: ExposureSummary | None
    people: list[str]

    @property
    def last(self) -> Point:
        return self.points[-1]

    @property
    def automatic(self) -> int:
        p = self.last
        return p.by_cluster + p.at_ingest + p.by_rescan

    @property
    def automatic_share(self) -> float | None:
        total = self.automatic + self.last.human
        return 100.0 * self.automatic / total if total else None

    @property
    def end(self) -> datetime:
        return self.ended_at or self.now


def _count(times: list[datetime], until: datetime) -> int:
    return sum(1 for t in times if t <= until)


def _kind(kind: str) -> str:
    return kind if kind in ("video", "image") else "other"


def situation(ev: SituationEvents, intervals: int = INTERVALS) -> Situation:
    """The figures of ``ev`` at the end of each of ``intervals`` equal intervals from the
    incident's start to its end (or now)."""
    end = ev.ended_at or ev.now
    span = max(end - ev.started_at, timedelta(minutes=1))
    step = span / intervals
    written = [(d.written_at, d.added) for d in ev.deltas if d.written_at is not None]
    points: list[Point] = []
    prev_h = prev_a = 0
    for k in range(1, intervals + 1):
        at = ev.started_at + step * k if k < intervals else end
        arrived = [i for i in ev.items if i.arrived <= at]
        human = _count(ev.human, at)
        auto = _count(ev.by_cluster, at) + _count(ev.at_ingest, at) + _count(ev.by_rescan, at)
        points.append(
            Point(
                at=at,
                items_seen=len(arrived),
                variants=len({i.variant for i in arrived}),
                confirmed=_count(ev.confirmed, at),
                # The last interval counts the incident's last delta too, which is written
                # after it concludes (app.storage.deltas: the last one after the end).
                hashes_shared=sum(n for t, n in written if t <= at or k == intervals),
                human=human,
                by_cluster=_count(ev.by_cluster, at),
                at_ingest=_count(ev.at_ingest, at),
                by_rescan=_count(ev.by_rescan, at),
                queue=sum(1 for i in arrived if i.decided is None or i.decided > at),
                per_human=human - prev_h,
                per_auto=auto - prev_a,
            )
        )
        prev_h, prev_a = human, auto
    open_items = [i for i in ev.items if i.decided is None]
    kinds: dict[str, tuple[set[int], int]] = {}
    for i in ev.items:
        variants, n = kinds.get(_kind(i.kind), (set(), 0))
        variants.add(i.variant)
        kinds[_kind(i.kind)] = (variants, n + 1)
    return Situation(
        name=ev.name,
        label=ev.label,
        started_at=ev.started_at,
        ended_at=ev.ended_at,
        now=ev.now,
        points=points,
        first_sighting=min((i.arrived for i in ev.items), default=None),
        first_confirm=min(ev.confirmed, default=None),
        first_delta=min((t for t, _n in written), default=None),
        queue=len(open_items),
        oldest_open=min((i.arrived for i in open_items), default=None),
        variants_by_kind={
            k: (len(v), n) for k, (v, n) in sorted(kinds.items(), key=lambda kv: kv[0])
        },
        deltas=sorted(ev.deltas, key=lambda d: d.seq),
        exposure=ev.exposure,
        people=sorted(ev.people),
    )


# -- what a lead sends on ------------------------------------------------------------------------


def _t(dt: datetime | None) -> str:
    return dt.strftime("%Y-%m-%d %H:%M UTC") if dt else "-"


def _after(a: datetime | None, b: datetime | None) -> str:
    if a is None or b is None:
        return "-"
    minutes = int((b - a).total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def milestones(s: Situation) -> list[tuple[str, str, str]]:
    """(what, when, after the one before)."""
    return [
        ("first sighting", _t(s.first_sighting), ""),
        ("first confirm", _t(s.first_confirm), _after(s.first_sighting, s.first_confirm)),
        ("first delta out", _t(s.first_delta), _after(s.first_confirm, s.first_delta)),
    ]


def figure_rows(s: Situation) -> list[tuple[str, str]]:
    """The figures now (or at the end), as the view, the text and the CSV show them."""
    p = s.last
    share = s.automatic_share
    rows = [
        ("distinct items seen", str(p.items_seen)),
        ("variants (clusters)", str(p.variants)),
        ("items confirmed", str(p.confirmed)),
        ("hashes shared", str(p.hashes_shared)),
        ("human decisions", str(p.human)),
        ("resolved with a cluster confirm", str(p.by_cluster)),
        ("copies resolved at ingest", str(p.at_ingest)),
        ("copies resolved by re-scan", str(p.by_rescan)),
        ("resolved without a human", "-" if share is None else f"{share:.1f} %"),
        ("queue depth", str(s.queue)),
        ("oldest open item", _after(s.oldest_open, s.end) if s.oldest_open else "-"),
    ]
    return rows


POINT_COLUMNS = (
    "at_utc",
    "items_seen",
    "variants",
    "confirmed",
    "hashes_shared",
    "human_decisions",
    "resolved_with_cluster",
    "resolved_at_ingest",
    "resolved_by_rescan",
    "queue_depth",
)


def situation_csv(s: Situation) -> str:
    """The figures over time, one row per interval, then the milestones."""
    out = io.StringIO(newline="")
    w = csv.writer(out)
    w.writerow(POINT_COLUMNS)
    for p in s.points:
        w.writerow(
            [
                p.at.isoformat(sep=" ", timespec="seconds"),
                p.items_seen,
                p.variants,
                p.confirmed,
                p.hashes_shared,
                p.human,
                p.by_cluster,
                p.at_ingest,
                p.by_rescan,
                p.queue,
            ]
        )
    w.writerow([])
    w.writerow(["milestone", "at_utc", "after_previous"])
    for what, when, after in milestones(s):
        w.writerow([what, when, after])
    return out.getvalue()


def situation_text(s: Situation) -> str:
    """A short situational update a lead can send to partners (hashes and counts only,
    nothing of the content)."""
    p = s.last
    state = f"concluded {_t(s.ended_at)}" if s.ended_at else f"active, as of {_t(s.now)}"
    share = s.automatic_share
    sent = [d.written_at for d in s.deltas if d.written_at is not None]
    lines = [
        f"Situational update: {s.name} ({s.label}), {state}",
        f"Since {_t(s.started_at)}: {p.items_seen} distinct items seen in {p.variants} "
        f"variants; {p.confirmed} confirmed.",
        f"{p.human} human decisions; {s.automatic} copies resolved without one "
        f"({p.at_ingest} at upload, {p.by_rescan} by re-scan, {p.by_cluster} with their "
        f"cluster)" + (f": {share:.0f} % automatic." if share is not None else "."),
        f"Hashes shared: {p.hashes_shared} in {len(sent)} delta(s) under label {s.label}"
        + (f", the last at {_t(max(sent))}." if sent else "."),
        f"Queue: {s.queue} open"
        + (f", the oldest waiting {_after(s.oldest_open, s.end)}." if s.oldest_open else "."),
        "Times: "
        + "; ".join(
            f"{w} {when}" + (f" (+{a})" if a and a != "-" else "") for w, when, a in milestones(s)
        )
        + ".",
    ]
    return "\n".join(lines) + "\n"
