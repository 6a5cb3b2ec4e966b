"""Issue 21 (4, 7): `audit verify` names every hand edit the schema owner can make to the record
beside the chains themselves: a confirm's rows in every field that decides a match, imported
rows (altered, deleted, forged, retracted or un-retracted by hand), list rules, second reviews,
exposure records, a confirm stripped of its digest; and `audit checkpoint` still writes after a
break. Each edit is made as the owner would (plain SQL on the file or the server), on SQLite and
PostgreSQL alike, and an untouched record with all of them raises no alarm."""

from __future__ import annotations

import io
import json
import sqlite3
from contextlib import closing

import pytest
from sqlalchemy import select, text

from app.cli import main
from app.core.matching.hash_lists import ListPolicy
from app.core.model.chain import (
    DIGEST_V2,
    frame_ts_text,
    hash_rows_digest,
    hash_rows_digest_v2,
    id_ranges,
    ids_of_ranges,
    rows_digest_matches,
)
from app.core.model.decisions import DecisionRequest
from app.core.model.domain import DecisionMethod, Role, Verdict, utcnow
from app.core.model.exposure import ExposureEvent, ExposureKind
from app.core.model.queues import Queue
from app.storage.audit import verify_chains
from app.storage.exposure import ExposureService
from app.storage.hash_lists import HashListService
from app.storage.list_import import ListSettings
from app.storage.models import (
    AuditEvent,
    Decision,
    ExposureRow,
    HashListEntry,
    SecondReview,
)
from app.storage.review import ReviewService
from app.storage.users import UserService
from app.storage.verification import verify_hash_list, verify_other_records
from tests.helpers import ingest, make_user, write_samples

PW = "correct horse battery"
HASHES = [f"{i:02x}" * 32 for i in (0x11, 0x22, 0x33, 0x44)]


def _owner(db, sql, **params):
    """A statement run as the schema owner (the one credential that can edit the record)."""
    with db.engine.begin() as conn:
        return conn.execute(text(sql), params)


def _record(db, store, tmp_path):
    """A record with confirms (one second-reviewed in agreement, one in disagreement), a
    reject, two imports into a resolve list (the second retracts an entry), a rule change, a
    lead's retraction of an imported entry and an exposure record."""
    users = UserService(db)
    admin = users.create_first_admin("root", PW)
    mod1 = users.add("mod1", PW, Role.MODERATOR, actor=admin)
    mod2 = users.add("mod2", PW, Role.MODERATOR, actor=admin)
    lead = users.add("lead1", PW, Role.LEAD, actor=admin)
    ingest(db, store, write_samples(tmp_path / "in", range(4)))
    review = ReviewService(db, second_review_share=1.0)
    outs = []
    for verdict in (Verdict.CONFIRM, Verdict.CONFIRM, Verdict.REJECT):
        item = review.claim_next(mod1.id)
        category = "manifesto" if verdict is Verdict.CONFIRM else None
        outs.append(review.decide(DecisionRequest(item.id, mod1.id, verdict, category)))
    for second in (Verdict.CONFIRM, Verdict.REJECT):  # agrees with the first, then not
        item = review.claim_next(mod2.id, queue=Queue.SECOND_REVIEW)
        category = "manifesto" if second is Verdict.CONFIRM else None
        review.decide(
            DecisionRequest(item.id, mod2.id, second, category, method=DecisionMethod.SECOND_REVIEW)
        )
    lists = HashListService(db)
    src = tmp_path / "partner.txt"
    src.write_text("".join(f"pdq {h}\n" for h in HASHES[:3]))
    lists.import_file(src, "partner", actor=admin, settings=ListSettings(policy=ListPolicy.RESOLVE))
    src.write_text("".join(f"pdq {h}\n" for h in HASHES[1:]))  # 0 gone, 3 new
    lists.import_file(src, "partner", actor=admin)
    lists.set_rule("partner", actor=admin, pdq_threshold=20)
    with db.session() as s:
        one = s.scalar(select(HashListEntry.id).where(HashListEntry.value == HASHES[1]))
    assert lists.retract([one], "a news photo", actor=lead) == 1
    ExposureService(db).record(
        ExposureEvent(mod1.id, outs[0].item_id, ExposureKind.REVEAL, utcnow(), 2.5)
    )
    return outs


def _problems(db) -> list[str]:
    return [str(p) for p in verify_hash_list(db) + verify_other_records(db)]


def _row(db, **where) -> HashListEntry:
    with db.session() as s:
        q = select(HashListEntry).order_by(HashListEntry.id)
        for name, value in where.items():
            q = q.where(getattr(HashListEntry, name) == value)
        return s.scalars(q).first()


def test_an_untouched_record_raises_no_alarm(db, store, tmp_path):
    outs = _record(db, store, tmp_path)
    assert all(r.ok for r in verify_chains(db))
    assert _problems(db) == []
    with db.session() as s:  # every piece the checks read is there
        assert s.scalar(select(Decision.hashes_digest).where(Decision.uuid == outs[0].uuid))
        assert len(s.scalars(select(SecondReview)).all()) == 3  # the reject sampled too
        assert s.scalars(select(ExposureRow)).one().seconds == 2.5


# -- a: the confirm's digest covers every field that decides a match --------------------------


def test_the_v2_digest_formula():
    row = ("pdq", "", "AB" * 32, 87, 1 / 3, "manifesto", "local")
    digest = hash_rows_digest_v2([row])
    assert digest.startswith(DIGEST_V2) and len(digest) == 64
    assert frame_ts_text(1 / 3) == "333333" and frame_ts_text(None) == ""
    for changed in (
        ("pdq", "", "AB" * 32, 0, 1 / 3, "manifesto", "local"),
        ("pdq", "", "AB" * 32, 87, 0.5, "manifesto", "local"),
        ("pdq", "tl", "AB" * 32, 87, 1 / 3, "manifesto", "local"),
        ("pdq", "", "AB" * 32, 87, 1 / 3, "other", "local"),
        ("pdq", "", "AB" * 32, 87, 1 / 3, "manifesto", "partner"),
    ):
        assert hash_rows_digest_v2([changed]) != digest
    assert hash_rows_digest_v2([row, changed]) == hash_rows_digest_v2([changed, row])
    assert rows_digest_matches(digest, [row])
    old = hash_rows_digest([("pdq", "", "ab" * 32)])  # v1 entries verify with the v1 formula
    assert rows_digest_matches(old, [("pdq", None, "AB" * 32, 0, None, None, "local")])
    assert ids_of_ranges(id_ranges([9, 3, 4, 5, 12, 13])) == {3, 4, 5, 9, 12, 13}
    assert id_ranges([9, 3, 4, 5, 12, 13]) == "3-5,9,12-13" and ids_of_ranges("") == set()


def test_postgresql_computes_the_same_v2_digest(db, store, tmp_path):
    """The formula the docstring gives for PL/pgSQL, run by the server over a confirm's rows
    and over awkward frame times, gives the digest Python wrote."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the server program's formula: PostgreSQL only")
    outs = _record(db, store, tmp_path)
    with db.engine.connect() as conn:
        got = conn.execute(
            text(V2_DIGEST_SQL + " FROM hash_list h WHERE h.decision_uuid = :u"),
            {"u": outs[0].uuid},
        ).scalar()
        stored = conn.execute(
            select(Decision.hashes_digest).where(Decision.uuid == outs[0].uuid)
        ).scalar()
        assert got == stored and got.startswith(DIGEST_V2)
        rows = [
            ("pdq_frame", "", "Cd" * 32, q, ts, None, "partner")
            for q, ts in ((100, 0.1), (None, 1 / 3), (7, 12345.678901), (0, 1e-7), (1, None))
        ]
        params = {
            f"{k}{i}": v for i, r in enumerate(rows) for k, v in zip("qt", r[3:5], strict=True)
        }
        got = conn.execute(text(V2_DIGEST_SQL + FRAME_ROWS), params).scalar()
    assert got == hash_rows_digest_v2(rows)


#: The v2 digest as the server program computes it (app.core.model.chain.hash_rows_digest_v2).
V2_DIGEST_SQL = """SELECT 'v2:' || left(encode(sha256(convert_to(coalesce(string_agg(
  h.algorithm || '|' || coalesce(h.variant, '') || '|' || lower(h.value) || '|' ||
  coalesce(h.quality::text, '') || '|' ||
  coalesce(floor(h.frame_ts * 1000000)::bigint::text, '') || '|' ||
  coalesce(h.category, '') || '|' || h.list_name,
  E'\\n' ORDER BY (
  h.algorithm || '|' || coalesce(h.variant, '') || '|' || lower(h.value) || '|' ||
  coalesce(h.quality::text, '') || '|' ||
  coalesce(floor(h.frame_ts * 1000000)::bigint::text, '') || '|' ||
  coalesce(h.category, '') || '|' || h.list_name) COLLATE "C"), ''), 'UTF8')), 'hex'), 61)"""

#: Five frame rows with awkward qualities and frame times (bound), as ``h``.
FRAME_ROWS = """ FROM (SELECT 'pdq_frame'::text AS algorithm, ''::text AS variant,
  repeat('Cd', 32) AS value, q AS quality, t AS frame_ts, NULL::text AS category,
  'partner'::text AS list_name FROM (VALUES
  (CAST(:q0 AS integer), CAST(:t0 AS double precision)), (CAST(:q1 AS integer),
  CAST(:t1 AS double precision)), (CAST(:q2 AS integer), CAST(:t2 AS double precision)),
  (CAST(:q3 AS integer), CAST(:t3 AS double precision)), (CAST(:q4 AS integer),
  CAST(:t4 AS double precision))) AS v(q, t)) h"""


def test_a_local_rows_quality_and_frame_time_are_named(db, store, tmp_path):
    outs = _record(db, store, tmp_path)
    pdq = _row(db, decision_uuid=outs[0].uuid, algorithm="pdq")
    _owner(db, "UPDATE hash_list SET quality = 0 WHERE id = :i", i=pdq.id)
    problems = _problems(db)
    assert len(problems) == 1, problems
    assert f"entries #{pdq.id} were altered" in problems[0] and "quality 0" in problems[0]
    _owner(db, "UPDATE hash_list SET quality = :q, frame_ts = 2.5 WHERE id = :i", q=pdq.quality,
           i=pdq.id)  # fmt: skip
    problems = _problems(db)
    assert len(problems) == 1 and f"#{pdq.id}: frame_ts 2.5" in problems[0], problems
    _owner(db, "UPDATE hash_list SET frame_ts = NULL WHERE id = :i", i=pdq.id)
    assert _problems(db) == []
    # A second copy of a confirmed row (no signal: one row per signal is a unique key).
    _owner(
        db,
        "INSERT INTO hash_list (algorithm, value, quality, variant, category, list_name, "
        "decision_uuid, item_id, added_by, added_at) SELECT algorithm, value, quality, "
        "variant, category, list_name, decision_uuid, item_id, added_by, added_at "
        "FROM hash_list WHERE id = :i",
        i=pdq.id,
    )
    copy_id = _row(db, decision_uuid=outs[0].uuid, signal_id=None).id
    problems = _problems(db)
    assert len(problems) == 1 and f"entries #{copy_id} were added by hand" in problems[0]


# -- b: imported rows -------------------------------------------------------------------------


def test_imported_rows_altered_deleted_forged_and_retracted_by_hand_are_named(db, store, tmp_path):
    _record(db, store, tmp_path)
    gone = _row(db, value=HASHES[0])  # retracted by the second import
    kept = _row(db, value=HASHES[2])
    new = _row(db, value=HASHES[3])
    # The import's retraction taken back by hand: the entry matches again.
    _owner(db, "UPDATE hash_list SET retracted_at = NULL WHERE id = :i", i=gone.id)
    problems = _problems(db)
    assert len(problems) == 1 and f"entry #{gone.id} " in problems[0]
    assert "is active, but import #" in problems[0]
    _owner(db, "UPDATE hash_list SET retracted_at = added_at WHERE id = :i", i=gone.id)
    assert _problems(db) == []
    # Quality set to 0 by hand (the entry never matches again).
    _owner(db, "UPDATE hash_list SET quality = 0 WHERE id = :i", i=kept.id)
    problems = _problems(db)
    assert len(problems) == 1 and f"#{kept.id}" in problems[0]
    assert "no longer match the digest its event carries" in problems[0]
    _owner(db, "UPDATE hash_list SET quality = NULL WHERE id = :i", i=kept.id)
    # Retracted by hand, forged, deleted (in that order: SQLite would give the forged row the
    # deleted one's id, which names it altered instead).
    _owner(
        db,
        "UPDATE hash_list SET retracted_at = added_at, retraction_reason = 'x' WHERE id = :i",
        i=kept.id,
    )
    _owner(
        db,
        "INSERT INTO hash_list (algorithm, value, variant, list_name, added_by, added_at) "
        "VALUES ('pdq', :v, '', 'partner', :u, :t)",
        v="ee" * 32,
        u=kept.added_by,
        t=kept.added_at,
    )
    _owner(db, "DELETE FROM hash_list WHERE id = :i", i=new.id)
    forged = _row(db, value="ee" * 32)
    problems = _problems(db)
    assert len(problems) == 3, problems
    assert any(f"entry #{kept.id} " in p and "retracted by hand" in p for p in problems)
    assert any("were deleted" in p and f"#{new.id}" in p for p in problems)
    assert any(f"entry #{forged.id} " in p and "is forged" in p for p in problems)


# -- c: list rules ------------------------------------------------------------------------------


def test_a_rule_changed_by_hand_is_named(db, store, tmp_path):
    _record(db, store, tmp_path)
    _owner(db, "UPDATE hash_lists SET pdq_threshold = 64, allow = :t WHERE name = 'partner'",
           t=True)  # fmt: skip
    problems = _problems(db)
    assert len(problems) == 1 and "list 'partner'" in problems[0], problems
    assert "pdq_threshold 64 (on the record: 20)" in problems[0]
    assert "allow True (on the record: False)" in problems[0]
    _owner(db, "UPDATE hash_lists SET pdq_threshold = 20, allow = :f, policy = 'queue'", f=False)
    problems = _problems(db)
    assert len(problems) == 1 and "policy 'queue' (on the record: 'resolve')" in problems[0]
    _owner(
        db,
        "INSERT INTO hash_lists (name, policy, allow, created_at, updated_at) "
        "VALUES ('quiet', 'resolve', :f, :t, :t)",
        f=False,
        t=utcnow(),
    )
    assert any("list 'quiet' is not on the record" in p for p in _problems(db))


# -- d: second reviews ------------------------------------------------------------------------


def test_second_reviews_are_checked_against_the_chain(db, store, tmp_path):
    outs = _record(db, store, tmp_path)
    with db.session() as s:
        rows = s.scalars(select(SecondReview).order_by(SecondReview.id)).all()
    agreed, disagreed, pending = rows
    assert agreed.agreed and disagreed.agreed is False and pending.status == "pending"
    _owner(db, "UPDATE second_reviews SET agreed = :t WHERE id = :i", t=True, i=disagreed.id)
    _owner(db, "UPDATE second_reviews SET first_verdict = 'reject' WHERE id = :i", i=agreed.id)
    problems = _problems(db)
    assert len(problems) == 2, problems
    assert any(
        p.startswith(f"second review #{disagreed.id} ") and "agreed is True" in p for p in problems
    )
    assert any(
        p.startswith(f"second review #{agreed.id} ") and "verdict 'reject'" in p for p in problems
    )
    _owner(db, "UPDATE second_reviews SET agreed = :f WHERE id = :i", f=False, i=disagreed.id)
    _owner(db, "UPDATE second_reviews SET first_verdict = 'confirm' WHERE id = :i", i=agreed.id)
    assert _problems(db) == []
    # A disagreement erased: the review put back to pending (the leads never see it).
    _owner(
        db,
        "UPDATE second_reviews SET status = 'pending', second_decision_uuid = NULL, "
        "second_verdict = NULL, second_user_id = NULL, agreed = NULL, done_at = NULL "
        "WHERE id = :i",
        i=disagreed.id,
    )
    _owner(db, "UPDATE second_reviews SET first_decision_uuid = :u WHERE id = :i",
           u="0" * 36, i=pending.id)  # fmt: skip
    problems = _problems(db)
    assert len(problems) == 2, problems
    assert any("is a second review, but no done second review records it" in p for p in problems)
    assert any(
        p.startswith(f"second review #{pending.id} ") and "is not on the chain" in p
        for p in problems
    )
    assert outs  # the first decisions are untouched


# -- e: exposure ------------------------------------------------------------------------------


def test_impossible_exposure_records_are_named(db, store, tmp_path):
    _record(db, store, tmp_path)
    with db.session() as s:
        row = s.scalars(select(ExposureRow)).one()
    _owner(db, "UPDATE exposure_events SET seconds = 90000 WHERE id = :i", i=row.id)
    problems = _problems(db)
    assert problems == [
        f"exposure record #{row.id} ({row.uuid[:8]}) was altered: its fields do not match its hash",
        f"exposure record #{row.id} ({row.uuid[:8]}): 90000.0 seconds (not within 0 and 86400)",
    ]
    _owner(db, "UPDATE exposure_events SET seconds = -1 WHERE id = :i", i=row.id)
    problems = _problems(db)
    assert len(problems) == 2 and "altered" in problems[0] and "-1.0 seconds" in problems[1]
    _owner(db, "UPDATE exposure_events SET seconds = :s WHERE id = :i", s=row.seconds, i=row.id)
    assert _problems(db) == []  # as recorded again: nothing to say
    # The owner can switch the foreign keys off (they are off in a plain SQLite connection).
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(
                text("UPDATE exposure_events SET user_id = 9999 WHERE id = :i"), {"i": row.id}
            )
    else:
        path = db.engine.url.database
        with closing(sqlite3.connect(path)) as conn, conn:
            conn.execute("UPDATE exposure_events SET user_id = 9999 WHERE id = ?", (row.id,))
    problems = _problems(db)
    assert len(problems) == 2 and "altered" in problems[0]
    assert "user 9999 does not exist" in problems[1]


# -- f: a confirm without its digest ----------------------------------------------------------


def test_a_later_confirm_without_its_digest_is_named(db, store, tmp_path):
    outs = _record(db, store, tmp_path)
    _owner(db, "UPDATE decisions SET hashes_digest = NULL WHERE uuid = :u", u=outs[1].uuid)
    with db.session() as s:
        later = s.scalar(select(Decision.id).where(Decision.uuid == outs[1].uuid))
    problems = _problems(db)
    assert len(problems) == 1 and problems[0].startswith(f"decision #{later} ")
    assert "carries no digest" in problems[0]
    # The first confirm without one is older than every digest: written before them, exempt.
    _owner(db, "UPDATE decisions SET hashes_digest = NULL")
    assert _problems(db) == []


# -- g: a checkpoint after a break ---------------------------------------------------------------


def test_checkpoint_writes_after_a_break_and_verify_names_the_rest(
    db, store, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("HASHDESK_DATABASE_URL", db.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("HASHDESK_MEDIA_ROOT", str(store.root))
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    _record(db, store, tmp_path)
    with db.session() as s:
        first = s.scalar(select(AuditEvent.id).order_by(AuditEvent.id).limit(1))
    _owner(db, "UPDATE audit_events SET subject = 'edited' WHERE id = :i", i=first)
    _owner(db, "UPDATE hash_lists SET pdq_threshold = 64")
    assert main(["audit", "checkpoint"]) == 0
    out = capsys.readouterr()
    kept = json.loads(out.out)
    assert "the chains are broken" in out.err
    assert kept["chains"]["audit events"]["entries"] > 0
    (tmp_path / "cp.json").write_text(out.out, encoding="utf-8")
    assert main(["audit", "verify", "--checkpoint", str(tmp_path / "cp.json")]) == 1
    out = capsys.readouterr().out
    assert f"audit events: entry #{first} " in out
    assert "list rules, second reviews, exposure: DIFFER from the record" in out
    assert "  list 'partner': its rule was changed by hand" in out
    assert "the checkpoint saw" not in out  # nothing changed since the checkpoint


def test_a_team_servers_imports_and_rules_verify_as_a_lead(team_server, tmp_path):
    """On a team server the import writes as its person (plain INSERTs, each checked by the
    server) and reads back the ids it added; a lead's verify finds nothing to name, then
    names a rule the owner changed."""
    server = team_server
    root = server.add("root", Role.ADMIN)
    rootdb = server.connect("root")
    server.add("lena", Role.LEAD, actor=root, via=rootdb)
    lists = HashListService(rootdb)
    src = tmp_path / "partner.txt"
    src.write_text("".join(f"pdq {h}\n" for h in HASHES[:3]))
    lists.import_file(src, "partner", actor=root, settings=ListSettings(policy=ListPolicy.RESOLVE))
    src.write_text("".join(f"pdq {h}\n" for h in HASHES[1:]))
    assert lists.import_file(src, "partner", actor=root).retracted == 1
    lists.set_rule("partner", actor=root, pdq_threshold=12)
    leaddb = server.connect("lena")
    assert all(r.ok for r in verify_chains(leaddb))
    assert _problems(leaddb) == []
    _owner(server.owner, "UPDATE hash_lists SET pdq_threshold = 64")
    problems = _problems(leaddb)
    assert len(problems) == 1 and "pdq_threshold 64 (on the record: 12)" in problems[0]


def test_the_exposure_chain_names_a_record_altered_deleted_or_planted(db):
    """Exposure records are on a chain of their own, appended by the service (on a team server
    by the server): a record's seconds changed, one deleted, one written by hand, each named."""
    from datetime import timedelta

    from app.storage.verification import verify_exposure

    user = make_user(db)
    service = ExposureService(db)
    for k in range(4):
        service.record(
            ExposureEvent(user.id, None, ExposureKind.REVEAL, utcnow() - timedelta(seconds=k), 2.5)
        )
    assert verify_exposure(db) == []
    with db.engine.begin() as conn:
        ids = [r[0] for r in conn.execute(text("SELECT id FROM exposure_events ORDER BY id"))]
        conn.execute(text("UPDATE exposure_events SET seconds = 0.5 WHERE id = :i"), {"i": ids[1]})
        conn.execute(text("DELETE FROM exposure_events WHERE id = :i"), {"i": ids[2]})
        conn.execute(
            text(
                "INSERT INTO exposure_events (uuid, user_id, item_id, kind, started_at, seconds, "
                "area, recorded_at) SELECT 'planted-0000', user_id, item_id, kind, started_at, "
                "1.0, area, recorded_at FROM exposure_events WHERE id = :i"
            ),
            {"i": ids[0]},
        )
    said = [str(p) for p in verify_exposure(db)]
    assert any(f"#{ids[1]} " in p and "altered" in p for p in said), said
    assert any(f"#{ids[3]} " in p and "does not follow" in p for p in said), said
    assert any("planted" in p and "written by hand" in p for p in said), said
    assert len(said) == 3, said


# Issue 21's point 7: each hand edit the owner can make, and the words `audit verify` names it
# with (the row it names is found by the query, then the edit made).
HAND_EDITS = {
    "a local row's quality set to 0": (
        "SELECT id FROM hash_list WHERE list_name = 'local' AND quality IS NOT NULL "
        "ORDER BY id LIMIT 1",
        "UPDATE hash_list SET quality = 0 WHERE id = :i",
        "#{i} ",
    ),
    "a local row's category": (
        "SELECT id FROM hash_list WHERE list_name = 'local' ORDER BY id LIMIT 1",
        "UPDATE hash_list SET category = 'satire' WHERE id = :i",
        "#{i} ",
    ),
    "an imported entry altered": (
        "SELECT id FROM hash_list WHERE list_name = 'partner' AND retracted_at IS NULL "
        "ORDER BY id LIMIT 1",
        "UPDATE hash_list SET value = '" + "0" * 64 + "' WHERE id = :i",
        "#{i}",
    ),
    "an imported entry retracted by hand": (
        "SELECT id FROM hash_list WHERE list_name = 'partner' AND retracted_at IS NULL "
        "ORDER BY id LIMIT 1",
        "UPDATE hash_list SET retracted_at = recorded_now() WHERE id = :i",
        "#{i} ",
    ),
    "an imported entry deleted": (
        "SELECT id FROM hash_list WHERE list_name = 'partner' AND retracted_at IS NULL "
        "ORDER BY id LIMIT 1",
        "DELETE FROM hash_list WHERE id = :i",
        "{i}",
    ),
    # (256 the database refuses itself: migration 0010's CHECK)
    "a list rule (the widest threshold on a resolve list)": (
        "SELECT id FROM hash_lists WHERE name = 'partner'",
        "UPDATE hash_lists SET pdq_threshold = 64 WHERE id = :i",
        "list 'partner'",
    ),
    "a second review's outcome": (
        "SELECT id FROM second_reviews WHERE status = 'done' ORDER BY id LIMIT 1",
        "UPDATE second_reviews SET agreed = NOT agreed WHERE id = :i",
        "#{i}",
    ),
    "an exposure record's seconds": (
        "SELECT id FROM exposure_events ORDER BY id LIMIT 1",
        "UPDATE exposure_events SET seconds = 0.5 WHERE id = :i",
        "exposure record #{i} ",
    ),
}


@pytest.mark.parametrize("edit", sorted(HAND_EDITS))
def test_each_hand_edit_is_named_with_and_without_a_checkpoint(
    db, store, tmp_path, monkeypatch, capsys, edit
):
    monkeypatch.setenv("HASHDESK_DATABASE_URL", db.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("HASHDESK_MEDIA_ROOT", str(store.root))
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    _record(db, store, tmp_path)
    assert main(["audit", "checkpoint"]) == 0
    (tmp_path / "cp.json").write_text(capsys.readouterr().out, encoding="utf-8")
    assert main(["audit", "verify"]) == 0  # untouched: nothing to say
    capsys.readouterr()
    find, change, named = HAND_EDITS[edit]
    with db.engine.begin() as conn:
        row_id = conn.execute(text(find)).scalar_one()
        now = "CURRENT_TIMESTAMP" if db.dialect == "sqlite" else "now()"
        conn.execute(text(change.replace("recorded_now()", now)), {"i": row_id})
    for args in (
        ["audit", "verify"],
        ["audit", "verify", "--checkpoint", str(tmp_path / "cp.json")],
    ):
        assert main(args) == 1, (edit, args)
        out = capsys.readouterr().out
        assert named.format(i=row_id) in out, (edit, args, out)
