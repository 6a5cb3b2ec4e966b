"""`hashdesk lists clear-guard`: a lead lets an entry the flood guard holds resolve again, on
the record (issue 20); and `hashdesk db info`'s counts read through storage. SQLite and
PostgreSQL, through the real command."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, update

from app.cli import main
from app.core.model.domain import Role, utcnow
from app.storage.audit import AuditKind, verify_chains
from app.storage.hash_lists import HashListError, HashListService
from app.storage.inventory import RecordCounts, record_counts
from app.storage.models import AuditEvent, HashListEntry
from app.storage.verification import verify_hash_list
from tests.helpers import make_user

PASSWORD = "correct horse battery"  # tests.helpers.make_user's


def _use(db, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HASHDESK_DATABASE_URL", db.engine.url.render_as_string(False))
    monkeypatch.setenv("HASHDESK_MEDIA_ROOT", str(tmp_path / "media"))
    monkeypatch.setenv("HASHDESK_ADMIN_PASSWORD", PASSWORD)


def _partner_list(db, tmp_path, admin) -> list[int]:
    """Two imported entries; the first held by the flood guard (as ingest leaves it)."""
    path = tmp_path / "partner.txt"
    path.write_text(f"pdq {'ab' * 32}\npdq {'cd' * 32}\n")
    HashListService(db).import_file(path, "partner", actor=admin)
    with db.session() as s:
        ids = list(s.scalars(select(HashListEntry.id).order_by(HashListEntry.id)))
        s.execute(
            update(HashListEntry)
            .where(HashListEntry.id == ids[0])
            .values(flood_guarded_at=utcnow())
        )
    return ids


def _guarded(db, entry_id: int) -> bool:
    with db.session() as s:
        return s.get(HashListEntry, entry_id).flood_guarded_at is not None


def test_a_lead_clears_the_flood_guard_on_the_record(db, tmp_path, monkeypatch, capsys):
    admin = make_user(db, "root", Role.ADMIN)
    lead = make_user(db, "lena", Role.LEAD)
    make_user(db, "mo", Role.MODERATOR)
    guarded, plain = _partner_list(db, tmp_path, admin)
    _use(db, tmp_path, monkeypatch)
    argv = ["lists", "clear-guard", str(guarded), "--reason", "a news photo, checked"]

    assert main(argv) == 2  # nobody named
    assert "give --as" in capsys.readouterr().err
    assert main([*argv, "--as", "mo"]) == 2  # a moderator may not
    assert "mo (moderator) may not retract" in capsys.readouterr().err
    assert main(["lists", "clear-guard", "999999", "--reason", "x", "--as", "lena"]) == 2
    assert "hash-list entry #999999 does not exist" in capsys.readouterr().err
    assert main(["lists", "clear-guard", str(plain), "--reason", "x", "--as", "lena"]) == 2
    assert f"hash-list entry #{plain} is not held by the flood guard" in capsys.readouterr().err
    assert main(["lists", "clear-guard", str(guarded), "--reason", "  ", "--as", "lena"]) == 2
    assert "clearing the flood guard needs a reason" in capsys.readouterr().err
    assert _guarded(db, guarded)  # every refusal left it as it was

    assert main([*argv, "--as", "lena"]) == 0
    assert f"cleared the flood guard of entry #{guarded} (partner)" in capsys.readouterr().out
    assert not _guarded(db, guarded)
    with db.session() as s:
        (event,) = s.scalars(
            select(AuditEvent).where(AuditEvent.kind == AuditKind.ENTRY_ENABLED.value)
        ).all()
        assert (event.actor_id, event.subject) == (lead.id, f"entry:{guarded}")
        detail = json.loads(event.detail)
    assert detail == {
        "entries": [guarded],
        "reason": "a news photo, checked",
        "flood_guard": "cleared",
    }
    assert all(r.ok for r in verify_chains(db)) and verify_hash_list(db) == []
    # Once cleared, there is nothing left to clear.
    assert main([*argv, "--as", "lena"]) == 2
    assert "is not held by the flood guard" in capsys.readouterr().err
    assert main(["lists"]) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("partner")]
    assert "flood-guarded" not in line


def test_a_retracted_entry_has_no_guard_to_clear(db, tmp_path):
    admin = make_user(db, "root", Role.ADMIN)
    guarded, _plain = _partner_list(db, tmp_path, admin)
    service = HashListService(db)
    assert service.retract([guarded], "withdrawn by the partner", actor=admin) == 1
    with pytest.raises(HashListError, match="is retracted"):
        service.clear_flood_guard(guarded, "checked", actor=admin)


def test_db_info_counts_come_from_storage(db, tmp_path, monkeypatch, capsys):
    admin = make_user(db, "root", Role.ADMIN)
    _partner_list(db, tmp_path, admin)
    assert record_counts(db) == RecordCounts(users=1, items=0, decisions=0, hash_list=2)
    _use(db, tmp_path, monkeypatch)
    assert main(["db", "info"]) == 0
    out = capsys.readouterr().out.splitlines()
    counts = [line for line in out if line.split(":")[0] in ("users", "items", "hash list")]
    assert counts == ["users:     1", "items:     0", "hash list: 2"]


def test_on_a_team_server_a_lead_clears_it_and_a_moderator_cannot(team_server, tmp_path):
    import psycopg

    from app.storage.audit import append_event
    from tests.drills import insider

    server = team_server
    root = server.add("root", Role.ADMIN)
    rootdb = server.connect("root")
    lead = server.add("lena", Role.LEAD, actor=root, via=rootdb)
    server.add("mo", Role.MODERATOR, actor=root, via=rootdb)
    path = tmp_path / "partner.txt"
    path.write_text(f"pdq {'ab' * 32}\n")
    HashListService(rootdb).import_file(path, "partner", actor=root)
    with server.owner.session() as s:  # as ingest leaves it: guarded, on the record
        entry_id = s.scalar(select(HashListEntry.id))
        append_event(s, AuditKind.FLOOD_GUARD, subject=f"entry:{entry_id}", detail={"list": "x"})
        s.execute(
            update(HashListEntry)
            .where(HashListEntry.id == entry_id)
            .values(flood_guarded_at=utcnow())
        )
    with insider.psql(server, "mo") as conn, pytest.raises(psycopg.Error):
        conn.execute(f"UPDATE hash_list SET flood_guarded_at = NULL WHERE id = {entry_id}")
    assert _guarded(server.owner, entry_id)

    lists = HashListService(server.connect("lena"))
    assert lists.clear_flood_guard(entry_id, "checked by hand", actor=lead) == "partner"
    assert not _guarded(server.owner, entry_id)
    assert all(r.ok for r in verify_chains(server.owner))
    assert verify_hash_list(server.owner) == []
