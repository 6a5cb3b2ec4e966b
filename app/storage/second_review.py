"""Blind second review: a share of manual decisions is queued for a second moderator, who does
not see the first verdict; a disagreement sends the item to the leads. It measures agreement
and never changes the item or the hash list by itself."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session

from app.core.model.decisions import DecisionOutcome, DecisionRequest, ReviewError, sampled
from app.core.model.domain import DecisionMethod, ItemStatus, QueueItem, Verdict, utcnow
from app.core.model.roles import Permission
from app.storage.models import Decision, Item, SecondReview
from app.storage.permissions import authorize
from app.storage.record import append_decision, clear_claim, lock_item, to_queue_item

SR_PENDING, SR_CLAIMED, SR_DONE = "pending", "claimed", "done"


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
            first_verdict=req.verdict.value,
            status=SR_PENDING,
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
            SecondReview.status == SR_CLAIMED,
            SecondReview.claimed_by == req.user_id,
        )
        .with_for_update()
    )
    if sr is None:
        raise ReviewError(f"no second review of item {req.item_id} is waiting for {user.username}")
    if req.verdict is Verdict.SKIP:
        sr.status, sr.claimed_by, sr.lease_expires_at = SR_PENDING, None, None
        return DecisionOutcome(req.uuid, req.item_id, Verdict.SKIP)
    append_decision(s, replace(req, method=DecisionMethod.SECOND_REVIEW))
    sr.status = SR_DONE
    sr.claimed_by = None
    sr.lease_expires_at = None
    sr.second_user_id = req.user_id
    sr.second_decision_uuid = req.uuid
    sr.second_verdict = req.verdict.value
    sr.agreed = req.verdict.value == sr.first_verdict
    sr.done_at = req.decided_at
    if not sr.agreed:
        item = lock_item(s, req.item_id)
        if item is not None and item.status == ItemStatus.DECIDED.value:
            item.status = ItemStatus.ESCALATED.value
            clear_claim(item)
    return DecisionOutcome(req.uuid, req.item_id, req.verdict)


def _not_own(user_id: int):
    return or_(SecondReview.first_user_id.is_(None), SecondReview.first_user_id != user_id)


def _not_taken_back():
    return ~exists().where(
        Decision.supersedes == SecondReview.first_decision_uuid,
        Decision.verdict.in_([Verdict.UNDO.value, Verdict.OVERTURN.value]),
    )


def claim_second_review(
    s: Session, user_id: int, exclude: Collection[int], lease: timedelta
) -> QueueItem | None:
    authorize(s, user_id, Permission.SECOND_REVIEW)
    now = utcnow()
    sr_q = (
        select(SecondReview)
        .where(
            or_(
                SecondReview.status == SR_PENDING,
                and_(SecondReview.status == SR_CLAIMED, SecondReview.lease_expires_at < now),
            ),
            _not_own(user_id),
            _not_taken_back(),
        )
        .order_by(SecondReview.created_at, SecondReview.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if exclude:
        sr_q = sr_q.where(SecondReview.item_id.not_in(list(exclude)))
    sr = s.scalar(sr_q)
    if sr is None:
        return None
    sr.status = SR_CLAIMED
    sr.claimed_by = user_id
    sr.lease_expires_at = now + lease
    item = s.get(Item, sr.item_id)
    assert item is not None
    # Blind: nothing on the card says what the first moderator decided.
    return replace(to_queue_item(s, item), match_note=None)


def _held(s: Session, user_id: int, item_ids: list[int]) -> list[SecondReview]:
    return list(
        s.scalars(
            select(SecondReview).where(
                SecondReview.item_id.in_(item_ids),
                SecondReview.claimed_by == user_id,
                SecondReview.status == SR_CLAIMED,
            )
        )
    )


def renew_second_review_claims(
    s: Session, user_id: int, item_ids: list[int], until: datetime
) -> int:
    reviews = _held(s, user_id, item_ids)
    for sr in reviews:
        sr.lease_expires_at = until
    return len(reviews)


def release_second_review_claims(s: Session, user_id: int, item_ids: list[int]) -> int:
    reviews = _held(s, user_id, item_ids)
    for sr in reviews:
        sr.status, sr.claimed_by, sr.lease_expires_at = SR_PENDING, None, None
    return len(reviews)


def second_review_count(s: Session, user_id: int) -> int:
    q = (
        select(func.count())
        .select_from(SecondReview)
        .where(
            SecondReview.status.in_([SR_PENDING, SR_CLAIMED]),
            _not_own(user_id),
            _not_taken_back(),
        )
    )
    return int(s.scalar(q) or 0)
