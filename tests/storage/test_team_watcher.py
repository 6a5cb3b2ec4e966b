"""A hash confirmed or retracted on one workstation reaches another's in-memory index."""

from __future__ import annotations

import time

from app.core.matching.hash_index import HashIndex
from app.core.model.decisions import DecisionRequest
from app.core.model.domain import Verdict
from app.storage.db import open_database
from app.storage.hash_list_watcher import HashListWatcher
from app.storage.review import ReviewService
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
