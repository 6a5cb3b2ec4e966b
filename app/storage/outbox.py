"""The journal's outbox schedule: when to apply the workstation's journal to the shared
database next, and what a run did, in plain data.

The journal (:mod:`app.storage.journal`) keeps every decision, undo and unblurred moment on the
workstation first; :class:`JournalSync` applies them in order. :class:`Outbox` decides when a
run is due: at once when something new was journalled, after a failure only once its backoff
(1, 2, 4 ... 30 s) has run out, and never two runs at a time (something journalled during a
run makes another run due right after it). It has no thread and no timer of its own: the
review presenter asks :meth:`Outbox.due` with its clock, runs :meth:`Outbox.sync` on the serial
writer and hands the result back to :meth:`Outbox.settle` on its own thread.
"""

from __future__ import annotations

import math

from app.core.review.ports import Landed, SyncNews, SyncResult
from app.storage.journal import DecisionJournal, JournalSync, SyncReport, backoff_seconds


def sync_result(report: SyncReport) -> SyncResult:
    """A ``SyncReport`` as plain data for the screen."""
    return SyncResult(
        landed=tuple(Landed(e.uuid, e.kind.value, outcome) for e, outcome in report.landed),
        refused=tuple((e.uuid, why) for e, why in report.refused),
        pending=report.pending,
        error=report.error,
        fault=report.fault,
    )


class Outbox:
    def __init__(self, journal: DecisionJournal, syncer: JournalSync) -> None:
        self.journal = journal
        self.syncer = syncer
        self.failures = 0  # runs in a row that could not reach the database
        self._error: str | None = None
        self._running = False
        self._wanted = False  # a run is wanted (something new, or a retry)
        self._again = False  # something was journalled while a run was going
        self._next_at = -math.inf  # no run before this time (the backoff)

    @property
    def error(self) -> str | None:
        """Why the shared database could not be reached at the last run (None: it could)."""
        return self._error

    @property
    def running(self) -> bool:
        return self._running

    def pending_count(self) -> int:
        return self.journal.pending_count()

    def request(self) -> None:
        """Something was journalled (or the person asks): a run is due now."""
        if self._running:
            self._again = True
        else:
            self._wanted = True
            self._next_at = -math.inf

    def due(self, now: float) -> bool:
        return self._wanted and not self._running and now >= self._next_at

    def begin(self) -> None:
        """The caller starts a run (it will call :meth:`sync` on the writer)."""
        self._running = True
        self._wanted = False

    def sync(self) -> SyncResult:
        """Runs on the serial writer: apply every pending entry, in order."""
        return sync_result(self.syncer.sync())

    def settle(self, result: SyncResult, now: float) -> SyncNews:
        """A run finished: the next one is due after the backoff if it failed."""
        self._running = False
        went_down = came_back = False
        if result.error is not None:
            went_down = self._error is None
            self._error = result.error
            self._failed(now)
        else:
            came_back = self._error is not None
            self._error = None
            self.failures = 0
        return SyncNews(went_down=went_down, came_back=came_back, retry_in=self._retry_in(now))

    def crashed(self, why: str, now: float) -> SyncNews:
        """The run itself failed (the local journal could not be read): retry after backoff."""
        self._running = False
        self._failed(now)
        return SyncNews(retry_in=self._retry_in(now))

    def _failed(self, now: float) -> None:
        self.failures += 1
        self._wanted = True
        self._next_at = now + backoff_seconds(self.failures)

    def _retry_in(self, now: float) -> float | None:
        if self._again:  # journalled during the run: go again now
            self._again = False
            self._wanted = True
            self._next_at = -math.inf
        if not self._wanted:
            return None
        return max(0.0, self._next_at - now)
