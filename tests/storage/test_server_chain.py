"""The server appends to the chains itself (app/storage/sql/chain.sql): its canonical form is
Python's byte for byte, so `audit verify` recomputes what the server wrote."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import text

from app.core.model.chain import GENESIS_HASH, audit_fields_of, chain_hash, decision_fields_of
from app.storage.audit import verify_chains
from app.storage.models import AuditEvent, Decision
from tests.helpers import ingest, write_samples

pytestmark = pytest.mark.postgres

# Strings that exercise every escape json.dumps makes (ensure_ascii); PostgreSQL text holds
# no NUL, so none has one.
AWKWARD = [
    "",
    "plain words",
    'a "quoted" \\ back\\slash',
    "tab\tnew\nline\rcr\bbs\fff\x01soh\x1funit\x7fdel",
    "naïve café — “quotes” ½",
    "😀 emoji and 𝔘 outside the BMP",
    "中文 العربية עברית",
    "'; DROP TABLE decisions; --",
]


def _canonical(server, value) -> str:
    with server.owner.engine.connect() as conn:
        return conn.execute(
            text("SELECT hd_canonical(CAST(:v AS jsonb))"), {"v": json.dumps(value)}
        ).scalar_one()


def test_the_canonical_form_is_pythons(team_server):
    for s in AWKWARD:
        fields = {"note": s, "item_id": 42, "user_id": None, "z": s, "a": -7}
        want = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
        assert _canonical(team_server, fields) == want, s
    nested = {"entries": [3, 1, 2], "list": "partner", "rule": {"b": None, "a": "x"}, "ok": True}
    want = json.dumps(nested, sort_keys=True, separators=(",", ":"))
    assert _canonical(team_server, nested) == want
    with team_server.owner.engine.connect() as conn:
        got = conn.execute(
            text("SELECT hd_chain_hash(:p, CAST(:f AS jsonb))"),
            {"p": GENESIS_HASH, "f": json.dumps({"note": AWKWARD[5], "n": 1})},
        ).scalar_one()
    assert got == chain_hash(GENESIS_HASH, {"note": AWKWARD[5], "n": 1})


def test_server_appended_entries_verify_in_python(team_server, tmp_path):
    from app.core.ingest.contentstore import ContentStore

    owner = team_server.owner
    ingest(owner, ContentStore(tmp_path / "media"), write_samples(tmp_path / "in", range(1)))
    with owner.engine.begin() as conn:
        item_id = conn.execute(text("SELECT min(id) FROM items")).scalar_one()
        for note in AWKWARD:
            conn.execute(
                text(
                    "SELECT hd_append_decision(:u, :i, NULL, 'skip', NULL, NULL, :n, 'manual', "
                    "NULL)"
                ),
                {"u": str(uuid.uuid4()), "i": item_id, "n": note},
            )
            conn.execute(
                text("SELECT hd_append_audit('export', :s, CAST(:d AS jsonb))"),
                {"s": note, "d": json.dumps({"why": note, "entries": [1, 2]})},
            )
    with owner.session() as s:
        decisions = s.query(Decision).order_by(Decision.id).all()
        events = s.query(AuditEvent).order_by(AuditEvent.id).all()
    assert len(decisions) == len(events) == len(AWKWARD)
    prev = GENESIS_HASH
    for d in decisions:
        assert d.prev_hash == prev
        assert d.entry_hash == chain_hash(prev, decision_fields_of(d))
        prev = d.entry_hash
    times = [d.decided_at for d in decisions]
    assert times == sorted(times)  # the server's clock, never going back
    prev = GENESIS_HASH
    for e in events:
        assert e.entry_hash == chain_hash(prev, audit_fields_of(e))
        assert e.actor_id is None  # the owner has no account: it acts as itself
        prev = e.entry_hash
    assert all(r.ok for r in verify_chains(owner))


def test_a_bad_decision_uuid_is_refused(team_server):
    with team_server.owner.engine.begin() as conn, pytest.raises(Exception, match="UUID"):
        conn.execute(
            text(
                "SELECT hd_append_decision('not-a-uuid', 1, NULL, 'skip', NULL, NULL, NULL, "
                "'manual', NULL)"
            )
        )
