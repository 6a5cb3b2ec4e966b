"""The review queue and decisions: claims with leases, append-only decisions, hash-list writes.

Everything a decision changes (the decision row, the item's status, the hash-list rows it adds or
retracts) happens in one transaction. Decisions are idempotent by their client-made UUID.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select, text
from sqlalchemy.orm import Session

from app.core.domain import (
    DecisionMethod,
    ItemStatus,
    MediaKind,
    QueueItem,
    SightingInfo,
    Verdict,
)
from app.core.roles import Permission, PermissionDenied, allowed, require
from app.core.security import GENESIS_HASH, chain_hash
from app.storage.db import Database
from app.storage.models import Decision, HashListEntry, Item, Sighting, SignalRow, User, utcnow

OPEN_STATUSES = (ItemStatus.QUEUED.value, ItemStatus.UNREADABLE.value)
# Verdicts that end a moderator's work on an item and that undo can take back.
UNDOABLE = (Verdict.CONFIRM, Verdict.REJECT, Verdict.SKIP, Verdict.ESCALATE)
_CHAIN_LOCK_ID = 0x48415348  # "HASH": PostgreSQL advisory lock serialising the decision chain


class ReviewError(RuntimeError):
    pass


@dataclass(frozen=True)
class DecisionRequest:
    item_id: int
    user_id: int | None  # None: made by the system (auto-match)
    verdict: Verdict
    category: str | None = None
    category_label: str | None = None
    note: str | None = None
    method: DecisionMethod = DecisionMethod.MANUAL
    uuid: str = field(default_factory=lambda: str(uuidlib.uuid4()))
    decided_at: datetime = field(default_factory=utcnow)
    supersedes: str | None = None
    parent_uuid: str | None = None
    matched_entry_id: int | None = None
    match_distance: int | None = None


@dataclass(frozen=True)
class DecisionOutcome:
    uuid: str
    item_id: int
    verdict: Verdict
    hashes_added: int = 0
    hashes_retracted: int = 0
    cluster_members: int = 0  # other items of the cluster decided with it
    duplicate: bool = False  # the UUID had already been recorded: nothing was written
    late: bool = False  # landed after the item was decided: recorded, nothing else changed
    conflict: bool = False  # ...and disagreed with the standing decision: sent to the leads


@dataclass(frozen=True)
class QueueCounts:
    open_items: int
    decided_today: int


def open_status_for(kind: str) -> str:
    return ItemStatus.UNREADABLE.value if kind == MediaKind.UNREADABLE.value else "queued"


def open_members(s: Session, rep: Item) -> list[Item]:
    """The other open items of the cluster ``rep`` represents (they wait behind it)."""
    if rep.cluster_id != rep.id:
        return []
    return list(
        s.scalars(
            select(Item)
            .where(
                Item.cluster_id == rep.id,
                Item.id != rep.id,
                Item.status.in_(OPEN_STATUSES),
            )
            .order_by(Item.id)
            .with_for_update()
        )
    )


def cluster_size(s: Session, item: Item) -> int:
    if item.cluster_id is None or item.cluster_id != item.id:
        return 1
    n = s.scalar(
        select(func.count())
        .select_from(Item)
        .where(
            Item.cluster_id == item.id,
            Item.id != item.id,
            Item.status.in_(OPEN_STATUSES),
        )
    )
    return 1 + int(n or 0)


def to_queue_item(s: Session, item: Item) -> QueueItem:
    sightings = s.scalars(
        select(Sighting).where(Sighting.item_id == item.id).order_by(Sighting.flagged_at)
    ).all()
    return QueueItem(
        id=item.id,
        sha256=item.sha256,
        kind=MediaKind(item.kind),
        status=ItemStatus(item.status),
        size=item.size,
        width=item.width,
        height=item.height,
        duration=item.duration,
        preview_key=item.preview_key,
        preview_frames=item.preview_frames,
        error=item.error,
        priority=item.priority,
        deadline=item.deadline,
        cluster_id=item.cluster_id,
        cluster_size=cluster_size(s, item),
        sightings=tuple(
            SightingInfo(
                source=x.source,
                external_id=x.external_id,
                source_url=x.source_url,
                reason=x.reason,
                score=x.score,
                flagged_at=x.flagged_at,
                deadline=x.deadline,
            )
            for x in sightings
        ),
        match_note=item.match_note,
    )


def decision_chain_fields(
    *,
    uuid: str,
    item_id: int,
    user_id: int | None,
    verdict: str,
    category: str | None,
    note: str | None,
    method: str,
    supersedes: str | None,
    decided_at: datetime,
    parent_uuid: str | None,
    matched_entry_id: int | None,
    match_distance: int | None,
) -> dict:
    """The fields of a decision that its chain hash covers. Used to append and to verify
    (app.storage.audit), so the two can never disagree."""
    fields = {
        "uuid": uuid,
        "item_id": item_id,
        "user_id": user_id,
        "verdict": verdict,
        "category": category,
        "note": note,
        "method": method,
        "supersedes": supersedes,
        "decided_at": decided_at.isoformat(timespec="microseconds"),
    }
    if parent_uuid or matched_entry_id is not None:
        fields["parent_uuid"] = parent_uuid
        fields["matched_entry_id"] = matched_entry_id
        fields["match_distance"] = match_distance
    return fields


def require_user(s: Session, user_id: int | None, permission: Permission) -> None:
    """Refuse unless the user exists, is active and their role (as the database has it now)
    allows ``permission``. ``None`` is the system (auto-match at ingest)."""
    if user_id is None:
        return
    row = s.get(User, user_id)
    if row is None or not row.active:
        raise PermissionDenied(f"user #{user_id} is disabled or does not exist")
    require(row.role, permission, row.username)


def append_decision(s: Session, req: DecisionRequest) -> Decision:
    """Append one decision row to the chain. The caller holds the transaction."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK_ID})
    prev = s.scalar(select(Decision.entry_hash).order_by(Decision.id.desc()).limit(1))
    prev = prev or GENESIS_HASH
    chained: dict[str, Any] = {  # the fields the chain hash covers, as stored
        "uuid": req.uuid,
        "item_id": req.item_id,
        "user_id": req.user_id,
        "verdict": req.verdict.value,
        "category": req.category,
        "note": req.note,
        "method": req.method.value,
        "supersedes": req.supersedes,
        "decided_at": req.decided_at,
        "parent_uuid": req.parent_uuid,
        "matched_entry_id": req.matched_entry_id,
        "match_distance": req.match_distance,
    }
    row = Decision(
        **chained,
        category_label=req.category_label,
        prev_hash=prev,
        entry_hash=chain_hash(prev, decision_chain_fields(**chained)),
    )
    s.add(row)
    s.flush()
    return row


def add_item_hashes(
    s: Session,
    item: Item,
    decision_uuid: str,
    category: str | None,
    user_id: int | None,
    at: datetime,
) -> int:
    """Put the item's signals in the hash list under ``decision_uuid`` (as a confirm does).
    Rotated/mirrored query hashes (variant "dih:...") are for querying only."""
    n = 0
    for sig in s.scalars(select(SignalRow).where(SignalRow.item_id == item.id)):
        if sig.variant.startswith("dih:"):
            continue
        s.add(
            HashListEntry(
                algorithm=sig.algorithm,
                value=sig.value,
                quality=sig.quality,
                frame_ts=sig.frame_ts,
                variant=sig.variant,
                category=category,
                list_name="local",
                decision_uuid=decision_uuid,
                item_id=item.id,
                signal_id=sig.id,
                added_by=user_id,
                added_at=at,
            )
        )
        n += 1
    return n


def queue_order(age: Any) -> tuple[Any, ...]:
    """How every queue serves items: deadline first (items without one last), then priority,
    then ``age`` (oldest first), then id."""
    return (
        case((Item.deadline.is_(None), 1), else_=0),
        Item.deadline,
        Item.priority.desc(),
        age,
        Item.id,
    )


class ReviewService:
    def __init__(
        self, db: Database, lease_seconds: int = 300, second_review_share: float = 0.05
    ) -> None:
        self.db = db
        self.lease = timedelta(seconds=lease_seconds)
        # Share of manual confirms/rejects queued, blind, for a second moderator.
        self.second_review_share = second_review_share

    # -- the queue -------------------------------------------------------------------------

    def claim_next(
        self, user_id: int, exclude: Collection[int] = (), queue: str = "review"
    ) -> QueueItem | None:
        """Claim the next open item for ``user_id`` (deadline first, then priority, then age).

        An item claimed by someone else whose lease has run out is open again. On PostgreSQL the
        row lock skips rows another workstation is claiming at this moment. ``queue`` is
        "review" (the moderators' queue), "escalations" (leads) or "second_review" (blind).
        """
        if queue != "review":
            from app.storage.leads import claim_from_queue

            return claim_from_queue(self.db, user_id, exclude, queue, self.lease)
        now = utcnow()
        claimable = or_(
            Item.status.in_(OPEN_STATUSES),
            and_(Item.status == ItemStatus.CLAIMED.value, Item.lease_expires_at < now),
        )
        query = (
            select(Item)
            .where(claimable)
            .where(or_(Item.cluster_id.is_(None), Item.cluster_id == Item.id))
            .order_by(*queue_order(Item.created_at))
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if exclude:
            query = query.where(Item.id.not_in(list(exclude)))
        with self.db.session() as s:
            require_user(s, user_id, Permission.REVIEW)
            item = s.scalar(query)
            if item is None:
                return None
            item.status = ItemStatus.CLAIMED.value
            item.claimed_by = user_id
            item.lease_expires_at = now + self.lease
            s.flush()
            return to_queue_item(s, item)

    def my_claims(self, user_id: int) -> list[int]:
        """Items this user still holds (for example after a restart), oldest first."""
        with self.db.session() as s:
            return list(
                s.scalars(
                    select(Item.id)
                    .where(Item.status == ItemStatus.CLAIMED.value, Item.claimed_by == user_id)
                    .order_by(Item.id)
                )
            )

    def load_item(self, item_id: int) -> QueueItem:
        with self.db.session() as s:
            item = s.get(Item, item_id)
            if item is None:
                raise ReviewError(f"item {item_id} does not exist")
            return to_queue_item(s, item)

    def cluster_members(self, rep_id: int) -> list[QueueItem]:
        """The open items waiting behind a cluster's representative, oldest first."""
        with self.db.session() as s:
            rows = s.scalars(
                select(Item)
                .where(
                    Item.cluster_id == rep_id,
                    Item.id != rep_id,
                    Item.status.in_(OPEN_STATUSES),
                )
                .order_by(Item.id)
            ).all()
            return [to_queue_item(s, item) for item in rows]

    def renew(self, user_id: int, item_ids: Collection[int]) -> int:
        if not item_ids:
            return 0
        with self.db.session() as s:
            rows = s.scalars(
                select(Item).where(
                    Item.id.in_(list(item_ids)),
                    Item.claimed_by == user_id,
                    Item.status == ItemStatus.CLAIMED.value,
                )
            ).all()
            for item in rows:
                item.lease_expires_at = utcnow() + self.lease
            from app.storage.leads import renew_lead_claims

            return len(rows) + renew_lead_claims(s, user_id, list(item_ids), utcnow() + self.lease)

    def release(self, user_id: int, item_ids: Collection[int]) -> int:
        """Give claimed items back to the queue (on close, or when the screen moves away)."""
        if not item_ids:
            return 0
        with self.db.session() as s:
            rows = s.scalars(
                select(Item).where(
                    Item.id.in_(list(item_ids)),
                    Item.claimed_by == user_id,
                    Item.status == ItemStatus.CLAIMED.value,
                )
            ).all()
            for item in rows:
                item.status = open_status_for(item.kind)
                item.claimed_by = None
                item.lease_expires_at = None
            from app.storage.leads import release_lead_claims

            return len(rows) + release_lead_claims(s, user_id, list(item_ids))

    def counts(self, user_id: int, queue: str = "review") -> QueueCounts:
        start = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
        with self.db.session() as s:
            open_items = s.scalar(
                select(func.count())
                .select_from(Item)
                .where(or_(Item.status.in_(OPEN_STATUSES), Item.status == ItemStatus.CLAIMED.value))
            )
            if queue != "review":
                from app.storage.leads import queue_count

                open_items = queue_count(s, queue, user_id)
            decided = s.scalar(
                select(func.count())
                .select_from(Decision)
                .where(
                    Decision.user_id == user_id,
                    Decision.decided_at >= start,
                    Decision.verdict.in_(
                        [Verdict.CONFIRM.value, Verdict.REJECT.value, Verdict.ESCALATE.value]
                    ),
                )
            )
            undone = s.scalar(
                select(func.count())
                .select_from(Decision)
                .where(
                    Decision.user_id == user_id,
                    Decision.decided_at >= start,
                    Decision.verdict == Verdict.UNDO.value,
                )
            )
            return QueueCounts(int(open_items or 0), max(0, int(decided or 0) - int(undone or 0)))

    # -- decisions -------------------------------------------------------------------------

    def decide(self, req: DecisionRequest) -> DecisionOutcome:
        if req.verdict not in UNDOABLE:
            raise ReviewError(f"{req.verdict.value} is not a review verdict")
        if req.verdict is Verdict.CONFIRM and not req.category:
            raise ReviewError("a confirmation needs a category")
        with self.db.session() as s:
            if s.scalar(select(Decision.id).where(Decision.uuid == req.uuid)) is not None:
                return DecisionOutcome(req.uuid, req.item_id, req.verdict, duplicate=True)
            require_user(s, req.user_id, Permission.REVIEW)
            from app.storage import leads

            if req.method is DecisionMethod.SECOND_REVIEW:
                return leads.record_second_review(s, req)
            item = s.scalar(select(Item).where(Item.id == req.item_id).with_for_update())
            if item is None:
                raise ReviewError(f"item {req.item_id} does not exist")
            if item.status == ItemStatus.ESCALATED.value:
                role, _name = leads._role_of(s, req.user_id)
                if allowed(role, Permission.HANDLE_ESCALATIONS):
                    return leads.resolve_escalation(s, item, req)
                return self._late(s, item, req, leads.current_decision(s, item.id))
            standing = leads.current_decision(s, item.id)
            if standing is not None:
                return self._late(s, item, req, standing)
            added = self._apply(s, item, req)
            leads.maybe_queue_second_review(s, req, self.second_review_share)
            members = open_members(s, item) if req.verdict is not Verdict.SKIP else []
            for member in members:
                added += self._apply(
                    s,
                    member,
                    replace(
                        req,
                        item_id=member.id,
                        uuid=str(uuidlib.uuid4()),
                        method=DecisionMethod.CLUSTER,
                        parent_uuid=req.uuid,
                    ),
                )
            return DecisionOutcome(
                req.uuid, item.id, req.verdict, hashes_added=added, cluster_members=len(members)
            )

    def _late(
        self, s: Session, item: Item, req: DecisionRequest, standing: Decision | None
    ) -> DecisionOutcome:
        """A decision that lands after the item was already decided (a journalled decision
        whose lease ran out while the workstation was offline, say) or escalated.

        It is recorded as made, and changes no hashes. If it says otherwise than the decision
        standing for the item, the item goes to the leads with both named, instead of one
        moderator's word silently replacing the other's.
        """
        from app.storage import leads

        append_decision(s, req)
        conflict = (
            standing is not None
            and req.verdict in (Verdict.CONFIRM, Verdict.REJECT, Verdict.ESCALATE)
            and leads.outcome_of(standing) is not req.verdict
        )
        if conflict and item.status != ItemStatus.ESCALATED.value:
            assert standing is not None
            # User ids can be NULL (system decisions): None is never a key, .get falls back.
            names: dict[int | None, str] = dict(s.execute(select(User.id, User.username)).all())
            first = names.get(standing.user_id, "the hash-list match")
            late = names.get(req.user_id, "?")
            append_decision(
                s,
                DecisionRequest(
                    item_id=item.id,
                    user_id=None,
                    verdict=Verdict.ESCALATE,
                    note=(
                        f"Conflicting decisions: {leads.outcome_of(standing).value} by {first}, "
                        f"then {req.verdict.value} by {late} (landed late); the standing "
                        "decision and its hashes are unchanged until a lead decides"
                    ),
                    method=DecisionMethod.MANUAL,
                    supersedes=None,
                ),
            )
            item.status = ItemStatus.ESCALATED.value
            item.claimed_by = None
            item.lease_expires_at = None
        return DecisionOutcome(req.uuid, item.id, req.verdict, late=True, conflict=conflict)

    def _apply(self, s: Session, item: Item, req: DecisionRequest) -> int:
        """Append ``req`` and apply it to ``item``; returns the number of hashes added."""
        append_decision(s, req)
        added = 0
        if req.verdict is Verdict.CONFIRM:
            item.status = ItemStatus.DECIDED.value
            added = add_item_hashes(s, item, req.uuid, req.category, req.user_id, req.decided_at)
        elif req.verdict is Verdict.REJECT:
            item.status = ItemStatus.DECIDED.value
        elif req.verdict is Verdict.ESCALATE:
            item.status = ItemStatus.ESCALATED.value
        else:  # skip: back to the queue for someone else
            item.status = open_status_for(item.kind)
        item.claimed_by = None
        item.lease_expires_at = None
        return added

    def undo_last(
        self, user_id: int, undo_uuid: str | None = None, target_uuid: str | None = None
    ) -> DecisionOutcome | None:
        """Take back this user's latest decision that is not already undone (or exactly
        ``target_uuid``, when the workstation knows which decision the moderator meant).

        Appends an ``undo`` decision that supersedes it, retracts the hashes it added and puts
        the item back in the user's hands. Returns None when there is nothing to undo.
        Idempotent by ``undo_uuid``.
        """
        undo_uuid = undo_uuid or str(uuidlib.uuid4())
        with self.db.session() as s:
            done = s.scalar(select(Decision).where(Decision.uuid == undo_uuid))
            if done is not None:
                return DecisionOutcome(undo_uuid, done.item_id, Verdict.UNDO, duplicate=True)
            require_user(s, user_id, Permission.REVIEW)
            undone = select(Decision.supersedes).where(
                Decision.verdict == Verdict.UNDO.value, Decision.supersedes.is_not(None)
            )
            query = select(Decision).where(
                Decision.user_id == user_id,
                Decision.verdict.in_([v.value for v in UNDOABLE]),
                Decision.method == DecisionMethod.MANUAL.value,
                Decision.uuid.not_in(undone),
            )
            if target_uuid is not None:
                query = query.where(Decision.uuid == target_uuid)
            target = s.scalar(query.order_by(Decision.id.desc()).limit(1))
            if target is None:
                return None
            now = utcnow()
            retracted = self._undo_one(s, target, user_id, undo_uuid, now)
            # A cluster decision is undone whole: every member goes back behind its
            # representative.
            members = s.scalars(
                select(Decision).where(
                    Decision.parent_uuid == target.uuid,
                    Decision.method == DecisionMethod.CLUSTER.value,
                )
            ).all()
            for d in members:
                retracted += self._undo_one(s, d, user_id, str(uuidlib.uuid4()), now, undo_uuid)
                member = s.get(Item, d.item_id)
                if member is not None:
                    member.status = open_status_for(member.kind)
            item = s.scalar(select(Item).where(Item.id == target.item_id).with_for_update())
            assert item is not None
            item.status = ItemStatus.CLAIMED.value
            item.claimed_by = user_id
            item.lease_expires_at = now + self.lease
            return DecisionOutcome(
                undo_uuid,
                item.id,
                Verdict.UNDO,
                hashes_retracted=retracted,
                cluster_members=len(members),
            )

    def _undo_one(
        self,
        s: Session,
        target: Decision,
        user_id: int,
        undo_uuid: str,
        now: datetime,
        parent_uuid: str | None = None,
    ) -> int:
        append_decision(
            s,
            DecisionRequest(
                item_id=target.item_id,
                user_id=user_id,
                verdict=Verdict.UNDO,
                method=DecisionMethod.CLUSTER if parent_uuid else DecisionMethod.MANUAL,
                uuid=undo_uuid,
                decided_at=now,
                supersedes=target.uuid,
                parent_uuid=parent_uuid,
            ),
        )
        entries = s.scalars(
            select(HashListEntry).where(
                HashListEntry.decision_uuid == target.uuid,
                HashListEntry.retracted_at.is_(None),
            )
        ).all()
        for e in entries:
            e.retracted_at = now
            e.retracted_by = user_id
            e.retraction_reason = "decision undone by the moderator who made it"
            e.retraction_decision_uuid = undo_uuid
        return len(entries)

    # -- reading the record ----------------------------------------------------------------

    def decisions_for_item(self, item_id: int) -> list[Decision]:
        with self.db.session() as s:
            return list(
                s.scalars(select(Decision).where(Decision.item_id == item_id).order_by(Decision.id))
            )

    def active_hashes_for_item(self, item_id: int) -> list[HashListEntry]:
        with self.db.session() as s:
            return list(
                s.scalars(
                    select(HashListEntry)
                    .where(HashListEntry.item_id == item_id, HashListEntry.retracted_at.is_(None))
                    .order_by(HashListEntry.id)
                )
            )
