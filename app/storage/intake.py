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
nothing twice; items are unique by SHA-256. Every arrival has its job; the jobs of one
content carry its lock (run one after the other), and the first records every arrival of the
content then waiting, so the others find theirs recorded and end without analysing again (one
job per arrival, rather than one per content: an arrival made while the content's job was
finishing would otherwise wait for ever).

A job that fails (an exception: the stored copy missing, the database lost) is retried; at the
third failure, or the third run that never finished (a file that kills its worker), the file
becomes an unreadable item whose reason says why, which a person sees in the queue.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.core.errors import Refusal, Unavailable
from app.core.ingest.contentstore import ContentStore
from app.core.ingest.jobs import IngestJob
from app.core.ingest.sidecar import IntakeMeta, meta_to_json, sighting_of
from app.core.model.domain import MediaAnalysis, MediaKind, UserInfo, utcnow
from app.core.model.roles import Permission
from app.storage.db import Database
from app.storage.ingest_recorder import IngestRecorder, ingest_jobs
from app.storage.jobqueue import defer_in
from app.storage.models import IntakeReceipt, IntakeWorker, Item, Sighting
from app.storage.permissions import authorize_or_system
from app.storage.server_api import call, call_checked, on_server

log = logging.getLogger(__name__)

VIA = ("cli", "drop", "http")
#: Failures (and runs that never finished) after which a file becomes an unreadable item.
MAX_FAILURES = 3


class IntakeError(Refusal, RuntimeError):
    """An arrival could not be taken (the media store full or unreachable, the file gone): the
    message says why; nothing was recorded, the caller keeps the file."""


class JobFailed(Unavailable, RuntimeError):
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
    """Where a new arrival's job goes when there is no queue: run here at once (the default),
    or kept for later (tests)."""

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
        *,
        queue: bool = False,
    ) -> None:
        self.db = db
        self.store = store
        self._recorder = recorder
        # Jobs on the PostgreSQL queue (Settings.ingest_mode "queue": workers run them);
        # otherwise the dispatcher runs each at once in this process.
        self.queue = queue and db.engine.dialect.name == "postgresql"
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
        key: str | None = None,
    ) -> Received:
        """Take one arrival: its content into the media store (before anything is recorded),
        its row, its job. IntakeError when the file cannot be read or stored (nothing
        recorded, the file untouched). ``key``: the arrival's own key (a drop folder's claim):
        the same key again is the same arrival (its receipt returned as a duplicate)."""
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
        name = (original_name or path.name)[:1000]
        with self.db.session() as s:
            if on_server(s):
                row = call_checked(
                    s,
                    text(
                        "SELECT * FROM hd_api_intake_receive(:sha, :size, :via, :name, "
                        "CAST(:meta AS jsonb), :source, :key)"
                    ),
                    {
                        "sha": sha,
                        "size": size,
                        "via": via,
                        "name": name,
                        "meta": json.dumps(meta_to_json(meta)),
                        "source": intake_source_id,
                        "key": key,
                    },
                    IntakeError,
                )[0]
                return Received(int(row.receipt_id), sha, bool(row.duplicate))
            authorize_or_system(s, actor, Permission.INGEST)
            if key is not None:
                same = s.execute(
                    select(IntakeReceipt.id, IntakeReceipt.state).where(
                        IntakeReceipt.intake_key == key
                    )
                ).first()
                if same is not None:
                    if not self.queue and same.state == "waiting":
                        # received before by a process that died before its job ran
                        self.dispatcher.defer(int(same.id), sha)
                    return Received(int(same.id), sha, True)
            known = s.scalar(select(Item.id).where(Item.sha256 == sha).limit(1)) is not None
            before = s.scalar(select(IntakeReceipt.id).where(IntakeReceipt.sha256 == sha).limit(1))
            receipt = IntakeReceipt(
                sha256=sha,
                size=size,
                via=via,
                original_name=name,
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
                intake_key=key,
            )
            s.add(receipt)
            s.flush()
            receipt_id = int(receipt.id)
            if self.queue:
                defer_in(s, receipt_id, sha)
        if not self.queue:
            try:
                self.dispatcher.defer(receipt_id, sha)
            except Exception:  # the arrival is on the record: its job's failure is the job's
                log.exception(
                    "intake job %s (%s) failed; the arrival waits for its next run", receipt_id, sha
                )
        duplicate = known or before is not None
        return Received(receipt_id=receipt_id, sha256=sha, duplicate=duplicate)

    # -- the job ---------------------------------------------------------------------------

    def run_job(
        self,
        receipt_id: int,
        *,
        worker: str | None = None,
        worker_id: int | None = None,
        actor: UserInfo | None = None,
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
            waiting = [(r.id, _meta(r), r.original_name) for r in rows]
            if not waiting:
                return JobResult({}, {})
            # runs and failures are counted on the content's oldest waiting arrival
            lead = rows[0]
            receipt_id = int(lead.id)
            runs, failures = self._start(s, lead, worker, worker_id)
            interrupted = runs - 1 - failures
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
        result = self._finish(jobs, refused)
        left = [rid for rid, _, _ in waiting if rid not in result.recorded and rid not in refused]
        if left:  # the stored copy went between the look and the analysis, say
            reason = f"arrival(s) {left} not recorded: the stored copy {stored} could not be read"
            if self._count_failure(receipt_id, reason) >= MAX_FAILURES:
                return self._give_up(recorder, jobs, sha, f"failed {MAX_FAILURES} times: {reason}")
            raise JobFailed(reason)
        return result

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
                if on_server(s):
                    call(s, text("SELECT hd_api_intake_refuse(:r, :why)"), {"r": rid, "why": why})
                    continue
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
                int(rid or 0): int(item)
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
            if on_server(s):  # hd_api_record_items marked them, with their sightings
                return recorded
            for rid, item in recorded.items():
                row = s.get(IntakeReceipt, rid)
                if row is not None and row.state == "waiting":
                    row.state, row.item_id, row.finished_at = "done", item, now
        return recorded

    def _start(
        self, s: Session, lead: IntakeReceipt, worker: str | None, worker_id: int | None
    ) -> tuple[int, int]:
        """Count a run of the arrival's job: (runs, failures) so far, this run included."""
        if on_server(s):
            row = call(
                s,
                text("SELECT * FROM hd_api_intake_start(:r, :w)"),
                {"r": lead.id, "w": worker_id},
            )[0]
            return int(row.runs or 0), int(row.failures or 0)
        lead.runs += 1
        lead.worker = f"{worker}#{worker_id}" if worker and worker_id else worker
        if worker_id is not None:
            w = s.get(IntakeWorker, worker_id)
            if w is not None:
                w.last_job_at = utcnow()
        return int(lead.runs), int(lead.failures)

    def hello(self, worker_id: int, name: str, actor: UserInfo | None = None) -> None:
        """A queue worker's name and account, beside its heartbeat row."""
        with self.db.session() as s:
            if on_server(s):
                call(s, text("SELECT hd_api_intake_worker(:w, :n)"), {"w": worker_id, "n": name})
                return
            w = s.get(IntakeWorker, worker_id)
            if w is None:
                s.add(
                    IntakeWorker(
                        id=worker_id,
                        name=name[:128],
                        user_id=actor.id if actor else None,
                        started_at=utcnow(),
                    )
                )
            else:
                w.name = name[:128]

    def _count_failure(self, receipt_id: int, reason: str) -> int:
        with self.db.session() as s:
            if on_server(s):
                n = call(
                    s,
                    text("SELECT hd_api_intake_fail(:r, :why)"),
                    {"r": receipt_id, "why": reason[:2000]},
                )[0][0]
                return int(n or 0)
            row = s.get(IntakeReceipt, receipt_id)
            if row is None:
                return 0
            row.failures += 1
            row.error = reason[:2000]
            return int(row.failures)

    def run_waiting(self, older_than: timedelta = timedelta(minutes=1)) -> int:
        """Without a queue: run the jobs of arrivals still waiting since before ``older_than``
        ago (their process stopped before it ran them). How many jobs ran."""
        if self.queue:
            return 0
        with self.db.session() as s:
            ids = list(
                s.scalars(
                    select(IntakeReceipt.id)
                    .where(
                        IntakeReceipt.state == "waiting",
                        IntakeReceipt.created_at < utcnow() - older_than,
                    )
                    .order_by(IntakeReceipt.id)
                )
            )
        for rid in ids:
            self.dispatcher.defer(int(rid), "")
        return len(ids)

    def states(self, ids: list[int]) -> dict[int, str]:
        """Each arrival's state (waiting, done, refused)."""
        out: dict[int, str] = {}
        with self.db.session() as s:
            for i in range(0, len(ids), 1000):
                chunk = ids[i : i + 1000]
                rows = s.execute(
                    select(IntakeReceipt.id, IntakeReceipt.state).where(IntakeReceipt.id.in_(chunk))
                )
                out.update((int(rid), str(state)) for rid, state in rows)
        return out

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


#: In-process jobs of one content run one after the other (the queue's lock does it for
#: workers): a lock per content, striped (a bounded set, chosen by the SHA-256).
_CONTENT_LOCKS = [threading.Lock() for _ in range(64)]


def _content_lock(sha256: str) -> threading.Lock:
    return _CONTENT_LOCKS[int(sha256[:8] or "0", 16) % len(_CONTENT_LOCKS)]


class _RunHere:
    """No queue: the job runs in the receiving process at once, after any other job of the same
    content in this process (the content's lock; across processes the database's uniqueness
    of items and of each arrival's sighting keeps one item, one sighting per arrival). A failure
    is logged, counted and retried here until the limit makes the file an unreadable item; a job
    that still cannot finish leaves its arrival waiting for :meth:`IntakeService.run_waiting`.
    Never raises."""

    def __init__(self, intake: IntakeService) -> None:
        self.intake = intake

    def defer(self, receipt_id: int, sha256: str) -> None:
        if not sha256:
            got = self.intake.receipt(receipt_id)
            sha256 = got.sha256 if got is not None else ""
        with _content_lock(sha256):
            for _ in range(MAX_FAILURES + 1):
                try:
                    self.intake.run_job(receipt_id)
                    return
                except JobFailed as exc:  # counted by run_job
                    log.warning("intake job %s failed: %s", receipt_id, exc)
                except Exception as exc:  # failed outside the analysis: count it here
                    reason = str(exc) or type(exc).__name__
                    log.warning("intake job %s failed: %s", receipt_id, reason)
                    try:
                        self.intake._count_failure(receipt_id, reason)
                    except Exception:
                        log.exception("intake job %s: its failure was not counted", receipt_id)
            log.error("intake job %s did not finish; its arrival waits for a later run", receipt_id)
