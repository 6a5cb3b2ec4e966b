"""The intake's job queue on the team PostgreSQL: procrastinate (MIT), its tables in the
Hashdesk schema (migration 0014 installs its schema of the pinned version), its workers,
retries, heartbeats and locks (docs/ARCHITECTURE.md, "Intake and workers", says why this
library).

One job per arrival whose content is not already waiting: task :data:`TASK` with the argument
``receipt_id``, locked by the content's SHA-256 (two jobs of the same content never run at
once). The job is :meth:`app.storage.intake.IntakeService.run_job`; this module only carries it.

* Enqueued in the transaction that records the arrival: procrastinate's own ``defer`` function
  (:func:`defer_in`), or on a team server inside ``hd_api_intake_receive`` (api_intake.sql).
* A worker (:func:`run_worker`) runs one job at a time; its heartbeat is procrastinate's
  (``procrastinate_workers.last_heartbeat``); a job whose worker has no heartbeat for
  Settings.worker_stalled_s (SIGKILL, a lost machine) is put back in the queue by any other
  worker (:func:`retry_stalled`), and runs again: recording is idempotent (one sighting per
  arrival), so nothing is lost and nothing doubled.
* A failure (JobFailed, a lost database) is retried after Settings.intake_retry_s; the third
  failure records the file as an unreadable item (IntakeService.run_job), so the job ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

QUEUE = "hashdesk_intake"
TASK = "hashdesk.intake.record"
#: Attempts procrastinate makes of one job (the job ends itself at its third failure; this only
#: bounds a job that can never even report its failure, e.g. the database refusing the write).
MAX_ATTEMPTS = 20


def queue_schema_sql() -> str:
    """procrastinate's schema (its tables, types and functions), as the installed version ships
    it: created in the connection's current schema (migration 0014)."""
    from procrastinate.schema import SchemaManager

    return str(SchemaManager.get_schema())


def conninfo(url: str, connect_args: dict[str, str] | None = None) -> str:
    """The libpq connection string of a SQLAlchemy PostgreSQL URL (its query options, such as
    ``options=-csearch_path=...``, kept; TLS settings added)."""
    u = make_url(url)
    parts = {
        "host": u.host or "",
        "port": str(u.port or ""),
        "dbname": u.database or "",
        "user": u.username or "",
        "password": u.password or "",
    }
    for key, value in u.query.items():
        parts[key] = value if isinstance(value, str) else value[-1]
    parts.update(connect_args or {})
    return " ".join(f"{k}='{_q(v)}'" for k, v in parts.items() if v)


def _q(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("'", "\\'")


def defer_in(s: Session, receipt_id: int, sha256: str) -> int:
    """Enqueue the job of ``receipt_id`` in the session's transaction (procrastinate's own defer
    function): it exists exactly when the arrival's row does. The job's id."""
    job_id = s.execute(
        text(
            "SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[ROW(:queue, :task, 0, :lock, "
            "NULL, CAST(:args AS jsonb), NULL)::procrastinate_job_to_defer_v1]))"
        ),
        {
            "queue": QUEUE,
            "task": TASK,
            "lock": f"sha256:{sha256}",
            "args": json.dumps({"receipt_id": receipt_id}),
        },
    ).scalar_one()
    return int(job_id)


@dataclass(frozen=True)
class WorkerConfig:
    name: str
    heartbeat_s: float = 10.0
    stalled_s: float = 30.0
    retry_s: float = 10.0
    #: Stop after this many jobs (benches, tests); None: run until stopped.
    max_jobs: int | None = None
    #: Stop when the queue is empty (benches); False: wait for more.
    until_empty: bool = False


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:128]


def make_app(url: str, connect_args: dict[str, str] | None = None):
    """A procrastinate App on the database ``url`` names (a small pool: a worker runs one
    job at a time; the listener and the heartbeat take one connection each)."""
    import procrastinate

    connector = procrastinate.PsycopgConnector(
        conninfo=conninfo(url, connect_args), min_size=1, max_size=4
    )
    return procrastinate.App(connector=connector)


def run_worker(
    url: str,
    connect_args: dict[str, str] | None,
    job: Callable[[int, str], object],
    config: WorkerConfig,
    hello: Callable[[int], None] | None = None,
) -> int:
    """Run a queue worker until SIGINT/SIGTERM (or ``config.max_jobs`` / an empty queue):
    ``job(receipt_id, worker_name)`` for each job, in a thread. ``hello(worker_id)`` once the
    worker has registered (its heartbeat row). The number of jobs run."""
    from procrastinate.exceptions import ConnectorException

    from app.storage.db import DatabaseError

    try:
        return asyncio.run(_run_worker(url, connect_args, job, config, hello))
    except ConnectorException as exc:
        cause = exc.__cause__ or exc
        first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        raise DatabaseError(f"the job queue: {first}") from None


async def _run_worker(url, connect_args, job, config: WorkerConfig, hello) -> int:
    from procrastinate import RetryStrategy
    from procrastinate.worker import Worker

    app = make_app(url, connect_args)
    done = 0
    stop = asyncio.Event()

    @app.task(
        name=TASK,
        queue=QUEUE,
        # Any exception (JobFailed, a lost database) runs the job again after a wait.
        retry=RetryStrategy(max_attempts=MAX_ATTEMPTS, wait=int(config.retry_s)),
    )
    def record(receipt_id: int) -> None:
        nonlocal done
        job(int(receipt_id), config.name)
        done += 1
        if config.max_jobs is not None and done >= config.max_jobs:
            loop.call_soon_threadsafe(stop.set)

    loop = asyncio.get_running_loop()
    async with app.open_async():
        worker = Worker(
            app,
            queues=[QUEUE],
            name=config.name,
            concurrency=1,
            wait=not config.until_empty,
            update_heartbeat_interval=config.heartbeat_s,
            stalled_worker_timeout=config.stalled_s,
            install_signal_handlers=False,
            fetch_job_polling_interval=max(0.5, min(5.0, config.heartbeat_s)),
            # a done job leaves the queue (the arrival's row is the record); a failed one
            # stays for the leads to see
            delete_jobs="successful",
        )
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        # Jobs of workers that died before this one started go back first.
        await retry_stalled(app, config.stalled_s)
        run = asyncio.create_task(worker.run(), name="hashdesk worker")
        while worker.worker_id is None and not run.done():
            await asyncio.sleep(0.05)
        if hello is not None and worker.worker_id is not None:
            await asyncio.to_thread(hello, int(worker.worker_id))
        reaper = asyncio.create_task(_reap(app, config), name="stalled jobs")
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({run, stopper}, return_when=asyncio.FIRST_COMPLETED)
        reaper.cancel()
        if not run.done():
            worker.stop()
            await run
        stopper.cancel()
    return done


async def _reap(app, config: WorkerConfig) -> None:
    """Every half stall time: jobs whose worker's heartbeat stopped go back in the queue."""
    while True:
        await asyncio.sleep(max(1.0, config.stalled_s / 2))
        try:
            await retry_stalled(app, config.stalled_s)
        except Exception as exc:  # a lost database: the next round tries again
            log.warning("could not look for stalled jobs: %s", exc)


async def retry_stalled(app, stalled_s: float) -> int:
    """Put back in the queue every job of a worker without a heartbeat for ``stalled_s``
    (procrastinate's stalled-job query and retry); another worker may be doing the same: a
    job already put back is skipped. How many this call put back."""
    n = 0
    for j in await app.job_manager.get_stalled_jobs(queue=QUEUE, seconds_since_heartbeat=stalled_s):
        try:
            await app.job_manager.retry_job(j)
            n += 1
            log.warning("job %s (arrival %s) went back to the queue", j.id, j.task_kwargs)
        except Exception:  # another worker took it back first
            continue
    return n


@dataclass(frozen=True)
class QueueCounts:
    todo: int  # jobs waiting for a worker
    doing: int  # jobs a worker holds
    failed: int  # jobs procrastinate gave up on (MAX_ATTEMPTS): none unless the database refused
    heartbeats: dict[int, datetime]  # live worker id -> its last heartbeat (naive UTC)


def queue_counts(s: Session) -> QueueCounts:
    """The queue as procrastinate keeps it: jobs by state, each registered worker's last
    heartbeat."""
    todo, doing, failed = s.execute(
        text(
            "SELECT count(*) FILTER (WHERE status = 'todo'), "
            "count(*) FILTER (WHERE status = 'doing'), "
            "count(*) FILTER (WHERE status = 'failed') "
            "FROM procrastinate_jobs WHERE queue_name = :q"
        ),
        {"q": QUEUE},
    ).one()
    beats = {
        int(wid): _naive(beat)
        for wid, beat in s.execute(text("SELECT id, last_heartbeat FROM procrastinate_workers"))
    }
    return QueueCounts(int(todo), int(doing), int(failed), beats)  # type: ignore[arg-type]


def _naive(t: datetime | None) -> datetime | None:
    """A timestamptz as the naive UTC the rest of Hashdesk uses."""
    from datetime import UTC

    if t is None or t.tzinfo is None:
        return t
    return t.astimezone(UTC).replace(tzinfo=None)
