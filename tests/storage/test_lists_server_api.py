"""The hash lists' writes through the server's functions (app/storage/sql/api_lists.sql, issue
21): on the enforced team server each flow works for the roles that may make it and is refused
to the others, nobody writes the lists' tables by hand, and the events are those the Python
path writes on SQLite; the record verifies after each flow."""

from __future__ import annotations

import json

import psycopg
import pytest
from sqlalchemy import select

from app.core.exchange import ExchangeEntry, ParsedList
from app.core.matching.hash_lists import FeedbackVerdict, ListPolicy
from app.core.model.domain import Algorithm, Role
from app.core.model.roles import PermissionDenied
from app.storage import list_import
from app.storage.audit import verify_chains
from app.storage.db import open_database
from app.storage.hash_lists import HashListError, HashListService
from app.storage.list_import import ListSettings, import_parsed
from app.storage.models import AuditEvent, HashList, HashListEntry, HashListFeedback
from app.storage.verification import verify_hash_list
from tests.drills import insider, insider_lists
from tests.helpers import make_user

LIST_KINDS = ("retraction", "import", "list_changed", "entry_disabled", "entry_enabled")
#: What only the server's import event names yet (the rows it added and retracted, the rule):
#: app.storage.verification reads them once the Python path writes them too.
SERVER_ONLY = {"added_ids", "added_digest", "retracted_ids", "rule", "part"}


def _clean(db) -> None:
    assert all(r.ok for r in verify_chains(db))
    assert verify_hash_list(db) == []


def _events(db) -> list[tuple[str, str, dict]]:
    with db.session() as s:
        rows = s.execute(
            select(AuditEvent.kind, AuditEvent.subject, AuditEvent.detail)
            .where(AuditEvent.kind.in_(LIST_KINDS))
            .order_by(AuditEvent.id)
        ).all()
    out = []
    for kind, subject, detail in rows:
        facts = json.loads(detail)
        # the canonical form, whoever wrote it
        assert detail == json.dumps(facts, sort_keys=True, separators=(",", ":"))
        out.append((kind, subject, {k: v for k, v in facts.items() if k not in SERVER_ONLY}))
    return out


def _flows(connect, users, tmp_path, owner) -> None:
    """The same flows, as each role, through the services (``connect(name)``: that person's
    database; ``owner``: a database that reads everything)."""
    root, lena, mo = users
    path = tmp_path / "partner.txt"
    path.write_text("".join(f"pdq {c * 32}\n" for c in ("ab", "cd", "ef", "01")))
    admin_lists = HashListService(connect("root"))
    lead_lists = HashListService(connect("lena"))
    mo_lists = HashListService(connect("mo"))

    summary = admin_lists.import_file(
        path, "partner", actor=root, settings=ListSettings(policy=ListPolicy.QUEUE)
    )
    assert (summary.added, summary.retracted) == (4, 0) and summary.import_id
    _clean(owner)
    with owner.session() as s:
        ids = list(s.scalars(select(HashListEntry.id).order_by(HashListEntry.id)))
    with pytest.raises(PermissionDenied):
        mo_lists.import_file(path, "partner", actor=mo)
    with pytest.raises(PermissionDenied):
        lead_lists.import_file(path, "partner", actor=lena)

    # disable and enable: a lead (and an admin); never a moderator
    with pytest.raises(PermissionDenied):
        mo_lists.set_enabled([ids[0]], False, "looks benign", actor=mo)
    assert lead_lists.set_enabled([ids[1], ids[0]], False, "a news photo", actor=lena) == 2
    assert lead_lists.set_enabled(ids[:2], False, "again", actor=lena) == 0
    with owner.session() as s:
        row = s.get(HashListEntry, ids[0])
        assert (row.disabled_by, row.disabled_reason) == (lena.id, "a news photo")
        assert row.disabled_at is not None and row.changed_at == row.disabled_at
    _clean(owner)
    assert admin_lists.set_enabled([ids[0]], True, "checked again", actor=root) == 1
    _clean(owner)

    # retraction: a lead; never a moderator
    with pytest.raises(PermissionDenied):
        mo_lists.retract([ids[2]], "not ours", actor=mo)
    with pytest.raises(HashListError, match="needs a reason"):
        lead_lists.retract([ids[2]], "   ", actor=lena)
    assert lead_lists.retract([ids[2], 999_999], "withdrawn by the partner", actor=lena) == 1
    with owner.session() as s:
        row = s.get(HashListEntry, ids[2])
        assert (row.retracted_by, row.retraction_reason) == (lena.id, "withdrawn by the partner")
    _clean(owner)

    # the flood guard: only one that is set can be cleared; never by a moderator
    with pytest.raises(PermissionDenied):
        mo_lists.clear_flood_guard(ids[3], "checked", actor=mo)
    with pytest.raises(HashListError, match="is not held by the flood guard"):
        lead_lists.clear_flood_guard(ids[3], "checked", actor=lena)
    with pytest.raises(HashListError, match="is retracted"):
        lead_lists.clear_flood_guard(ids[2], "checked", actor=lena)

    # list rules: an admin; neither a lead nor a moderator
    for who, lists in ((lena, lead_lists), (mo, mo_lists)):
        with pytest.raises(PermissionDenied):
            lists.set_rule("partner", actor=who, pdq_threshold=40)
    with pytest.raises(HashListError, match="PDQ threshold 256 is out of range"):
        admin_lists.set_rule("partner", actor=root, pdq_threshold=256)
    with pytest.raises(HashListError, match="there is no list 'nope'"):
        admin_lists.set_rule("nope", actor=root, policy=ListPolicy.OFF)
    with pytest.raises(HashListError, match="local list"):
        admin_lists.set_rule("local", actor=root, policy=ListPolicy.OFF)
    admin_lists.set_rule("partner", actor=root, policy=ListPolicy.RESOLVE, pdq_threshold=40)
    admin_lists.set_rule("news", actor=root, allow=True, source="our picks", create=True)
    admin_lists.set_rule("partner", actor=root, clear_threshold=True)
    with owner.session() as s:
        rules = {
            r.name: (r.policy, r.pdq_threshold, r.allow, r.source)
            for r in s.scalars(select(HashList))
        }
    assert rules == {
        "partner": ("resolve", None, False, None),
        "news": ("queue", None, True, "our picks"),
    }
    _clean(owner)

    # feedback: a moderator, in their own name, on an imported entry
    mo_lists.feedback(ids[3], FeedbackVerdict.DISAGREE, actor=mo, note="a news photo")
    with pytest.raises(HashListError, match="does not exist"):
        mo_lists.feedback(999_999, FeedbackVerdict.AGREE, actor=mo)
    with owner.session() as s:
        fb = s.execute(
            select(HashListFeedback.entry_id, HashListFeedback.user_id, HashListFeedback.verdict)
        ).all()
    assert fb == [(ids[3], mo.id, "disagree")]

    # a re-import: one gone (retracted under the import's event), one new
    path.write_text(f"pdq {'ab' * 32}\npdq {'cd' * 32}\npdq {'99' * 32}\n")
    again = admin_lists.import_file(path, "partner", actor=root)
    assert (again.added, again.unchanged, again.retracted) == (1, 2, 1)
    with owner.session() as s:
        gone = s.get(HashListEntry, ids[3])
        assert gone.retraction_decision_uuid == again.import_id
        assert gone.retraction_reason.startswith(
            f"gone from the list in import {again.import_id[:8]}"
        )
    _clean(owner)


def test_the_lists_writes_on_the_team_server_as_each_role(team_server, tmp_path):
    server = team_server
    root = server.add("root", Role.ADMIN)
    rootdb = server.connect("root")
    users = (
        root,
        server.add("lena", Role.LEAD, actor=root, via=rootdb),
        server.add("mo", Role.MODERATOR, actor=root, via=rootdb),
    )
    _flows(server.connect, users, tmp_path, server.owner)

    # The server's import event names what it added and retracted, and the rule after it.
    with server.owner.session() as s:
        details = [
            json.loads(d)
            for d in s.scalars(
                select(AuditEvent.detail).where(AuditEvent.kind == "import").order_by(AuditEvent.id)
            )
        ]
        ids = list(s.scalars(select(HashListEntry.id).order_by(HashListEntry.id)))
    assert details[0]["added_ids"] == f"{ids[0]}-{ids[3]}"
    assert details[0]["added_digest"].startswith("v2:") and len(details[0]["added_digest"]) == 64
    assert details[1]["retracted_ids"] == str(ids[3])
    assert details[1]["rule"] == {"policy": "resolve", "pdq_threshold": None, "allow": False}


def test_the_python_path_writes_the_same_events(team_server, tmp_path):
    """The same flows on SQLite (the services' Python path) and on the team server (the
    server's functions): the same list events, key for key (the server's import event names
    its rows as well)."""
    sqlite = open_database(f"sqlite:///{tmp_path / 'one.sqlite3'}")
    try:
        users = tuple(
            make_user(sqlite, name, role)
            for name, role in (("root", Role.ADMIN), ("lena", Role.LEAD), ("mo", Role.MODERATOR))
        )
        (tmp_path / "a").mkdir()
        _flows(lambda _name: sqlite, users, tmp_path / "a", sqlite)
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
    _flows(server.connect, users, tmp_path / "b", server.owner)
    assert _events(server.owner) == on_sqlite
    assert [k for k, _s, _d in on_sqlite] == [
        "import",
        "entry_disabled",
        "entry_enabled",
        "retraction",
        "list_changed",
        "list_changed",
        "list_changed",
        "import",
    ]


def test_a_large_import_goes_in_parts_each_on_the_record(team_server, tmp_path, monkeypatch):
    monkeypatch.setattr(list_import, "PART", 2)
    server = team_server
    root = server.add("root", Role.ADMIN)
    lists = HashListService(server.connect("root"))
    path = tmp_path / "big.txt"
    path.write_text("".join(f"pdq {f'{i:02x}' * 32}\n" for i in range(5)))
    first = lists.import_file(path, "big", actor=root)
    assert first.added == 5
    path.write_text("".join(f"pdq {f'{i:02x}' * 32}\n" for i in range(2, 8)))
    second = lists.import_file(path, "big", actor=root)
    assert (second.added, second.unchanged, second.retracted) == (3, 3, 2)
    with server.owner.session() as s:
        events = s.execute(
            select(AuditEvent.uuid, AuditEvent.detail)
            .where(AuditEvent.kind == "import")
            .order_by(AuditEvent.id)
        ).all()
        retracted = s.execute(
            select(HashListEntry.id, HashListEntry.retraction_decision_uuid).where(
                HashListEntry.retracted_at.is_not(None)
            )
        ).all()
        names = s.scalar(select(HashList.last_import_note))
    facts = [json.loads(d) for _u, d in events]
    assert [f["part"] for f in facts] == ["1/3", "2/3", "3/3", "1/3", "2/3", "3/3"]
    assert sum(f["added"] for f in facts[:3]) == 5 and sum(f["added"] for f in facts[3:]) == 3
    assert first.import_id == events[0][0] and second.import_id == events[3][0]
    by_event = {u: f for u, f in zip([u for u, _d in events], facts, strict=True)}
    for entry_id, uuid in retracted:  # each under the event of its part, which names it
        assert str(entry_id) in by_event[uuid]["retracted_ids"].split(",")
    assert names.startswith("imported 6 line(s) into big")
    _clean(server.owner)


def test_nobody_writes_the_lists_by_hand(team_server, tmp_path):
    """The drill's list rows: a lead, a moderator and the admin with psql on their own logins;
    every attempt refused and the record (with the lists' rules and feedback) unchanged."""
    server = team_server
    facts = insider.setup(server, tmp_path)
    facts["prefix"] = server.prefix
    insider_lists.prepare(server, facts, tmp_path)
    before = insider_lists.fingerprint(server)
    outcomes = []
    for name, attempts in (
        ("lena", insider_lists.attempts),
        ("mo", insider_lists.moderator_attempts),
        ("root", insider_lists.admin_attempts),
    ):
        with insider.psql(server, name) as conn:
            outcomes += insider.run(conn, attempts(facts))
    wrong = [o for o in outcomes if not o.as_expected]
    assert wrong == []
    assert insider_lists.fingerprint(server) == before
    _clean(server.owner)


def test_a_threshold_of_256_is_refused_by_the_server_naming_it(team_server):
    server = team_server
    server.add("root", Role.ADMIN)
    with insider.psql(server, "root") as conn:
        conn.execute("SELECT hd_api_set_list_rule('partner', 'queue', 31, false, NULL, NULL, true)")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="PDQ threshold 256"):
            conn.execute(
                "SELECT hd_api_set_list_rule('partner', 'resolve', 256, false, NULL, NULL, false)"
            )
        assert conn.execute("SELECT pdq_threshold, policy FROM hash_lists").fetchall() == [
            (31, "queue")
        ]


def test_the_python_path_refuses_what_the_server_refuses(db):
    """SQLite and a PostgreSQL database without the server program: the same checks."""
    root = make_user(db, "root", Role.ADMIN)
    lists = HashListService(db)
    with pytest.raises(HashListError, match="local list"):
        lists.set_rule("local", actor=root, policy=ListPolicy.OFF, create=True)
    with pytest.raises(HashListError, match="too long"):
        lists.retract([1], "x" * 1001, actor=root)
    parsed = ParsedList(
        "pytx",
        [
            ExchangeEntry(Algorithm.PDQ, "ab" * 32, quality=255, line=1),
            ExchangeEntry(Algorithm.PDQ, "cd" * 32, quality=90, line=2),
        ],
        lines=2,
    )
    summary = import_parsed(db, parsed, "partner", actor=root)
    assert (summary.added, summary.problems) == (1, [(1, "quality 255 is not 0 to 100")])
    _clean(db)
