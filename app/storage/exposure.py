"""Exposure rows: recorded (from the journal, idempotently by UUID), today's totals for the
status bar, and the period's figures for the statistics view (docs/ARCHITECTURE.md).

A moderator records exposure in their own name only and reads only their own rows; a lead reads
everyone's. "Daily limit passed" and a person's trend are read from the same rows as the totals.
On a team server the records and a person's comfort defaults are written only by the server's
functions (app/storage/sql/api_exposure.sql: the caller's own name, the server's time, seconds
within 0 and a day); elsewhere this module makes the same checks in Python.
"""

from __future__ import annotations

import math
from datetime import date, datetime

from sqlalchemy import distinct, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.core.errors import Refusal, first_line
from app.core.model.chain import GENESIS_HASH, chain_hash, exposure_fields_of
from app.core.model.domain import UserInfo, utcnow
from app.core.model.exposure import (
    DailyExposure,
    ExposureEvent,
    ExposureKind,
    ExposureSummary,
    today_start,
)
from app.core.model.roles import Permission, PermissionDenied, allowed
from app.core.review.preview import ComfortDefaults
from app.storage.db import Database
from app.storage.models import ComfortPreference, Decision, ExposureRow, User
from app.storage.permissions import authorize
from app.storage.server_api import call, on_server

#: The exposure chain's advisory lock on a PostgreSQL database without the server program
#: ("EXPO"); with it, the server appends under its own row lock (app/storage/sql/chain.sql).
EXPOSURE_CHAIN_LOCK = 0x4558504F


def exposure_head(s: Session) -> str | None:
    """The newest entry hash of the exposure chain (records before revision 0013 have none)."""
    return s.scalar(
        select(ExposureRow.entry_hash)
        .where(ExposureRow.entry_hash.is_not(None))
        .order_by(ExposureRow.id.desc())
        .limit(1)
    )


#: One record's seconds at most: a day (the server's CHECK on exposure_events.seconds too).
MAX_EXPOSURE_SECONDS = 86400


class ExposureError(Refusal, ValueError):
    """An exposure record or comfort default that cannot be kept as it is."""


def _check(event: ExposureEvent) -> None:
    """The values the server refuses too (api_exposure.sql)."""
    if not (math.isfinite(event.seconds) and 0 <= event.seconds <= MAX_EXPOSURE_SECONDS):
        raise ExposureError(
            f"{event.seconds!r} seconds of exposure is not within 0 and {MAX_EXPOSURE_SECONDS}"
        )
    if not (math.isfinite(event.area) and 0 <= event.area <= 1):
        raise ExposureError(f"{event.area!r} of the picture is not a share within 0 and 1")


def _refused(exc: DBAPIError) -> ExposureError | None:
    if getattr(exc.orig, "sqlstate", None) == "22023":
        return ExposureError(first_line(str(exc.orig)).removeprefix("hashdesk: "))
    return None


def _in_own_name(s: Session, user_id: int, what: str) -> None:
    """On a team server: ``user_id`` must be the session's own account (the server writes in
    no other name; a patched client's other id is refused here with a clear message)."""
    me = s.scalar(text("SELECT hd_me_id()"))
    if me != user_id:
        raise PermissionDenied(f"refused by the server: may not {what} in another person's name")


def _day(v: object) -> date:
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    return date.fromisoformat(str(v)[:10])


def exposure_summary(
    s: Session,
    since: datetime,
    until: datetime,
    daily_limit_s: float,
    human: tuple,
    user_id: int | None = None,
) -> ExposureSummary:
    """The period's figures; ``human``: the human-decision filter (app.storage.stats);
    ``user_id``: one person's rows only (their own view)."""
    e, d = ExposureRow, Decision
    mine = (e.user_id == user_id,) if user_id is not None else ()
    in_period = (e.started_at >= since, e.started_at < until, *mine)
    out = ExposureSummary(daily_limit_s=daily_limit_s)
    out.seconds = float(
        s.scalar(select(func.coalesce(func.sum(e.seconds), 0.0)).where(*in_period)) or 0.0
    )
    dec_mine = (d.user_id == user_id,) if user_id is not None else ()
    decided = (d.decided_at >= since, d.decided_at < until, *human, *dec_mine)
    out.decisions = int(s.scalar(select(func.count()).select_from(d).where(*decided)) or 0)
    resolved = select(d.item_id).where(*decided, d.verdict.in_(("confirm", "reject"))).distinct()
    out.resolved = int(s.scalar(select(func.count()).select_from(resolved.subquery())) or 0)
    seen = select(e.item_id).where(e.item_id.is_not(None))
    out.resolved_unseen = int(
        s.scalar(
            select(func.count()).select_from(resolved.where(d.item_id.not_in(seen)).subquery())
        )
        or 0
    )
    names = dict(s.execute(select(User.id, User.username)).all())
    day = func.date(e.started_at)
    rows = s.execute(
        select(e.user_id, day, func.sum(e.seconds), func.count(distinct(e.item_id)))
        .where(*in_period)
        .group_by(e.user_id, day)
        .order_by(day, e.user_id)
    ).all()
    out.days = [
        DailyExposure(
            user=names.get(uid, "?"),
            day=_day(dv),
            seconds=float(secs or 0.0),
            items=int(n or 0),
            limit_passed=bool(daily_limit_s) and float(secs or 0.0) >= daily_limit_s,
        )
        for uid, dv, secs, n in rows
    ]
    return out


class ExposureService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def comfort(self, user_id: int) -> ComfortDefaults | None:
        """The person's own comfort defaults, or None (the organisation's apply)."""
        with self.db.session() as s:
            row = s.get(ComfortPreference, user_id)
            return ComfortDefaults(row.greyscale, row.blur_level) if row is not None else None

    def keep_comfort(self, who: UserInfo, comfort: ComfortDefaults) -> None:
        """Keep ``comfort`` as the person's own defaults (in their own name only)."""
        with self.db.session() as s:
            authorize(s, who, Permission.REVIEW)
            if on_server(s):
                if s.scalar(text("SELECT hd_me_id()")) != who.id:
                    raise PermissionDenied(
                        f"{who.username} may change only their own comfort defaults"
                    )
                try:
                    call(
                        s,
                        text("SELECT hd_api_keep_comfort(:g, :b)"),
                        {"g": comfort.greyscale, "b": comfort.blur_level},
                    )
                except DBAPIError as exc:
                    raise (_refused(exc) or exc) from None
                return
            row = s.get(ComfortPreference, who.id)
            if row is None:
                row = ComfortPreference(user_id=who.id)
                s.add(row)
            row.greyscale = comfort.greyscale
            row.blur_level = comfort.blur_level
            row.updated_at = utcnow()

    def record(self, event: ExposureEvent) -> bool:
        """Store one event in its person's name; False if it was already there (a replay).
        Refuses (ExposureError) seconds outside 0 to a day and a share outside 0 to 1."""
        _check(event)
        with self.db.session() as s:
            authorize(s, event.user_id, Permission.REVIEW)
            if on_server(s):
                _in_own_name(s, event.user_id, "record exposure")
                try:
                    rows = call(
                        s,
                        text(
                            "SELECT hd_api_record_exposure(:uuid, :item, :kind, :started, "
                            ":seconds, :area)"
                        ),
                        {
                            "uuid": event.uuid,
                            "item": event.item_id,
                            "kind": str(event.kind),
                            "started": event.started_at,
                            "seconds": float(event.seconds),
                            "area": float(event.area),
                        },
                    )
                except DBAPIError as exc:
                    raise (_refused(exc) or exc) from None
                return bool(rows[0][0])
            if s.get_bind().dialect.name == "postgresql":  # SQLite: the writer lock at BEGIN
                s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": EXPOSURE_CHAIN_LOCK})
            if s.scalar(select(ExposureRow.id).where(ExposureRow.uuid == event.uuid)):
                return False
            prev = exposure_head(s) or GENESIS_HASH
            row = ExposureRow(
                uuid=event.uuid,
                user_id=event.user_id,
                item_id=event.item_id,
                kind=str(event.kind),
                started_at=event.started_at,
                seconds=event.seconds,
                area=event.area,
                recorded_at=utcnow(),
                prev_hash=prev,
            )
            row.entry_hash = chain_hash(prev, exposure_fields_of(row))
            s.add(row)
            return True

    def today(self, user_id: int, before: datetime | None = None) -> tuple[float, set[int]]:
        """This person's unblurred seconds today (UTC) and the items they touched; ``before``:
        only moments that began before it (a session's own start: what it tallies itself,
        once synced, must not come back through this read and count twice)."""
        start = today_start()
        where = [ExposureRow.user_id == user_id, ExposureRow.started_at >= start]
        if before is not None:
            where.append(ExposureRow.started_at < before)
        with self.db.session() as s:
            rows = s.execute(select(ExposureRow.seconds, ExposureRow.item_id).where(*where)).all()
        return sum(r[0] for r in rows), {r[1] for r in rows if r[1] is not None}

    def events(self, viewer: UserInfo, user_id: int | None = None) -> list[ExposureEvent]:
        """Rows as events, newest last: everyone's for a lead, one's own for a moderator."""
        with self.db.session() as s:
            row = authorize(s, viewer, Permission.REVIEW)
            if not allowed(row.role, Permission.VIEW_STATS):
                if user_id not in (None, viewer.id):
                    raise PermissionDenied(f"{viewer.username} may read only their own exposure")
                user_id = viewer.id
            q = select(ExposureRow).order_by(ExposureRow.id)
            if user_id is not None:
                q = q.where(ExposureRow.user_id == user_id)
            return [
                ExposureEvent(
                    r.user_id,
                    r.item_id,
                    ExposureKind(r.kind),
                    r.started_at,
                    r.seconds,
                    r.area,
                    r.uuid,
                )
                for r in s.scalars(q)
            ]
