"""The moderators' service: claims with leases, decisions, undo; and the queue counts.

Built on the decision record (app.storage.record) and the escalation and second-review paths,
calling only downward. Everything a decision changes (the decision row, the item's status, the
hash-list rows it adds or retracts) happens in one transaction. Decisions are idempotent by
their client-made UUID; the account is checked (active, role) in the same transaction.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from app.core.model.decisions import (
    QUEUES,
    UNDOABLE,
    DecisionOutcome,
    DecisionRequest,
    QueueCounts,
    ReviewError,
)
from app.core.model.domain import (
    IN_QUEUE_STATUSES,
    OPEN_STATUSES,
    DecisionMethod,
    ItemStatus,
    QueueItem,
    Verdict,
    open_status_for,
    utcnow,
)
from app.core.model.roles import Permission, allowed
from app.core.video.scrub import SampledFrames
from app.storage import escalations, second_review, video_frames
from app.storage.db import Database
from app.storage.list_feedback import feedback_from_decision
from app.storage.models import Decision, HashListEntry, Item, SecondReview, User
from app.storage.permissions import authorize
from app.storage.record import (
    append_confirm,
    append_decision,
    clear_claim,
    cluster_decisions,
    current_decision,
    held_items,
    lock_item,
    open_members,
    outcome_of_row,
    queue_order,
    recorded,
    retract_decision_hashes,
    to_queue_item,
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
        if queue not in QUEUES:
            raise ReviewError(f"unknown queue {queue!r}: use one of {', '.join(QUEUES)}")
        if queue != "review":
            claim = (
                escalations.claim_escalation
                if queue == "escalations"
                else second_review.claim_second_review
            )
            with self.db.session() as s:
                return claim(s, user_id, exclude, self.lease)
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
            authorize(s, user_id, Permission.REVIEW)
            item = s.scalar(query)
            if item is None:
                return None
            item.status = ItemStatus.CLAIMED.value
            item.claimed_by = user_id
            item.lease_expires_at = now + self.lease
            s.flush()
            return to_queue_item(s, item)

    def my_claims(self, user_id: int, queue: str | None = None) -> list[int]:
        """Items this user still holds (after a restart, or claimed by work still in flight
        when a window closed), oldest first: in ``queue`` ("review", "escalations",
        "second_review"), or in any queue when None."""
        with self.db.session() as s:
            statuses = {
                "review": [ItemStatus.CLAIMED.value],
                "escalations": [ItemStatus.ESCALATED.value],
                "second_review": [],
            }.get(queue or "", [ItemStatus.CLAIMED.value, ItemStatus.ESCALATED.value])
            items = (
                s.scalars(
                    select(Item.id).where(Item.claimed_by == user_id, Item.status.in_(statuses))
                ).all()
                if statuses
                else []
            )
            reviews = (
                s.scalars(
                    select(SecondReview.item_id).where(
                        SecondReview.claimed_by == user_id,
                        SecondReview.status == second_review.SR_CLAIMED,
                    )
                ).all()
                if queue in (None, "second_review")
                else []
            )
            return sorted({*items, *reviews})

    def sampled_frames(
        self, item_id: int, store_path: Callable[[str], Path], threshold: int
    ) -> SampledFrames:
        """A video's sampled frames for the scrubber, and the ones that matched known content."""
        return video_frames.sampled_frames(self.db, item_id, store_path, threshold)

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
            ids = list(item_ids)
            rows = held_items(s, user_id, ids, ItemStatus.CLAIMED.value)
            until = utcnow() + self.lease
            for item in rows:
                item.lease_expires_at = until
            return (
                len(rows)
                + escalations.renew_escalation_claims(s, user_id, ids, until)
                + second_review.renew_second_review_claims(s, user_id, ids, until)
            )

    def release(self, user_id: int, item_ids: Collection[int]) -> int:
        """Give claimed items back to the queue (on close, or when the screen moves away)."""
        if not item_ids:
            return 0
        with self.db.session() as s:
            ids = list(item_ids)
            rows = held_items(s, user_id, ids, ItemStatus.CLAIMED.value)
            for item in rows:
                item.status = open_status_for(item.kind)
                clear_claim(item)
            return (
                len(rows)
                + escalations.release_escalation_claims(s, user_id, ids)
                + second_review.release_second_review_claims(s, user_id, ids)
            )

    def counts(self, user_id: int, queue: str = "review") -> QueueCounts:
        start = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
        with self.db.session() as s:
            if queue == "escalations":
                open_items = escalations.escalation_count(s)
            elif queue == "second_review":
                open_items = second_review.second_review_count(s, user_id)
            else:
                open_items = int(
                    s.scalar(
                        select(func.count())
                        .select_from(Item)
                        .where(Item.status.in_(IN_QUEUE_STATUSES))
                    )
                    or 0
                )
            # Decisions of today that stand: a confirm, reject or escalate (cluster members
            # included) that no undo took back. Skips and undos are not decisions made.
            undone = select(Decision.supersedes).where(
                Decision.verdict == Verdict.UNDO.value, Decision.supersedes.is_not(None)
            )
            decided = s.scalar(
                select(func.count())
                .select_from(Decision)
                .where(
                    Decision.user_id == user_id,
                    Decision.decided_at >= start,
                    Decision.verdict.in_(
                        [Verdict.CONFIRM.value, Verdict.REJECT.value, Verdict.ESCALATE.value]
                    ),
                    Decision.uuid.not_in(undone),
                )
            )
            return QueueCounts(int(open_items or 0), int(decided or 0))

    # -- decisions -------------------------------------------------------------------------

    def decide(self, req: DecisionRequest) -> DecisionOutcome:
        if req.verdict not in UNDOABLE:
            raise ReviewError(f"{req.verdict.value} is not a review verdict")
        if req.verdict is Verdict.CONFIRM and not req.category:
            raise ReviewError("a confirmation needs a category")
        with self.db.session() as s:
            if recorded(s, req.uuid):
                return DecisionOutcome(req.uuid, req.item_id, req.verdict, duplicate=True)
            user = authorize(s, req.user_id, Permission.REVIEW)
            if req.method is DecisionMethod.SECOND_REVIEW:
                return second_review.record_second_review(s, req)
            item = lock_item(s, req.item_id)
            if item is None:
                raise ReviewError(f"item {req.item_id} does not exist")
            if item.status == ItemStatus.ESCALATED.value:
                if allowed(user.role, Permission.HANDLE_ESCALATIONS):
                    return escalations.resolve_escalation(s, item, req)
                return self._late(s, item, req, current_decision(s, item.id))
            standing = current_decision(s, item.id)
            if standing is not None or item.status in (
                ItemStatus.DECIDED.value,
                ItemStatus.AUTO_MATCHED.value,
            ):
                # Decided already (on a team server a standing decision under blind second
                # review is not visible to other moderators: the status still tells).
                return self._late(s, item, req, standing)
            added = self._apply(s, item, req)
            feedback_from_decision(s, item, req)  # a badged item's verdict: agree or disagree
            second_review.maybe_queue_second_review(s, req, self.second_review_share)
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
        append_decision(s, req)
        conflict = (
            standing is not None
            and req.verdict in (Verdict.CONFIRM, Verdict.REJECT, Verdict.ESCALATE)
            and outcome_of_row(standing) is not req.verdict
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
                        f"Conflicting decisions: {outcome_of_row(standing).value} by {first}, "
                        f"then {req.verdict.value} by {late} (landed late); the standing "
                        "decision and its hashes are unchanged until a lead decides"
                    ),
                    method=DecisionMethod.MANUAL,
                    supersedes=None,
                ),
            )
            item.status = ItemStatus.ESCALATED.value
            clear_claim(item)
        return DecisionOutcome(req.uuid, item.id, req.verdict, late=True, conflict=conflict)

    def _apply(self, s: Session, item: Item, req: DecisionRequest) -> int:
        """Append ``req`` and apply it to ``item``; returns the number of hashes added."""
        added = 0
        if req.verdict is Verdict.CONFIRM:
            added = append_confirm(s, req, item)
        else:
            append_decision(s, req)
        if req.verdict in (Verdict.CONFIRM, Verdict.REJECT):
            item.status = ItemStatus.DECIDED.value
        elif req.verdict is Verdict.ESCALATE:
            item.status = ItemStatus.ESCALATED.value
        else:  # skip: back to the queue for someone else
            item.status = open_status_for(item.kind)
        clear_claim(item)
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
            authorize(s, user_id, Permission.REVIEW)
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
            members = cluster_decisions(s, target.uuid)
            for d in members:
                retracted += self._undo_one(s, d, user_id, str(uuidlib.uuid4()), now, undo_uuid)
                member = s.get(Item, d.item_id)
                if member is not None:
                    member.status = open_status_for(member.kind)
            item = lock_item(s, target.item_id)
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
        return retract_decision_hashes(
            s, target.uuid, user_id, now, "decision undone by the moderator who made it", undo_uuid
        )

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
