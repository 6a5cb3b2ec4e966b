"""Issue 23, 3 on the team server: the deltas are taken, delivered and imported through
app/storage/sql/api_deltas.sql as each role may (a lead sends, an admin imports, a moderator
neither); nobody writes the deltas' tables by hand, not even to mark a delta written or to skip
a number; the events are those the Python path writes."""

from __future__ import annotations

import json

import psycopg
import pytest
from sqlalchemy import select

from app.core.exchange.deltas import DeltaError
from app.core.model.decisions import DecisionRequest
from app.core.model.domain import Role, Verdict
from app.core.model.roles import PermissionDenied
from app.storage.audit import verify_chains
from app.storage.deltas import DeltaService
from app.storage.hash_lists import HashListService
from app.storage.models import AuditEvent, Item
from app.storage.review import ReviewService
from tests.drills.insider import psql
from tests.helpers import ingest, write_samples
from tests.storage.test_deltas import FORMATS, active

DELTA_KINDS = ("delta", "delta_written", "delta_failed", "delta_imported")


def _events(db) -> list[tuple[str, str, list[str]]]:
    with db.session() as s:
        rows = s.execute(
            select(AuditEvent.kind, AuditEvent.subject, AuditEvent.detail)
            .where(AuditEvent.kind.in_(DELTA_KINDS))
            .order_by(AuditEvent.id)
        ).all()
    return [(k, sub, sorted(json.loads(d))) for k, sub, d in rows]


def _flow(connect, users, store, tmp_path):
    """Confirms by a moderator, two deltas sent by a lead (one failing first), a retraction,
    the deltas imported by an admin into a list of their own."""
    root, lena, mo = users
    ingest(connect("root"), store, write_samples(tmp_path / "flagged", range(1, 4)))
    with connect("root").session() as s:
        items = list(s.scalars(select(Item.id).order_by(Item.id)))
    review = ReviewService(connect("mo"))
    for k in (0, 1):
        review.decide(DecisionRequest(items[k], mo.id, Verdict.CONFIRM, "attack_recording"))
    sender = DeltaService(connect("lena"))
    with pytest.raises(PermissionDenied):
        DeltaService(connect("mo")).plan(actor=mo, formats=FORMATS)
    with pytest.raises(DeltaError, match="delta format 'vpdq' is not one of"):
        sender.plan(actor=lena, formats=("vpdq",))
    assert sender.plan(actor=lena, formats=FORMATS) == 1
    out = tmp_path / "out"
    failed = sender.deliver(1, actor=lena, folder=out)
    assert not failed.written and "does not exist" in failed.error
    assert sender.trouble().last_error == failed.error
    out.mkdir()
    assert sender.deliver(1, actor=lena, folder=out).written
    review.decide(DecisionRequest(items[2], mo.id, Verdict.CONFIRM, "attack_recording"))
    with connect("root").session() as s:
        from app.storage.models import HashListEntry as E

        first = s.scalar(select(E.id).where(E.item_id == items[0], E.variant == "").limit(1))
    HashListService(connect("lena")).retract([first], "a wrong hash", actor=lena)
    assert sender.plan(actor=lena, formats=FORMATS) == 2
    assert sender.deliver(2, actor=lena, folder=out).written
    with pytest.raises(PermissionDenied):
        DeltaService(connect("lena")).import_deltas(out, "them", actor=lena)
    got = DeltaService(connect("root")).import_deltas(out, "them", actor=root)
    assert [n for n, _ in got.imported] == [1, 2]
    return out


def test_the_deltas_on_the_team_server_as_each_role(team_server, store, tmp_path):
    server = team_server
    root = server.add("root", Role.ADMIN)
    rootdb = server.connect("root")
    users = (
        root,
        server.add("lena", Role.LEAD, actor=root, via=rootdb),
        server.add("mo", Role.MODERATOR, actor=root, via=rootdb),
    )
    _flow(server.connect, users, store, tmp_path)
    assert active(server.owner, "them") == active(server.owner, "local")
    assert all(r.ok for r in verify_chains(server.owner))
    # Nobody writes the deltas' tables by hand: not to mark one written, skip a number, or
    # plant an import; a lead reads them, a moderator does not.
    with psql(server, "lena") as conn:
        for sql in (
            "UPDATE deltas SET written_at = now() WHERE seq = 2",
            "INSERT INTO deltas (seq, lower_seq, upper_seq, span_end, formats, added, retracted,"
            " attempts) VALUES (9, 0, 0, now(), '[]', 0, 0, 0)",
            "DELETE FROM delta_entries",
            "INSERT INTO delta_imports (list_name, seq, manifest_sha256, imported_at) "
            "VALUES ('them', 3, 'x', now())",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)
        assert conn.execute("SELECT count(*) FROM deltas").fetchone() == (2,)
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="another manifest"):
            conn.execute(f"SELECT hd_api_delta_written(1, '{'0' * 64}', '[]', 'x')")
    with (
        psql(server, "root") as conn,
        pytest.raises(
            psycopg.errors.InvalidParameterValue, match="delta 5 refused: the last imported into"
        ),
    ):
        conn.execute(f"SELECT hd_api_delta_imported('them', 5, '{'0' * 64}', NULL, NULL)")
    with psql(server, "mo") as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT count(*) FROM deltas")


def test_the_python_path_writes_the_same_delta_events(team_server, store, tmp_path):
    from app.storage.db import open_database
    from tests.helpers import make_user

    sqlite = open_database(f"sqlite:///{tmp_path / 'one.sqlite3'}")
    try:
        users = tuple(
            make_user(sqlite, name, role)
            for name, role in (("root", Role.ADMIN), ("lena", Role.LEAD), ("mo", Role.MODERATOR))
        )
        (tmp_path / "a").mkdir()
        _flow(lambda _name: sqlite, users, store, tmp_path / "a")
        on_sqlite = _events(sqlite)
    finally:
        sqlite.dispose()
    server = team_server
    root = server.add("root", Role.ADMIN)
    rootdb = server.connect("root")
    users = (
        root,
        server.add("lena", Role.LEAD, actor=root, via=rootdb),
        server.add("mo", Role.MODERATOR, actor=root, via=rootdb),
    )
    (tmp_path / "b").mkdir()
    _flow(server.connect, users, store, tmp_path / "b")
    assert _events(server.owner) == on_sqlite
    assert [k for k, _s, _d in on_sqlite] == [
        "delta",
        "delta_failed",
        "delta_written",
        "delta",
        "delta_written",
        "delta_imported",
        "delta_imported",
    ]


def test_the_situation_and_debrief_on_the_team_server(team_server, store, tmp_path):
    """A lead reads an incident's situation and writes its debrief on the team server (the
    deltas, re-scans and everyone's exposure are the leads' to read); a moderator may not."""
    from app.core.model.situation import figure_rows
    from app.core.reports import debrief_html
    from app.storage.incidents import IncidentService
    from app.storage.situation import SituationService

    server = team_server
    root = server.add("root", Role.ADMIN)
    rootdb = server.connect("root")
    lena = server.add("lena", Role.LEAD, actor=root, via=rootdb)
    mo = server.add("mo", Role.MODERATOR, actor=root, via=rootdb)
    ingest(rootdb, store, write_samples(tmp_path / "flagged", range(1, 3)))
    with rootdb.session() as s:
        items = list(s.scalars(select(Item.id).order_by(Item.id)))
    lead_db = server.connect("lena")
    IncidentService(lead_db).declare("x1", "CIP-X1", actor=lena, seed_items=items)
    ReviewService(server.connect("mo")).decide(
        DecisionRequest(items[0], mo.id, Verdict.CONFIRM, "attack_recording")
    )
    from app.core.exchange.deltas import DeltaCadence

    out = tmp_path / "out"
    out.mkdir()
    assert DeltaService(lead_db).run_round(DeltaCadence(folder=out), actor=lena).written
    sit = SituationService(lead_db).situation("x1", actor=lena)
    figures = dict(figure_rows(sit))
    assert figures["distinct items seen"] == "2" and figures["items confirmed"] == "1"
    assert int(figures["hashes shared"]) > 0 and sit.first_delta is not None
    assert "CIP-X1" in debrief_html(sit)
    with pytest.raises(PermissionDenied):
        SituationService(server.connect("mo")).situation("x1", actor=mo)


def test_a_moderator_holding_a_confirm_open_does_not_stall_the_deltas(team_server, store, tmp_path):
    """On the team server the cut waits at most 10 s for a confirm left open in psql: the
    lead's round is refused with the reason, and the next one, once it ended, takes it."""
    import uuid

    server = team_server
    root = server.add("root", Role.ADMIN)
    rootdb = server.connect("root")
    lena = server.add("lena", Role.LEAD, actor=root, via=rootdb)
    server.add("mo", Role.MODERATOR, actor=root, via=rootdb)
    ingest(rootdb, store, write_samples(tmp_path / "flagged", range(1, 3)))
    with rootdb.session() as s:
        items = list(s.scalars(select(Item.id).order_by(Item.id)))
    sender = DeltaService(server.connect("lena"))
    conn = psql(server, "mo")
    conn.autocommit = False
    try:
        conn.execute(
            "SELECT * FROM hd_api_decide(%s, %s, 'confirm', 'attack_recording', NULL, NULL)",
            (str(uuid.uuid4()), items[0]),
        )
        with pytest.raises(DeltaError, match="open for over 10 s: the delta is taken at the next"):
            sender.plan(actor=lena, formats=FORMATS)
        conn.commit()
    finally:
        conn.close()
    assert sender.plan(actor=lena, formats=FORMATS) == 1
