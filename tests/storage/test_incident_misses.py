"""Clearing a possible miss (a rejected item a re-scan found matching a confirm): a lead, with
a note, on the audit record (``miss_cleared``); refused without a note, for a moderator, twice,
or for a miss that does not exist, each with a clear message. SQLite, PostgreSQL, and the team
server (hd_api_rescan_miss_clear; nobody can clear one by hand), and `hashdesk incident
misses`."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from sqlalchemy import select, text

from app.core.ingest.contentstore import ContentStore
from app.core.matching.match_rules import MatchPolicy
from app.core.model.decisions import DecisionRequest
from app.core.model.domain import Role, Verdict
from app.core.model.incidents import IncidentError
from app.core.model.roles import PermissionDenied
from app.storage.audit import verify_chains
from app.storage.db import Database
from app.storage.incidents import IncidentService
from app.storage.models import AuditEvent, RescanMiss
from app.storage.rescan import Rescanner
from app.storage.review import ReviewService
from tests.helpers import ingest, make_user, write_samples


def _miss(ingest_db: Database, mod_db: Database, store, mo, tmp_path) -> int:
    """A picture rejected, then a copy of it confirmed: its re-scan flags the reject."""
    (c,) = write_samples(tmp_path / "in", [71])
    ingest(ingest_db, store, [c])
    review = ReviewService(mod_db, second_review_share=0.0)
    rejected = review.claim_next(mo.id)
    review.decide(DecisionRequest(rejected.id, mo.id, Verdict.REJECT))
    img = Image.open(c).convert("RGB")
    img.resize((img.width - 40, img.height - 26)).save(tmp_path / "c2.jpg", quality=70)
    ingest(ingest_db, store, [tmp_path / "c2.jpg"])
    copy = review.claim_next(mo.id)
    out = review.decide(DecisionRequest(copy.id, mo.id, Verdict.CONFIRM, "glorification"))
    assert Rescanner(mod_db, MatchPolicy(), actor=mo).after_confirm(out.uuid).flagged_misses == 1
    return rejected.id


def _clear(lead_db: Database, mod_db: Database, lead, mo, item_id: int) -> None:
    svc = IncidentService(lead_db)
    (m,) = svc.possible_misses(actor=lead)
    assert m.item_id == item_id
    with pytest.raises(IncidentError, match="needs a note"):
        svc.clear_miss(m.id, "  ", actor=lead)
    with pytest.raises(IncidentError, match=f"no possible miss #{m.id + 99}"):
        svc.clear_miss(m.id + 99, "checked", actor=lead)
    with pytest.raises(PermissionDenied):
        IncidentService(mod_db).clear_miss(m.id, "mine", actor=mo)
    assert svc.clear_miss(m.id, "re-opened: a real miss", actor=lead).id == m.id
    assert svc.possible_misses(actor=lead) == []
    with pytest.raises(IncidentError, match=f"already cleared by {lead.username}"):
        svc.clear_miss(m.id, "again", actor=lead)
    with lead_db.session() as s:
        row = s.get(RescanMiss, m.id)
        assert row.cleared_at is not None and row.cleared_by == lead.id
        (e,) = s.scalars(select(AuditEvent).where(AuditEvent.kind == "miss_cleared")).all()
    assert e.actor_name == lead.username and e.subject == f"item:{item_id}"
    assert json.loads(e.detail)["note"] == "re-opened: a real miss"
    assert all(r.ok for r in verify_chains(lead_db))


def test_a_lead_clears_a_possible_miss_on_the_record(db, store, tmp_path):
    lead = make_user(db, "lead1", Role.LEAD)
    mo = make_user(db, "mo1")
    item_id = _miss(db, db, store, mo, tmp_path)
    _clear(db, db, lead, mo, item_id)


def test_on_the_team_server_only_through_the_api(team_server, tmp_path):
    lead = team_server.add("lead1", Role.LEAD)
    mo = team_server.add("mo1", Role.MODERATOR)
    team_server.add("in1", Role.ADMIN)
    store = ContentStore(tmp_path / "media")
    lead_db, mod_db = team_server.connect("lead1"), team_server.connect("mo1")
    item_id = _miss(team_server.connect("in1"), mod_db, store, mo, tmp_path)
    by_hand = pytest.raises(PermissionDenied, match="permission denied for table rescan_misses")
    with by_hand, lead_db.session() as s:  # not by hand
        s.execute(text("UPDATE rescan_misses SET cleared_at = now()"))
    with pytest.raises(PermissionDenied), mod_db.session() as s:  # nor a moderator, by the API
        s.execute(text("SELECT hd_api_rescan_miss_clear(1, 'mine')"))
    _clear(lead_db, mod_db, lead, mo, item_id)


def test_the_misses_command_lists_and_clears(db, store, tmp_path, monkeypatch, capsys):
    from app.cli import main

    lead = make_user(db, "lead1", Role.LEAD)
    mo = make_user(db, "mo1")
    item_id = _miss(db, db, store, mo, tmp_path)
    monkeypatch.setenv("HASHDESK_DATABASE_URL", db.engine.url.render_as_string(False))
    monkeypatch.setenv("HASHDESK_MEDIA_ROOT", str(store.root))
    monkeypatch.setenv("HASHDESK_ADMIN_PASSWORD", "correct horse battery")
    assert main(["incident", "misses", "--as", "lead1"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    miss_id = int(line.split()[0].lstrip("#"))
    assert f"item #{item_id}" in line
    assert main(["incident", "misses", "--clear", str(miss_id), "--as", "lead1"]) == 2
    assert "--clear needs --note TEXT" in capsys.readouterr().err
    argv = ["incident", "misses", "--clear", str(miss_id), "--note", "checked", "--as", "lead1"]
    assert main(argv) == 0
    assert f"cleared possible miss #{miss_id} (item #{item_id})" in capsys.readouterr().out
    assert main(["incident", "misses", "--as", "lead1"]) == 0
    assert capsys.readouterr().out.strip() == "no possible misses"
    assert lead.username == "lead1"
