"""The Python paths of second review and overturn (SQLite, and PostgreSQL without the server
program), holding the same rules the team server's functions hold: a moderator never decides a
second review of their own decision, and an overturn is on the audit record."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, update

from app.core.model.decisions import DecisionRequest
from app.core.model.domain import DecisionMethod, Role, Verdict
from app.core.model.roles import PermissionDenied
from app.storage.audit import AuditKind, verify_chains
from app.storage.leads import LeadService
from app.storage.models import AuditEvent, SecondReview
from app.storage.review import ReviewService
from tests.helpers import ingest, make_user, write_samples


@pytest.fixture
def decided(db, store, tmp_path):
    assert ingest(db, store, write_samples(tmp_path / "in", range(2))).new == 2
    review = ReviewService(db, lease_seconds=60, second_review_share=1.0)
    mod = make_user(db, "mod1")
    item = review.claim_next(mod.id)
    out = review.decide(DecisionRequest(item.id, mod.id, Verdict.CONFIRM, "glorification"))
    return review, mod, out


def test_a_second_review_of_ones_own_decision_is_refused(db, decided):
    review, mod, out = decided
    assert review.claim_next(mod.id, queue="second_review") is None  # the queue never offers it
    with db.session() as s:  # handed to its author around the queue
        s.execute(
            update(SecondReview)
            .where(SecondReview.item_id == out.item_id)
            .values(status="claimed", claimed_by=mod.id)
        )
    with pytest.raises(PermissionDenied, match="their own decision"):
        review.decide(
            DecisionRequest(
                out.item_id, mod.id, Verdict.CONFIRM, "x", method=DecisionMethod.SECOND_REVIEW
            )
        )
    with db.session() as s:
        assert s.scalars(select(SecondReview.status)).one() == "claimed"


def test_an_overturn_is_on_the_audit_record(db, decided):
    _review, _mod, out = decided
    lead = make_user(db, "lead1", Role.LEAD)
    ov = LeadService(db).overturn(lead, out.uuid, "news report")
    with db.session() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.kind == AuditKind.OVERTURN)).one()
        assert (event.subject, event.actor_id, event.actor_name) == (out.uuid, lead.id, "lead1")
        assert json.loads(event.detail) == {
            "overturn": ov.uuid,
            "item": out.item_id,
            "was": "confirm",
            "now": "reject",
            "hashes_added": 0,
            "hashes_retracted": ov.hashes_retracted,
            "cluster_members": 0,
        }
    assert ov.hashes_retracted == out.hashes_added > 0
    assert all(r.ok for r in verify_chains(db))
