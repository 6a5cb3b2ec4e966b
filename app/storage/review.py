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

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.core.model.decisions import (
    DECIDING,
    UNDOABLE,
    DecisionOutcome,
    DecisionRequest,
    QueueCounts,
    ReviewError,
)
from app.core.model.domain import (
    OPEN_STATUSES,
    DecisionMethod,
    ItemStatus,
    QueueItem,
    Verdict,
    open_status_for,
    utcnow,
)
from app.core.model.queues import DEFAULT_LEASE_SECONDS, Queue
from app.core.model.roles import Permission, PermissionDenied, allowed
from app.core.video.scrub import SampledFrames
from app.storage import escalations, second_review, video_frames
from app.storage.db import Database
from app.storage.list_feedback import feedback_from_decision
from app.storage.models import Decision, HashListEntry, Item, User
from app.storage.permissions import authorize
from app.storage.queues import QUEUES, QueueStrategy, release_on_server, renew_on_server
from app.storage.record import (
    append_confirm,
    append_decision,
    clear_claim,
    cluster_decisions,
    current_decision,
    lock_item,
    open_members,
    outcome_of_row,
    recorded,
    retract_decision_hashes,
    to_queue_item,
)
from app.storage.server_api import call, on_server

_DECIDE = text(
    "SELECT * FROM hd_api_decide(:uuid, :item, :verdict, :category, :label, :note, :share)"
)
_UNDO = text("SELECT * FROM hd_api_undo(:uuid, :target)")
_ME = text("SELECT hd_me_id()")


def _as_me(s: Session, user_id: int | None, what: str) -> None:
    """On a team server the server acts for the session's own account whatever the client
    says; a request in another person's name is refused here, plainly, before it is sent."""
    if call(s, _ME)[0][0] != user_id:
        raise PermissionDenied(f"you may not {what} in another person's name")


def _strategy(queue: Queue | str) -> QueueStrategy:
    try:
        return QUEUES[Queue(queue)]
    except ValueError:
        raise ReviewError(f"unknown queue {queue!r}: use one of {', '.join(Queue)}") from None


class ReviewService:
    def __init__(
        self,
        db: Database,
        lease_seconds: int = DEFAULT_LEASE_SECONDS,
        second_review_share: float = 0.05,
    ) -> None:
        self.db = db
        self.lease = timedelta(seconds=lease_seconds)
        # Share of manual confirms/rejects queued, blind, for a second moderator.
        self.second_review_share = second_review_share

    # -- the queue -------------------------------------------------------------------------

    def claim_next(
        self, user_id: int, exclude: Collection[int] = (), queue: Queue | str = Queue.REVIEW
    ) -> QueueItem | None:
        """Claim the next item of ``queue`` for ``user_id`` (review: deadline first, then
        priority, then age), under a lease; None when the queue has nothing for them.

        An item claimed by someone else whose lease has run out is open again. On PostgreSQL the
        row lock skips rows another workstation is claiming at this moment. What each queue
        claims is its strategy (app.storage.queues).
        """
        strategy = _strategy(queue)
        with self.db.session() as s:
            return strategy.claim(s, user_id, exclude, self.lease)

    def my_claims(self, user_id: int, queue: Queue | str | None = None) -> list[int]:
        """Items this user still holds (after a restart, or claimed by work still in flight
        when a window closed), oldest first: in ``queue``, or in any queue when None."""
        strategies = QUEUES.values() if queue is None else [_strategy(queue)]
        with self.db.session() as s:
            return sorted({i for q in strategies for i in q.held_item_ids(s, user_id)})

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
        """Extend this user's claims on ``item_ids``, in whichever queue they hold them."""
        if not item_ids:
            return 0
        with self.db.session() as s:
            if on_server(s):
                _as_me(s, user_id, "renew claims")
                return renew_on_server(s, item_ids)
            until = utcnow() + self.lease
            return sum(q.renew(s, user_id, item_ids, until) for q in QUEUES.values())

    def release(self, user_id: int, item_ids: Collection[int]) -> int:
        """Give claimed items back to their queue (on close, or when the screen moves away)."""
        if not item_ids:
            return 0
        with self.db.session() as s:
            if on_server(s):
                _as_me(s, user_id, "release claims")
                return release_on_server(s, item_ids)
            return sum(q.release(s, user_id, item_ids) for q in QUEUES.values())

    def counts(self, user_id: int, queue: Queue | str = Queue.REVIEW) -> QueueCounts:
        start = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
        strategy = _strategy(queue)
        with self.db.session() as s:
            open_items = strategy.count(s, user_id)
            # Decisions of today that stand: a confirm or reject (cluster members included)
            # that no undo took back. Skips and undos are not decisions made, and neither is an
            # escalation: it hands the item to a lead, who decides it (issue 25).
            undone = select(Decision.supersedes).where(
                Decision.verdict == Verdict.UNDO, Decision.supersedes.is_not(None)
            )
            decided = s.scalar(
                select(func.count())
                .select_from(Decision)
                .where(
                    Decision.user_id == user_id,
                    Decision.decided_at >= start,
                    Decision.verdict.in_(DECIDING),
                    Decision.uuid.not_in(undone),
                )
            )
            return QueueCounts(int(open_items or 0), int(decided or 0))

    # -- decisions -------------------------------------------------------------------------

    def decide(self, req: DecisionRequest) -> DecisionOutcome:
        if req.verdict not in UNDOABLE:
            raise ReviewError(f"{req.verdict} is not a review verdict")
        if req.verdict is Verdict.CONFIRM and not req.category:
            raise ReviewError("a confirmation needs a category")
        with self.db.session() as s:
            if on_server(s):
                return self._decide_on_server(s, req)
            if recorded(s, req.uuid):
                return DecisionOutcome(req.uuid, req.item_id, req.verdict, duplicate=True)
            user = authorize(s, req.user_id, Permission.REVIEW)
            if req.method is DecisionMethod.SECOND_REVIEW:
                return second_review.record_second_review(s, req)
            item = lock_item(s, req.item_id)
            if item is None:
                raise ReviewError(f"item {req.item_id} does not exist")
            if item.status == ItemStatus.ESCALATED:
                if allowed(user.role, Permission.HANDLE_ESCALATIONS):
                    return escalations.resolve_escalation(s, item, req)
                return self._late(s, item, req, current_decision(s, item.id))
            standing = current_decision(s, item.id)
            if standing is not None or item.status in (
                ItemStatus.DECIDED,
                ItemStatus.AUTO_MATCHED,
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

    def _decide_on_server(self, s: Session, req: DecisionRequest) -> DecisionOutcome:
        """The same decision, made by the server (hd_api_decide): its time, its chain entry,
        the second-review draw and the cluster's decisions are the server's. Second reviews and
        a lead's resolution of an escalated item go to their own paths, as in Python."""
        _as_me(s, req.user_id, "record a decision")
        if req.method is DecisionMethod.SECOND_REVIEW:
            return second_review.record_second_review(s, req)
        item = s.get(Item, req.item_id)
        if item is not None and item.status == ItemStatus.ESCALATED:
            user = authorize(s, req.user_id, Permission.REVIEW)
            if allowed(user.role, Permission.HANDLE_ESCALATIONS):
                return escalations.resolve_escalation(s, item, req)
        params = {
            "uuid": req.uuid,
            "item": req.item_id,
            "verdict": req.verdict.value,
            "category": req.category,
            "label": req.category_label,
            "note": req.note,
            # The server draws at its own share, or this workstation's when it asks for more.
            "share": self.second_review_share,
        }
        out = call(s, _DECIDE, params)[0]
        return DecisionOutcome(
            req.uuid,
            req.item_id,
            req.verdict,
            hashes_added=out.hashes_added,
            cluster_members=out.cluster_members,
            duplicate=out.duplicate,
            late=out.late,
            conflict=out.conflict,
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
        if conflict and item.status != ItemStatus.ESCALATED:
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
                        f"Conflicting decisions: {outcome_of_row(standing)} by {first}, "
                        f"then {req.verdict} by {late} (landed late); the standing "
                        "decision and its hashes are unchanged until a lead decides"
                    ),
                    method=DecisionMethod.MANUAL,
                    supersedes=None,
                ),
            )
            item.status = ItemStatus.ESCALATED
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
            item.status = ItemStatus.DECIDED
        elif req.verdict is Verdict.ESCALATE:
            item.status = ItemStatus.ESCALATED
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
            if on_server(s):
                _as_me(s, user_id, "undo a decision")
                rows = call(s, _UNDO, {"uuid": undo_uuid, "target": target_uuid})
                if not rows:
                    return None
                r = rows[0]
                return DecisionOutcome(
                    undo_uuid,
                    r.item_id,
                    Verdict.UNDO,
                    duplicate=r.duplicate,
                    hashes_retracted=r.hashes_retracted,
                    cluster_members=r.cluster_members,
                )
            done = s.scalar(select(Decision).where(Decision.uuid == undo_uuid))
            if done is not None:
                return DecisionOutcome(undo_uuid, done.item_id, Verdict.UNDO, duplicate=True)
            authorize(s, user_id, Permission.REVIEW)
            undone = select(Decision.supersedes).where(
                Decision.verdict == Verdict.UNDO, Decision.supersedes.is_not(None)
            )
            query = select(Decision).where(
                Decision.user_id == user_id,
                Decision.verdict.in_(UNDOABLE),
                Decision.method == DecisionMethod.MANUAL,
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
            item.status = ItemStatus.CLAIMED
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
