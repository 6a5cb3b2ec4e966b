"""The workstation's decision journal: a decision is never lost.

Every decision (and every undo) a moderator makes is first written to a small SQLite file on the
workstation (WAL, ``synchronous=FULL``: on disk before the call returns), then applied to the
shared database by ``JournalSync``, idempotently by its UUID, and marked landed. If the shared
database is unreachable, entries stay pending and are retried; if the program is killed, the next
start replays them before anything else. Entries are applied strictly in the order they were
made, so an undo never lands before the decision it takes back.

The journal is a separate file from the shared database (one per database URL), in the user data
directory. It holds no media and no passwords: item ids, verdicts, categories and notes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from sqlalchemy.exc import DBAPIError, OperationalError

from app.core.model.decisions import DecisionOutcome, DecisionRequest, ReviewError
from app.core.model.domain import DecisionMethod, Verdict, utcnow
from app.core.model.exposure import ExposureEvent, ExposureKind
from app.core.model.roles import PermissionDenied
from app.storage.exposure import ExposureService
from app.storage.review import ReviewService

log = logging.getLogger(__name__)


class EntryKind(StrEnum):
    DECIDE = "decide"
    UNDO = "undo"
    EXPOSURE = "exposure"  # an unblurred moment (app.core.model.exposure): its person's work too


class EntryState(StrEnum):
    PENDING = "pending"
    LANDED = "landed"
    REFUSED = "refused"  # the shared database refused it for good (kept, with the reason)


@dataclass(frozen=True)
class JournalEntry:
    seq: int
    uuid: str
    kind: EntryKind
    user_id: int
    payload: dict
    attempts: int = 0
    last_error: str | None = None

    def exposure(self) -> ExposureEvent:
        p = dict(self.payload)
        p["kind"] = ExposureKind(p["kind"])
        p["started_at"] = datetime.fromisoformat(p["started_at"])
        return ExposureEvent(**p)

    def request(self) -> DecisionRequest:
        p = dict(self.payload)
        p["verdict"] = Verdict(p["verdict"])
        p["method"] = DecisionMethod(p["method"])
        p["decided_at"] = datetime.fromisoformat(p["decided_at"])
        return DecisionRequest(**p)


def journal_path(database_url: str, folder: Path) -> Path:
    """One journal per shared database, so pointing a workstation elsewhere never replays
    decisions into the wrong database."""
    digest = hashlib.sha256(database_url.encode()).hexdigest()[:16]
    return folder / f"journal-{digest}.sqlite3"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TEXT NOT NULL,
    landed_at TEXT
);
CREATE INDEX IF NOT EXISTS ix_entries_state ON entries (state, seq);
"""


class DecisionJournal:
    """Thread-safe: the GUI thread appends, the writer thread reads and marks entries."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():  # decisions and notes: readable by their owner only
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=10
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        # FULL: the WAL is fsync'd at every commit, so an appended entry survives a power cut.
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- appending (the moderator's key press) ----------------------------------------------

    def _append(self, uuid: str, kind: EntryKind, user_id: int, payload: dict) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR IGNORE INTO entries (uuid, kind, user_id, payload, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (uuid, kind.value, user_id, json.dumps(payload), utcnow().isoformat()),
            )

    def record_decision(self, req: DecisionRequest) -> None:
        if req.user_id is None:
            raise ValueError("only a moderator's decisions are journalled")
        payload = asdict(req)
        payload["verdict"] = req.verdict.value
        payload["method"] = req.method.value
        payload["decided_at"] = req.decided_at.isoformat(timespec="microseconds")
        self._append(req.uuid, EntryKind.DECIDE, req.user_id, payload)

    def record_exposure(self, event: ExposureEvent) -> None:
        payload = asdict(event)
        payload["kind"] = event.kind.value
        payload["started_at"] = event.started_at.isoformat(timespec="microseconds")
        self._append(event.uuid, EntryKind.EXPOSURE, event.user_id, payload)

    def record_undo(self, user_id: int, undo_uuid: str, target_uuid: str | None) -> None:
        self._append(undo_uuid, EntryKind.UNDO, user_id, {"target_uuid": target_uuid})

    # -- reading and marking (the writer) ---------------------------------------------------

    def pending(self, limit: int | None = None) -> list[JournalEntry]:
        sql = (
            "SELECT seq, uuid, kind, user_id, payload, attempts, last_error FROM entries "
            "WHERE state = 'pending' ORDER BY seq"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._conn.execute(sql).fetchall()
        return [
            JournalEntry(seq, uuid, EntryKind(kind), uid, json.loads(payload), attempts, err)
            for seq, uuid, kind, uid, payload, attempts, err in rows
        ]

    def pending_count(self) -> int:
        with self._lock:
            return int(
                self._conn.execute("SELECT count(*) FROM entries WHERE state='pending'").fetchone()[
                    0
                ]
            )

    def state_of(self, uuid: str) -> EntryState | None:
        with self._lock:
            row = self._conn.execute("SELECT state FROM entries WHERE uuid=?", (uuid,)).fetchone()
        return EntryState(row[0]) if row else None

    def mark(self, uuid: str, state: EntryState, error: str | None = None) -> None:
        with self._lock:
            self._conn.execute(
                "UPDATE entries SET state=?, last_error=?, landed_at=? WHERE uuid=?",
                (state.value, error, utcnow().isoformat(), uuid),
            )

    def mark_failed_attempt(self, uuid: str, error: str) -> None:
        with self._lock:
            self._conn.execute(
                "UPDATE entries SET attempts = attempts + 1, last_error=? WHERE uuid=?",
                (error, uuid),
            )

    def prune_landed(self, older_than_days: int = 30) -> int:
        """Landed entries are kept a while (to answer "did it land?"), then dropped."""
        cutoff = datetime.fromtimestamp(time.time() - older_than_days * 86400).isoformat()
        with self._lock:
            cur = self._conn.execute(
                "DELETE FROM entries WHERE state='landed' AND landed_at < ?", (cutoff,)
            )
            return cur.rowcount


# -- applying the journal to the shared database ---------------------------------------------


@dataclass
class SyncReport:
    landed: list[tuple[JournalEntry, DecisionOutcome | None]] = field(default_factory=list)
    refused: list[tuple[JournalEntry, str]] = field(default_factory=list)
    pending: int = 0
    error: str | None = None  # why the shared database could not be reached, if it could not

    @property
    def unreachable(self) -> bool:
        return self.error is not None


def is_transient(exc: BaseException) -> bool:
    """A failure worth retrying: the connection, not the request."""
    if isinstance(exc, OperationalError):
        return True
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated)
    return isinstance(exc, OSError | TimeoutError)


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class JournalSync:
    """Applies pending journal entries to the shared database, oldest first. Runs on one
    thread at a time (the workstation's serial writer, or a script's loop)."""

    def __init__(
        self,
        journal: DecisionJournal,
        review: ReviewService,
        exposure: ExposureService,
    ) -> None:
        self.journal = journal
        self.review = review
        self.exposure = exposure  # received, as the review service is: app.compose builds them
        self._lock = threading.Lock()

    def apply(self, entry: JournalEntry) -> DecisionOutcome | None:
        if entry.kind is EntryKind.DECIDE:
            return self.review.decide(entry.request())
        if entry.kind is EntryKind.EXPOSURE:
            self.exposure.record(entry.exposure())
            return None
        return self.review.undo_last(
            entry.user_id, undo_uuid=entry.uuid, target_uuid=entry.payload.get("target_uuid")
        )

    def sync(self, on_landed: Callable[[JournalEntry], None] | None = None) -> SyncReport:
        """Apply every pending entry in order; stop at the first that cannot reach the
        database (later entries wait behind it, so the order is kept)."""
        report = SyncReport()
        with self._lock:
            while True:
                batch = self.journal.pending(limit=200)
                if not batch:
                    break
                for entry in batch:
                    try:
                        outcome = self.apply(entry)
                    except (ReviewError, PermissionDenied) as exc:
                        # The database answered and said no: retrying would change nothing.
                        self.journal.mark(entry.uuid, EntryState.REFUSED, str(exc))
                        report.refused.append((entry, str(exc)))
                        log.warning("decision %s refused: %s", entry.uuid, exc)
                        continue
                    except Exception as exc:
                        why = _reason(exc)
                        self.journal.mark_failed_attempt(entry.uuid, why)
                        if not is_transient(exc):
                            log.error("decision %s failed: %s", entry.uuid, why)
                        report.error = why
                        report.pending = self.journal.pending_count()
                        return report
                    self.journal.mark(entry.uuid, EntryState.LANDED)
                    report.landed.append((entry, outcome))
                    if on_landed is not None:
                        on_landed(entry)
        report.pending = self.journal.pending_count()
        return report


def backoff_seconds(failures: int, base: float = 1.0, cap: float = 30.0) -> float:
    """1, 2, 4, ... seconds, at most ``cap``: retries stay quick after a short blip and cheap
    during a long outage."""
    return min(cap, base * (2 ** max(0, failures - 1)))
