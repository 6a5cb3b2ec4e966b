"""Incidents (app.storage.incidents, api_incidents.sql): declared by a lead, concluded, people
moved onto one; audited; bad values refused with the value named; two leads declaring one name
at once on the team server: one wins, the other is told who has it."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, select, text

from app.core.model.domain import Role
from app.core.model.incidents import IncidentError
from app.core.model.roles import PermissionDenied
from app.storage.audit import verify_chains
from app.storage.incidents import IncidentService
from app.storage.models import AuditEvent, IncidentHash, Item
from app.storage.server_roles import person_role
from tests.conftest import PG_URL
from tests.helpers import ingest, make_user, write_cluster, write_samples

PDQ = "pdq:" + "f0" * 32


def test_declare_list_assign_conclude(db, store, tmp_path):
    ingest(db, store, write_cluster(tmp_path / "c", 7, size=3) + write_samples(tmp_path / "s", [1]))
    lead = make_user(db, "lead1", Role.LEAD)
    make_user(db, "mo1")
    svc = IncidentService(db)
    with db.session() as s:
        rep = s.scalar(select(Item.id).where(Item.cluster_id == Item.id))
    info = svc.declare(
        "chch", "CIP-2026-001", actor=lead, seed_items=[rep], seed_hashes=[PDQ],
        sources=["upload"], categories=["attack_footage"], delta_minutes=3,
        delta_formats=["pytx", "tat"],
    )  # fmt: skip
    assert info.active and info.label == "CIP-2026-001" and info.declared_by == "lead1"
    assert info.seed_hashes == (PDQ,) and info.seed_items == (rep,)
    assert info.delta_minutes == 3 and info.delta_formats == ("pytx", "tat")
    assert [i.name for i in svc.active()] == ["chch"]
    with db.session() as s:
        under = s.scalars(select(Item.id).where(Item.incident_id == info.id)).all()
        cluster = s.scalars(select(Item.id).where(Item.cluster_id == rep)).all()
        seeds = s.scalars(
            select(IncidentHash.item_id).where(IncidentHash.incident_id == info.id)
        ).all()
    assert sorted(under) == sorted(cluster) and len(cluster) == 3  # the seed's whole cluster
    assert rep in seeds and None in seeds  # the seed item's hashes and the typed one
    assert svc.assign("chch", ["mo1"], actor=lead).assigned == ("mo1",)
    done = svc.conclude("chch", actor=lead)
    assert not done.active and done.concluded_by == "lead1" and done.ended_at >= done.started_at
    assert svc.active() == []
    with db.session() as s:
        kinds = s.scalars(select(AuditEvent.kind).order_by(AuditEvent.id)).all()
    assert kinds[-3:] == ["incident_declared", "incident_assigned", "incident_concluded"]
    assert all(r.ok for r in verify_chains(db))


def test_bad_requests_are_named(db):
    lead = make_user(db, "lead1", Role.LEAD)
    mo = make_user(db, "mo1")
    svc = IncidentService(db)
    cases = [
        (dict(name="bad name", label="L"), "'bad name' is not allowed"),
        (dict(name="ok", label=""), "needs a label"),
        (dict(name="ok", label="two words"), "one word"),
        (dict(name="ok", label="L", seed_hashes=["pdx:00"]), "'pdx' is not a hash type"),
        (dict(name="ok", label="L", seed_hashes=["pdq:abc"]), "64 hex digits"),
        (dict(name="ok", label="L", seed_items=[999]), "seed item 999 does not exist"),
        (dict(name="ok", label="L", delta_minutes=0), "0 minutes is out of range"),
        (dict(name="ok", label="L", delta_formats=["xml"]), "'xml' is not one of"),
    ]
    for kw, words in cases:
        with pytest.raises(IncidentError, match=words):
            svc.declare(actor=lead, **kw)
    with pytest.raises(PermissionDenied, match="mo1"):
        svc.declare("ok", "L", actor=mo)
    svc.declare("ok", "L", actor=lead)
    with pytest.raises(IncidentError, match="'ok' already exists: declared by lead1"):
        svc.declare("ok", "L2", actor=lead)
    with pytest.raises(IncidentError, match="no active account 'ghost'"):
        svc.assign("ok", ["ghost"], actor=lead)
    with pytest.raises(IncidentError, match="there is no incident 'nope'"):
        svc.conclude("nope", actor=lead)
    svc.conclude("ok", actor=lead)
    with pytest.raises(IncidentError, match="already concluded"):
        svc.conclude("ok", actor=lead)
    with pytest.raises(IncidentError, match="concluded: nobody can be moved"):
        svc.assign("ok", ["mo1"], actor=lead)
    assert [i.name for i in svc.list()] == ["ok"]  # nothing else was made


@pytest.mark.postgres
def test_on_the_team_server(team_server, tmp_path):
    from app.core.ingest.contentstore import ContentStore

    root = team_server.add("root", Role.ADMIN)
    rootdb = team_server.connect("root")
    lead = team_server.add("lead1", Role.LEAD, actor=root, via=rootdb)
    mo = team_server.add("mo1", Role.MODERATOR, actor=root, via=rootdb)
    ingest(rootdb, ContentStore(tmp_path / "m"), write_samples(tmp_path / "s", [1, 2]))
    leaddb = team_server.connect("lead1")
    with pytest.raises(PermissionDenied):
        IncidentService(team_server.connect("mo1")).declare("x", "L", actor=mo)
    svc = IncidentService(leaddb)
    with pytest.raises(IncidentError, match=r"64 hex digits"):
        svc.declare("x", "L", actor=lead, seed_hashes=["pdq:00"])
    info = svc.declare("x", "CIP-7", actor=lead, seed_items=[1], seed_hashes=[PDQ])
    assert info.declared_by == "lead1" and info.seed_hashes == (PDQ,)
    assert svc.assign("x", ["mo1"], actor=lead).assigned == ("mo1",)
    assert not svc.conclude("x", actor=lead).active
    with team_server.owner.session() as s:
        ev = s.scalars(select(AuditEvent).where(AuditEvent.subject == "x")).all()
    assert [(e.kind, e.actor_name) for e in ev] == [
        ("incident_declared", "lead1"),
        ("incident_assigned", "lead1"),
        ("incident_concluded", "lead1"),
    ]
    # Nobody writes the tables by hand: a lead's own login may read, never insert.
    forged = "INSERT INTO incidents (name, label, started_at) VALUES ('y', 'L', now())"
    with pytest.raises(Exception, match="permission denied"), leaddb.session() as s:
        s.execute(text(forged))
    with pytest.raises(Exception, match="permission denied"), leaddb.session() as s:
        s.execute(text("UPDATE items SET incident_id = 1"))
    assert all(r.ok for r in verify_chains(team_server.owner))


@pytest.mark.postgres
def test_two_leads_declare_one_name_at_once(team_server):
    """Lead A's declare is in flight (its transaction open) when lead B declares the same name:
    B waits on the name, A commits, B is told A has it; one incident, one audit event."""
    root = team_server.add("root", Role.ADMIN)
    rootdb = team_server.connect("root")
    a = team_server.add("lead_a", Role.LEAD, actor=root, via=rootdb)
    b = team_server.add("lead_b", Role.LEAD, actor=root, via=rootdb)
    dba, dbb = team_server.connect("lead_a"), team_server.connect("lead_b")
    outcome: dict[str, object] = {}
    watcher = create_engine(PG_URL)  # a superuser sees what other sessions wait on

    def declare_b() -> None:
        try:
            outcome["b"] = IncidentService(dbb).declare("attack", "CIP-B", actor=b)
        except Exception as exc:  # the test reads what B was told
            outcome["b"] = exc

    with dba.sessions() as sa, sa.begin():
        sa.execute(
            text("SELECT hd_api_incident_declare('attack', 'CIP-A', '[]', '[]', '[]', '[]', 5, "
                 "'[]')")
        )  # fmt: skip
        pid_b = None
        t = threading.Thread(target=declare_b)
        t.start()
        # B is waiting on A's row (a condition, with a generous timeout: no sleep-and-hope).
        with watcher.connect() as watch:
            for _ in range(600):
                pid_b = watch.execute(
                    text("SELECT pid FROM pg_stat_activity WHERE usename = :u "
                         "AND wait_event_type = 'Lock'"),
                    {"u": person_role(team_server.prefix, "lead_b")},
                ).scalar()  # fmt: skip
                if pid_b is not None or not t.is_alive():
                    break
                threading.Event().wait(0.05)
        assert pid_b is not None, f"lead B never waited on lead A's declare: {outcome}"
        del a
    t.join(60)
    watcher.dispose()
    assert not t.is_alive()
    assert isinstance(outcome["b"], IncidentError)
    assert "'attack' already exists: declared by lead_a" in str(outcome["b"])
    svc = IncidentService(team_server.owner)
    assert [(i.name, i.label, i.declared_by) for i in svc.list()] == [("attack", "CIP-A", "lead_a")]
    with team_server.owner.session() as s:
        n = s.scalar(text("SELECT count(*) FROM audit_events WHERE kind = 'incident_declared'"))
    assert n == 1


@pytest.mark.postgres
def test_a_declare_held_open_longer_than_the_lock_timeout(team_server):
    """Lead A's declare stays open past lead B's lock timeout: B is told the name is being
    declared right now (not a lock error); A's incident stands."""
    root = team_server.add("root", Role.ADMIN)
    rootdb = team_server.connect("root")
    team_server.add("lead_a", Role.LEAD, actor=root, via=rootdb)
    b = team_server.add("lead_b", Role.LEAD, actor=root, via=rootdb)
    dba, dbb = team_server.connect("lead_a"), team_server.connect("lead_b")
    with dba.sessions() as sa, sa.begin():
        sa.execute(
            text("SELECT hd_api_incident_declare('attack', 'CIP-A', '[]', '[]', '[]', '[]', 5, "
                 "'[]')")
        )  # fmt: skip
        with pytest.raises(IncidentError, match="'attack' is being declared by another lead"):
            IncidentService(dbb).declare("attack", "CIP-B", actor=b)
    assert [i.declared_by for i in IncidentService(team_server.owner).list()] == ["lead_a"]


@pytest.mark.postgres
def test_a_rescan_cannot_resolve_what_does_not_match(team_server, tmp_path):
    """A moderator may record a re-scan (whoever confirms runs it), but the server checks every
    match against the item's own hashes: a made-up one is refused and nothing changes."""
    from app.core.ingest.contentstore import ContentStore
    from app.core.model.decisions import DecisionRequest
    from app.core.model.domain import Verdict
    from app.storage.models import HashListEntry
    from app.storage.review import ReviewService

    root = team_server.add("root", Role.ADMIN)
    rootdb = team_server.connect("root")
    mo = team_server.add("mo1", Role.MODERATOR, actor=root, via=rootdb)
    team_server.set_second_review_share(0.0)
    ingest(rootdb, ContentStore(tmp_path / "m"), write_samples(tmp_path / "s", [81, 82]))
    modb = team_server.connect("mo1")
    review = ReviewService(modb)
    first = review.claim_next(mo.id)
    review.decide(DecisionRequest(first.id, mo.id, Verdict.CONFIRM, "glorification"))
    with team_server.owner.session() as s:
        entry = s.scalar(select(HashListEntry.id).where(HashListEntry.item_id == first.id))
        other = s.scalar(select(Item.id).where(Item.id != first.id))
    batch = (
        '{"trigger": "forged", "declared": null, "searched": 1, "scanned": 1, '
        '"policy": {"pdq_threshold": 31, "phash_threshold": 10}, '
        f'"matches": [{{"item": {other}, "entry": {entry}, "distance": 0, "resolve": true, '
        '"note": "made up"}]}'
    )
    with pytest.raises(PermissionDenied, match="does not match item"), modb.session() as s:
        s.execute(text("SELECT * FROM hd_api_rescan_apply(CAST(:b AS jsonb))"), {"b": batch})
    with team_server.owner.session() as s:
        assert s.get(Item, other).status == "queued"
        assert s.scalar(text("SELECT count(*) FROM rescans")) == 0
