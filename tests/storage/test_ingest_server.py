"""Ingest on a team server records through the server's write API (hd_api_record_items,
app/storage/sql/api_ingest.sql): the same files give the same record as on SQLite (where the
recorder writes the rows itself), people cannot write items, signals or sightings around it,
and the server refuses a match the item's own hashes do not support."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from PIL import Image, ImageEnhance
from sqlalchemy import select

from app.core.ingest.contentstore import ContentStore
from app.core.ingest.jobs import analyze_file, jobs_from_paths
from app.core.matching.hash_lists import ListPolicy
from app.core.matching.match_rules import MatchPolicy
from app.core.model.decisions import DecisionRequest
from app.core.model.domain import Role, Verdict
from app.storage.audit import verify_chains
from app.storage.db import Database
from app.storage.hash_lists import HashListService
from app.storage.ingest_recorder import InvalidFile, ingest_jobs
from app.storage.list_import import ListSettings
from app.storage.models import AuditEvent, Decision, HashListEntry, Item, Sighting, SignalRow
from app.storage.review import ReviewService
from app.storage.users import UserService
from app.storage.verification import verify_hash_list
from app.tools.demo import sample_picture
from tests.drills import insider, insider_ingest
from tests.helpers import recorder as make_recorder
from tests.helpers import write_cluster, write_samples


def _first_set(folder: Path) -> list[Path]:
    """Six pictures, a cluster of five near-duplicates, an exact copy inside the set and a file
    that is no picture (an unreadable item)."""
    paths = write_samples(folder, range(6)) + write_cluster(folder, 40)
    copy = folder / "copy-of-0.jpg"
    copy.write_bytes(paths[0].read_bytes())
    broken = folder / "broken.jpg"
    broken.write_bytes(b"not a picture at all" * 50)
    return [*paths, copy, broken]


def _near(src: Path, dst: Path, how: str) -> Path:
    img = Image.open(src).convert("RGB")
    if how == "small":
        img = img.resize((360, 240))
    else:
        img = ImageEnhance.Brightness(img).enhance(1.15 if how == "bright" else 0.9)
    img.save(dst, "JPEG", quality=80)
    return dst


def _scenario(admin_db: Database, mod_db: Database, admin, mod, tmp: Path) -> None:
    """The same steps on either database: ingest, a confirm (local hashes), a partner list on
    "resolve" with one of the pictures, then more files: near-duplicates of the confirmed one
    (auto-matched), of the listed one (auto-matched, then held by the flood guard), of an open
    one (its cluster), a copy of an earlier file."""
    from tests.storage.test_hash_list_exchange import pytx_file

    store = ContentStore(tmp / "media")
    first = _first_set(tmp / "a")
    ingest_jobs(make_recorder(admin_db, store, actor=admin), jobs_from_paths(first), workers=1)
    review = ReviewService(mod_db, second_review_share=0.0)
    confirmed_sha = analyze_file(first[1]).sha256
    with admin_db.session() as s:
        target = s.scalar(select(Item.id).where(Item.sha256 == confirmed_sha))
    held = []
    while (got := review.claim_next(mod.id, exclude=held)) is not None and got.id != target:
        held.append(got.id)
    assert got is not None
    review.release(mod.id, held)  # back in the queue as they were
    review.decide(DecisionRequest(got.id, mod.id, Verdict.CONFIRM, "glorification"))

    listed = analyze_file(first[3])
    pdq = next(s.value for s in listed.signals if s.algorithm == "pdq" and not s.variant)
    HashListService(admin_db).import_file(
        pytx_file(tmp, "partner.txt", [pdq]),
        "partner",
        actor=admin,
        settings=ListSettings(policy=ListPolicy.RESOLVE),
    )
    b = tmp / "b"
    b.mkdir()
    second = [
        _near(first[1], b / "near-confirmed.jpg", "small"),
        _near(first[3], b / "near-listed-1.jpg", "small"),
        _near(first[3], b / "near-listed-2.jpg", "bright"),
        _near(first[3], b / "near-listed-3.jpg", "dark"),
        _near(first[2], b / "near-open.jpg", "small"),
        b / "copy-of-4.jpg",
        b / "new.jpg",
    ]
    second[5].write_bytes(first[4].read_bytes())
    sample_picture(77, (480, 320)).save(second[6], "JPEG", quality=90)
    policy = MatchPolicy(flood_per_hour=1)
    rec = make_recorder(admin_db, store, policy=policy, actor=admin)
    ingest_jobs(rec, jobs_from_paths(second), workers=1)


def _record(db: Database) -> dict:
    """The record ingest wrote, without ids and times: items by SHA-256 (status, kind, note,
    cluster, known entry, sightings, signals), auto-match decisions, flood-guarded entries and
    flood-guard events."""
    with db.session() as s:
        sha = dict(s.execute(select(Item.id, Item.sha256)).all())
        entries = {
            e.id: (e.list_name, e.algorithm, e.variant, e.value)
            for e in s.scalars(select(HashListEntry))
        }
        items = {}
        for it in s.scalars(select(Item)):
            items[it.sha256] = (
                it.kind,
                it.status,
                it.match_note,
                it.error,
                it.size,
                it.width,
                it.height,
                it.content_key,
                it.preview_key,
                it.deadline is None,
                sha.get(it.cluster_id),
                entries.get(it.known_entry_id),
            )
        signals: dict[str, list] = {}
        for g in s.scalars(select(SignalRow).order_by(SignalRow.id)):
            signals.setdefault(sha[g.item_id], []).append(
                (g.algorithm, g.variant, g.value, g.quality, g.frame_ts)
            )
        sightings = sorted(
            (sha[w.item_id], w.source, w.original_name, w.reason)
            for w in s.scalars(select(Sighting))
        )
        decisions = sorted(
            (
                sha[d.item_id],
                d.verdict,
                d.method,
                d.category,
                d.note,
                d.user_id is None,
                entries.get(d.matched_entry_id),
                d.match_distance,
            )
            for d in s.scalars(select(Decision).where(Decision.method == "auto_match"))
        )
        guarded = sorted(
            entries[e.id] for e in s.scalars(select(HashListEntry)) if e.flood_guarded_at
        )
        events = []
        for e in s.scalars(select(AuditEvent).where(AuditEvent.kind == "flood_guard")):
            detail = json.loads(e.detail)
            events.append(
                (
                    e.actor_name,
                    entries[detail["entry"]],
                    sha[detail["item"]],
                    detail["matches_in_hour"],
                    detail["limit"],
                )
            )
    return {
        "items": items,
        "signals": signals,
        "sightings": sightings,
        "decisions": decisions,
        "guarded": guarded,
        "events": events,
    }


@pytest.mark.postgres
def test_the_same_files_give_the_same_record_on_a_team_server_and_on_sqlite(
    team_server, sqlite_db, tmp_path
):
    root = team_server.add("root", Role.ADMIN)
    rootdb = team_server.connect("root")
    mo = team_server.add("mo", Role.MODERATOR, actor=root, via=rootdb)
    _scenario(rootdb, team_server.connect("mo"), root, mo, tmp_path / "team")

    users = UserService(sqlite_db)
    admin = users.create_first_admin("root", team_server.PASSWORD)
    mod = users.add("mo", team_server.PASSWORD, Role.MODERATOR, actor=admin)
    _scenario(sqlite_db, sqlite_db, admin, mod, tmp_path / "solo")

    team, solo = _record(team_server.owner), _record(sqlite_db)
    # The scenario did what it says: auto-matches from both lists, the flood guard, a cluster
    # joined by a later file, copies, an unreadable item.
    statuses = [v[1] for v in solo["items"].values()]
    assert statuses.count("auto_matched") == 2
    assert len(solo["decisions"]) == 2 and len(solo["guarded"]) == 1 and len(solo["events"]) == 1
    assert sum(1 for v in solo["items"].values() if v[2] and "flood guard" in v[2]) == 1
    assert "unreadable" in statuses
    assert len(solo["sightings"]) == len(solo["items"]) + 2
    clusters = [v[10] for v in solo["items"].values() if v[10] is not None]
    assert len(set(clusters)) == 2 and len(clusters) > 5
    for key in solo:
        assert team[key] == solo[key], key
    assert all(r.ok for r in verify_chains(team_server.owner))
    assert verify_hash_list(team_server.owner) == []


@pytest.fixture
def facts(team_server, tmp_path):
    f = insider.setup(team_server, tmp_path)
    f["prefix"] = team_server.prefix
    insider_ingest.prepare(team_server, f)
    return f


@pytest.mark.postgres
def test_psql_attempts_around_the_ingest_api_are_refused_and_change_nothing(team_server, facts):
    before = insider_ingest.fingerprint(team_server)
    with insider.psql(team_server, "root") as conn:
        outcomes = insider.run(conn, insider_ingest.attempts(facts))
    with insider.psql(team_server, "mo") as conn:
        outcomes += insider.run(conn, insider_ingest.moderator_attempts(facts))
    assert [o for o in outcomes if not o.as_expected] == []
    assert insider_ingest.fingerprint(team_server) == before
    by_label = {o.label: o.result for o in outcomes}
    assert "may not ingest" in by_label["record a file (no ingest permission)"]
    assert (
        "does not match"
        in by_label["a forged auto-match: an entry none of the item's hashes is near"]
    )
    assert "permission denied" in by_label["INSERT an item by hand"]
    # The same call, valid, goes through (the refusals were the forgeries, not the call).
    with insider.psql(team_server, "root") as conn:
        ok = insider.run(
            conn,
            [
                insider.Attempt(
                    "a valid file",
                    insider_ingest._call(insider_ingest.batch(insider_ingest.item(99))),
                    "allowed",
                )
            ],
        )
    assert ok[0].result == "allowed (1 rows)"
    with team_server.owner.session() as s:
        row = s.scalars(select(Item).order_by(Item.id.desc()).limit(1)).one()
        assert row.status == "queued" and row.created_at.year >= 2026


@pytest.mark.postgres
def test_a_moderator_cannot_ingest_through_the_service(team_server, facts, tmp_path):
    from app.core.model.roles import PermissionDenied

    before = insider_ingest.fingerprint(team_server)
    paths = write_samples(tmp_path / "mo", [200])
    rec = make_recorder(team_server.connect("mo"), ContentStore(tmp_path / "m"))
    with pytest.raises(PermissionDenied, match="may not ingest"):
        ingest_jobs(rec, jobs_from_paths(paths), workers=1)
    assert insider_ingest.fingerprint(team_server) == before


def test_a_report_from_the_future_is_skipped_on_every_database(db, tmp_path):
    """The report's own times are checked here as on the server: received in the future, or a
    deadline before it was received, the file is reported and skipped; the rest recorded."""
    from dataclasses import replace
    from datetime import timedelta

    from app.core.model.domain import utcnow

    paths = write_samples(tmp_path / "in", [1, 2, 3])
    jobs = jobs_from_paths(paths)
    now = utcnow()
    jobs[0] = replace(jobs[0], sighting=replace(jobs[0].sighting, flagged_at=now + timedelta(1)))
    jobs[1] = replace(jobs[1], sighting=replace(jobs[1].sighting, deadline=now - timedelta(days=3)))
    summary = ingest_jobs(make_recorder(db, ContentStore(tmp_path / "m")), jobs, workers=1)
    assert summary.new == 1
    reasons = dict(summary.skipped)
    assert "in the future" in reasons[str(paths[0])]
    assert "before the report was received" in reasons[str(paths[1])]
    rec = make_recorder(db, ContentStore(tmp_path / "m"))
    with pytest.raises(InvalidFile):
        rec.record(paths[0], analyze_file(paths[0]), jobs[0].sighting)


@pytest.mark.postgres
def test_direct_writes_by_the_admin_are_refused_through_the_orm(team_server, facts):
    before = insider_ingest.fingerprint(team_server)
    with pytest.raises(Exception) as refused, facts["rootdb"].session() as s:
        s.add(SignalRow(item_id=facts["open_item"], algorithm="md5", value="0" * 32, variant=""))
    assert "permission denied" in str(refused.value)
    with insider.psql(team_server, "root") as conn, pytest.raises(psycopg.Error):
        conn.execute(
            "INSERT INTO sightings (item_id, source, flagged_at, created_at) "
            f"VALUES ({facts['open_item']}, 'x', now(), now())"
        )
    assert insider_ingest.fingerprint(team_server) == before
