"""The workstation's decision journal: a decision is never lost.

Every decision (and every undo) a moderator makes is first written to a small SQLite file on the
workstation (WAL, ``synchronous=FULL``: on disk before the call returns), then applied to the
shared database by ``JournalSync``, idempotently by its UUID, and marked landed. If the shared
database is unreachable, entries stay pending and are retried; if the program is killed, the next
start replays them before anything else. Entries are applied strictly in the order they were
made, so an undo never lands before the decision it takes back.

What happens to an entry follows the error tree (app/core/errors.py): it lands; or the database
answers no (a ``Refusal``: the item is gone, the person may not) and it is refused at once, kept
with the reason and never retried; or the database cannot be reached (``is_transient``) and it
stays pending, retried with backoff, everything after it waiting (order matters). Anything else
is a bug or a surprise: it counts as a fault, logged with its traceback, and after
``MAX_FAULTS`` faults the entry is refused as "internal error: ..." so it never holds the
entries behind it for ever.

Landed entries are pruned from the sync path (``JournalSync.PRUNE_EVERY``), and the file is
compacted after, so a workstation's journal stays the size of its recent work.

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
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path

from app.core.errors import Refusal, describe, is_transient
from app.core.model.decisions import DecisionOutcome, DecisionRequest
from app.core.model.domain import DecisionMethod, Verdict, utcnow
from app.core.model.exposure import ExposureEvent, ExposureKind
from app.storage import errors as _errors  # noqa: F401  (SQL errors: transient, one line)
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
    attempts: int = 0  # failed attempts of any kind (the database unreachable among them)
    last_error: str | None = None
    faults: int = 0  # of those, unexpected failures (not ours, not transient): see MAX_FAULTS

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
    landed_at TEXT,
    faults INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS ix_entries_state ON entries (state, seq);
"""

MAX_FAULTS = 3  # unexpected failures of one entry before it is refused as an internal error

# Landed entries kept: for two days (what became of yesterday's decision can still be read
# here, beside the shared record), and never more than this many (a long shift makes a few
# thousand decisions and exposure moments; 5,000 landed rows are about 2.7 MB). Nothing needs
# them for idempotence: the shared database dedups every write by its UUID, and a landed
# entry is never replayed. Refused entries are never pruned: they are the only copy of a
# decision that did not land.
KEEP_LANDED_DAYS = 2.0
KEEP_LANDED_MAX = 5000


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
        # Freed pages can be given back to the file system (compact()); takes effect on a new
        # file here, on an older journal at its first compaction (a full VACUUM, once).
        self._conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        self._conn.execute("PRAGMA journal_mode=WAL")
        # FULL: the WAL is fsync'd at every commit, so an appended entry survives a power cut.
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(_SCHEMA)
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(entries)")}
        if "faults" not in columns:  # a journal written before faults were counted
            self._conn.execute("ALTER TABLE entries ADD COLUMN faults INTEGER NOT NULL DEFAULT 0")

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
            "SELECT seq, uuid, kind, user_id, payload, attempts, last_error, faults "
            "FROM entries WHERE state = 'pending' ORDER BY seq"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._conn.execute(sql).fetchall()
        return [
            JournalEntry(seq, uuid, EntryKind(kind), uid, json.loads(payload), attempts, err, f)
            for seq, uuid, kind, uid, payload, attempts, err, f in rows
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

    def refused(self) -> list[tuple[JournalEntry, str]]:
        """Every refused entry with its reason, oldest first (kept for good: see the module)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, uuid, kind, user_id, payload, attempts, last_error, faults "
                "FROM entries WHERE state = 'refused' ORDER BY seq"
            ).fetchall()
        return [
            (JournalEntry(seq, u, EntryKind(k), uid, json.loads(p), a, err, f), err or "")
            for seq, u, k, uid, p, a, err, f in rows
        ]

    def mark(self, uuid: str, state: EntryState, error: str | None = None) -> None:
        with self._lock:
            self._conn.execute(
                "UPDATE entries SET state=?, last_error=?, landed_at=? WHERE uuid=?",
                (state.value, error, utcnow().isoformat(timespec="microseconds"), uuid),
            )

    def mark_failed_attempt(self, uuid: str, error: str, *, fault: bool = False) -> int:
        """Count a failed attempt (and, with ``fault``, an unexpected one). Returns the
        entry's faults so far."""
        with self._lock:
            self._conn.execute(
                "UPDATE entries SET attempts = attempts + 1, faults = faults + ?, last_error=? "
                "WHERE uuid=?",
                (int(fault), error, uuid),
            )
            row = self._conn.execute("SELECT faults FROM entries WHERE uuid=?", (uuid,)).fetchone()
        return int(row[0]) if row else 0

    def prune_landed(
        self, older_than_days: float = KEEP_LANDED_DAYS, keep_at_most: int = KEEP_LANDED_MAX
    ) -> int:
        """Drop landed entries that landed more than ``older_than_days`` ago, and the oldest
        beyond the newest ``keep_at_most``; then give the space back (``compact``). Pending
        and refused entries are never touched (why these limits: ``KEEP_LANDED_DAYS``). Returns
        how many went."""
        cutoff = (utcnow() - timedelta(days=older_than_days)).isoformat(timespec="microseconds")
        with self._lock:
            gone = self._conn.execute(
                "DELETE FROM entries WHERE state='landed' AND landed_at < ?", (cutoff,)
            ).rowcount
            gone += self._conn.execute(
                "DELETE FROM entries WHERE state='landed' AND seq NOT IN "
                "(SELECT seq FROM entries WHERE state='landed' ORDER BY seq DESC LIMIT ?)",
                (max(0, int(keep_at_most)),),
            ).rowcount
        if gone:
            self.compact()
        return gone

    def compact(self) -> None:
        """Give freed pages back to the file system: the file shrinks, and the WAL is folded
        in and truncated. A journal made before auto-vacuum was on gets one full VACUUM."""
        with self._lock:
            if self._conn.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:  # not INCREMENTAL
                self._conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
                self._conn.execute("VACUUM")
            else:
                # executescript steps the pragma to the end (one step frees one page only)
                self._conn.executescript("PRAGMA incremental_vacuum;")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


# -- applying the journal to the shared database ---------------------------------------------


@dataclass
class SyncReport:
    landed: list[tuple[JournalEntry, DecisionOutcome | None]] = field(default_factory=list)
    refused: list[tuple[JournalEntry, str]] = field(default_factory=list)
    pending: int = 0
    # Why entries still wait, if they do: the shared database could not be reached, or (with
    # ``fault``) the first waiting entry failed unexpectedly and will be tried again. Either
    # way the caller retries after ``backoff_seconds``.
    error: str | None = None
    fault: bool = False  # ``error`` is an entry's unexpected failure, not the database's absence
    pruned: int = 0  # landed entries dropped by this sync (see DecisionJournal.prune_landed)

    @property
    def unreachable(self) -> bool:
        return self.error is not None and not self.fault


class JournalSync:
    """Applies pending journal entries to the shared database, oldest first. Runs on one
    thread at a time (the workstation's serial writer, or a script's loop)."""

    PRUNE_EVERY = 600.0  # seconds between two prunings of landed entries (the first: at once)
    keep_landed_days = KEEP_LANDED_DAYS
    keep_landed_max = KEEP_LANDED_MAX

    def __init__(
        self,
        journal: DecisionJournal,
        review: ReviewService,
        exposure: ExposureService,
        rescan: Callable[[str, int], object] | None = None,
    ) -> None:
        self.journal = journal
        self.review = review
        self.exposure = exposure  # received, as the review service is: app.compose builds them
        # Run after a confirm that added hashes has landed (the re-scan on new hashes,
        # app.storage.rescan): (decision uuid, user id). On this writer's thread, never the
        # GUI's; its failure is logged, the decision stays landed.
        self.rescan = rescan
        self._lock = threading.Lock()
        self._pruned_at: float | None = None

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
        """Apply every pending entry in order. A refusal is recorded and passed; the database
        unreachable, or an entry's unexpected failure below ``MAX_FAULTS``, stops the pass
        (later entries wait behind it, so the order is kept) with ``error`` set."""
        report = SyncReport()
        with self._lock:
            self._apply_pending(report, on_landed)
            report.pending = self.journal.pending_count()
            self._prune_on_cadence(report)
        return report

    def _refuse(self, report: SyncReport, entry: JournalEntry, why: str) -> None:
        self.journal.mark(entry.uuid, EntryState.REFUSED, why)
        report.refused.append((entry, why))
        log.warning("journal entry %s (%s) refused: %s", entry.uuid, entry.kind.value, why)

    def _apply_pending(
        self, report: SyncReport, on_landed: Callable[[JournalEntry], None] | None
    ) -> None:
        while True:
            batch = self.journal.pending(limit=200)
            if not batch:
                return
            for entry in batch:
                try:
                    outcome = self.apply(entry)
                except Exception as exc:
                    why = describe(exc)
                    if isinstance(exc, Refusal):
                        # The database answered and said no: retrying would change nothing.
                        self._refuse(report, entry, why)
                        continue
                    if is_transient(exc):
                        self.journal.mark_failed_attempt(entry.uuid, why)
                        report.error = why
                        return
                    faults = self.journal.mark_failed_attempt(entry.uuid, why, fault=True)
                    log.error(
                        "journal entry %s (%s) failed unexpectedly (%d of %d): %s",
                        entry.uuid,
                        entry.kind.value,
                        faults,
                        MAX_FAULTS,
                        why,
                        exc_info=exc,
                    )
                    if faults >= MAX_FAULTS:
                        self._refuse(report, entry, f"internal error: {why}")
                        continue
                    report.error, report.fault = why, True
                    return
                self.journal.mark(entry.uuid, EntryState.LANDED)
                report.landed.append((entry, outcome))
                self._rescan_after(entry, outcome)
                if on_landed is not None:
                    on_landed(entry)

    def _rescan_after(self, entry: JournalEntry, outcome: DecisionOutcome | None) -> None:
        if (
            self.rescan is None
            or outcome is None
            or outcome.verdict is not Verdict.CONFIRM
            or outcome.duplicate
            or outcome.late
            or outcome.hashes_added == 0
        ):
            return
        try:
            self.rescan(outcome.uuid, entry.user_id)
        except Exception as exc:  # the decision has landed; the re-scan is a follow-up
            log.warning("re-scan after %s failed: %s", outcome.uuid, describe(exc))

    def _prune_on_cadence(self, report: SyncReport) -> None:
        now = time.monotonic()
        if self._pruned_at is not None and now - self._pruned_at < self.PRUNE_EVERY:
            return
        self._pruned_at = now
        try:
            report.pruned = self.journal.prune_landed(self.keep_landed_days, self.keep_landed_max)
        except sqlite3.Error:  # housekeeping: never fails the sync that landed the work
            log.exception("pruning the journal failed")


def backoff_seconds(failures: int, base: float = 1.0, cap: float = 30.0) -> float:
    """1, 2, 4, ... seconds, at most ``cap``: retries stay quick after a short blip and cheap
    during a long outage."""
    return min(cap, base * (2 ** max(0, failures - 1)))
