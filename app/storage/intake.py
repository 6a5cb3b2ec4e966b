"""The intake: items that arrive on their own (the drop folder, the HTTP intake, ``hashdesk
ingest`` when workers are configured), separated from hashing.

:meth:`IntakeService.receive` copies the file into the media store (HASHDESK_MEDIA_ROOT, the
folder every worker reads), records the arrival (an ``intake_receipts`` row) and hands its job
to the dispatcher: on a queue (app.storage.jobqueue, PostgreSQL) a worker runs it; without one
(the SQLite default) it runs here, at once. Either way the job is :meth:`IntakeService.run_job`,
which analyses the stored copy and records it through the ingest pipeline (app.storage.
ingest_recorder.ingest_jobs): the one code path every item takes.

Exactly once: each arrival is recorded by one sighting that names it (``sightings.receipt_id``
is unique), so a job retried after its worker died finds its arrival already recorded and does
nothing twice; items are unique by SHA-256. Arrivals of content already waiting join the
waiting job (no second job, one more sighting when it runs).

A job that fails (an exception: the stored copy missing, the database lost) is retried; at the
third failure, or the third run that never finished (a file that kills its worker), the file
becomes an unreadable item whose reason says why, which a person sees in the queue.
"""

from __future__ import annotations

import errno
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sqlalchemy import select

from app.core.errors import Refusal
from app.core.ingest.contentstore import ContentStore
from app.core.ingest.jobs import IngestJob
from app.core.ingest.sidecar import IntakeMeta, sighting_of
from app.core.model.domain import MediaAnalysis, MediaKind, UserInfo, utcnow
from app.core.model.roles import Permission
from app.storage.db import Database
from app.storage.ingest_recorder import IngestRecorder, ingest_jobs
from app.storage.models import IntakeReceipt, Item, Sighting
from app.storage.permissions import authorize_or_system

log = logging.getLogger(__name__)

VIA = ("cli", "drop", "http")
#: Failures (and runs that never finished) after which a file becomes an unreadable item.
MAX_FAILURES = 3


class IntakeError(Refusal, RuntimeError):
    """An arrival could not be taken (the media store full or unreachable, the file gone): the
    message says why; nothing was recorded, the caller keeps the file."""


class JobFailed(RuntimeError):
    """A job failed this time and will be retried (the queue's retry, or the next run)."""


@dataclass(frozen=True)
class Received:
    receipt_id: int  # the intake row (one per arrival)
    sha256: str
    duplicate: bool  # the same content already received/queued: no second job


@dataclass(frozen=True)
class JobResult:
    """What one run of a job did: the arrivals it recorded (receipt id -> outcome), refused
    (receipt id -> reason), and whether it gave the file up as unreadable."""

    recorded: dict[int, str]
    refused: dict[int, str]
    gave_up: str | None = None


class Dispatcher(Protocol):
    """Where a new arrival's job goes: a queue (``defer`` enqueues and returns) or this process
    (``defer`` runs it)."""

    def defer(self, receipt_id: int, sha256: str) -> None: ...


def sha256_of(path: Path) -> tuple[str, int]:
    """The file's SHA-256 and size (read once, in chunks)."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


class IntakeService:
    def __init__(
        self,
        db: Database,
        store: ContentStore,
        recorder: Callable[[UserInfo | None], IngestRecorder],
    ) -> None:
        self.db = db
        self.store = store
        self._recorder = recorder
        # Where jobs go; by default this process runs them at once (set_dispatcher: a queue).
        self.dispatcher: Dispatcher = _RunHere(self)

    # -- arrival ---------------------------------------------------------------------------

    def receive(
        self,
        *,
        path: Path,
        meta: IntakeMeta,
        via: str,
        intake_source_id: int | None = None,
        actor: UserInfo | None = None,
        original_name: str | None = None,
    ) -> Received:
        """Take one arrival: its content into the media store (before anything is recorded),
        its row, its job. IntakeError when the file cannot be read or stored (nothing
        recorded, the file untouched)."""
        if via not in VIA:
            raise ValueError(f"via {via!r} is not one of {', '.join(VIA)}")
        path = Path(path)
        try:
            sha, size = sha256_of(path)
        except OSError as exc:
            raise IntakeError(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            self.store.put_file(path, sha)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise IntakeError(
                    f"the media store {self.store.root} is full: {path.name} was not taken "
                    "(free space there; the file is kept where it is)"
                ) from None
            raise IntakeError(
                f"cannot copy {path.name} into the media store {self.store.root}: "
                f"{exc.strerror or exc} (the file is kept where it is)"
            ) from None
        with self.db.session() as s:
            authorize_or_system(s, actor, Permission.INGEST)
            known = s.scalar(select(Item.id).where(Item.sha256 == sha).limit(1)) is not None
            waiting = s.scalar(
                select(IntakeReceipt.id)
                .where(IntakeReceipt.sha256 == sha, IntakeReceipt.state == "waiting")
                .limit(1)
            )
            row = IntakeReceipt(
                sha256=sha,
                size=size,
                via=via,
                original_name=original_name or path.name,
                source=meta.source,
                external_id=meta.external_id,
                source_url=meta.source_url,
                reason=meta.reason,
                reporter=meta.reporter,
                score=meta.score,
                received_at=meta.received_at,
                deadline=meta.deadline,
                intake_source_id=intake_source_id,
                received_by_id=actor.id if actor else None,
                created_at=utcnow(),
                state="waiting",
            )
            s.add(row)
            s.flush()
            receipt_id = int(row.id)
        if waiting is None:
            self.dispatcher.defer(receipt_id, sha)
        return Received(receipt_id=receipt_id, sha256=sha, duplicate=known or waiting is not None)

    # -- the job ---------------------------------------------------------------------------

    def run_job(
        self, receipt_id: int, *, worker: str | None = None, actor: UserInfo | None = None
    ) -> JobResult:
        """Record the arrival ``receipt_id`` and every other arrival of the same content still
        waiting: analyse the stored copy, record through the ingest pipeline. Idempotent: an
        arrival already recorded (its sighting exists) is only marked done. JobFailed (to be
        retried) when it fails before the limit; at the limit the file is recorded as an
        unreadable item with the reason."""
        with self.db.session() as s:
            lead = s.get(IntakeReceipt, receipt_id)
            if lead is None:
                return JobResult({}, {})
            sha = lead.sha256
            rows = list(
                s.scalars(
                    select(IntakeReceipt)
                    .where(IntakeReceipt.sha256 == sha, IntakeReceipt.state == "waiting")
                    .order_by(IntakeReceipt.id)
                )
            )
            lead.runs += 1
            lead.worker = worker
            interrupted = lead.runs - 1 - lead.failures
            failures = lead.failures
            waiting = [(r.id, _meta(r), r.original_name) for r in rows]
        already = self._mark_recorded([rid for rid, _, _ in waiting])
        waiting = [w for w in waiting if w[0] not in already]
        if not waiting:
            return JobResult({}, {})
        stored = self.store.path_for(sha)
        jobs = [
            IngestJob(stored, sighting_of(meta, original_name=name, receipt_id=rid))
            for rid, meta, name in waiting
        ]
        recorder = self._recorder(actor)
        if interrupted >= MAX_FAILURES:
            why = (
                f"its analysis never finished {interrupted} times (the worker stopped while "
                "analysing it)"
            )
            return self._give_up(recorder, jobs, sha, why)
        try:
            if not stored.is_file():
                raise JobFailed(
                    f"the stored copy {stored} is missing (is HASHDESK_MEDIA_ROOT the shared "
                    "media folder on this machine?)"
                )
            summary = ingest_jobs(recorder, jobs, workers=1)
        except Exception as exc:  # every failure counts, then the queue retries
            reason = str(exc) or type(exc).__name__
            failures = self._count_failure(receipt_id, reason)
            if failures >= MAX_FAILURES:
                return self._give_up(recorder, jobs, sha, f"failed {failures} times: {reason}")
            raise JobFailed(reason) from exc
        skipped = dict(summary.skipped)
        refused = {
            j.sighting.receipt_id: skipped[str(j.path)]
            for j in jobs
            if str(j.path) in skipped and j.sighting.receipt_id is not None
        }
        return self._finish(jobs, refused)

    def _give_up(
        self, recorder: IngestRecorder, jobs: list[IngestJob], sha: str, why: str
    ) -> JobResult:
        """Record the file as an unreadable item (every waiting arrival a sighting of it)."""
        size = 0
        with self.db.session() as s:
            size = int(
                s.scalar(select(IntakeReceipt.size).where(IntakeReceipt.sha256 == sha).limit(1))
                or 0
            )
        analysis = MediaAnalysis(
            sha256=sha, md5="", size=size, kind=MediaKind.UNREADABLE, error=why
        )
        recorder.record_many([(j.path, analysis, j.sighting) for j in jobs])
        result = self._finish(jobs, {})
        return JobResult(result.recorded, result.refused, gave_up=why)

    def _finish(self, jobs: list[IngestJob], refused: dict[int, str]) -> JobResult:
        ids = [j.sighting.receipt_id for j in jobs if j.sighting.receipt_id is not None]
        self._mark_recorded(ids)
        now = utcnow()
        with self.db.session() as s:
            for rid, why in refused.items():
                row = s.get(IntakeReceipt, rid)
                if row is not None and row.state == "waiting":
                    row.state, row.error, row.finished_at = "refused", why, now
        with self.db.session() as s:
            done = {
                r.id: r.error or "recorded"
                for r in s.scalars(select(IntakeReceipt).where(IntakeReceipt.id.in_(ids)))
                if r.state == "done"
            }
        return JobResult(done, refused)

    def _recorded(self, ids: list[int]) -> dict[int, int]:
        """Arrival id -> item id, for the arrivals already recorded by a sighting."""
        if not ids:
            return {}
        with self.db.session() as s:
            return {
                int(rid): int(item)
                for rid, item in s.execute(
                    select(Sighting.receipt_id, Sighting.item_id).where(
                        Sighting.receipt_id.in_(ids)
                    )
                )
            }

    def _mark_recorded(self, ids: list[int]) -> dict[int, int]:
        """Mark the arrivals among ``ids`` that a sighting records as done; those ids."""
        recorded = self._recorded(ids)
        if not recorded:
            return recorded
        now = utcnow()
        with self.db.session() as s:
            for rid, item in recorded.items():
                row = s.get(IntakeReceipt, rid)
                if row is not None and row.state == "waiting":
                    row.state, row.item_id, row.finished_at = "done", item, now
        return recorded

    def _count_failure(self, receipt_id: int, reason: str) -> int:
        with self.db.session() as s:
            row = s.get(IntakeReceipt, receipt_id)
            if row is None:
                return 0
            row.failures += 1
            row.error = reason[:2000]
            return int(row.failures)

    def receipt(self, receipt_id: int) -> IntakeReceipt | None:
        with self.db.session() as s:
            row = s.get(IntakeReceipt, receipt_id)
            if row is not None:
                s.expunge(row)
            return row


def _meta(row: IntakeReceipt) -> IntakeMeta:
    return IntakeMeta(
        source=row.source,
        external_id=row.external_id,
        source_url=row.source_url,
        reason=row.reason,
        reporter=row.reporter,
        score=row.score,
        received_at=row.received_at,
        deadline=row.deadline,
    )


class _RunHere:
    """No queue: the job runs in the receiving process at once (a failure is retried here
    until the limit makes the file an unreadable item)."""

    def __init__(self, intake: IntakeService) -> None:
        self.intake = intake

    def defer(self, receipt_id: int, sha256: str) -> None:
        for _ in range(MAX_FAILURES + 1):
            try:
                self.intake.run_job(receipt_id)
                return
            except JobFailed as exc:
                log.warning("intake job %s failed: %s", receipt_id, exc)
