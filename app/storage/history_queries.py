"""The decision history for leads: newest first, keyset paging (never OFFSET), filters, and an
item's whole timeline. Read-only; roles are checked here.

Paging is by (decided_at, id) descending. The keyset condition is written as
``decided_at <= t AND (decided_at < t OR id < i)`` so that every index that starts with (or
contains after an equality column) ``decided_at`` can serve it, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import string
from collections.abc import Iterator

from sqlalchemy import Select, and_, exists, func, or_, select
from sqlalchemy.orm import Session

from app.core.matching.signal_types import DIHEDRAL_PREFIX
from app.core.model.deadlines import deadline_state
from app.core.model.domain import Algorithm, DecisionMethod, UserInfo, Verdict
from app.core.model.history_types import (
    SYSTEM_USER,
    FilterOptions,
    HistoryCursor,
    HistoryFilter,
    HistoryPage,
    HistoryRow,
    Timeline,
    TimelineEvent,
)
from app.core.model.roles import Permission
from app.storage.db import Database
from app.storage.models import (
    Decision,
    HashListEntry,
    Item,
    SecondReview,
    Sighting,
    SignalRow,
    User,
)
from app.storage.permissions import authorize

PAGE_SIZE = 100
_HEX = set(string.hexdigits.lower())
_DECIDING = (Verdict.CONFIRM, Verdict.REJECT, Verdict.OVERTURN)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _prefix_range(column, prefix: str):
    """``column`` starts with ``prefix`` (lowercase hex), as a range an index can serve."""
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return and_(column >= prefix, column < upper)


class HistoryService:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- filters ---------------------------------------------------------------------------

    def options(self, viewer: UserInfo) -> FilterOptions:
        with self.db.session() as s:
            authorize(s, viewer, Permission.VIEW_HISTORY)
            names = tuple(s.scalars(select(User.username).order_by(User.username)))
            sources = tuple(s.scalars(select(Sighting.source).distinct().order_by(Sighting.source)))
        return FilterOptions(usernames=(SYSTEM_USER, *names), sources=sources)

    def _items_matching_text(self, s: Session, text: str) -> list[int]:
        """Items whose external id is ``text``, or one of whose hashes starts with it."""
        ids: set[int] = set(
            s.scalars(select(Sighting.item_id).where(Sighting.external_id == text).limit(1000))
        )
        low = text.lower()
        if len(low) >= 6 and set(low) <= _HEX:
            ids.update(
                s.scalars(select(Item.id).where(_prefix_range(Item.sha256, low)).limit(1000))
            )
            ids.update(s.scalars(select(Item.id).where(_prefix_range(Item.md5, low)).limit(1000)))
            ids.update(
                s.scalars(
                    select(SignalRow.item_id)
                    .where(
                        SignalRow.algorithm.in_([a.value for a in Algorithm]),
                        _prefix_range(SignalRow.value, low),
                    )
                    .limit(1000)
                )
            )
        return sorted(ids)

    def _query(self, s: Session, f: HistoryFilter, after: HistoryCursor | None) -> Select:
        d = Decision
        q = select(d)
        if f.usernames:
            names = [n for n in f.usernames if n != SYSTEM_USER]
            ids = list(s.scalars(select(User.id).where(User.username.in_(names)))) if names else []
            conds = [d.user_id.in_(ids)] if ids else []
            if SYSTEM_USER in f.usernames:
                conds.append(d.user_id.is_(None))
            q = q.where(or_(*conds)) if conds else q.where(d.id < 0)
        if f.verdicts:
            q = q.where(d.verdict.in_(list(f.verdicts)))
        if f.categories:
            q = q.where(d.category.in_(list(f.categories)))
        if f.methods:
            q = q.where(d.method.in_(list(f.methods)))
        if f.since is not None:
            q = q.where(d.decided_at >= f.since)
        if f.until is not None:
            q = q.where(d.decided_at < f.until)
        if f.item_id is not None:
            q = q.where(d.item_id == f.item_id)
        if f.sources:
            q = q.where(
                exists().where(Sighting.item_id == d.item_id, Sighting.source.in_(f.sources))
            )
        text = f.text.strip()
        if text:
            # An item reference (external id, hash prefix, #id) finds that item's decisions;
            # anything else is searched for in the notes.
            item_ids = self._items_matching_text(s, text)
            if text.startswith("#") and text[1:].isdigit():
                item_ids.append(int(text[1:]))
            if item_ids:
                q = q.where(d.item_id.in_(item_ids))
            else:
                q = q.where(d.note.ilike(f"%{_like_escape(text)}%", escape="\\"))
        if after is not None:
            q = q.where(
                d.decided_at <= after.decided_at,
                or_(d.decided_at < after.decided_at, d.id < after.id),
            )
        return q.order_by(d.decided_at.desc(), d.id.desc())

    # -- pages -----------------------------------------------------------------------------

    def page(
        self,
        viewer: UserInfo,
        f: HistoryFilter = HistoryFilter(),  # noqa: B008 - frozen, never mutated
        after: HistoryCursor | None = None,
        limit: int = PAGE_SIZE,
    ) -> HistoryPage:
        """One page of decisions, newest first, after ``after`` (None: from the newest)."""
        with self.db.session() as s:
            authorize(s, viewer, Permission.VIEW_HISTORY)
            found = list(s.scalars(self._query(s, f, after).limit(limit + 1)))
            more = len(found) > limit
            found = found[:limit]
            rows = self._rows(s, found)
        nxt = HistoryCursor(found[-1].decided_at, found[-1].id) if more and found else None
        return HistoryPage(tuple(rows), nxt)

    def iter_rows(
        self,
        viewer: UserInfo,
        f: HistoryFilter = HistoryFilter(),  # noqa: B008
        batch: int = 1000,
    ) -> Iterator[HistoryRow]:
        """Every row matching ``f`` (for export), page by page."""
        cursor: HistoryCursor | None = None
        while True:
            page = self.page(viewer, f, cursor, batch)
            yield from page.rows
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def _rows(self, s: Session, found: list[Decision]) -> list[HistoryRow]:
        if not found:
            return []
        item_ids = sorted({d.item_id for d in found})
        names = dict(s.execute(select(User.id, User.username)).all())
        deadlines = dict(
            s.execute(select(Item.id, Item.deadline).where(Item.id.in_(item_ids))).all()
        )
        first_sighting: dict[int, tuple[str, str | None]] = {}
        for item_id, source, ext in s.execute(
            select(Sighting.item_id, Sighting.source, Sighting.external_id)
            .where(Sighting.item_id.in_(item_ids))
            .order_by(Sighting.item_id, Sighting.flagged_at.desc(), Sighting.id.desc())
        ):
            first_sighting[item_id] = (source, ext)  # ends on the earliest sighting
        taken_back = {
            sup: (uuid, verdict)
            for sup, uuid, verdict in s.execute(
                select(Decision.supersedes, Decision.uuid, Decision.verdict).where(
                    Decision.supersedes.is_not(None),  # lets the partial index serve it
                    Decision.supersedes.in_([d.uuid for d in found]),
                )
            )
        }
        rows = []
        for d in found:
            verdict = Verdict(d.verdict)
            method = DecisionMethod(d.method)
            deadline = deadlines.get(d.item_id)
            deciding = verdict in _DECIDING and method is not DecisionMethod.SECOND_REVIEW
            src, ext = first_sighting.get(d.item_id, (None, None))
            back = taken_back.get(d.uuid)
            rows.append(
                HistoryRow(
                    id=d.id,
                    uuid=d.uuid,
                    decided_at=d.decided_at,
                    item_id=d.item_id,
                    username=names.get(d.user_id, "?") if d.user_id is not None else SYSTEM_USER,
                    verdict=verdict,
                    category=d.category,
                    category_label=d.category_label,
                    note=d.note,
                    method=method,
                    supersedes=d.supersedes,
                    parent_uuid=d.parent_uuid,
                    match_distance=d.match_distance,
                    source=src,
                    external_id=ext,
                    deadline=deadline,
                    deadline_state=deadline_state(d.decided_at, deadline) if deciding else "",
                    superseded_by=back[0] if back else None,
                    superseded_verdict=Verdict(back[1]) if back else None,
                )
            )
        return rows

    # -- an item's timeline ----------------------------------------------------------------

    def timeline(self, viewer: UserInfo, item_id: int) -> Timeline:
        with self.db.session() as s:
            authorize(s, viewer, Permission.VIEW_HISTORY)
            item = s.get(Item, item_id)
            if item is None:
                raise LookupError(f"item {item_id} does not exist")
            # int | None keys: a nullable user id column is looked up as it is, and None gets "?".
            names: dict[int | None, str] = dict(s.execute(select(User.id, User.username)).all())
            events: list[TimelineEvent] = []
            for x in s.scalars(select(Sighting).where(Sighting.item_id == item_id)):
                detail = ", ".join(
                    p
                    for p in (
                        f"external id {x.external_id}" if x.external_id else "",
                        f"reason: {x.reason}" if x.reason else "",
                        f"score {x.score:.2f}" if x.score is not None else "",
                        f"deadline {x.deadline:%Y-%m-%d %H:%M}" if x.deadline else "",
                        f"URL (not opened): {x.source_url}" if x.source_url else "",
                    )
                    if p
                )
                events.append(
                    TimelineEvent(x.flagged_at, "sighting", f"Flagged by {x.source}", detail)
                )
            for d in s.scalars(
                select(Decision).where(Decision.item_id == item_id).order_by(Decision.id)
            ):
                who = names.get(d.user_id, "?") if d.user_id is not None else SYSTEM_USER
                kind = {
                    Verdict.OVERTURN: "overturn",
                    Verdict.UNDO: "undo",
                }.get(d.verdict, "decision")
                if d.method == DecisionMethod.SECOND_REVIEW:
                    kind = "second_review"
                if d.method == DecisionMethod.AUTO_MATCH:
                    kind = "match"
                title = f"{d.verdict} by {who} ({d.method})"
                if d.verdict == Verdict.OVERTURN:
                    title = f"overturned by {who}: now {'confirm' if d.category else 'reject'}"
                parts = []
                if d.category_label or d.category:
                    parts.append(f"category: {d.category_label or d.category}")
                if d.note:
                    parts.append(f"note: {d.note}")
                if d.supersedes:
                    parts.append(f"takes back {d.supersedes[:8]}")
                if d.match_distance is not None:
                    parts.append(f"match distance {d.match_distance}")
                if item.deadline is not None and kind in ("decision", "overturn", "match"):
                    parts.append(f"deadline {deadline_state(d.decided_at, item.deadline)}")
                parts.append(f"decision {d.uuid[:8]}")
                events.append(TimelineEvent(d.decided_at, kind, title, "; ".join(parts)))
            for sr in s.scalars(select(SecondReview).where(SecondReview.item_id == item_id)):
                if sr.status == "done":
                    word = "agreed" if sr.agreed else "disagreed"
                    events.append(
                        TimelineEvent(
                            sr.done_at or sr.created_at,
                            "second_review",
                            f"Second review {word}",
                            f"{names.get(sr.first_user_id, '?')}: {sr.first_verdict}; "
                            f"{names.get(sr.second_user_id, '?')}: {sr.second_verdict}",
                        )
                    )
                else:
                    events.append(
                        TimelineEvent(sr.created_at, "second_review", "Queued for second review")
                    )
            hashes = s.scalars(select(HashListEntry).where(HashListEntry.item_id == item_id)).all()
            by_uuid: dict[tuple[str, str | None], list[HashListEntry]] = {}
            for h in hashes:
                by_uuid.setdefault(("add", h.decision_uuid), []).append(h)
                if h.retracted_at is not None:
                    by_uuid.setdefault(("retract", h.retraction_decision_uuid), []).append(h)
            for (what, uuid), group in by_uuid.items():
                algos = sorted({h.algorithm for h in group})
                if what == "add":
                    events.append(
                        TimelineEvent(
                            min(h.added_at for h in group),
                            "hash_added",
                            f"{len(group)} hash(es) added to the hash list",
                            f"{', '.join(algos)}; by decision {(uuid or '')[:8]}",
                        )
                    )
                else:
                    g0 = group[0]
                    events.append(
                        TimelineEvent(
                            g0.retracted_at or g0.added_at,
                            "hash_retracted",
                            f"{len(group)} hash(es) retracted",
                            f"{g0.retraction_reason or ''}; by {names.get(g0.retracted_by, '?')}",
                        )
                    )
            signals: dict[str, tuple[str, int]] = {}
            for algo, value in s.execute(
                select(SignalRow.algorithm, SignalRow.value)
                .where(SignalRow.item_id == item_id, ~SignalRow.variant.startswith(DIHEDRAL_PREFIX))
                .order_by(SignalRow.id)
            ):
                first, n = signals.get(algo, (value, 0))
                signals[algo] = (first, n + 1)
            active = s.scalar(
                select(func.count())
                .select_from(HashListEntry)
                .where(HashListEntry.item_id == item_id, HashListEntry.retracted_at.is_(None))
            )
            order = {"sighting": 0, "match": 1, "decision": 2, "second_review": 3}
            events.sort(key=lambda e: (e.at, order.get(e.kind, 4)))
            return Timeline(
                item_id=item.id,
                sha256=item.sha256,
                md5=item.md5,
                kind=item.kind,
                status=item.status,
                deadline=item.deadline,
                preview_key=item.preview_key,
                preview_frames=item.preview_frames,
                error=item.error,
                signals=tuple((a, v, n) for a, (v, n) in signals.items()),
                events=tuple(events),
                active_hashes=int(active or 0),
                retracted_hashes=sum(1 for h in hashes if h.retracted_at is not None),
            )
