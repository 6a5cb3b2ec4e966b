"""An incident's categories mean something: an item under an active incident is served with
them (QueueItem.incident_categories), and the review presenter takes the first one the
taxonomy knows as the confirm's category until the moderator picks another
(tests/unit/test_review_presenter.py). SQLite, PostgreSQL and the team server."""

from __future__ import annotations

from sqlalchemy import select

from app.core.model.domain import Role
from app.storage.db import Database
from app.storage.incidents import IncidentService
from app.storage.models import Item
from app.storage.review import ReviewService
from tests.helpers import ingest, make_user, write_cluster, write_samples


def _served(lead_db: Database, mod_db: Database, lead, mod) -> None:
    with lead_db.session() as s:
        rep = s.scalar(select(Item.id).where(Item.cluster_id == Item.id))
    svc = IncidentService(lead_db)
    svc.declare("chch", "CIP-9", actor=lead, seed_items=[rep], categories=["glorification",
                "attack_footage"])  # fmt: skip
    review = ReviewService(mod_db, second_review_share=0.0)
    first = review.claim_next(mod.id)
    assert first is not None and first.id == rep  # the incident queue first
    assert first.incident == "INCIDENT chch · CIP-9"
    assert first.incident_categories == ("glorification", "attack_footage")
    second = review.claim_next(mod.id, exclude=[rep])
    assert second is not None and second.incident is None and second.incident_categories == ()
    review.release(mod.id, [first.id, second.id])
    svc.conclude("chch", actor=lead)
    again = review.claim_next(mod.id)
    assert again is not None and again.incident is None and again.incident_categories == ()


def test_an_item_under_an_incident_is_served_with_its_categories(db, store, tmp_path):
    ingest(db, store, write_cluster(tmp_path / "c", 7, size=2) + write_samples(tmp_path / "s", [1]))
    lead = make_user(db, "lead1", Role.LEAD)
    mod = make_user(db, "mo1")
    _served(db, db, lead, mod)


def test_on_the_team_server(team_server, tmp_path):
    from app.core.ingest.contentstore import ContentStore

    lead = team_server.add("lead1", Role.LEAD)
    mod = team_server.add("mo1", Role.MODERATOR)
    team_server.add("in1", Role.ADMIN)
    store = ContentStore(tmp_path / "media")
    files = write_cluster(tmp_path / "c", 7, size=2) + write_samples(tmp_path / "s", [1])
    ingest(team_server.connect("in1"), store, files)
    _served(team_server.connect("lead1"), team_server.connect("mo1"), lead, mod)
