"""What the review presenter is plugged into: the view it paints on, the services it asks, the
runner that does work off the screen's thread, and the clock. Each is a Protocol the real thing
satisfies as it is (the window's adapter, ``ReviewService``, ``DecisionJournal``,
``ExposureService``, ``storage.outbox.Outbox``, the UI's task runner); tests pass fakes."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from app.core.model.decisions import DecisionOutcome, DecisionRequest, QueueCounts
from app.core.model.domain import Category, QueueItem
from app.core.model.exposure import ExposureEvent

Clock = Callable[[], float]  # seconds, monotonic (``time.monotonic``; tests move a fake)


@dataclass
class PreparedItem:
    """An item ready for the screen. ``preview`` is whatever the view paints (the UI's
    ``ScreenPreview``); ``message`` is shown instead of a picture (unreadable media)."""

    item: QueueItem
    preview: Any
    message: str


@dataclass(frozen=True)
class Landed:
    """A journal entry the shared database accepted: its UUID, kind ("decide", "undo",
    "exposure") and what the database made of it."""

    uuid: str
    kind: str
    outcome: DecisionOutcome | None


@dataclass(frozen=True)
class SyncResult:
    """One run of the outbox, in plain data (from ``storage.journal.SyncReport``)."""

    landed: tuple[Landed, ...] = ()
    refused: tuple[tuple[str, str], ...] = ()  # (uuid, why): the database said no, for good
    pending: int = 0
    error: str | None = None  # why entries still wait (the database away, or ``fault``)
    fault: bool = False  # ``error`` is one entry's unexpected failure, retried, not an outage


@dataclass(frozen=True)
class SyncNews:
    """How the outbox's state moved with a run: what the screen says once, not every time."""

    went_down: bool = False  # the first failure after success
    came_back: bool = False  # the first success after failures
    retry_in: float | None = None  # seconds until the next try is due (None: nothing waits)


class Runner(Protocol):
    """Runs work off the screen's thread and hands the result back on it."""

    def read(
        self,
        fn: Callable[[], Any],
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        """In parallel with other reads (claims' previews, counts)."""

    def write(
        self,
        fn: Callable[[], Any],
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        """On the one serial writer, in the order asked."""

    def later(self, seconds: float, fn: Callable[[], None]) -> None:
        """Call ``fn`` on the screen's thread after ``seconds``."""

    def wait(self, msecs: int = 10000) -> bool:
        """Let work in flight finish (closing)."""


class QueuePort(Protocol):
    """The queue as ``storage.review.ReviewService`` serves it."""

    def claim_next(
        self, user_id: int, exclude: Collection[int] = (), queue: str = "review"
    ) -> QueueItem | None: ...
    def my_claims(self, user_id: int, queue: str | None = None) -> list[int]: ...
    def release(self, user_id: int, item_ids: Collection[int]) -> int: ...
    def renew(self, user_id: int, item_ids: Collection[int]) -> int: ...
    def counts(self, user_id: int, queue: str = "review") -> QueueCounts: ...
    def undo_last(self, user_id: int) -> DecisionOutcome | None: ...
    def load_item(self, item_id: int) -> QueueItem: ...
    def cluster_members(self, rep_id: int) -> list[QueueItem]: ...


class JournalPort(Protocol):
    """The workstation's journal (``storage.journal.DecisionJournal``): fsync'd appends."""

    def record_decision(self, req: DecisionRequest) -> None: ...
    def record_undo(self, user_id: int, undo_uuid: str, target_uuid: str | None) -> None: ...
    def record_exposure(self, event: ExposureEvent) -> None: ...


class OutboxPort(Protocol):
    """``storage.outbox.Outbox``: when the journal should be applied next, and the run."""

    def pending_count(self) -> int: ...
    def request(self) -> None: ...
    def due(self, now: float) -> bool: ...
    def begin(self) -> None: ...
    def sync(self) -> SyncResult: ...
    def settle(self, result: SyncResult, now: float) -> SyncNews: ...
    def crashed(self, why: str, now: float) -> SyncNews: ...
    @property
    def running(self) -> bool: ...
    @property
    def error(self) -> str | None: ...


class ExposureTotalsPort(Protocol):
    """Today's earlier unblurred time (``storage.exposure.ExposureService.today``)."""

    def today(self, user_id: int, before: datetime | None = None) -> tuple[float, set[int]]: ...


class ReviewView(Protocol):
    """What the presenter paints. The window's adapter implements it; tests log the calls."""

    def show_item(self, prepared: PreparedItem | None) -> None: ...
    def show_member(self, prepared: PreparedItem, index: int, size: int) -> None: ...
    def show_category(self, category: Category | None) -> None: ...
    def show_counts(self, counts: QueueCounts) -> None: ...
    def show_sync(self, pending: int, problem: str | None) -> None: ...
    def show_message(self, text: str) -> None: ...
    def show_feedback(self, text: str) -> None: ...
    # A key press that did NOT happen, and why: on the last-action line until the next
    # feedback replaces it (it does not fade like ``show_feedback``'s lines).
    def show_refusal(self, text: str) -> None: ...
    def show_revealed(self, on: bool) -> None: ...
    def show_exposure(self, text: str) -> None: ...
    def show_review(self) -> None: ...
    def show_break(self, why: str, past_limit: bool) -> None: ...
    def show_lock(self, problem: str) -> None: ...
    def decision_landed(self, outcome: DecisionOutcome) -> None: ...
    def undo_landed(self, outcome: DecisionOutcome | None) -> None: ...
