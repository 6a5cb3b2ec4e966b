"""Issue 23, 3: hash deltas out on a cadence and a partner's deltas in, in order.

A delta sequence written by one database (confirms, a partner import, a retraction, an overturn
and a disable between deltas) and imported into a second one (two SQLite files; SQLite and
PostgreSQL, both ways) ends in the same active list; a delta written again is the same bytes;
a folder that is gone or full, and a failing command, leave the delta pending with a clear
message, retried and never skipped; a partner's gap or bad checksum is refused naming the
delta, with nothing of it imported; two runners at once write one delta."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.core.exchange.deltas import DeltaError, manifest_name, read_manifest, sha256_hex
from app.core.matching.hash_lists import LOCAL_LIST
from app.core.model.decisions import DecisionRequest
from app.core.model.domain import Role, Verdict
from app.storage.audit import AuditKind, verify_chains
from app.storage.db import open_database
from app.storage.deltas import DeltaService
from app.storage.hash_lists import HashListService
from app.storage.leads import LeadService
from app.storage.models import AuditEvent, Decision, Delta, DeltaEntry, HashListEntry, Item
from app.storage.review import ReviewService
from tests.helpers import ingest, make_user, write_samples

FORMATS = ("pytx", "pytx-csv", "tat", "vics")


class Team:
    """One database with a moderator, a lead and an admin, and flagged items to decide."""

    def __init__(self, db, store, folder: Path, seeds) -> None:
        self.db = db
        self.mod = make_user(db, "mod1", Role.MODERATOR)
        self.lead = make_user(db, "lead1", Role.LEAD)
        self.admin = make_user(db, "admin1", Role.ADMIN)
        ingest(db, store, write_samples(folder, seeds))
        with db.session() as s:
            self.items = list(s.scalars(select(Item.id).order_by(Item.id)))
        self.deltas = DeltaService(db)
        self.review = ReviewService(db)

    def confirm(self, k: int) -> str:
        return self.review.decide(
            DecisionRequest(self.items[k], self.mod.id, Verdict.CONFIRM, "attack_recording", "x")
        ).uuid

    def decision_of(self, k: int) -> str:
        with self.db.session() as s:
            return s.scalar(
                select(Decision.uuid)
                .where(Decision.item_id == self.items[k])
                .order_by(Decision.id.desc())
                .limit(1)
            )

    def entries_of(self, k: int) -> list[int]:
        with self.db.session() as s:
            return list(
                s.scalars(
                    select(HashListEntry.id).where(
                        HashListEntry.item_id == self.items[k],
                        HashListEntry.retracted_at.is_(None),
                        HashListEntry.variant == "",
                    )
                )
            )

    def out(self, folder: Path, **kw) -> int | None:
        seq = self.deltas.plan(actor=self.lead, formats=kw.pop("formats", FORMATS), **kw)
        if seq is not None:
            outcome = self.deltas.deliver(seq, actor=self.lead, folder=folder)
            assert outcome.written, outcome.error
        return seq


def active(db, list_name: str) -> set[tuple[str, str]]:
    """The active entries of a list as (algorithm, value): plain pictures only for ``local``
    (the variants stay home)."""
    e = HashListEntry
    with db.session() as s:
        q = select(e.algorithm, e.value).where(
            e.list_name == list_name, e.retracted_at.is_(None), e.disabled_at.is_(None)
        )
        if list_name == LOCAL_LIST:
            q = q.where(e.variant == "")
        return {(a, v) for a, v in s.execute(q)}


def run_sequence(team: Team, out: Path, partner_file: Path) -> list[int]:
    """Confirms, a partner import, a retraction, an overturn and a disable, a delta after each
    step. Returns the numbers written."""
    seqs = []
    team.confirm(0)
    team.confirm(1)
    seqs.append(team.out(out))
    team.confirm(2)
    HashListService(team.db).retract(team.entries_of(0)[:2], "wrong hash", actor=team.lead)
    seqs.append(team.out(out))
    partner_file.write_text("pdq " + "ab" * 32 + "\n")
    HashListService(team.db).import_file(partner_file, "partner", actor=team.admin)
    LeadService(team.db).overturn(team.lead, team.decision_of(1), "not violent: a film still")
    team.confirm(3)
    seqs.append(team.out(out))
    HashListService(team.db).set_enabled(
        team.entries_of(2)[:1], False, "collides with a meme", actor=team.lead
    )
    seqs.append(team.out(out))
    assert team.out(out) is None  # nothing changed since: no new number
    return seqs


def _second(kind: str, tmp_path: Path, db):
    return db if kind == "db" else open_database(f"sqlite:///{tmp_path / 'partner.sqlite3'}")


@pytest.mark.parametrize("direction", ["sqlite-file->db", "db->sqlite-file"])
def test_a_delta_sequence_rebuilds_the_same_active_list_in_a_second_database(
    db, store, tmp_path, direction
):
    one = open_database(f"sqlite:///{tmp_path / 'sender.sqlite3'}")
    sender_db, receiver_db = (one, db) if direction == "sqlite-file->db" else (db, one)
    try:
        team = Team(sender_db, store, tmp_path / "flagged", range(1, 6))
        out = tmp_path / "deltas"
        out.mkdir()
        seqs = run_sequence(team, out, tmp_path / "partner.txt")
        assert seqs == [1, 2, 3, 4]
        partner_admin = make_user(receiver_db, "padmin", Role.ADMIN)
        svc = DeltaService(receiver_db)
        got = svc.import_deltas(out, "sender", actor=partner_admin)
        assert [n for n, _ in got.imported] == [1, 2, 3, 4] and got.skipped == []
        ours = active(sender_db, LOCAL_LIST)
        assert ours and active(receiver_db, "sender") == ours
        assert ("pdq", "ab" * 32) not in ours  # a partner's list is not passed on
        # Importing the folder again changes nothing.
        again = svc.import_deltas(out, "sender", actor=partner_admin)
        assert again.imported == [] and again.skipped == [1, 2, 3, 4]
        assert active(receiver_db, "sender") == ours
        # Delta 3 holds the overturned confirm's entries as retracted, the new one's as added.
        m3 = read_manifest(out / manifest_name(3))
        assert m3.added > 0 and m3.retracted > 0
        for d in (sender_db, receiver_db):
            assert all(r.ok for r in verify_chains(d))
    finally:
        one.dispose()


def test_a_delta_written_again_is_the_same_bytes_and_each_step_is_on_the_record(
    db, store, tmp_path
):
    team = Team(db, store, tmp_path / "flagged", range(1, 5))
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    run_sequence(team, first, tmp_path / "partner.txt")
    for seq in (1, 2, 3, 4):
        team.deltas.deliver(seq, actor=team.lead, folder=second)
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    assert all((first / n).read_bytes() == (second / n).read_bytes() for n in names)
    m = read_manifest(first / manifest_name(2))
    assert m.span_start is not None and m.span_end >= m.span_start
    for f in m.files:
        assert sha256_hex((first / f["name"]).read_bytes()) == f["sha256"]
    with db.session() as s:
        kinds = [
            k
            for (k,) in s.execute(select(AuditEvent.kind).where(AuditEvent.subject.like("delta:%")))
        ]
        # The watermarks follow each other: delta N starts where N-1 ended.
        windows = [(d.lower_seq, d.upper_seq) for d in s.scalars(select(Delta).order_by(Delta.seq))]
        shas = {d.seq: d.manifest_sha256 for d in s.scalars(select(Delta))}
    assert kinds.count(AuditKind.DELTA.value) == 4
    assert kinds.count(AuditKind.DELTA_WRITTEN.value) == 4  # writing again is not a new event
    assert all(windows[k][0] == windows[k - 1][1] for k in range(1, 4))
    assert shas[2] == m.sha256


def _first_delta(db, store, tmp_path):
    team = Team(db, store, tmp_path / "flagged", range(1, 3))
    team.confirm(0)
    seq = team.deltas.plan(actor=team.lead, formats=FORMATS)
    assert seq == 1
    return team


def test_a_folder_gone_or_full_and_a_failing_command_are_retried_never_skipped(db, store, tmp_path):
    team = _first_delta(db, store, tmp_path)
    gone = tmp_path / "share"
    outcome = team.deltas.deliver(1, actor=team.lead, folder=gone)
    assert not outcome.written
    assert outcome.error == (
        f"delta 1 not written: the delta folder {gone} does not exist (gone, or not mounted)"
    )
    # The leads see it; the next round takes the same number again, not a new one.
    trouble = team.deltas.trouble()
    assert trouble.seq == 1 and trouble.attempts == 1 and trouble.last_error == outcome.error
    team.confirm(1)
    assert team.deltas.plan(actor=team.lead, formats=FORMATS) == 1
    # A full disk: a 64 KiB tmpfs when this runs as root (a mount), otherwise a file put where
    # the folder was (the path is not a folder).
    full = tmp_path / "full"
    full.mkdir()
    mounted = _tiny_tmpfs(full)
    try:
        if mounted:
            (full / "filler").write_bytes(b"\0" * 60_000)
            expected = "No space left on device"
        else:
            full.rmdir()
            full.write_text("not a folder")
            expected = "is not a folder"
        outcome = team.deltas.deliver(1, actor=team.lead, folder=full)
        assert not outcome.written and expected in outcome.error
        assert outcome.error.startswith("delta 1 not written")
        if mounted:  # nothing half written is left behind
            assert sorted(p.name for p in full.iterdir()) == ["filler"]
    finally:
        if mounted:
            subprocess.run(["umount", str(full)], check=True)
    # A command that fails: its exit code and last line of error.
    script = tmp_path / "upload.py"
    script.write_text("import sys\nprint('partner server refused', file=sys.stderr)\nsys.exit(3)\n")
    outcome = team.deltas.deliver(1, actor=team.lead, command=f"{sys.executable} {script}")
    assert outcome.error == (
        f"delta 1 not delivered: {sys.executable} exited with 3: partner server refused"
    )
    assert team.deltas.trouble().attempts == 3
    # The share is back: delta 1 is written whole, then delta 2 holds what came since.
    gone.mkdir()
    assert team.deltas.deliver(1, actor=team.lead, folder=gone).written
    assert team.deltas.trouble() is None
    assert team.deltas.plan(actor=team.lead, formats=FORMATS) == 2
    assert team.deltas.deliver(2, actor=team.lead, folder=gone).written
    partner = make_user(db, "padmin", Role.ADMIN)
    got = team.deltas.import_deltas(gone, "p", actor=partner)
    assert [n for n, _ in got.imported] == [1, 2]
    assert active(db, "p") == active(db, LOCAL_LIST)
    with db.session() as s:
        failed = s.scalar(
            select(func.count()).where(AuditEvent.kind == AuditKind.DELTA_FAILED.value)
        )
    assert failed == 3


def test_a_command_gets_the_folder_as_one_argument(db, store, tmp_path):
    team = _first_delta(db, store, tmp_path)
    got = tmp_path / "got.json"
    script = tmp_path / "upload.py"
    script.write_text(
        "import json, os, sys\n"
        f"json.dump({{'argv': sys.argv[1:], 'files': sorted(os.listdir(sys.argv[-1]))}}, "
        f"open({str(got)!r}, 'w'))\nprint('uploaded')\n"
    )
    outcome = team.deltas.deliver(1, actor=team.lead, command=f"{sys.executable} {script} --to x")
    assert outcome.written and outcome.note.endswith(": uploaded")
    seen = json.loads(got.read_text())
    assert seen["argv"][:2] == ["--to", "x"] and len(seen["argv"]) == 3
    assert manifest_name(1) in seen["files"]


def _tiny_tmpfs(folder: Path) -> bool:
    if os.geteuid() != 0:
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def test_a_gap_or_a_bad_checksum_is_refused_naming_the_delta_and_imports_nothing_of_it(
    db, store, tmp_path
):
    team = Team(db, store, tmp_path / "flagged", range(1, 5))
    out = tmp_path / "deltas"
    out.mkdir()
    for k in range(3):
        team.confirm(k)
        assert team.out(out) == k + 1
    partner = make_user(db, "padmin", Role.ADMIN)
    svc = team.deltas
    # A gap: delta 2 missing from the folder.
    gap = tmp_path / "gap"
    gap.mkdir()
    for p in out.iterdir():
        if "000002" not in p.name:
            (gap / p.name).write_bytes(p.read_bytes())
    with pytest.raises(DeltaError) as bad:
        svc.import_deltas(gap, "p", actor=partner)
    assert str(bad.value) == (
        "delta 3 refused: the last imported into p is delta 1, so delta 2 is missing (a gap): "
        "nothing imported from delta 3"
    )
    assert svc.last_imported("p") == 1
    after_one = active(db, "p")
    # A bad checksum: one byte of delta 2's TAT file changed.
    tat = out / "hashdesk-delta-000002.tat.json"
    tat.write_bytes(tat.read_bytes().replace(b'"deleted": false', b'"deleted": true ', 1))
    with pytest.raises(DeltaError) as bad:
        svc.import_deltas(out / manifest_name(2), "p", actor=partner)
    assert str(bad.value) == (
        "delta 2: hashdesk-delta-000002.tat.json does not match its checksum in the manifest "
        "(damaged or altered): nothing imported from delta 2"
    )
    assert svc.last_imported("p") == 1 and active(db, "p") == after_one
    # The partner starting at delta 2 is told where to start.
    with pytest.raises(DeltaError, match="nothing was imported into q yet, so delta 1 is missing"):
        svc.import_deltas(gap / manifest_name(3), "q", actor=partner)


def test_two_runners_at_once_take_one_delta(db, store, tmp_path):
    team = _first_delta(db, store, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    assert team.deltas.deliver(1, actor=team.lead, folder=out).written
    for k in (1,):
        team.confirm(k)
    barrier = threading.Barrier(2)
    got: list[int | None] = []

    def runner() -> None:
        barrier.wait(timeout=30)
        seq = team.deltas.plan(actor=team.lead, formats=FORMATS)
        got.append(seq)
        if seq is not None:
            team.deltas.deliver(seq, actor=team.lead, folder=out)

    threads = [threading.Thread(target=runner) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert got == [2, 2] or sorted(got, key=str) == [2, None]
    with db.session() as s:
        assert s.scalar(select(func.max(Delta.seq))) == 2
        n_written = s.scalar(
            select(func.count()).where(AuditEvent.kind == AuditKind.DELTA_WRITTEN.value)
        )
        entries = s.scalar(select(func.count()).select_from(DeltaEntry))
    assert n_written == 2 and entries == len(active(db, LOCAL_LIST))


def test_audit_verify_names_each_hand_edit_of_the_deltas(db, store, tmp_path):
    """A delta marked written by hand, its entries or window changed, a delta planted, and a
    partner's delta import forged: each named by `audit verify`; an untouched record is clean."""
    from sqlalchemy import text

    from app.storage.verification import verify_other_records

    team = Team(db, store, tmp_path / "flagged", range(1, 5))
    out = tmp_path / "out"
    out.mkdir()
    team.confirm(0)
    assert team.out(out) == 1
    team.confirm(1)
    assert team.deltas.plan(actor=team.lead, formats=FORMATS) == 2  # pending
    team.deltas.import_deltas(out, "p", actor=team.admin)
    assert verify_other_records(db) == []

    def owner(sql: str) -> None:
        with db.engine.begin() as conn:
            conn.execute(text(sql))

    owner("UPDATE deltas SET written_at = span_end WHERE seq = 2")
    owner("UPDATE deltas SET upper_seq = upper_seq + 5 WHERE seq = 1")
    owner("DELETE FROM delta_entries WHERE delta_seq = 1 AND entry_id = "
          "(SELECT MIN(entry_id) FROM delta_entries WHERE delta_seq = 1)")  # fmt: skip
    owner("INSERT INTO delta_imports (list_name, seq, manifest_sha256, imported_at) "
          "VALUES ('p', 2, 'forged', CURRENT_TIMESTAMP)")  # fmt: skip
    problems = [str(p) for p in verify_other_records(db)]
    assert problems == [
        "delta 1 was altered: window, entries differ from the record",
        "delta 2 is marked written, but the record never saw it delivered",
        "delta 2 imported into p is not on the record as it stands: written by hand",
    ]


def test_a_transaction_left_open_on_the_hash_list_does_not_stall_the_deltas(db, store, tmp_path):
    """PostgreSQL: the cut waits for transactions writing the hash list; one left open (a psql
    session mid-confirm) makes the round refuse after 10 s with a clear message, not hang; the
    next round, once it ended, takes the delta with that write in it."""
    if db.dialect != "postgresql":
        pytest.skip("the cut's lock is PostgreSQL's (SQLite has one writer at a time)")
    from sqlalchemy import text

    team = _first_delta(db, store, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    assert team.deltas.deliver(1, actor=team.lead, folder=out).written
    conn = db.engine.connect()
    tx = conn.begin()
    conn.execute(
        text(
            "INSERT INTO hash_list (algorithm, value, variant, list_name, added_at) "
            "VALUES ('pdq', :v, '', 'local', now())"
        ),
        {"v": "ab" * 32},
    )
    try:
        with pytest.raises(DeltaError) as bad:
            team.deltas.plan(actor=team.lead, formats=FORMATS)
        assert str(bad.value) == (
            "a transaction writing the hash list has been open for over 10 s: the delta is "
            "taken at the next round"
        )
        tx.commit()
    finally:
        conn.close()
    assert team.deltas.plan(actor=team.lead, formats=FORMATS) == 2
    with db.session() as s:
        added = s.scalars(
            select(HashListEntry.value)
            .join(DeltaEntry, DeltaEntry.entry_id == HashListEntry.id)
            .where(DeltaEntry.delta_seq == 2)
        ).all()
    assert added == ["ab" * 32]
