"""The intake (app.storage.intake) on SQLite and PostgreSQL: an arrival's content stored before
it is recorded, one item per content and one sighting per arrival, a job run twice recording
nothing twice, a job that fails three times giving an unreadable item with the reason, and a
source's deadline counted from when the item was received, not when it was hashed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.core.ingest.sidecar import meta_from_fields, parse_sidecar
from app.core.model.domain import ItemStatus, utcnow
from app.storage.intake import MAX_FAILURES, IntakeService, JobFailed
from app.storage.models import IntakeReceipt, Item, Sighting
from tests.helpers import recorder, write_samples


class _Later:
    """A dispatcher that keeps the jobs, to run them when the test says (as a worker would)."""

    def __init__(self) -> None:
        self.jobs: list[int] = []

    def defer(self, receipt_id: int, sha256: str) -> None:
        self.jobs.append(receipt_id)


def _intake(db, store, later: bool = False) -> tuple[IntakeService, _Later]:
    service = IntakeService(db, store, lambda actor: recorder(db, store))
    jobs = _Later()
    if later:
        service.dispatcher = jobs
    return service, jobs


def _count(db, model) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)))


def test_arrivals_recorded_at_once_without_a_queue(db, store, tmp_path):
    intake, _ = _intake(db, store)
    a, b = write_samples(tmp_path / "in", range(2))
    meta = meta_from_fields(source="partner", received_at=utcnow())
    first = intake.receive(path=a, meta=meta, via="drop")
    assert not first.duplicate and store.has(first.sha256)
    again = intake.receive(path=a, meta=meta, via="http")
    assert again.duplicate and again.sha256 == first.sha256
    intake.receive(path=b, meta=meta, via="cli")
    assert _count(db, Item) == 2 and _count(db, Sighting) == 3
    for rid in (first.receipt_id, again.receipt_id):
        row = intake.receipt(rid)
        assert row is not None and row.state == "done" and row.item_id is not None
    with db.session() as s:
        names = set(s.scalars(select(Sighting.original_name)))
    assert names == {a.name, b.name}  # the arrival's name, not the stored copy's


def test_a_job_run_again_records_nothing_twice_and_joins_waiting_copies(db, store, tmp_path):
    intake, later = _intake(db, store, later=True)
    (a,) = write_samples(tmp_path / "in", [7])
    meta = meta_from_fields(source="partner", received_at=utcnow())
    one = intake.receive(path=a, meta=meta, via="drop")
    two = intake.receive(path=a, meta=meta, via="drop")  # the same content, still waiting
    assert later.jobs == [one.receipt_id, two.receipt_id] and two.duplicate
    result = intake.run_job(one.receipt_id)
    assert set(result.recorded) == {one.receipt_id, two.receipt_id}  # the first records both
    assert intake.run_job(two.receipt_id).recorded == {}  # the second finds its arrival done
    # A worker that died after recording: the queue runs the job again.
    assert intake.run_job(one.receipt_id).recorded == {}
    assert _count(db, Item) == 1 and _count(db, Sighting) == 2


def test_three_failures_make_an_unreadable_item_with_the_reason(db, store, tmp_path):
    intake, _ = _intake(db, store, later=True)
    (a,) = write_samples(tmp_path / "in", [9])
    meta = meta_from_fields(source="x", received_at=utcnow())
    got = intake.receive(path=a, meta=meta, via="drop")
    store.path_for(got.sha256).unlink()  # the shared folder lost it
    for _ in range(MAX_FAILURES - 1):
        with pytest.raises(JobFailed, match=r"stored copy .* is missing"):
            intake.run_job(got.receipt_id)
    assert _count(db, Item) == 0
    result = intake.run_job(got.receipt_id)
    assert result.gave_up is not None and "failed 3 times" in result.gave_up
    with db.session() as s:
        item = s.scalars(select(Item)).one()
        assert item.status == ItemStatus.UNREADABLE and item.sha256 == got.sha256
        assert "failed 3 times: the stored copy" in (item.error or "")
        assert s.get(IntakeReceipt, got.receipt_id).state == "done"


def test_the_deadline_runs_from_receipt_not_from_hashing(db, store, tmp_path):
    intake, _ = _intake(db, store, later=True)
    (a,) = write_samples(tmp_path / "in", [11])
    received = utcnow() - timedelta(minutes=40)  # arrived 40 minutes before a worker got it
    meta = parse_sidecar({"source": "removal_order"}, default_source="drop", received_at=received)
    got = intake.receive(path=a, meta=meta, via="drop")
    intake.run_job(got.receipt_id)
    with db.session() as s:
        item = s.scalars(select(Item)).one()
        sighting = s.scalars(select(Sighting)).one()
    assert sighting.flagged_at == received
    assert item.deadline == sighting.deadline == received + timedelta(hours=1)


def test_a_full_or_unreachable_media_store_takes_nothing(db, store, tmp_path):
    from app.storage.intake import IntakeError

    intake, _ = _intake(db, store)
    with pytest.raises(IntakeError, match=r"cannot read .*gone\.jpg"):
        intake.receive(
            path=tmp_path / "gone.jpg",
            meta=meta_from_fields(source="x", received_at=utcnow()),
            via="drop",
        )
    assert _count(db, IntakeReceipt) == 0


def test_an_arrival_recorded_twice_at_once_is_one_sighting(db, store, tmp_path):
    """Two jobs of one content running at once (two processes without a queue) may both hold
    the same waiting arrival: the second to record it finds its sighting and adds nothing."""
    from app.core.ingest.media import analyze_file
    from app.core.ingest.sidecar import sighting_of
    from app.core.model.domain import IngestOutcome

    intake, _later = _intake(db, store, later=True)
    (a,) = write_samples(tmp_path / "in", [11])
    meta = meta_from_fields(source="x", received_at=utcnow())
    got = intake.receive(path=a, meta=meta, via="http")
    analysis = analyze_file(a)
    seen = sighting_of(meta, original_name=a.name, receipt_id=got.receipt_id)
    first, second = recorder(db, store), recorder(db, store)  # two jobs' own recorders
    assert first.record(a, analysis, seen) is IngestOutcome.NEW
    assert second.record(a, analysis, seen) is IngestOutcome.COPY
    assert _count(db, Item) == 1 and _count(db, Sighting) == 1
    assert intake.run_job(got.receipt_id).recorded == {}  # its own job finds it recorded
    assert intake.receipt(got.receipt_id).state == "done"
