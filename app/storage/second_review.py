"""Blind second review: a share of manual decisions is queued for a second moderator, who does
not see the first verdict; a disagreement sends the item to the leads. It measures agreement
and never changes the item or the hash list by itself."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from app.core.model.decisions import DecisionOutcome, DecisionRequest, ReviewError, sampled
from app.core.model.domain import DecisionMethod, ItemStatus, Verdict
from app.core.model.queues import SecondReviewState
from app.core.model.roles import Permission
from app.storage.models import Decision, SecondReview
from app.storage.permissions import authorize
from app.storage.record import append_decision, clear_claim, lock_item


def maybe_queue_second_review(s: Session, req: DecisionRequest, share: float) -> bool:
    if (
        req.method is not DecisionMethod.MANUAL
        or req.verdict not in (Verdict.CONFIRM, Verdict.REJECT)
        or not sampled(req.uuid, share)
    ):
        return False
    s.add(
        SecondReview(
            item_id=req.item_id,
            first_decision_uuid=req.uuid,
            first_user_id=req.user_id,
            first_verdict=req.verdict,
            status=SecondReviewState.PENDING,
            created_at=req.decided_at,
        )
    )
    return True


def record_second_review(s: Session, req: DecisionRequest) -> DecisionOutcome:
    """The second moderator's blind verdict. It never changes the item or the hash list; a
    disagreement sends the item to the leads' escalation queue."""
    user = authorize(s, req.user_id, Permission.SECOND_REVIEW)
    sr = s.scalar(
        select(SecondReview)
        .where(
            SecondReview.item_id == req.item_id,
            SecondReview.status == SecondReviewState.CLAIMED,
            SecondReview.claimed_by == req.user_id,
        )
        .with_for_update()
    )
    if sr is None:
        raise ReviewError(f"no second review of item {req.item_id} is waiting for {user.username}")
    if req.verdict is Verdict.SKIP:
        sr.status, sr.claimed_by, sr.lease_expires_at = SecondReviewState.PENDING, None, None
        return DecisionOutcome(req.uuid, req.item_id, Verdict.SKIP)
    append_decision(s, replace(req, method=DecisionMethod.SECOND_REVIEW))
    sr.status = SecondReviewState.DONE
    sr.claimed_by = None
    sr.lease_expires_at = None
    sr.second_user_id = req.user_id
    sr.second_decision_uuid = req.uuid
    sr.second_verdict = req.verdict
    sr.agreed = req.verdict == sr.first_verdict
    sr.done_at = req.decided_at
    if not sr.agreed:
        item = lock_item(s, req.item_id)
        if item is not None and item.status == ItemStatus.DECIDED:
            item.status = ItemStatus.ESCALATED
            clear_claim(item)
    return DecisionOutcome(req.uuid, req.item_id, req.verdict)


def not_own(user_id: int):
    """Second reviews not of ``user_id``'s own decisions (a person never reviews themself)."""
    return or_(SecondReview.first_user_id.is_(None), SecondReview.first_user_id != user_id)


def not_taken_back():
    """Second reviews of decisions that still stand (no undo or overturn took them back)."""
    return ~exists().where(
        Decision.supersedes == SecondReview.first_decision_uuid,
        Decision.verdict.in_([Verdict.UNDO, Verdict.OVERTURN]),
    )
