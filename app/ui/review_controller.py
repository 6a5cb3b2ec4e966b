"""The review screen's state machine, separate from its widgets.

It claims items and prepares their previews in the background, keeps the next item ready so it
appears at once, and refuses input that would record a decision twice: while a decision is being
handed off, before the key that made it is released, and for a short dwell after a new item
appears (so a double press cannot decide an item the moderator has not seen).

Skipped items stay out of this session's way until the rest of the queue has been served, then
come back (a skip is "not now", not "never": an overdue removal order must not vanish).

A decision is written to the workstation's journal (fsync'd, about a millisecond) before the
screen moves on; the serial writer then applies the journal to the shared database in order,
idempotently by UUID. If the database is unreachable the moderator keeps going through what is
already claimed, the status bar counts what waits, and the writer retries with backoff. An undo
of a decision made in this session is journalled too and shows the item again at once, from
memory, whether or not the decision it takes back has reached the database yet.
"""

from __future__ import annotations

import time
import uuid as uuidlib
from collections import deque
from dataclasses import dataclass

from PySide6.QtCore import QObject, QTimer, Signal

from app.compose import AppContext
from app.core.model.decisions import DecisionOutcome, DecisionRequest, QueueCounts
from app.core.model.domain import Category, DecisionMethod, MediaKind, QueueItem, UserInfo, Verdict
from app.core.model.taxonomy import Taxonomy
from app.core.review.preview import prepare_preview
from app.storage.journal import EntryKind, JournalSync, SyncReport, backoff_seconds
from app.ui.preview import ScreenPreview
from app.ui.tasks import TaskRunner

PREFETCH = 2
UNDO_DEPTH = 50  # decisions of this session that can be undone from memory


_DONE = {
    Verdict.CONFIRM: "Confirmed",
    Verdict.REJECT: "Rejected",
    Verdict.SKIP: "Skipped",
    Verdict.ESCALATE: "Escalated",
    Verdict.OVERTURN: "Overturned the standing decision on",
}


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one}" if n == 1 else f"{n} {many or one + 's'}"


def _what(verdict: Verdict, item_id: int, members: int, queue: str) -> str:
    if verdict is Verdict.SKIP and queue == "escalations":
        what = f"Passed #{item_id} on to another lead"
    else:
        what = f"{_DONE.get(verdict, verdict.value)} #{item_id}"
    if members:
        what += f" and {_plural(members, 'cluster member')}"
    if verdict is Verdict.ESCALATE:
        what += " to a lead"
    if verdict is Verdict.SKIP and queue == "review":
        what += " (back after the rest of the queue)"
    return what


def decision_feedback(
    verdict: Verdict,
    item_id: int,
    members: int,
    queue: str,
    outcome: DecisionOutcome | None = None,
) -> str:
    """One line saying what a key press did: "Confirmed #123 and 4 cluster members · 11 hashes
    added · U to undo". Without ``outcome`` the decision is journalled but not yet saved."""
    parts = [_what(outcome.verdict if outcome else verdict, item_id, members, queue)]
    if outcome is None:
        parts.append("saving…")
    elif outcome.late:
        parts.append("someone had already decided it: recorded, no hashes changed")
        if outcome.conflict:
            parts.append("the disagreement goes to a lead")
    else:
        if outcome.hashes_added:
            parts.append(f"{_plural(outcome.hashes_added, 'hash', 'hashes')} added")
        if outcome.hashes_retracted:
            parts.append(f"{_plural(outcome.hashes_retracted, 'hash', 'hashes')} retracted")
    if queue == "review":
        parts.append("U to undo")
    return " · ".join(parts)


def undo_feedback(undone: DecisionRequest | None, outcome: DecisionOutcome | None) -> str:
    """ "Undid: confirm of #123 and 4 cluster members · 11 hashes retracted"."""
    if undone is not None:
        what = f"{undone.verdict.value} of #{undone.item_id}"
    elif outcome is not None:
        what = f"your last decision on #{outcome.item_id}"
    else:
        return "Nothing to undo."
    parts = [f"Undid: {what}"]
    if outcome is None:
        parts.append("saving…")
    else:
        if outcome.cluster_members:
            parts[0] += f" and {_plural(outcome.cluster_members, 'cluster member')}"
        if outcome.hashes_retracted:
            parts.append(f"{_plural(outcome.hashes_retracted, 'hash', 'hashes')} retracted")
    return " · ".join(parts)


def category_range(taxonomy: Taxonomy) -> str:
    """The category keys as a moderator presses them: "1-7" (or the keys themselves)."""
    keys = [c.shortcut for c in taxonomy.categories]
    if not keys:
        return "none"
    if all(k.isdigit() for k in keys) and [int(k) for k in keys] == list(
        range(int(keys[0]), int(keys[0]) + len(keys))
    ):
        return keys[0] if len(keys) == 1 else f"{keys[0]}-{keys[-1]}"
    return ", ".join(keys)


@dataclass
class PreparedItem:
    item: QueueItem
    preview: ScreenPreview | None
    message: str  # shown instead of a picture (unreadable media, missing preview)


class ReviewController(QObject):
    item_changed = Signal(object)  # PreparedItem | None
    counts_changed = Signal(object)  # QueueCounts
    sync_changed = Signal(int)  # decisions waiting to be written
    sync_problem = Signal(str)  # why the shared database cannot be reached ("" when it can)
    decision_recorded = Signal(object)  # DecisionOutcome
    undo_done = Signal(object)  # DecisionOutcome | None
    message = Signal(str)
    category_changed = Signal(object)  # Category | None
    member_changed = Signal(object, int, int)  # PreparedItem shown, index, cluster size
    feedback = Signal(str)  # what the last key press did, in one line

    def __init__(
        self, ctx: AppContext, user: UserInfo, tasks: TaskRunner, queue: str = "review"
    ) -> None:
        super().__init__()
        self.ctx = ctx
        self.user = user
        self.tasks = tasks
        # "review", "escalations" (leads) or "second_review" (blind); see ReviewService.
        self.queue = queue
        self.current: PreparedItem | None = None
        self.upcoming: deque[PreparedItem] = deque()
        self.category: Category | None = None
        self.skipped: set[int] = set()
        self.inflight_ids: set[int] = set()
        # Claimed items in claim order; previews may finish preparing out of order, but the
        # screen shows items in the order the queue served them (deadline first).
        self._claim_order: deque[int] = deque()
        self._ready: dict[int, PreparedItem] = {}
        self.fetching = 0
        self.exhausted = False
        self.busy = False  # a decision or undo is being handed off
        self.armed = True  # False from a keyboard decision until its key is released
        self.dwell_seconds = 0.2
        self._shown_at = 0.0
        self.journal = ctx.journal
        self.syncer = JournalSync(ctx.journal, ctx.review, ctx.exposure)
        self.pending = self.journal.pending_count()
        self.sync_error: str | None = None
        self._sync_running = False
        self._sync_again = False
        self._sync_failures = 0
        # (decision, what was on screen) of this session, newest last: undo shows it again.
        self._history: deque[tuple[DecisionRequest, PreparedItem]] = deque(maxlen=UNDO_DEPTH)
        # Undos journalled and not yet landed: their UUID -> the decision they take back.
        self._undos_waiting: dict[str, DecisionRequest] = {}
        # Decisions of this session not yet landed: UUID -> (cluster members on screen).
        self._decisions_waiting: dict[str, int] = {}
        self._last_press = ""  # UUID of the latest decision or undo: its feedback is shown
        self._lease_timer = QTimer(self)
        self._lease_timer.timeout.connect(self._renew_leases)
        self._lease_timer.start(max(5, ctx.settings.lease_seconds // 3) * 1000)
        self._poll_timer = QTimer(self)
        self._poll_timer.timeout.connect(self._poll_when_empty)
        self._poll_timer.start(10_000)
        self._retry_timer = QTimer(self)
        self._retry_timer.setSingleShot(True)
        self._retry_timer.timeout.connect(self._sync)
        # Cluster paging: the members behind the representative on screen, prepared lazily.
        self._members: list[PreparedItem | None] | None = None
        self._member_items: list[QueueItem] = []
        self.member_index = 0

    # -- loading ---------------------------------------------------------------------------

    def start(self) -> None:
        # Decisions journalled by an earlier run that never reached the database (it was
        # killed, or the database was down) land before anything else.
        self.sync_changed.emit(self.pending)
        self._sync()
        # Items this user still holds in this queue from an earlier run (a crash, a kill) go
        # back first.
        review, uid, queue = self.ctx.review, self.user.id, self.queue
        self.tasks.write(
            lambda: review.release(uid, review.my_claims(uid, queue)), on_error=lambda e: None
        )
        self.refresh_counts()
        self._top_up()

    def held_ids(self) -> set[int]:
        ids = {p.item.id for p in self.upcoming} | self.inflight_ids
        if self.current is not None:
            ids.add(self.current.item.id)
        return ids

    def _top_up(self) -> None:
        while not self.exhausted and len(self.upcoming) + self.fetching < PREFETCH:
            self.fetching += 1
            exclude = self.held_ids() | self.skipped
            self.tasks.write(
                lambda ex=exclude: self.ctx.review.claim_next(
                    self.user.id, exclude=ex, queue=self.queue
                ),
                on_done=self._claimed,
                on_error=self._fetch_failed,
            )
        if self.current is None and not self.upcoming and self.fetching == 0:
            self.item_changed.emit(None)

    def _claimed(self, item: QueueItem | None) -> None:
        if item is None:
            self.fetching -= 1
            if self.skipped:
                # Everything else is served: the items skipped in this session come back.
                n = len(self.skipped)
                self.skipped.clear()
                self.message.emit(
                    f"The rest of the queue is done: the {_plural(n, 'item')} you skipped "
                    "come back now."
                )
                self._top_up()
                return
            self.exhausted = True
            self._top_up()
            return
        self.inflight_ids.add(item.id)
        self._claim_order.append(item.id)
        self.tasks.read(
            lambda: self._prepare(item), on_done=self._prepared, on_error=self._fetch_failed
        )

    def _prepare(self, item: QueueItem) -> PreparedItem:
        """Runs on a worker: read and blur the stored preview (small, never the original)."""
        if item.kind is MediaKind.UNREADABLE or not item.preview_key:
            why = item.error or "no preview could be made"
            return PreparedItem(item, None, f"unreadable: {why}")
        try:
            data = self.ctx.store.get_bytes(item.preview_key)
            prepared = prepare_preview(data, item.preview_frames)
        except Exception as exc:  # never raises: the item must still be shown and decidable
            return PreparedItem(item, None, f"preview missing or damaged: {exc}")
        return PreparedItem(item, ScreenPreview.from_prepared(prepared), "")

    def _prepared(self, prepared: PreparedItem) -> None:
        self.fetching -= 1
        self._ready[prepared.item.id] = prepared
        while self._claim_order and self._claim_order[0] in self._ready:
            ready = self._ready.pop(self._claim_order.popleft())
            self.inflight_ids.discard(ready.item.id)
            self.upcoming.append(ready)
        if self.current is None and not self.busy:
            self._advance()
        self._top_up()

    def _fetch_failed(self, exc: Exception) -> None:
        self.fetching = max(0, self.fetching - 1)
        self.message.emit(f"Could not load the next item: {exc}")
        self.exhausted = True  # the poll timer tries again

    def _poll_when_empty(self) -> None:
        if self.exhausted and self.fetching == 0:
            self.exhausted = False
            self._top_up()

    def _advance(self) -> None:
        self._members = None
        self.member_index = 0
        self.current = self.upcoming.popleft() if self.upcoming else None
        self.category = None
        self.category_changed.emit(None)
        self._shown_at = time.monotonic()
        self.item_changed.emit(self.current)
        self._top_up()

    # -- input guards ----------------------------------------------------------------------

    def key_released(self) -> None:
        self.armed = True

    def accepts(self, by_key: bool) -> bool:
        """Whether a key (or a button) may record a decision now."""
        return self._accepts(by_key)

    def _accepts(self, by_key: bool) -> bool:
        if self.busy or (by_key and not self.armed):
            return False
        return time.monotonic() - self._shown_at >= self.dwell_seconds

    # -- decisions -------------------------------------------------------------------------

    def choose_category(self, category: Category) -> None:
        if self.current is None:
            return
        self.category = category
        self.category_changed.emit(category)

    def decide(self, verdict: Verdict, note: str = "", by_key: bool = True) -> bool:
        """Record ``verdict`` for the item on screen. Returns False if the input was refused."""
        if self.current is None or not self._accepts(by_key):
            return False
        if verdict is Verdict.CONFIRM and self.category is None:
            self.message.emit(
                f"Choose a category ({category_range(self.ctx.taxonomy)}) before confirming."
            )
            return False
        cat = self.category if verdict is Verdict.CONFIRM else None
        req = DecisionRequest(
            item_id=self.current.item.id,
            user_id=self.user.id,
            verdict=verdict,
            category=cat.key if cat else None,
            category_label=cat.label if cat else None,
            note=note.strip() or None,
            method=(
                DecisionMethod.SECOND_REVIEW
                if self.queue == "second_review"
                else DecisionMethod.MANUAL
            ),
        )
        try:
            # On disk before the screen moves on: if this fails the item stays on screen.
            self.journal.record_decision(req)
        except Exception as exc:
            self.message.emit(f"Decision NOT recorded (the local journal failed): {exc}")
            return False
        if by_key:
            self.armed = False
        if verdict is Verdict.SKIP:
            self.skipped.add(req.item_id)
        members = max(0, self.current.item.cluster_size - 1) if verdict is not Verdict.SKIP else 0
        self._decisions_waiting[req.uuid] = members
        self._last_press = req.uuid
        self.feedback.emit(decision_feedback(verdict, req.item_id, members, self.queue))
        self._history.append((req, self.current))
        self._journalled()
        self._advance()
        return True

    # -- the journal and the shared database ------------------------------------------------

    def _journalled(self) -> None:
        self.pending = self.journal.pending_count()
        self.sync_changed.emit(self.pending)
        self._sync()

    def exposure_journalled(self) -> None:
        """An unblurred moment was journalled: it lands with the decisions, in order."""
        self._journalled()

    def sync_now(self) -> None:
        """Try to land waiting decisions now instead of at the next backoff step."""
        self._sync()

    def _sync(self) -> None:
        """Apply the journal on the serial writer; one run at a time, another if more came."""
        if self._sync_running:
            self._sync_again = True
            return
        self._sync_running = True
        self._retry_timer.stop()
        self.tasks.write(self.syncer.sync, on_done=self._synced, on_error=self._sync_crashed)

    def _synced(self, report: SyncReport) -> None:
        self._sync_running = False
        self.pending = self.journal.pending_count()
        for entry, outcome in report.landed:
            if entry.kind is EntryKind.DECIDE:
                members = self._decisions_waiting.pop(entry.uuid, None)
                if members is not None and entry.uuid == self._last_press:
                    self.feedback.emit(
                        decision_feedback(
                            outcome.verdict, outcome.item_id, members, self.queue, outcome
                        )
                    )
                self.decision_recorded.emit(outcome)
            elif entry.uuid in self._undos_waiting:
                undone = self._undos_waiting.pop(entry.uuid)
                if entry.uuid == self._last_press:
                    self.feedback.emit(undo_feedback(undone, outcome))
                self.undo_done.emit(outcome)
        for entry, why in report.refused:
            self.message.emit(f"The database refused a decision: {why}")
            self._decisions_waiting.pop(entry.uuid, None)
            if entry.uuid in self._undos_waiting:
                self._undos_waiting.pop(entry.uuid)
                self.undo_done.emit(None)
        if report.error is not None:
            if self.sync_error is None:
                self.message.emit(
                    f"Database unreachable, decisions are kept on this workstation: {report.error}"
                )
            self.sync_error = report.error
            self._sync_failures += 1
            self._retry_timer.start(int(backoff_seconds(self._sync_failures) * 1000))
        else:
            if self.sync_error is not None:
                self.message.emit("Database reachable again: waiting decisions saved.")
                self._poll_when_empty()
            elif report.landed:
                # A skip that just landed puts its item back in the queue: an empty screen
                # looks again now rather than at the next poll.
                self._poll_when_empty()
            self.sync_error = None
            self._sync_failures = 0
        self.sync_problem.emit(self.sync_error or "")
        self.sync_changed.emit(self.pending)
        if report.landed:
            self.refresh_counts()
        if self._sync_again:
            self._sync_again = False
            self._sync()

    def _sync_crashed(self, exc: Exception) -> None:  # the journal itself failed
        self._sync_running = False
        self.message.emit(f"Could not read the local journal: {exc}")
        self._sync_failures += 1
        self._retry_timer.start(int(backoff_seconds(self._sync_failures) * 1000))

    def undo(self, by_key: bool = True) -> bool:
        if not self._accepts(by_key):
            return False
        if self._history:
            return self._undo_from_journal(by_key)
        if by_key:
            self.armed = False
        # Nothing decided in this session: ask the database for this user's latest decision
        # (from an earlier session). That needs the database, so it waits for the answer.
        self.busy = True
        self.tasks.write(
            lambda: self.ctx.review.undo_last(self.user.id),
            on_done=self._undone,
            on_error=self._undo_failed,
        )
        return True

    def _undo_from_journal(self, by_key: bool) -> bool:
        """Undo this session's latest decision: journalled like a decision (it lands after the
        decision it takes back, in journal order), the item shown again at once from memory."""
        req, prepared = self._history[-1]
        undo_uuid = str(uuidlib.uuid4())
        try:
            self.journal.record_undo(self.user.id, undo_uuid, req.uuid)
        except Exception as exc:
            self.message.emit(f"Undo NOT recorded (the local journal failed): {exc}")
            return False
        self._history.pop()
        if by_key:
            self.armed = False
        self._undos_waiting[undo_uuid] = req
        self._last_press = undo_uuid
        self._decisions_waiting.pop(req.uuid, None)
        self.feedback.emit(undo_feedback(req, None))
        self.skipped.discard(req.item_id)
        if self.current is not None:
            self.upcoming.appendleft(self.current)
        self.upcoming.appendleft(prepared)
        self._advance()
        self._journalled()
        return True

    def _undone(self, outcome: DecisionOutcome | None) -> None:
        if outcome is None:
            self.busy = False
            self.message.emit("Nothing to undo.")
            self.feedback.emit(undo_feedback(None, None))
            self.undo_done.emit(None)
            return
        self.skipped.discard(outcome.item_id)

        def load() -> PreparedItem:
            return self._prepare(self.ctx.review.load_item(outcome.item_id))

        def show(prepared: PreparedItem) -> None:
            if self.current is not None:
                self.upcoming.appendleft(self.current)
            self.upcoming.appendleft(prepared)
            self.busy = False
            self._advance()
            self.refresh_counts()
            self.feedback.emit(undo_feedback(None, outcome))
            self.undo_done.emit(outcome)

        self.tasks.read(load, on_done=show, on_error=self._undo_failed)

    def _undo_failed(self, exc: Exception) -> None:
        self.busy = False
        self.message.emit(f"Undo failed: {exc}")

    # -- upkeep ----------------------------------------------------------------------------

    def refresh_counts(self) -> None:
        self.tasks.read(
            lambda: self.ctx.review.counts(self.user.id, queue=self.queue),
            on_done=lambda c: self.counts_changed.emit(c),
            on_error=lambda exc: None,
        )

    def _renew_leases(self) -> None:
        ids = self.held_ids()
        if ids:
            self.tasks.write(
                lambda: self.ctx.review.renew(self.user.id, ids), on_error=lambda exc: None
            )

    def shutdown(self) -> None:
        """Give back claimed items and wait for pending writes (on window close)."""
        for t in (self._lease_timer, self._poll_timer, self._retry_timer):
            t.stop()
        if self.pending:  # one last try; what cannot land now lands on the next start
            self.tasks.write(self.syncer.sync, on_error=lambda e: None)
        self.tasks.wait(15000)  # work in flight (a claim for the next item) lands first
        ids = set(self.held_ids())
        review, uid, queue = self.ctx.review, self.user.id, self.queue
        self.tasks.write(
            lambda: review.release(uid, sorted(ids | set(review.my_claims(uid, queue)))),
            on_error=lambda e: None,
        )
        self.tasks.wait(15000)

    # -- cluster paging --------------------------------------------------------------------

    def page_member(self, delta: int) -> None:
        """Show the next/previous member of the cluster on screen. The decision still covers
        the whole cluster; this is for looking, not deciding one member alone."""
        cur = self.current
        if cur is None or cur.item.cluster_size <= 1 or self.busy:
            return
        if self._members is None:
            rep = cur

            def load() -> list[QueueItem]:
                return self.ctx.review.cluster_members(rep.item.id)

            def loaded(members: list[QueueItem]) -> None:
                if self.current is not rep:
                    return  # the screen moved on meanwhile
                self._member_items = members
                self._members = [rep] + [None] * len(members)
                self.page_member(delta)

            self.tasks.read(load, on_done=loaded, on_error=lambda e: self.message.emit(str(e)))
            return
        n = len(self._members)
        index = (self.member_index + delta) % n
        self.member_index = index
        shown = self._members[index]
        if shown is not None:
            self.member_changed.emit(shown, index, n)
            return
        item = self._member_items[index - 1]
        rep = self.current

        def prepared(p: PreparedItem) -> None:
            if self.current is rep and self._members is not None:
                self._members[index] = p
                if self.member_index == index:
                    self.member_changed.emit(p, index, n)

        self.tasks.read(lambda: self._prepare(item), on_done=prepared)


__all__ = [
    "PreparedItem",
    "QueueCounts",
    "ReviewController",
    "category_range",
    "decision_feedback",
    "undo_feedback",
]
