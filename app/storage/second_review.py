"""Blind second review: a share of manual decisions is queued for a second moderator, who does
not see the first verdict; a disagreement sends the item to the leads. It measures agreement
and never changes the item or the hash list by itself.

On a team server the server does it (app/storage/sql/api_review2.sql): the draw at the server's
share, the claim, the verdict and the review closed with it in one call; moderators cannot read
the first verdict nor change a second review themselves. On SQLite the same work is done here.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import exists, or_, select, text
from sqlalchemy.orm import Session

from app.core.model.decisions import DecisionOutcome, DecisionRequest, ReviewError, sampled
from app.core.model.domain import DecisionMethod, ItemStatus, Verdict
from app.core.model.queues import SecondReviewState
from app.core.model.roles import Permission, PermissionDenied
from app.storage.models import Decision, SecondReview
from app.storage.permissions import authorize
from app.storage.record import append_decision, clear_claim, lock_item
from app.storage.server_api import call, call_checked, on_server


def maybe_queue_second_review(s: Session, req: DecisionRequest, share: float) -> bool:
    """Queue ``req`` (just appended) for a blind second review if the draw says so. On a team
    server the draw is the server's, at its own share (``share`` can only raise it)."""
    if req.method is not DecisionMethod.MANUAL or req.verdict not in (
        Verdict.CONFIRM,
        Verdict.REJECT,
    ):
        return False
    if on_server(s):
        rows = call(
            s,
            text("SELECT hd_api_queue_second_review(:uuid, :share)"),
            {"uuid": req.uuid, "share": min(max(float(share), 0.0), 1.0)},
        )
        return bool(rows[0][0])
    if not sampled(req.uuid, share):
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
    if on_server(s):
        row = call_checked(
            s,
            text(
                "SELECT * FROM hd_api_second_review_decide(:item, :verdict, :category, "
                ":label, :note, :uuid)"
            ),
            {
                "item": req.item_id,
                "verdict": req.verdict.value,
                "category": req.category,
                "label": req.category_label,
                "note": req.note,
                "uuid": req.uuid,
            },
            ReviewError,
        )[0]
        return DecisionOutcome(req.uuid, req.item_id, req.verdict, duplicate=bool(row.duplicate))
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
    if sr.first_user_id == req.user_id:
        raise PermissionDenied(f"{user.username} may not second-review their own decision")
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


# -- the queue on a team server (app.storage.queues.SecondReviewQueue calls these) ------------


def claim_on_server(s: Session, exclude: Collection[int], lease: timedelta) -> int | None:
    """Claim the next second review for the session's person; its item, or None."""
    rows = call_checked(
        s,
        text("SELECT hd_api_second_review_claim(:exclude, :lease)"),
        {"exclude": [int(i) for i in exclude], "lease": _seconds(lease)},
        ReviewError,
    )
    return rows[0][0]


def renew_on_server(s: Session, item_ids: Collection[int], lease: timedelta) -> int:
    rows = call_checked(
        s,
        text("SELECT hd_api_second_review_renew(:items, :lease)"),
        {"items": [int(i) for i in item_ids], "lease": _seconds(lease)},
        ReviewError,
    )
    return int(rows[0][0])


def release_on_server(s: Session, item_ids: Collection[int]) -> int:
    rows = call(
        s,
        text("SELECT hd_api_second_review_release(:items)"),
        {"items": [int(i) for i in item_ids]},
    )
    return int(rows[0][0])


def _seconds(lease: timedelta) -> int:
    return max(10, round(lease.total_seconds()))
