"""What the leads see of the intake (`hashdesk intake status`, the lead workspace's Intake
tab): the backlog, the rate in and out, the oldest waiting arrival's age, each queue worker's
last heartbeat, failures with their reasons. Reads only (a lead's grants on a team server)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select

from app.core.model.domain import utcnow
from app.storage.db import Database
from app.storage.models import IntakeReceipt, IntakeWorker


@dataclass(frozen=True)
class WorkerBeat:
    id: int
    name: str
    last_heartbeat: datetime | None  # None: no heartbeat row any more (stopped or pruned)
    last_job_at: datetime | None
    alive: bool  # a heartbeat within the stall time


@dataclass(frozen=True)
class Failure:
    receipt_id: int
    name: str | None
    state: str  # "waiting" (will run again) or "refused" or "done" (recorded as unreadable)
    failures: int
    reason: str


@dataclass(frozen=True)
class IntakeStatus:
    now: datetime
    window: timedelta
    waiting: int  # arrivals not yet recorded (the backlog)
    received: int  # arrivals in the window
    recorded: int  # arrivals recorded (or refused) in the window
    oldest_waiting: datetime | None  # when the oldest waiting arrival was received
    queue_todo: int | None  # jobs on the queue (None: no queue, jobs run where they arrive)
    queue_doing: int | None
    workers: list[WorkerBeat] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    @property
    def rate_in(self) -> float:
        """Arrivals per minute over the window."""
        return self.received / max(self.window.total_seconds() / 60, 1e-9)

    @property
    def rate_out(self) -> float:
        return self.recorded / max(self.window.total_seconds() / 60, 1e-9)

    @property
    def oldest_age(self) -> timedelta | None:
        return None if self.oldest_waiting is None else self.now - self.oldest_waiting


def intake_status(
    db: Database,
    window: timedelta = timedelta(minutes=5),
    stalled_after: timedelta = timedelta(seconds=30),
    failures_shown: int = 20,
) -> IntakeStatus:
    now = utcnow()
    since = now - window
    with db.session() as s:
        waiting, oldest = s.execute(
            select(func.count(), func.min(IntakeReceipt.created_at)).where(
                IntakeReceipt.state == "waiting"
            )
        ).one()
        received = s.scalar(
            select(func.count()).select_from(IntakeReceipt).where(IntakeReceipt.created_at >= since)
        )
        recorded = s.scalar(
            select(func.count())
            .select_from(IntakeReceipt)
            .where(IntakeReceipt.finished_at >= since)
        )
        failed = s.scalars(
            select(IntakeReceipt)
            .where(
                or_(
                    IntakeReceipt.failures > 0,
                    IntakeReceipt.state == "refused",
                    IntakeReceipt.runs > IntakeReceipt.failures + 1,
                )
            )
            .order_by(IntakeReceipt.id.desc())
            .limit(failures_shown)
        ).all()
        failures = [
            Failure(
                r.id,
                r.original_name,
                r.state,
                r.failures,
                r.error or (f"its run stopped {r.runs - r.failures - 1} time(s) (its worker died)"),
            )
            for r in failed
        ]
        todo = doing = None
        workers: list[WorkerBeat] = []
        if db.engine.dialect.name == "postgresql":
            from app.storage.jobqueue import queue_counts

            counts = queue_counts(s)
            todo, doing = counts.todo, counts.doing
            named = {w.id: w for w in s.scalars(select(IntakeWorker).order_by(IntakeWorker.id))}
            for wid in sorted(set(named) | set(counts.heartbeats)):
                beat = counts.heartbeats.get(wid)
                w = named.get(wid)
                if beat is None and (w is None or (w.last_job_at or w.started_at) < since):
                    continue  # long gone
                workers.append(
                    WorkerBeat(
                        wid,
                        w.name if w else f"worker {wid}",
                        beat,
                        w.last_job_at if w else None,
                        beat is not None and now - beat <= stalled_after,
                    )
                )
    return IntakeStatus(
        now=now,
        window=window,
        waiting=int(waiting or 0),
        received=int(received or 0),
        recorded=int(recorded or 0),
        oldest_waiting=oldest,
        queue_todo=todo,
        queue_doing=doing,
        workers=workers,
        failures=failures,
    )


def age_text(delta: timedelta | None) -> str:
    if delta is None:
        return "-"
    secs = int(max(delta.total_seconds(), 0))
    if secs < 120:
        return f"{secs} s"
    if secs < 7200:
        return f"{secs // 60} min"
    return f"{secs // 3600} h {secs % 3600 // 60} min"


def status_lines(st: IntakeStatus) -> list[str]:
    """The status as `hashdesk intake status` prints it."""
    mins = int(st.window.total_seconds() // 60)
    lines = [
        f"backlog: {st.waiting} arrival(s) waiting"
        + (
            f" (queue: {st.queue_todo} job(s) waiting, {st.queue_doing} running)"
            if st.queue_todo is not None
            else " (no queue: jobs run where they arrive)"
        ),
        f"oldest waiting: {age_text(st.oldest_age)}",
        f"rate in: {st.rate_in:.1f}/min, out: {st.rate_out:.1f}/min (last {mins} min)",
    ]
    if st.queue_todo is not None:
        lines.append(f"workers: {sum(w.alive for w in st.workers)} alive")
        for w in st.workers:
            beat = age_text(st.now - w.last_heartbeat) + " ago" if w.last_heartbeat else "none"
            state = "alive" if w.alive else "NO HEARTBEAT"
            lines.append(f"  #{w.id} {w.name}: last heartbeat {beat} ({state})")
    lines.append(f"failures: {len(st.failures)}")
    for f in st.failures:
        lines.append(f"  arrival {f.receipt_id} {f.name or ''} [{f.state}]: {f.reason}")
    return lines
