"""An incident's situation read from the record (issue 23, 4 and 5): the times of its items,
decisions, deltas and the exposure of the people who worked it, handed to
app.core.model.situation, which makes the figures. Reads only; a lead's (VIEW_STATS).

How a decision is counted (app.core.model.situation names the figures): a person's confirm,
reject or overturn made item by item (manual, second review; not undone) is a human decision;
a cluster confirm's members are "resolved with a cluster"; an automatic match made while a
re-scan that resolved items ran (a ``rescans`` row's ``started_at`` to ``finished_at``: the
re-scan records its decisions as automatic matches in that window, app.storage.rescan) is "by
re-scan", any other "at ingest"."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from app.core.model.domain import DecisionMethod, ItemStatus, UserInfo, Verdict, utcnow
from app.core.model.incidents import IncidentError
from app.core.model.roles import Permission
from app.core.model.situation import (
    INTERVALS,
    DeltaFacts,
    ItemTimes,
    Situation,
    SituationEvents,
    situation,
)
from app.storage.db import Database
from app.storage.exposure import exposure_summary
from app.storage.models import (
    Decision,
    Delta,
    HashListEntry,
    Incident,
    Item,
    Rescan,
    Sighting,
    User,
)
from app.storage.permissions import authorize_or_system
from app.storage.stats import _human, _undone

_OPEN = (ItemStatus.QUEUED, ItemStatus.CLAIMED, ItemStatus.ESCALATED, ItemStatus.UNREADABLE)
_DECIDING = (Verdict.CONFIRM, Verdict.REJECT)


class SituationService:
    def __init__(self, db: Database, daily_exposure_limit_s: float = 0.0) -> None:
        self.db = db
        self.daily_exposure_limit_s = daily_exposure_limit_s

    def events(
        self, name: str, *, actor: UserInfo | None, now: datetime | None = None
    ) -> SituationEvents:
        """Everything counted for incident ``name`` (``actor`` None: a command on this
        workstation, reading only)."""
        now = now or utcnow()
        with self.db.session() as s:
            authorize_or_system(s, actor, Permission.VIEW_STATS)
            inc = s.scalar(select(Incident).where(Incident.name == (name or "").strip()))
            if inc is None:
                raise IncidentError(f"there is no incident {name!r} (`hashdesk incident list`)")
            ev = SituationEvents(inc.name, inc.label, inc.started_at, inc.ended_at, now)
            mine = select(Item.id).where(Item.incident_id == inc.id)
            first_seen = (
                select(Sighting.item_id, func.min(Sighting.flagged_at).label("at"))
                .where(Sighting.item_id.in_(mine))
                .group_by(Sighting.item_id)
                .subquery()
            )
            decided = (
                select(Decision.item_id, func.min(Decision.decided_at).label("at"))
                .where(
                    Decision.item_id.in_(mine),
                    Decision.verdict.in_(_DECIDING),
                    Decision.uuid.not_in(_undone()),
                )
                .group_by(Decision.item_id)
                .subquery()
            )
            # A copy matched against a known hash is a variant of the item that hash came from.
            source = aliased(Item)
            variant_of = dict(
                s.execute(
                    select(
                        HashListEntry.id,
                        func.coalesce(source.cluster_id, -source.id),
                    )
                    .join(source, source.id == HashListEntry.item_id)
                    .where(
                        HashListEntry.id.in_(
                            select(Item.known_entry_id).where(
                                Item.incident_id == inc.id, Item.known_entry_id.is_not(None)
                            )
                        )
                    )
                ).all()
            )
            for item_id, created_at, seen, kind, cluster, known, status, done in s.execute(
                select(
                    Item.id,
                    Item.created_at,
                    first_seen.c.at,
                    Item.kind,
                    Item.cluster_id,
                    Item.known_entry_id,
                    Item.status,
                    decided.c.at,
                )
                .outerjoin(first_seen, first_seen.c.item_id == Item.id)
                .outerjoin(decided, decided.c.item_id == Item.id)
                .where(Item.incident_id == inc.id)
            ):
                arrived = min(created_at, seen) if seen is not None else created_at
                still_open = status in _OPEN
                ev.items.append(
                    ItemTimes(
                        arrived,
                        None if still_open else (done or created_at),
                        str(kind),
                        int(cluster)
                        if cluster is not None
                        else int(variant_of.get(known, -int(item_id))),
                    )
                )
            d = Decision
            rows = s.execute(
                select(d.item_id, d.decided_at, d.verdict, d.method, d.user_id)
                .where(d.item_id.in_(mine), d.uuid.not_in(_undone()))
                .order_by(d.decided_at)
            ).all()
            windows = s.execute(
                select(Rescan.started_at, Rescan.finished_at).where(
                    Rescan.resolved > 0,
                    Rescan.finished_at >= inc.started_at,
                )
            ).all()

            def by_rescan(at: datetime) -> bool:
                return any(a <= at <= b for a, b in windows)

            first_confirm: dict[int, datetime] = {}
            for item_id, at, verdict, method, _user in rows:
                if verdict == Verdict.CONFIRM and item_id not in first_confirm:
                    first_confirm[item_id] = at
                if verdict not in _DECIDING:
                    continue
                if method == DecisionMethod.CLUSTER:
                    ev.by_cluster.append(at)
                elif method == DecisionMethod.AUTO_MATCH:
                    (ev.by_rescan if by_rescan(at) else ev.at_ingest).append(at)
            ev.confirmed = sorted(first_confirm.values())
            ev.human = list(
                s.scalars(
                    select(d.decided_at).where(
                        d.item_id.in_(mine), *_human(), d.method != DecisionMethod.CLUSTER
                    )
                )
            )
            people = s.scalars(
                select(User.username)
                .join(d, d.user_id == User.id)
                .where(d.item_id.in_(mine), *_human())
                .distinct()
            ).all()
            ev.people = sorted(people)
            ev.deltas = [
                DeltaFacts(
                    r.seq,
                    r.span_end,
                    r.written_at,
                    r.added,
                    r.retracted,
                    "written" if r.written_at else ("failing" if r.last_error else "pending"),
                    r.last_error,
                )
                for r in s.scalars(
                    select(Delta).where(Delta.incident_id == inc.id).order_by(Delta.seq)
                )
            ]
            end = inc.ended_at or now
            summary = exposure_summary(
                s, inc.started_at, end + timedelta(seconds=1), self.daily_exposure_limit_s, _human()
            )
            summary.days = [x for x in summary.days if x.user in set(people)]
            ev.exposure = summary
            return ev

    def situation(
        self,
        name: str,
        *,
        actor: UserInfo | None,
        now: datetime | None = None,
        intervals: int = INTERVALS,
    ) -> Situation:
        return situation(self.events(name, actor=actor, now=now), intervals)
