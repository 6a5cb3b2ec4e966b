"""The workstation journal: decisions land once, in order, whatever happens to the database."""

from __future__ import annotations

from sqlalchemy import func, select

from app.core.model.decisions import DecisionRequest
from app.core.model.domain import ItemStatus, Verdict
from app.storage.db import Database, make_engine
from app.storage.exposure import ExposureService
from app.storage.journal import (
    DecisionJournal,
    EntryState,
    JournalSync,
    backoff_seconds,
    journal_path,
)
from app.storage.models import Decision
from app.storage.review import ReviewService
from app.storage.users import UserService
from tests.helpers import ingest, make_user, write_samples


def _setup(db, store, tmp_path, n=3):
    ingest(db, store, write_samples(tmp_path / "in", range(n)))
    return ReviewService(db, lease_seconds=60), make_user(db)


def _unreachable() -> Database:
    from sqlalchemy.orm import sessionmaker

    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")
    return Database(engine, sessionmaker(engine, expire_on_commit=False))


def _count(db, **where) -> int:
    q = select(func.count()).select_from(Decision)
    for k, v in where.items():
        q = q.where(getattr(Decision, k) == v)
    with db.session() as s:
        return int(s.scalar(q))


def test_journal_is_durable_and_keyed_by_database(tmp_path):
    a = journal_path("postgresql+psycopg://alice@db/hashdesk", tmp_path)
    b = journal_path("postgresql+psycopg://alice@db/other", tmp_path)
    assert a != b and a.parent == tmp_path
    journal = DecisionJournal(a)
    req = DecisionRequest(7, 1, Verdict.CONFIRM, "manifesto", "Attacker manifesto", note="n")
    journal.record_decision(req)
    journal.record_decision(req)  # the same UUID twice is one entry
    with journal._lock:
        assert journal._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert journal._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    journal.close()
    reopened = DecisionJournal(a)  # as after a kill: the entry is still there, intact
    (entry,) = reopened.pending()
    assert entry.request() == req
    reopened.close()


def test_pending_decisions_land_once_when_the_database_returns(db, store, tmp_path):
    review, user = _setup(db, store, tmp_path)
    journal = DecisionJournal(tmp_path / "j.sqlite3")
    items = [review.claim_next(user.id) for _ in range(3)]
    for item in items:
        journal.record_decision(DecisionRequest(item.id, user.id, Verdict.REJECT))

    down = _unreachable()
    try:
        report = JournalSync(journal, ReviewService(down), ExposureService(down)).sync()
    finally:
        down.dispose()
    assert report.unreachable and report.pending == 3 and not report.landed
    assert _count(db) == 0
    assert journal.pending()[0].attempts == 1

    report = JournalSync(journal, review, ExposureService(review.db)).sync()
    assert report.error is None and report.pending == 0 and len(report.landed) == 3
    # Landing again (a retry after a lost reply, a second workstation run) writes nothing.
    for entry, _outcome in report.landed:
        assert journal.state_of(entry.uuid) is EntryState.LANDED
        assert review.decide(entry.request()).duplicate
    assert _count(db) == 3
    assert [d.item_id for d in _decisions(db)] == [i.id for i in items]


def _decisions(db):
    with db.session() as s:
        return list(s.scalars(select(Decision).order_by(Decision.id)))


def test_undo_of_a_decision_still_pending_lands_after_it(db, store, tmp_path):
    review, user = _setup(db, store, tmp_path, n=2)
    journal = DecisionJournal(tmp_path / "j.sqlite3")
    first, second = review.claim_next(user.id), review.claim_next(user.id)
    confirm = DecisionRequest(first.id, user.id, Verdict.CONFIRM, "manifesto", "M")
    reject = DecisionRequest(second.id, user.id, Verdict.REJECT)
    journal.record_decision(confirm)
    journal.record_decision(reject)
    # The moderator undoes twice: the reject, then the confirm, all before anything landed.
    journal.record_undo(user.id, "undo-1-" + reject.uuid[:29], reject.uuid)
    journal.record_undo(user.id, "undo-2-" + confirm.uuid[:29], confirm.uuid)
    report = JournalSync(journal, review, ExposureService(review.db)).sync()
    assert report.pending == 0 and len(report.landed) == 4
    rows = _decisions(db)
    assert [(r.verdict, r.supersedes) for r in rows] == [
        ("confirm", None),
        ("reject", None),
        ("undo", reject.uuid),
        ("undo", confirm.uuid),
    ]
    assert review.active_hashes_for_item(first.id) == []
    assert review.load_item(first.id).status is ItemStatus.CLAIMED


def test_a_decision_the_database_refuses_is_kept_and_does_not_block_others(db, store, tmp_path):
    review, user = _setup(db, store, tmp_path, n=2)
    admin = UserService(db).add("admin1", "correct horse battery", "admin")
    journal = DecisionJournal(tmp_path / "j.sqlite3")
    item = review.claim_next(user.id)
    journal.record_decision(DecisionRequest(item.id, user.id, Verdict.REJECT))
    journal.record_decision(DecisionRequest(999_999, admin.id, Verdict.REJECT))  # no such item
    other = review.claim_next(admin.id)
    journal.record_decision(DecisionRequest(other.id, admin.id, Verdict.REJECT))
    report = JournalSync(journal, review, ExposureService(review.db)).sync()
    assert len(report.landed) == 2 and report.pending == 0
    ((entry, why),) = report.refused
    assert entry.request().item_id == 999_999 and "does not exist" in why
    assert journal.state_of(entry.uuid) is EntryState.REFUSED


def test_backoff_grows_and_stops_growing():
    assert [backoff_seconds(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert backoff_seconds(50) == 30
