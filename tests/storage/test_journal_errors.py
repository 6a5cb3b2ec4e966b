"""The journal never jams: a refusal is refused at once, the database away keeps entries
pending in order, an unexpected failure is refused as an internal error after MAX_FAULTS
attempts (never holding the entries behind it for ever), and landed entries are pruned so the
file shrinks."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from app.core.model.decisions import DecisionRequest, LeadError
from app.core.model.domain import Verdict, utcnow
from app.storage.exposure import ExposureService
from app.storage.journal import MAX_FAULTS, DecisionJournal, EntryState, JournalSync
from app.storage.models import Decision
from app.storage.review import ReviewService
from tests.helpers import ingest, make_user, write_samples


class _Poisoned(ReviewService):
    """The real service, except that deciding one item raises ``error`` (``times`` times,
    or every time)."""

    def __init__(self, db, item_id: int, error: BaseException, times: int | None = None):
        super().__init__(db, lease_seconds=60)
        self.item_id, self.error, self.times, self.calls = item_id, error, times, 0

    def decide(self, req):
        if req.item_id == self.item_id and (self.times is None or self.calls < self.times):
            self.calls += 1
            raise self.error
        return super().decide(req)


def _four_decisions(db, store, tmp_path):
    """Four claimed items and a journal holding a reject for each, in claim order."""
    ingest(db, store, write_samples(tmp_path / "in", range(4)))
    review, user = ReviewService(db, lease_seconds=60), make_user(db)
    items = [review.claim_next(user.id) for _ in range(4)]
    journal = DecisionJournal(tmp_path / "j.sqlite3")
    reqs = [DecisionRequest(item.id, user.id, Verdict.REJECT) for item in items]
    for req in reqs:
        journal.record_decision(req)
    return journal, reqs


def _landed_items(db) -> list[int]:
    with db.session() as s:
        return list(s.scalars(select(Decision.item_id).order_by(Decision.id)))


def test_a_bug_on_one_entry_is_refused_after_the_limit_and_the_rest_land_in_order(
    db, store, tmp_path, caplog
):
    journal, (a, poison, c, d) = _four_decisions(db, store, tmp_path)
    service = _Poisoned(db, poison.item_id, RuntimeError("boom\nsecond line"))
    sync = JournalSync(journal, service, ExposureService(db))
    reports = []
    with caplog.at_level(logging.ERROR, logger="app.storage.journal"):
        for _ in range(MAX_FAULTS + 3):
            reports.append(sync.sync())
            if len(reports) < MAX_FAULTS:
                # Until the limit the entry is tried again, and the entries behind it wait.
                assert [e.uuid for e in journal.pending()] == [poison.uuid, c.uuid, d.uuid]
            if journal.pending_count() == 0:
                break
    first = reports[0]
    assert [e.uuid for e, _ in first.landed] == [a.uuid]
    assert first.fault and not first.unreachable and first.error == "RuntimeError: boom"
    # At the limit it is refused with its reason, and the rest land in the same pass.
    assert len(reports) == MAX_FAULTS and service.calls == MAX_FAULTS
    last = reports[-1]
    assert last.error is None and last.pending == 0
    ((entry, why),) = last.refused
    assert entry.uuid == poison.uuid and why == "internal error: RuntimeError: boom"
    assert [e.uuid for e, _ in last.landed] == [c.uuid, d.uuid]
    assert journal.state_of(poison.uuid) is EntryState.REFUSED
    assert [(e.uuid, w) for e, w in journal.refused()] == [(poison.uuid, why)]
    assert _landed_items(db) == [a.item_id, c.item_id, d.item_id]
    # Each unexpected failure is logged with its traceback.
    faults = [r for r in caplog.records if "failed unexpectedly" in r.getMessage()]
    assert len(faults) == MAX_FAULTS and all(r.exc_info for r in faults)


def test_a_refusal_of_ours_is_refused_at_once_with_its_reason(db, store, tmp_path):
    journal, (a, poison, c, d) = _four_decisions(db, store, tmp_path)
    service = _Poisoned(db, poison.item_id, LeadError("item was overturned meanwhile"))
    report = JournalSync(journal, service, ExposureService(db)).sync()
    assert report.error is None and report.pending == 0
    assert report.refused == [(report.refused[0][0], "item was overturned meanwhile")]
    assert report.refused[0][0].uuid == poison.uuid and service.calls == 1
    assert [e.uuid for e, _ in report.landed] == [a.uuid, c.uuid, d.uuid]
    assert _landed_items(db) == [a.item_id, c.item_id, d.item_id]


def test_a_failure_that_passes_delays_the_rest_but_loses_nothing(db, store, tmp_path):
    journal, (a, flaky, c, d) = _four_decisions(db, store, tmp_path)
    service = _Poisoned(db, flaky.item_id, KeyError("once"), times=1)
    sync = JournalSync(journal, service, ExposureService(db))
    first = sync.sync()
    assert [e.uuid for e, _ in first.landed] == [a.uuid] and first.pending == 3
    second = sync.sync()
    assert [e.uuid for e, _ in second.landed] == [flaky.uuid, c.uuid, d.uuid]
    assert not second.refused and second.pending == 0
    assert _landed_items(db) == [a.item_id, flaky.item_id, c.item_id, d.item_id]


def test_the_database_away_keeps_the_entry_pending_and_the_rest_behind_it(db, store, tmp_path):
    journal, (a, blocked, c, d) = _four_decisions(db, store, tmp_path)
    outage = OperationalError("INSERT", {}, ConnectionRefusedError("connection refused"))
    service = _Poisoned(db, blocked.item_id, outage)
    sync = JournalSync(journal, service, ExposureService(db))
    for attempt in range(MAX_FAULTS + 2):  # never refused however long it lasts
        report = sync.sync()
        assert report.unreachable and not report.fault and not report.refused
        assert report.error == "database unreachable: connection refused"
        assert report.pending == 3
        assert [e.uuid for e, _ in report.landed] == ([a.uuid] if attempt == 0 else [])
    assert [e.uuid for e in journal.pending()] == [blocked.uuid, c.uuid, d.uuid]
    assert journal.pending()[0].attempts == MAX_FAULTS + 2
    service.times = 0  # the database is back: everything lands, in order
    report = sync.sync()
    assert report.pending == 0 and [e.uuid for e, _ in report.landed] == [
        blocked.uuid,
        c.uuid,
        d.uuid,
    ]
    assert _landed_items(db) == [a.item_id, blocked.item_id, c.item_id, d.item_id]


class _Landing(JournalSync):
    """Lands every entry without a shared database: the point here is the journal's file."""

    def __init__(self, journal: DecisionJournal) -> None:
        super().__init__(journal, review=None, exposure=object())
        self.refuse: set[str] = set()

    def apply(self, entry):
        if entry.uuid in self.refuse:
            raise LeadError("refused for the test")
        return None


def _size_on_disk(path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def test_landed_entries_are_pruned_and_the_file_shrinks(tmp_path):
    path = tmp_path / "j.sqlite3"
    journal = DecisionJournal(path)
    note = "a moderator's note, long enough to weigh something. " * 40  # about 2 kB
    reqs = [DecisionRequest(i + 1, 1, Verdict.REJECT, note=note) for i in range(3000)]
    for req in reqs:
        journal.record_decision(req)
    full = _size_on_disk(path)
    assert full > 5_000_000

    sync = _Landing(journal)
    sync.keep_landed_max = 100  # a count limit reached: the oldest landed go at once
    sync.refuse = {reqs[5].uuid}
    report = sync.sync()
    assert len(report.landed) == 2999 and report.pruned == 2899
    assert sync.sync().pruned == 0  # the next sync soon after does not prune again: a cadence
    journal.record_decision(DecisionRequest(9999, 1, Verdict.REJECT))  # pending: kept
    shrunk = _size_on_disk(path)
    assert shrunk < full / 10, (full, shrunk)
    with journal._lock:
        states = dict(
            journal._conn.execute("SELECT state, count(*) FROM entries GROUP BY state").fetchall()
        )
    assert states == {"landed": 100, "refused": 1, "pending": 1}
    assert [e.uuid for e, _ in journal.refused()] == [reqs[5].uuid]
    assert journal.state_of(reqs[-1].uuid) is EntryState.LANDED  # the newest are kept
    assert journal.state_of(reqs[0].uuid) is None
    journal.close()
    # A journal reopened keeps working, its entries intact.
    reopened = DecisionJournal(path)
    assert reopened.pending_count() == 1
    reopened.close()


def test_old_landed_entries_go_after_the_days_kept(tmp_path):
    journal = DecisionJournal(tmp_path / "j.sqlite3")
    old, new = (DecisionRequest(i, 1, Verdict.REJECT) for i in (1, 2))
    journal.record_decision(old)
    journal.record_decision(new)
    journal.mark(old.uuid, EntryState.LANDED)
    journal.mark(new.uuid, EntryState.LANDED)
    three_days_ago = (utcnow() - timedelta(days=3)).isoformat(timespec="microseconds")
    with journal._lock:
        journal._conn.execute(
            "UPDATE entries SET landed_at = ? WHERE uuid = ?", (three_days_ago, old.uuid)
        )
    assert journal.prune_landed() == 1
    assert journal.state_of(old.uuid) is None
    assert journal.state_of(new.uuid) is EntryState.LANDED
    journal.close()


def test_a_journal_from_before_faults_and_auto_vacuum_is_brought_along(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(
        """CREATE TABLE entries (seq INTEGER PRIMARY KEY AUTOINCREMENT, uuid TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL, user_id INTEGER NOT NULL, payload TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT, created_at TEXT NOT NULL, landed_at TEXT);
        CREATE INDEX ix_entries_state ON entries (state, seq);"""
    )
    conn.close()
    journal = DecisionJournal(path)
    for i in range(1000):
        journal.record_decision(DecisionRequest(i + 1, 1, Verdict.REJECT, note="n" * 2000))
    assert journal.pending()[0].faults == 0
    full = _size_on_disk(path)
    sync = _Landing(journal)
    sync.keep_landed_max = 0
    assert sync.sync().pruned == 1000
    assert _size_on_disk(path) < full / 10
    with journal._lock:
        assert journal._conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # from now on
    journal.close()
