"""The team's numbers for a period: throughput, queue, deadlines, overturns, agreement.

Aggregates run in the database (one pass per figure over the period's index range); the only
dialect-specific piece, the hour bucket, stays in this module.

Every figure on the statistics page is read from one definition, so the totals agree:

- a **human decision** is a confirm, reject or overturn made by a person (manually, for a
  whole cluster, or as a second review) that no undo took back. The card, the per-hour chart,
  the per-moderator chart and the human bars of the method chart count exactly these rows;
- the **queue's age** is counted from when an item was first flagged (its earliest sighting),
  for the buckets and the oldest open item alike;
- a **deadline** is judged for an item decided in the period (met when its first standing
  deciding decision came at or before it, else missed) and for an item still open past it
  ("overdue, still open": not met). The rate is met over all three.
"""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta

from sqlalchemy import case, func, literal, literal_column, or_, select
from sqlalchemy.orm import Session

from app.core.model.agreement import agreement
from app.core.model.domain import (
    IN_QUEUE_STATUSES,
    DecisionMethod,
    ItemStatus,
    UserInfo,
    Verdict,
    utcnow,
)
from app.core.model.exposure import ExposureSummary, today_start
from app.core.model.history_types import FlagToDecision, PeriodStats
from app.core.model.roles import Permission
from app.storage.db import Database
from app.storage.exposure import exposure_summary
from app.storage.models import Decision, Item, SecondReview, Sighting, User
from app.storage.permissions import authorize

HUMAN_METHODS = (
    DecisionMethod.MANUAL,
    DecisionMethod.CLUSTER,
    DecisionMethod.SECOND_REVIEW,
)
HUMAN_VERDICTS = (Verdict.CONFIRM, Verdict.REJECT, Verdict.OVERTURN)
DECIDING_METHODS = (
    DecisionMethod.MANUAL,
    DecisionMethod.CLUSTER,
    DecisionMethod.AUTO_MATCH,
)
AGE_BUCKETS = (
    ("< 1 h", timedelta(hours=1)),
    ("1–4 h", timedelta(hours=4)),
    ("4–24 h", timedelta(days=1)),
    ("1–7 d", timedelta(days=7)),
    ("> 7 d", None),
)
NOT_VIOLATING = "(not violating)"  # the category key of a reject
NO_SOURCE = "(no sighting)"
FLAG_SAMPLE = 50_000  # flag-to-decision times: the newest this many decisions of the period


def _hour(s: Session, col):
    if s.get_bind().dialect.name == "postgresql":
        return func.date_trunc(literal_column("'hour'"), col)
    return func.strftime("%Y-%m-%d %H:00:00", col)


def _undone():
    """UUIDs of the decisions an undo took back."""
    return select(Decision.supersedes).where(
        Decision.verdict == Verdict.UNDO, Decision.supersedes.is_not(None)
    )


def _human(d=Decision):
    """The rows every human-decision figure counts (see the module docstring)."""
    return (
        d.method.in_(HUMAN_METHODS),
        d.verdict.in_(HUMAN_VERDICTS),
        d.user_id.is_not(None),
        d.uuid.not_in(_undone()),
    )


def _first_flagged():
    """Each item's earliest sighting: when it was first flagged."""
    return (
        select(Sighting.item_id, func.min(Sighting.flagged_at).label("flagged_at"))
        .group_by(Sighting.item_id)
        .subquery()
    )


def _as_dt(v) -> datetime:
    return v if isinstance(v, datetime) else datetime.fromisoformat(str(v))


class StatsService:
    def __init__(self, db: Database, daily_exposure_limit_s: float = 0.0) -> None:
        self.db = db
        self.daily_exposure_limit_s = daily_exposure_limit_s

    def my_exposure(self, viewer: UserInfo, days: int = 14) -> ExposureSummary:
        """A person's own days (their trend, shown to them as care, not as a speed figure)."""
        until = today_start() + timedelta(days=1)
        with self.db.session() as s:
            authorize(s, viewer, Permission.REVIEW)
            return exposure_summary(
                s,
                until - timedelta(days=days),
                until,
                self.daily_exposure_limit_s,
                _human(),
                viewer.id,
            )

    def period(self, viewer: UserInfo, since: datetime, until: datetime) -> PeriodStats:
        st = PeriodStats(since=since, until=until)
        d = Decision
        in_period = (d.decided_at >= since, d.decided_at < until)
        now = utcnow()
        with self.db.session() as s:
            authorize(s, viewer, Permission.VIEW_STATS)
            # int | None keys: a nullable user id column is looked up as it is, and None gets "?".
            names: dict[int | None, str] = dict(s.execute(select(User.id, User.username)).all())
            hour = _hour(s, d.decided_at)
            st.per_hour = [
                (_as_dt(h), int(n))
                for h, n in s.execute(
                    select(hour, func.count())
                    .where(*in_period, *_human())
                    .group_by(hour)
                    .order_by(hour)
                )
            ]
            per_mod: dict[str, dict[str, int]] = {}
            st.by_method = {}
            for uid, verdict, method, n in s.execute(
                select(d.user_id, d.verdict, d.method, func.count())
                .where(*in_period, *_human())
                .group_by(d.user_id, d.verdict, d.method)
            ):
                counts = per_mod.setdefault(names.get(uid, "?"), {})
                counts[verdict] = counts.get(verdict, 0) + int(n)
                st.by_method[method] = st.by_method.get(method, 0) + int(n)
            st.per_moderator = sorted(per_mod.items(), key=lambda kv: -sum(kv[1].values()))
            # The export's sections break down the same human-decision rows as the card, so
            # each section adds up to it: by verdict, by category (none for a reject), by the
            # source that first flagged the item (one source per decision).
            st.by_verdict = {
                v: int(n)
                for v, n in s.execute(
                    select(d.verdict, func.count()).where(*in_period, *_human()).group_by(d.verdict)
                )
            }
            st.other_actions = {
                v: int(n)
                for v, n in s.execute(
                    select(d.verdict, func.count())
                    .where(
                        *in_period,
                        d.verdict.in_([Verdict.SKIP, Verdict.ESCALATE]),
                        d.user_id.is_not(None),
                        d.uuid.not_in(_undone()),
                    )
                    .group_by(d.verdict)
                )
            }
            auto = s.scalar(
                select(func.count())
                .select_from(d)
                .where(
                    *in_period,
                    d.method == DecisionMethod.AUTO_MATCH,
                    d.verdict == Verdict.CONFIRM,
                )
            )
            if auto:
                st.by_method[DecisionMethod.AUTO_MATCH] = int(auto)
            # A reject (or an overturn to not violating) has no category, whatever it carried.
            label = case(
                (d.verdict == Verdict.REJECT, literal(NOT_VIOLATING)),
                else_=func.coalesce(d.category_label, d.category, literal(NOT_VIOLATING)),
            )
            st.by_category = {
                str(c): int(n)
                for c, n in s.execute(
                    select(label, func.count()).where(*in_period, *_human()).group_by(label)
                )
            }
            first_source = (
                select(Sighting.source)
                .where(Sighting.item_id == d.item_id)
                .order_by(Sighting.flagged_at, Sighting.id)
                .limit(1)
                .correlate(d)
                .scalar_subquery()
            )
            per_decision = (
                select(func.coalesce(first_source, literal(NO_SOURCE)).label("source"))
                .where(*in_period, *_human())
                .subquery()
            )
            st.by_source = {
                str(src): int(n)
                for src, n in s.execute(
                    select(per_decision.c.source, func.count()).group_by(per_decision.c.source)
                )
            }
            self._queue(s, st, now)
            self._deadlines(s, st, since, until, now)
            st.deciding = int(
                s.scalar(
                    select(func.count())
                    .select_from(d)
                    .where(
                        *in_period,
                        d.verdict.in_([Verdict.CONFIRM, Verdict.REJECT]),
                        d.method.in_(DECIDING_METHODS),
                    )
                )
                or 0
            )
            st.overturns = int(
                s.scalar(
                    select(func.count())
                    .select_from(d)
                    .where(
                        *in_period,
                        d.verdict == Verdict.OVERTURN,
                        d.method == DecisionMethod.MANUAL,
                    )
                )
                or 0
            )
            self._agreement(s, st, since, until, names)
            self._flag_to_decision(s, st, since, until)
            st.exposure = exposure_summary(s, since, until, self.daily_exposure_limit_s, _human())
        return st

    def _queue(self, s: Session, st: PeriodStats, now: datetime) -> None:
        flagged = _first_flagged()
        since = func.coalesce(flagged.c.flagged_at, Item.created_at)
        age = case(
            *((since > now - limit, label) for label, limit in AGE_BUCKETS if limit is not None),
            else_=AGE_BUCKETS[-1][0],
        )
        open_items = (
            select(age.label("bucket"), since.label("since"))
            .select_from(Item)
            .outerjoin(flagged, flagged.c.item_id == Item.id)
            .where(Item.status.in_(IN_QUEUE_STATUSES))
            .subquery()
        )
        counts: dict[str, int] = dict(
            s.execute(select(open_items.c.bucket, func.count()).group_by(open_items.c.bucket)).all()
        )
        st.queue_age = [(label, int(counts.get(label, 0))) for label, _ in AGE_BUCKETS]
        st.queue_open = sum(n for _, n in st.queue_age)
        oldest = s.scalar(select(func.min(open_items.c.since)))
        st.oldest_open_s = max(0.0, (now - _as_dt(oldest)).total_seconds()) if oldest else None
        st.queue_escalated = int(
            s.scalar(
                select(func.count()).select_from(Item).where(Item.status == ItemStatus.ESCALATED)
            )
            or 0
        )
        st.queue_second_review = int(
            s.scalar(
                select(func.count()).select_from(SecondReview).where(SecondReview.status != "done")
            )
            or 0
        )

    def _deadlines(
        self, s: Session, st: PeriodStats, since: datetime, until: datetime, now: datetime
    ) -> None:
        """Per item with a deadline, its first standing deciding decision: met if at or before
        it; and the items still open past their deadline, which are not met either."""
        d = Decision
        deciding = (
            d.verdict.in_([Verdict.CONFIRM, Verdict.REJECT]),
            d.method.in_(DECIDING_METHODS),
            d.uuid.not_in(_undone()),
        )
        first = (
            select(d.item_id, func.min(d.decided_at).label("first_at"))
            .where(*deciding)
            .group_by(d.item_id)
            .subquery()
        )
        met = func.sum(case((first.c.first_at <= Item.deadline, 1), else_=0))
        total = func.count()
        row = s.execute(
            select(met, total)
            .select_from(first)
            .join(Item, Item.id == first.c.item_id)
            .where(
                Item.deadline.is_not(None),
                first.c.first_at >= since,
                first.c.first_at < until,
            )
        ).one()
        st.deadlines_met = int(row[0] or 0)
        st.deadlines_missed = int(row[1] or 0) - st.deadlines_met
        decided = select(d.item_id).where(*deciding)
        st.overdue_open = int(
            s.scalar(
                select(func.count())
                .select_from(Item)
                .where(
                    or_(
                        Item.status.in_(IN_QUEUE_STATUSES),
                        Item.status == ItemStatus.ESCALATED,
                    ),
                    Item.deadline < now,
                    Item.id.not_in(decided),
                )
            )
            or 0
        )

    def _agreement(
        self,
        s: Session,
        st: PeriodStats,
        since: datetime,
        until: datetime,
        names: dict[int | None, str],
    ) -> None:
        rows = s.execute(
            select(
                SecondReview.first_user_id,
                SecondReview.first_verdict,
                SecondReview.second_verdict,
            ).where(
                SecondReview.status == "done",
                SecondReview.done_at >= since,
                SecondReview.done_at < until,
            )
        ).all()
        pairs = [(a, b) for _, a, b in rows]
        st.agreement = agreement(pairs)
        by_mod: dict[str, list[tuple[str, str | None]]] = {}
        for uid, a, b in rows:
            by_mod.setdefault(names.get(uid, "?"), []).append((a, b))
        st.agreement_by_moderator = sorted(
            ((name, agreement(p)) for name, p in by_mod.items()), key=lambda kv: kv[0]
        )

    def _flag_to_decision(self, s: Session, st: PeriodStats, since: datetime, until: datetime):
        d = Decision
        flagged = (
            select(func.min(Sighting.flagged_at))
            .where(Sighting.item_id == d.item_id)
            .scalar_subquery()
        )
        rows = s.execute(
            select(d.decided_at, flagged)
            .where(
                d.decided_at >= since,
                d.decided_at < until,
                d.verdict.in_([Verdict.CONFIRM, Verdict.REJECT]),
                d.method.in_(DECIDING_METHODS),
            )
            .order_by(d.decided_at.desc())
            .limit(FLAG_SAMPLE)
        )
        secs = sorted(
            max(0.0, (_as_dt(a) - _as_dt(f)).total_seconds()) for a, f in rows if f is not None
        )
        if not secs:
            st.flag_to_decision = FlagToDecision()
            return
        st.flag_to_decision = FlagToDecision(
            count=len(secs),
            median_s=statistics.median(secs),
            p90_s=secs[min(len(secs) - 1, int(0.9 * len(secs)))],
            mean_s=statistics.fmean(secs),
        )
