"""The review presenter in Qt: builds :class:`~app.core.review.presenter.ReviewPresenter` over
the application's services, runs its background work on the task runner, and turns what it
paints into signals the window connects to. No rules live here (they are the presenter's)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal

from app.compose import AppContext
from app.core.model.decisions import DecisionOutcome, QueueCounts
from app.core.model.domain import Category, MediaKind, QueueItem, UserInfo, Verdict
from app.core.review.feedback import category_range, decision_feedback, undo_feedback
from app.core.review.ports import Clock, PreparedItem
from app.core.review.presenter import PREFETCH, UNDO_DEPTH, ReviewPresenter
from app.core.review.preview import prepare_preview
from app.storage.dense import DenseQueue, DenseRunner
from app.storage.journal import JournalSync
from app.storage.outbox import Outbox
from app.ui.preview import ScreenPreview
from app.ui.tasks import TaskRunner


def prepare_item(ctx: AppContext, item: QueueItem) -> PreparedItem:
    """Runs on a reader: read and blur the stored preview (small, never the original). Never
    raises: an item must still be shown and decidable."""
    if item.kind is MediaKind.AUDIO:  # sound alone: nothing to show, and it is never played
        secs = f" ({item.duration:.0f} s)" if item.duration else ""
        return PreparedItem(item, None, f"sound only{secs}: fingerprinted, never played")
    if item.kind is MediaKind.UNREADABLE or not item.preview_key:
        why = item.error or "no preview could be made"
        return PreparedItem(item, None, f"unreadable: {why}")
    try:
        data = ctx.store.get_bytes(item.preview_key)
        prepared = prepare_preview(data, item.preview_frames)
    except Exception as exc:
        return PreparedItem(item, None, f"preview missing or damaged: {exc}")
    return PreparedItem(item, ScreenPreview.from_prepared(prepared), "")


class QtRunner:
    """The presenter's runner over the window's TaskRunner; ``later`` is a Qt single-shot
    timer owned by ``owner`` (dropped with it)."""

    def __init__(self, tasks: TaskRunner, owner: QObject) -> None:
        self.tasks = tasks
        self.owner = owner

    def read(self, fn, on_done=None, on_error=None) -> None:
        self.tasks.read(fn, on_done, on_error)

    def write(self, fn, on_done=None, on_error=None) -> None:
        self.tasks.write(fn, on_done, on_error)

    def later(self, seconds: float, fn: Callable[[], None]) -> None:
        QTimer.singleShot(max(0, round(seconds * 1000)), self.owner, fn)

    def wait(self, msecs: int = 10000) -> bool:
        return self.tasks.wait(msecs)


class ReviewController(QObject):
    """The presenter's view, as signals; and the presenter's calls, for the window."""

    item_changed = Signal(object)  # PreparedItem | None
    counts_changed = Signal(object)  # QueueCounts
    sync_changed = Signal(int, object)  # entries waiting to be written, why unreachable
    decision_recorded = Signal(object)  # DecisionOutcome
    undo_done = Signal(object)  # DecisionOutcome | None
    message = Signal(str)
    category_changed = Signal(object)  # Category | None
    member_changed = Signal(object, int, int)  # PreparedItem shown, index, cluster size
    feedback = Signal(str)  # what the last key press did, in one line
    refused = Signal(str)  # a key press that did not happen, and why (until the next one)
    revealed_changed = Signal(bool)  # the whole picture unblurred (the held key)
    exposure_changed = Signal(str)  # the exposure status line
    review_shown = Signal()
    break_shown = Signal(str, bool)  # why, past the daily limit
    lock_shown = Signal(str)  # the lock screen's problem line ("" when none)
    dense_landed = Signal(object)  # DenseResult: a confirmed video's dense frames written

    def __init__(
        self,
        ctx: AppContext,
        user: UserInfo,
        tasks: TaskRunner,
        queue: str = "review",
        clock: Clock | None = None,
        verify_password: Callable[[str, str], bool] | None = None,
    ) -> None:
        super().__init__()
        self.ctx = ctx
        self.user = user
        self.tasks = tasks
        self.queue = queue
        rescanner = ctx.rescanner(user)  # after a confirm lands, on the serial writer
        # A confirmed video's dense frames (app.storage.dense): handed by the writer to their
        # own thread, which hashes the video and re-scans on the new rows with its own
        # re-scanner; at start, the confirms of videos still without them.
        dense_rescan = ctx.rescanner(user)
        self.dense = DenseQueue(
            DenseRunner(ctx.db, ctx.store.path_for, user.id, after=dense_rescan.after_entries),
            on_done=lambda result: self.dense_landed.emit(result),
        )

        def after_confirm(uuid: str, _user_id: int) -> None:
            self.dense.submit(uuid)  # a confirm not of a video is passed over there
            rescanner.after_confirm(uuid)

        self.outbox = Outbox(
            ctx.journal,
            JournalSync(ctx.journal, ctx.review, ctx.exposure, rescan=after_confirm),
        )
        self.presenter = ReviewPresenter(
            view=self,
            queue_port=ctx.review,
            journal=ctx.journal,
            outbox=self.outbox,
            runner=QtRunner(tasks, self),
            clock=clock or time.monotonic,
            user=user,
            taxonomy=ctx.taxonomy,
            prepare=lambda item: prepare_item(ctx, item),
            policy=ctx.settings.breaks,
            exposure_totals=ctx.exposure,
            verify_password=verify_password or ctx.check_password,
            queue=queue,
            lease_seconds=ctx.settings.lease_seconds,
            idle_lock_seconds=ctx.settings.idle_lock_minutes * 60,
        )

    # -- the view the presenter paints on ------------------------------------------------------

    def show_item(self, prepared: PreparedItem | None) -> None:
        self.item_changed.emit(prepared)

    def show_member(self, prepared: PreparedItem, index: int, size: int) -> None:
        self.member_changed.emit(prepared, index, size)

    def show_category(self, category: Category | None) -> None:
        self.category_changed.emit(category)

    def show_counts(self, counts: QueueCounts) -> None:
        self.counts_changed.emit(counts)

    def show_sync(self, pending: int, problem: str | None) -> None:
        self.sync_changed.emit(pending, problem)

    def show_message(self, text: str) -> None:
        self.message.emit(text)

    def show_feedback(self, text: str) -> None:
        self.feedback.emit(text)

    def show_refusal(self, text: str) -> None:
        self.refused.emit(text)

    def show_revealed(self, on: bool) -> None:
        self.revealed_changed.emit(on)

    def show_exposure(self, text: str) -> None:
        self.exposure_changed.emit(text)

    def show_review(self) -> None:
        self.review_shown.emit()

    def show_break(self, why: str, past_limit: bool) -> None:
        self.break_shown.emit(why, past_limit)

    def show_lock(self, problem: str) -> None:
        self.lock_shown.emit(problem)

    def decision_landed(self, outcome: DecisionOutcome) -> None:
        self.decision_recorded.emit(outcome)

    def undo_landed(self, outcome: DecisionOutcome | None) -> None:
        self.undo_done.emit(outcome)

    # -- the presenter's state, read by the window, the self-test and the tests ---------------

    @property
    def current(self) -> PreparedItem | None:
        return self.presenter.current

    @property
    def upcoming(self) -> deque[PreparedItem]:
        return self.presenter.upcoming

    @property
    def category(self) -> Category | None:
        return self.presenter.category

    @property
    def pending(self) -> int:
        return self.presenter.pending

    @property
    def sync_error(self) -> str | None:
        return self.outbox.error

    @property
    def _sync_running(self) -> bool:
        return self.outbox.running

    @property
    def busy(self) -> bool:
        return self.presenter.busy

    @property
    def dwell_seconds(self) -> float:
        return self.presenter.guard.dwell_seconds

    @dwell_seconds.setter
    def dwell_seconds(self, seconds: float) -> None:
        self.presenter.guard.dwell_seconds = seconds

    # -- the presenter's calls ------------------------------------------------------------

    def start(self) -> None:
        self.presenter.start()
        self.dense.start()

    def shutdown(self) -> None:
        self.presenter.shutdown()
        self.dense.stop(timeout=0)  # a video half hashed is hashed again at the next start

    def decide(self, verdict: Verdict, note: str = "", by_key: bool = True) -> bool:
        return self.presenter.decide(verdict, note, by_key)

    def undo(self, by_key: bool = True) -> bool:
        return self.presenter.undo(by_key)

    def accepts(self, by_key: bool) -> bool:
        return self.presenter.accepts(by_key)

    def choose_category(self, category: Category) -> None:
        self.presenter.choose_category(category)

    def page_member(self, delta: int) -> None:
        self.presenter.page_member(delta)

    def held_ids(self) -> set[int]:
        return self.presenter.held_ids()

    def refresh_counts(self) -> None:
        self.presenter.refresh_counts()

    def sync_now(self) -> None:
        self.presenter.sync_now()


__all__ = [
    "PREFETCH",
    "UNDO_DEPTH",
    "PreparedItem",
    "QtRunner",
    "QueueCounts",
    "ReviewController",
    "Verdict",
    "category_range",
    "decision_feedback",
    "prepare_item",
    "undo_feedback",
]
