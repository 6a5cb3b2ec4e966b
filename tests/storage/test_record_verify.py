"""`audit verify` recomputes the hash list the chains imply and names every row that differs,
and catches a truncated chain against a checkpoint and against the heads a workstation saw.
Tampering is done as the schema owner would (the one credential that can), on SQLite and
PostgreSQL alike."""

from __future__ import annotations

import io
import json

from sqlalchemy import func, select, text

from app.cli import main
from app.core.model.decisions import DecisionRequest
from app.core.model.domain import Role, Verdict
from app.storage.audit import verify_chains
from app.storage.hash_lists import HashListService
from app.storage.leads import LeadService
from app.storage.models import Decision, HashListEntry
from app.storage.review import ReviewService
from app.storage.users import UserService
from app.storage.verification import checkpoint, compare_with, verify_hash_list
from tests.helpers import ingest, write_samples

PW = "correct horse battery"


def _busy(db, store, tmp_path):
    """A record with confirms, a reject, an undo, an overturn and a lead's retraction."""
    users = UserService(db)
    admin = users.create_first_admin("root", PW)
    mod = users.add("mod1", PW, Role.MODERATOR, actor=admin)
    lead = users.add("lead1", PW, Role.LEAD, actor=admin)
    ingest(db, store, write_samples(tmp_path / "in", range(6)))
    review = ReviewService(db, second_review_share=0.0)
    outs = []
    for verdict in (Verdict.CONFIRM,) * 4 + (Verdict.REJECT,):
        item = review.claim_next(mod.id)
        outs.append(review.decide(DecisionRequest(item.id, mod.id, verdict, "manifesto")))
    review.undo_last(mod.id)  # the reject
    LeadService(db).overturn(lead, outs[1].uuid, "satire")
    with db.session() as s:
        one = s.scalar(
            select(HashListEntry.id).where(
                HashListEntry.decision_uuid == outs[2].uuid, HashListEntry.algorithm == "md5"
            )
        )
    assert HashListService(db).retract([one], "false positive", actor=lead) == 1
    return outs


def _owner(db, sql, **params):
    with db.engine.begin() as conn:
        return conn.execute(text(sql), params)


def test_an_untouched_busy_record_verifies(db, store, tmp_path):
    _busy(db, store, tmp_path)
    assert all(r.ok for r in verify_chains(db))
    assert verify_hash_list(db) == []


def test_verify_names_forged_altered_retracted_and_deleted_rows(db, store, tmp_path):
    outs = _busy(db, store, tmp_path)
    confirmed = outs[0]
    with db.session() as s:
        rows = s.scalars(
            select(HashListEntry)
            .where(HashListEntry.decision_uuid == confirmed.uuid)
            .order_by(HashListEntry.id)
        ).all()
        pdq = next(r for r in rows if r.algorithm == "pdq")
        other = outs[3]
        md5 = s.scalar(
            select(HashListEntry.id).where(
                HashListEntry.decision_uuid == other.uuid, HashListEntry.algorithm == "md5"
            )
        )
    # A forged PDQ no decision confirmed (as an insider would add it to catch innocent uploads).
    _owner(
        db,
        "INSERT INTO hash_list (algorithm, value, variant, list_name, category, added_at) "
        "VALUES ('pdq', :v, '', 'local', 'manifesto', :t)",
        v="ab" * 32,
        t=pdq.added_at,
    )
    # An altered value, a silent retraction, a deleted row.
    _owner(db, "UPDATE hash_list SET value = :v WHERE id = :i", v="cd" * 32, i=pdq.id)
    _owner(
        db,
        "UPDATE hash_list SET retracted_at = added_at, retraction_reason = 'x' WHERE id = :i",
        i=md5,
    )
    deleted = next(r for r in rows if r.algorithm == "sha256")
    _owner(db, "DELETE FROM hash_list WHERE id = :i", i=deleted.id)

    problems = [str(p) for p in verify_hash_list(db)]
    assert all(r.ok for r in verify_chains(db))  # the chains themselves are intact
    assert any("is forged: no confirm on the record adds it" in p for p in problems)
    assert any(f"entries #{pdq.id} were altered" in p for p in problems)
    assert any(f"sha256 {deleted.value[:16]}" in p and "were deleted" in p for p in problems)
    assert any(f"entry #{md5} " in p and "retracted by hand" in p for p in problems)
    other_id = _decision_id(db, other.uuid)
    assert not any(f"decision #{other_id} " in p for p in problems)  # its rows are all there
    assert len(problems) == 4


def test_an_unretracted_row_is_named(db, store, tmp_path):
    outs = _busy(db, store, tmp_path)
    overturned = outs[1]  # the lead overturned it: its rows are retracted
    _owner(
        db,
        "UPDATE hash_list SET retracted_at = NULL, retracted_by = NULL WHERE decision_uuid = :u",
        u=overturned.uuid,
    )
    problems = [str(p) for p in verify_hash_list(db)]
    assert problems and all("is active, but the record retracted it" in p for p in problems)


def _decision_id(db, uuid):
    with db.session() as s:
        return s.scalar(select(Decision.id).where(Decision.uuid == uuid))


def test_a_truncated_tail_is_caught_by_a_checkpoint(db, store, tmp_path):
    _busy(db, store, tmp_path)
    kept = checkpoint(db, verify_chains(db))
    n = kept["chains"]["decisions"]["entries"]
    assert n == 7
    # Rewinding: delete the newest two decisions (the chain that is left is intact).
    with db.session() as s:
        newest = s.scalars(select(Decision.id).order_by(Decision.id.desc()).limit(2)).all()
    _owner(db, "UPDATE hash_list SET retraction_decision_uuid = NULL")
    _owner(db, "DELETE FROM decisions WHERE id IN (:a, :b)", a=newest[0], b=newest[1])
    reports = verify_chains(db)
    assert all(r.ok for r in reports)  # nothing in the chain itself shows it
    problems = [str(p) for p in compare_with(kept, reports, db, "the checkpoint")]
    assert problems == [
        f"decisions: {n - 2} entries, but the checkpoint saw {n}: the newest 2 were deleted "
        "(the chain was truncated)"
    ]


def test_cli_checkpoint_and_remembered_heads(tmp_path, monkeypatch, capsys, store):
    monkeypatch.setenv("HASHDESK_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    monkeypatch.setenv("HASHDESK_MEDIA_ROOT", str(store.root))
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    from app.storage.db import open_database

    db = open_database(f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    _busy(db, store, tmp_path)
    assert main(["audit", "verify"]) == 0  # this workstation remembers the heads
    out = capsys.readouterr().out
    assert "hash list: matches the record" in out
    assert main(["audit", "checkpoint"]) == 0
    kept = json.loads(capsys.readouterr().out)
    assert kept["chains"]["decisions"]["entries"] == 7
    (tmp_path / "cp.json").write_text(json.dumps(kept), encoding="utf-8")
    with db.session() as s:
        newest = s.scalar(select(func.max(Decision.id)))
    _owner(db, "UPDATE hash_list SET retraction_decision_uuid = NULL")
    _owner(db, "DELETE FROM decisions WHERE id = :i", i=newest)
    db.dispose()
    assert main(["audit", "verify", "--checkpoint", str(tmp_path / "cp.json")]) == 1
    out = capsys.readouterr().out
    assert "decisions: 6 entries, but this workstation saw 7" in out
    assert "decisions: 6 entries, but the checkpoint saw 7" in out
    # A rewritten entry at the checkpoint's position: another hash there.
    kept["chains"]["audit events"]["head"] = "0" * 64
    (tmp_path / "cp.json").write_text(json.dumps(kept), encoding="utf-8")
    assert main(["audit", "verify", "--checkpoint", str(tmp_path / "cp.json")]) == 1
    assert "is not the one the checkpoint saw" in capsys.readouterr().out
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    assert main(["audit", "verify", "--checkpoint", str(tmp_path / "bad.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot be read" in err


def test_a_hand_disabled_entry_is_named(db, store, tmp_path):
    outs = _busy(db, store, tmp_path)
    lead = UserService(db).get("lead1")
    with db.session() as s:
        a, b = s.scalars(
            select(HashListEntry.id)
            .where(HashListEntry.decision_uuid == outs[3].uuid)
            .order_by(HashListEntry.id)
            .limit(2)
        ).all()
    assert HashListService(db).set_enabled([a], False, "a news photo", actor=lead) == 1
    assert verify_hash_list(db) == []  # disabled on the record
    _owner(db, "UPDATE hash_list SET disabled_at = added_at WHERE id = :i", i=b)
    _owner(db, "UPDATE hash_list SET disabled_at = NULL WHERE id = :i", i=a)
    problems = [str(p) for p in verify_hash_list(db)]
    assert len(problems) == 2
    assert any(f"entry #{a} " in p and "is enabled, but no disable" in p for p in problems)
    assert any(f"entry #{b} " in p and "is disabled, but no disable" in p for p in problems)


def _cli_db(tmp_path, monkeypatch, store):
    monkeypatch.setenv("HASHDESK_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    monkeypatch.setenv("HASHDESK_MEDIA_ROOT", str(store.root))
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    from app.storage.db import open_database

    return open_database(f"sqlite:///{tmp_path / 'cli.sqlite3'}")


def test_one_edited_note_is_named_alone(tmp_path, monkeypatch, capsys, store):
    """Issue 25 (4): one hand-edited decision note after a verify this workstation remembers:
    verify names that decision and nothing else (no truncation, the hash list matches)."""
    db = _cli_db(tmp_path, monkeypatch, store)
    outs = _busy(db, store, tmp_path)
    assert main(["audit", "verify"]) == 0
    capsys.readouterr()
    edited = _decision_id(db, outs[1].uuid)
    _owner(db, "UPDATE decisions SET note = 'edited by hand' WHERE id = :i", i=edited)
    db.dispose()
    assert main(["audit", "verify"]) == 1
    out = capsys.readouterr().out
    named = [line for line in out.splitlines() if line.startswith("  ")]
    assert named == [f"  decisions: entry #{edited} ({outs[1].uuid}) was altered: its fields "
                     "do not match its hash"]  # fmt: skip
    assert "truncated" not in out and "deleted" not in out
    assert "decisions: 7 entries checked" in out
    assert "hash list: matches the record" in out


def test_one_edited_hash_list_row_is_named(db, store, tmp_path):
    """Issue 25 (4): a hand-edited hash-list row (its category, or who added it) is named."""
    outs = _busy(db, store, tmp_path)
    with db.session() as s:
        a, b = s.scalars(
            select(HashListEntry.id)
            .where(HashListEntry.decision_uuid == outs[3].uuid)
            .order_by(HashListEntry.id)
            .limit(2)
        ).all()
    _owner(db, "UPDATE hash_list SET category = 'glorification' WHERE id = :i", i=a)
    problems = [str(p) for p in verify_hash_list(db)]
    assert len(problems) == 1 and f"entry #{a} " in problems[0]
    assert "category 'glorification' (the confirm's: 'manifesto')" in problems[0]
    _owner(db, "UPDATE hash_list SET category = 'manifesto' WHERE id = :i", i=a)
    _owner(db, "UPDATE hash_list SET added_by = NULL WHERE id = :i", i=b)
    problems = [str(p) for p in verify_hash_list(db)]
    assert len(problems) == 1 and f"entry #{b} " in problems[0] and "added by" in problems[0]


def test_a_deleted_middle_entry_is_not_called_truncation(db, store, tmp_path):
    """A decision deleted from the middle of the chain: the walk names the entry after the
    hole, and the comparison says the seen head moved, not that the tail was cut."""
    _busy(db, store, tmp_path)
    kept = checkpoint(db, verify_chains(db))
    with db.session() as s:
        ids = s.scalars(select(Decision.id).order_by(Decision.id)).all()
    _owner(db, "UPDATE hash_list SET retraction_decision_uuid = NULL")
    _owner(db, "DELETE FROM decisions WHERE id = :i", i=ids[2])
    reports = verify_chains(db)
    decisions = reports[0]
    assert [p.entry_id for p in decisions.problems] == [ids[3]]
    problems = [str(p) for p in compare_with(kept, reports, db, "the checkpoint")]
    assert problems == [
        f"decisions: the entry the checkpoint saw at position 7 (head "
        f"{kept['chains']['decisions']['head'][:16]}) is now at position 6: 1 before it were "
        "deleted"
    ]
