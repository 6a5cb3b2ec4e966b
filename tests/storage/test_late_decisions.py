"""A decision that lands after its item was decided by someone else (a workstation offline past
its lease): recorded, never silently replacing the other; a disagreement goes to the leads."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from app.core.model.decisions import DecisionRequest
from app.core.model.domain import ItemStatus, Role, Verdict, utcnow
from app.storage.models import Decision, Item
from app.storage.review import ReviewService
from tests.helpers import ingest, make_user, write_samples


def _two_moderators_one_item(db, store, tmp_path):
    ingest(db, store, write_samples(tmp_path / "in", [41]))
    review = ReviewService(db, lease_seconds=60)
    a, b = make_user(db, "mod_a"), make_user(db, "mod_b")
    item = review.claim_next(a.id)
    # A decides while offline (the request waits in A's journal); A's lease runs out.
    with db.session() as s:
        s.execute(
            update(Item)
            .where(Item.id == item.id)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
    again = review.claim_next(b.id)
    assert again.id == item.id
    return review, a, b, item


def _decisions(db, item_id):
    with db.session() as s:
        return s.scalars(
            select(Decision).where(Decision.item_id == item_id).order_by(Decision.id)
        ).all()


def test_conflicting_late_decision_escalates_and_keeps_the_standing_one(db, store, tmp_path):
    review, a, b, item = _two_moderators_one_item(db, store, tmp_path)
    late_req = DecisionRequest(item.id, a.id, Verdict.REJECT, decided_at=utcnow())
    out_b = review.decide(DecisionRequest(item.id, b.id, Verdict.CONFIRM, "manifesto", "M"))
    assert out_b.hashes_added >= 4 and not out_b.late
    out_a = review.decide(late_req)  # A comes back online
    assert out_a.late and out_a.conflict and out_a.hashes_added == 0
    rows = _decisions(db, item.id)
    assert [(r.verdict, r.user_id) for r in rows] == [
        ("confirm", b.id),
        ("reject", a.id),
        ("escalate", None),
    ]
    assert "Conflicting decisions: confirm by mod_b, then reject by mod_a" in rows[2].note
    assert review.load_item(item.id).status is ItemStatus.ESCALATED
    assert len(review.active_hashes_for_item(item.id)) == out_b.hashes_added  # unchanged
    # A second landing of the same journalled request writes nothing.
    assert review.decide(late_req).duplicate


def test_agreeing_late_decision_is_only_recorded(db, store, tmp_path):
    review, a, b, item = _two_moderators_one_item(db, store, tmp_path)
    review.decide(DecisionRequest(item.id, b.id, Verdict.REJECT))
    out = review.decide(DecisionRequest(item.id, a.id, Verdict.REJECT))
    assert out.late and not out.conflict
    assert [r.verdict for r in _decisions(db, item.id)] == ["reject", "reject"]
    assert review.load_item(item.id).status is ItemStatus.DECIDED
    assert review.active_hashes_for_item(item.id) == []


def test_moderator_decision_on_an_escalated_item_waits_for_the_lead(db, store, tmp_path):
    review, a, b, item = _two_moderators_one_item(db, store, tmp_path)
    review.decide(DecisionRequest(item.id, b.id, Verdict.ESCALATE, note="unsure: news?"))
    out = review.decide(DecisionRequest(item.id, a.id, Verdict.CONFIRM, "manifesto", "M"))
    assert out.late and out.hashes_added == 0
    assert review.load_item(item.id).status is ItemStatus.ESCALATED
    lead = make_user(db, "lead_l", Role.LEAD)
    assert review.claim_next(lead.id, queue="escalations").id == item.id
