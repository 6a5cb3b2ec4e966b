"""A hash confirmed or retracted on one workstation reaches another's in-memory index."""

from __future__ import annotations

import logging
import time
from datetime import datetime

from sqlalchemy import select, text, update

from app.core.matching.hash_index import HashIndex
from app.core.model.decisions import DecisionRequest
from app.core.model.domain import Role, Verdict
from app.storage.db import open_database
from app.storage.hash_list_index import indexable_count
from app.storage.hash_list_watcher import HashListWatcher, WatchReport
from app.storage.hash_lists import HashListService
from app.storage.models import HashListEntry
from app.storage.review import ReviewService
from app.tools.benchdata import fill_hash_list
from tests.helpers import ingest, make_user, write_samples


def _wait(cond, timeout=10.0) -> float:
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > timeout:
            raise AssertionError("timed out")
        time.sleep(0.02)
    return time.monotonic() - start


def test_confirm_and_undo_reach_another_workstation(db, store, tmp_path):
    ingest(db, store, write_samples(tmp_path / "in", range(2)))
    user = make_user(db)
    # The other workstation: its own connection pool, its own index.
    other = open_database(db.engine.url.render_as_string(hide_password=False), upgrade=False)
    index = HashIndex()
    seen = []
    watcher = HashListWatcher(other, index, poll_seconds=0.25, on_change=seen.append)
    watcher.load_all()
    watcher.start()
    try:
        review = ReviewService(db)
        item = review.claim_next(user.id)
        out = review.decide(DecisionRequest(item.id, user.id, Verdict.CONFIRM, "manifesto", "M"))
        entries = review.active_hashes_for_item(item.id)
        # on_change is called after the index changed: wait for the report as well.
        took = _wait(
            lambda: (
                all(e.id in index for e in entries) and sum(r.added for r in seen) == len(entries)
            )
        )
        print(f"\nnew hashes reached the other index in {took * 1000:.0f} ms ({db.dialect})")
        assert out.hashes_added == len(entries) == len(index)
        review.undo_last(user.id)
        took = _wait(lambda: len(index) == 0 and sum(r.retracted for r in seen) == len(entries))
        print(f"retraction reached the other index in {took * 1000:.0f} ms ({db.dialect})")
        assert sum(r.added for r in seen) == len(entries)
        assert sum(r.retracted for r in seen) == len(entries)
    finally:
        watcher.stop()
        other.dispose()


def test_refresh_is_cheap_when_nothing_changed(db):
    index = HashIndex()
    watcher = HashListWatcher(db, index)
    assert watcher.load_all().added == 0
    assert watcher.refresh().added == 0 and watcher.mark.max_id == 0


def _hand_edit(db, *statements) -> None:
    """``statements`` run by hand, in one transaction, as the schema owner (the test database's
    owner on PostgreSQL), not through any service."""
    with db.session() as s:
        for statement in statements:
            s.execute(statement)


def test_a_date_far_ahead_does_not_freeze_the_watcher(db):
    """An entry retracted, another disabled, by hand with dates in the year 9999: removed, and
    the retraction and disable that follow through the service are still seen (the watermark
    is the database's change counter, not a date anyone can write). On both databases."""
    fill_hash_list(db, 30)
    with db.session() as s:
        ids = list(s.scalars(select(HashListEntry.id).order_by(HashListEntry.id)))
    index = HashIndex()
    seen: list = []
    watcher = HashListWatcher(db, index, poll_seconds=0.1, on_change=seen.append)
    watcher.load_all()
    assert len(index) == 30
    far = datetime(9999, 1, 1)
    h = HashListEntry
    _hand_edit(
        db,
        update(h).where(h.id == ids[0]).values(retracted_at=far),
        update(h).where(h.id == ids[1]).values(disabled_at=far, changed_at=far),
    )
    assert watcher.refresh().retracted == 2
    assert ids[0] not in index and ids[1] not in index
    lead = make_user(db, "lead1", Role.LEAD)
    service = HashListService(db)
    watcher.start()  # the running watcher: notified on PostgreSQL, polling on SQLite
    try:
        assert service.retract([ids[2]], "wrong", actor=lead) == 1
        assert service.set_enabled([ids[3]], False, "unsure", actor=lead) == 1
        _wait(lambda: ids[2] not in index and ids[3] not in index)
        assert service.set_enabled([ids[3]], True, "fine", actor=lead) == 1
        _wait(lambda: ids[3] in index)
    finally:
        watcher.stop()
    assert sum(r.retracted for r in seen) == 4 and sum(r.added for r in seen) == 1
    with db.session() as s:
        assert len(index) == indexable_count(s, watcher.policy) == 27


def test_a_watermark_that_went_back_loads_the_list_again(db, caplog):
    """The database restored to an older state (its change counter behind the watcher's): the
    list is loaded again, so an entry retracted in that state does not keep matching."""
    fill_hash_list(db, 10)
    with db.session() as s:
        ids = list(s.scalars(select(HashListEntry.id).order_by(HashListEntry.id)))
    index = HashIndex()
    watcher = HashListWatcher(db, index)
    watcher.load_all()
    assert watcher.mark.max_seq > 0 and len(index) == 10
    h = HashListEntry
    off, on = (
        ("ALTER TABLE hash_list DISABLE TRIGGER hash_list_change_seq",),
        ("ALTER TABLE hash_list ENABLE TRIGGER hash_list_change_seq",),
    ) if db.dialect == "postgresql" else ((), ())  # fmt: skip
    _hand_edit(
        db,
        *(text(t) for t in off),
        update(h).where(h.id == ids[4]).values(retracted_at=datetime(2020, 1, 1)),
        # Every change_seq back to 0 (SQLite's trigger leaves one the statement changes).
        update(h).values(change_seq=0),
        *(text(t) for t in on),
    )
    with caplog.at_level(logging.WARNING, logger="app.storage.hash_list_watcher"):
        report = watcher.refresh()
    assert "went back" in caplog.text
    assert report == WatchReport(9, 10) and ids[4] not in index and len(index) == 9
    assert watcher.mark.max_seq == 0
    assert watcher.refresh().added == 0  # and the mark is the database's again
