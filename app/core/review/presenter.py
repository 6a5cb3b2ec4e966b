"""The review screen's rules, without Qt: a plain class driven by the window's key presses and
timers, painting through a view protocol, tested with fakes at full speed.

It claims items and prepares their previews in the background (``PREFETCH`` ahead, shown in
the order the queue served them), refuses input that would record a decision twice
(:mod:`guards`), keeps this session's decisions for undo (``UNDO_DEPTH``, from memory), and
journals every decision, undo and unblurred moment before the screen moves on; the outbox
(``storage.outbox``) applies the journal on the serial writer and says when to try again.
Skipped items stay out of the way until the rest of the queue is served, then come back (a skip
is "not now", not "never": an overdue removal order must not vanish). It also owns the
exposure accounting (one held key is one reveal), the break and daily-limit screens and the
idle lock (:mod:`locks`).
"""

from __future__ import annotations

import uuid as uuidlib
from collections import deque
from collections.abc import Callable
from functools import partial

from app.core.errors import describe
from app.core.model.decisions import DecisionOutcome, DecisionRequest, QueueCounts
from app.core.model.domain import Category, DecisionMethod, MediaKind, QueueItem, UserInfo, Verdict
from app.core.model.exposure import BreakPolicy, ExposureEvent, ExposureKind
from app.core.model.taxonomy import Taxonomy
from app.core.review.exposure_meter import HOLD_GRACE_SECONDS, ExposureMeter, Hold, RevealHold
from app.core.review.feedback import (
    category_range,
    decision_feedback,
    not_confirmed_text,
    skipped_back_text,
    undo_feedback,
)
from app.core.review.guards import DWELL_SECONDS, InputGuard, RepeatFilter
from app.core.review.locks import IdleLock, Page
from app.core.review.ports import (
    Clock,
    ExposureTotalsPort,
    JournalPort,
    OutboxPort,
    PreparedItem,
    QueuePort,
    ReviewView,
    Runner,
    SyncNews,
    SyncResult,
)

PREFETCH = 2
UNDO_DEPTH = 50  # decisions of this session that can be undone from memory
POLL_SECONDS = 10.0  # an empty screen asks the queue again this often


class ReviewPresenter:
    def __init__(
        self,
        *,
        view: ReviewView,
        queue_port: QueuePort,
        journal: JournalPort,
        outbox: OutboxPort,
        runner: Runner,
        clock: Clock,
        user: UserInfo,
        taxonomy: Taxonomy,
        prepare: Callable[[QueueItem], PreparedItem],
        policy: BreakPolicy,
        exposure_totals: ExposureTotalsPort | None = None,
        verify_password: Callable[[str, str], bool] | None = None,
        queue: str = "review",
        lease_seconds: int = 300,
        idle_lock_seconds: float = 0,
        dwell_seconds: float = DWELL_SECONDS,
    ) -> None:
        self.view = view
        self.service = queue_port
        self.journal = journal
        self.outbox = outbox
        self.runner = runner
        self.clock = clock
        self.user = user
        self.taxonomy = taxonomy
        self.prepare = prepare
        self.exposure_totals = exposure_totals
        self.verify_password = verify_password
        # "review", "escalations" (leads) or "second_review" (blind); see ReviewService.
        self.queue = queue
        self.guard = InputGuard(clock, dwell_seconds)
        self.repeats = RepeatFilter(round(HOLD_GRACE_SECONDS * 1000))
        self.meter = ExposureMeter(user.id, policy, clock, self._exposure_ended)
        self.hold = RevealHold()
        self.idle = IdleLock(clock, idle_lock_seconds)
        self.page = Page.REVIEW
        self._page_before_lock = Page.REVIEW
        self._break_why = ""
        self._break_past_limit = False
        self.current: PreparedItem | None = None
        self.shown: PreparedItem | None = None  # whose picture shows (a cluster member too)
        self.upcoming: deque[PreparedItem] = deque()
        self.category: Category | None = None
        self.counts: QueueCounts | None = None
        self.skipped: set[int] = set()
        self.inflight_ids: set[int] = set()
        # Claimed items in claim order; previews may finish preparing out of order, but the
        # screen shows items in the order the queue served them (deadline first).
        self._claim_order: deque[int] = deque()
        self._ready: dict[int, PreparedItem] = {}
        self.fetching = 0
        self.exhausted = False
        self.pending = 0
        # (decision, what was on screen) of this session, newest last: undo shows it again.
        self._history: deque[tuple[DecisionRequest, PreparedItem]] = deque(maxlen=UNDO_DEPTH)
        # Undos journalled and not yet landed: their UUID -> the decision they take back.
        self._undos_waiting: dict[str, DecisionRequest] = {}
        # Decisions of this session not yet landed: UUID -> (cluster members on screen).
        self._decisions_waiting: dict[str, int] = {}
        self._last_press = ""  # UUID of the latest decision or undo: its feedback is shown
        # Cluster paging: the members behind the representative on screen, prepared lazily.
        self._members: list[PreparedItem | None] | None = None
        self._member_items: list[QueueItem] = []
        self.member_index = 0
        # What the preview shows unblurred: all of it (a held key), a region (the lens).
        self.revealed = False
        self.lens_area = 0.0
        self.renew_every = max(5, lease_seconds // 3)
        now = clock()
        self._next_renew = now + self.renew_every
        self._next_poll = now + POLL_SECONDS

    # -- loading ---------------------------------------------------------------------------

    def start(self) -> None:
        # Decisions journalled by an earlier run that never reached the database (it was
        # killed, or the database was down) land before anything else.
        self.pending = self.outbox.pending_count()
        self.view.show_sync(self.pending, None)
        self.outbox.request()
        self._pump()
        # Items this user still holds in this queue from an earlier run (a crash, a kill) go
        # back first.
        service, uid, queue = self.service, self.user.id, self.queue
        self.runner.write(
            lambda: service.release(uid, service.my_claims(uid, queue)), on_error=_ignore
        )
        self.refresh_counts()
        self._top_up()
        self.view.show_exposure(self.meter.status_text())
        if self.exposure_totals is not None:
            totals, since = self.exposure_totals, self.meter.since
            self.runner.read(
                lambda: totals.today(uid, before=since),
                on_done=lambda r: self._today_loaded(*r),
                on_error=_ignore,
            )

    def _today_loaded(self, seconds: float, items: set[int]) -> None:
        self.meter.load_today(seconds, items)
        self.view.show_exposure(self.meter.status_text())

    def held_ids(self) -> set[int]:
        ids = {p.item.id for p in self.upcoming} | self.inflight_ids
        if self.current is not None:
            ids.add(self.current.item.id)
        return ids

    def _top_up(self) -> None:
        service, uid, queue = self.service, self.user.id, self.queue
        # Claimed and ready, claimed and preparing, ready but waiting for an earlier claim's
        # preview: together never more than PREFETCH ahead.
        while not self.exhausted and len(self.upcoming) + len(self._ready) + self.fetching < (
            PREFETCH
        ):
            self.fetching += 1
            exclude = self.held_ids() | self.skipped
            self.runner.write(
                partial(service.claim_next, uid, exclude=exclude, queue=queue),
                on_done=self._claimed,
                on_error=self._fetch_failed,
            )
        if self.current is None and not self.upcoming and self.fetching == 0:
            self.shown = None
            self.view.show_item(None)

    def _claimed(self, item: QueueItem | None) -> None:
        if item is None:
            self.fetching -= 1
            if self.skipped:
                # Everything else is served: the items skipped in this session come back.
                n = len(self.skipped)
                self.skipped.clear()
                self.view.show_message(skipped_back_text(n))
                self._top_up()
                return
            self.exhausted = True
            self._top_up()
            return
        self.inflight_ids.add(item.id)
        self._claim_order.append(item.id)
        prepare = self.prepare
        self.runner.read(lambda: prepare(item), on_done=self._prepared, on_error=self._fetch_failed)

    def _prepared(self, prepared: PreparedItem) -> None:
        self.fetching -= 1  # ready now: counted in _ready until its turn comes
        self._ready[prepared.item.id] = prepared
        while self._claim_order and self._claim_order[0] in self._ready:
            ready = self._ready.pop(self._claim_order.popleft())
            self.inflight_ids.discard(ready.item.id)
            self.upcoming.append(ready)
        if self.current is None and not self.guard.busy:
            self._advance()
        self._top_up()

    def _fetch_failed(self, exc: Exception) -> None:
        self.fetching = max(0, self.fetching - 1)
        self.view.show_message(f"Could not load the next item: {exc}")
        self.exhausted = True  # the poll tries again

    def poll_when_empty(self) -> None:
        if self.exhausted and self.fetching == 0:
            self.exhausted = False
            self._top_up()

    def _advance(self) -> None:
        self._conceal()
        self.lens_area = 0.0
        self._members = None
        self.member_index = 0
        self.current = self.upcoming.popleft() if self.upcoming else None
        self.shown = self.current
        self.category = self._incident_category()
        self.view.show_category(self.category)
        self.guard.item_shown()
        self.view.show_item(self.current)
        self._top_up()

    def _incident_category(self) -> Category | None:
        """An item under an active incident: the first of the incident's categories the
        taxonomy knows, chosen for the confirm (the moderator may pick another); else none."""
        if self.current is None:
            return None
        for key in self.current.item.incident_categories:
            cat = self.taxonomy.by_key(key)
            if cat is not None:
                return cat
        return None

    # -- input guards ----------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self.guard.busy

    def key_released(self, key: int = 0, time_ms: int = 0) -> None:
        """A key came up (``time_ms``: the platform's event time, 0 if unknown)."""
        self.guard.key_released()
        self.repeats.released(key, time_ms)

    def is_repeat(self, key: int, time_ms: int) -> bool:
        """Whether a press is the platform's unflagged auto-repeat of the key just released
        (the window drops it: a held key decides once)."""
        return self.repeats.is_repeat(key, time_ms)

    def accepts(self, by_key: bool) -> bool:
        """Whether a key (or a button) may record a decision now."""
        return self.page is Page.REVIEW and self.guard.accepts(by_key)

    # -- decisions -------------------------------------------------------------------------

    def choose_category(self, category: Category) -> None:
        if self.current is None:
            return
        self.category = category
        self.view.show_category(category)

    def decide(self, verdict: Verdict, note: str = "", by_key: bool = True) -> bool:
        """Record ``verdict`` for the item on screen. Returns False if the input was refused."""
        if self.current is None or not self.accepts(by_key):
            return False
        if verdict is Verdict.CONFIRM and self.category is None:
            self.view.show_message(
                f"Choose a category ({category_range(self.taxonomy)}) before confirming."
            )
            # On the last-action line too, until the next action replaces it (issue 25): the
            # previous decision's line, even when it lands later, must not stand for this one.
            self._last_press = ""
            self.view.show_refusal(not_confirmed_text(self.taxonomy))
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
            self.view.show_message(f"Decision NOT recorded (the local journal failed): {exc}")
            return False
        self.guard.pressed(by_key)
        if verdict is Verdict.SKIP:
            self.skipped.add(req.item_id)
        members = max(0, self.current.item.cluster_size - 1) if verdict is not Verdict.SKIP else 0
        self._decisions_waiting[req.uuid] = members
        self._last_press = req.uuid
        self.view.show_feedback(decision_feedback(verdict, req.item_id, members, self.queue))
        self._history.append((req, self.current))
        self._journalled()
        self._advance()
        return True

    def undo(self, by_key: bool = True) -> bool:
        if not self.accepts(by_key):
            return False
        if self._history:
            return self._undo_from_memory(by_key)
        self.guard.pressed(by_key)
        # Nothing decided in this session: ask the database for this user's latest decision
        # (from an earlier session). That needs the database, so it waits for the answer.
        self.guard.busy = True
        service, uid = self.service, self.user.id
        self.runner.write(
            lambda: service.undo_last(uid), on_done=self._undone, on_error=self._undo_failed
        )
        return True

    def _undo_from_memory(self, by_key: bool) -> bool:
        """Undo this session's latest decision: journalled like a decision (it lands after the
        decision it takes back, in journal order), the item shown again at once from memory."""
        req, prepared = self._history[-1]
        undo_uuid = str(uuidlib.uuid4())
        try:
            self.journal.record_undo(self.user.id, undo_uuid, req.uuid)
        except Exception as exc:
            self.view.show_message(f"Undo NOT recorded (the local journal failed): {exc}")
            return False
        self._history.pop()
        self.guard.pressed(by_key)
        self._undos_waiting[undo_uuid] = req
        self._last_press = undo_uuid
        self._decisions_waiting.pop(req.uuid, None)
        self.view.show_feedback(undo_feedback(req, None))
        self.skipped.discard(req.item_id)
        if self.current is not None:
            self.upcoming.appendleft(self.current)
        self.upcoming.appendleft(prepared)
        self._advance()
        self._journalled()
        return True

    def _undone(self, outcome: DecisionOutcome | None) -> None:
        if outcome is None:
            self.guard.busy = False
            self.view.show_message("Nothing to undo.")
            self.view.show_feedback(undo_feedback(None, None))
            self.view.undo_landed(None)
            return
        self.skipped.discard(outcome.item_id)
        service, prepare = self.service, self.prepare

        def load() -> PreparedItem:
            return prepare(service.load_item(outcome.item_id))

        def show(prepared: PreparedItem) -> None:
            if self.current is not None:
                self.upcoming.appendleft(self.current)
            self.upcoming.appendleft(prepared)
            self.guard.busy = False
            self._advance()
            self.refresh_counts()
            self.view.show_feedback(undo_feedback(None, outcome))
            self.view.undo_landed(outcome)

        self.runner.read(load, on_done=show, on_error=self._undo_failed)

    def _undo_failed(self, exc: Exception) -> None:
        self.guard.busy = False
        self.view.show_message(f"Undo failed: {exc}")

    # -- the journal and the shared database ------------------------------------------------

    def _journalled(self) -> None:
        self.pending = self.outbox.pending_count()
        self.view.show_sync(self.pending, self.outbox.error)
        self.outbox.request()
        self._pump()

    def sync_now(self) -> None:
        """Try to land waiting entries now instead of at the next backoff step."""
        self.outbox.request()
        self._pump()

    def _pump(self) -> None:
        """Apply the journal on the serial writer when the outbox says it is due."""
        if not self.outbox.due(self.clock()):
            return
        self.outbox.begin()
        self.runner.write(self.outbox.sync, on_done=self._synced, on_error=self._sync_crashed)

    def _synced(self, result: SyncResult) -> None:
        news = self.outbox.settle(result, self.clock())
        self.pending = self.outbox.pending_count()
        for landed in result.landed:
            if landed.kind == "decide":
                members = self._decisions_waiting.pop(landed.uuid, None)
                outcome = landed.outcome
                if outcome is None:
                    continue
                if members is not None and landed.uuid == self._last_press:
                    self.view.show_feedback(
                        decision_feedback(
                            outcome.verdict, outcome.item_id, members, self.queue, outcome
                        )
                    )
                self.view.decision_landed(outcome)
            elif landed.uuid in self._undos_waiting:
                undone = self._undos_waiting.pop(landed.uuid)
                if landed.uuid == self._last_press:
                    self.view.show_feedback(undo_feedback(undone, landed.outcome))
                self.view.undo_landed(landed.outcome)
        for uuid, why in result.refused:
            self.view.show_message(f"The database refused a decision: {why}")
            self._decisions_waiting.pop(uuid, None)
            if uuid in self._undos_waiting:
                self._undos_waiting.pop(uuid)
                self.view.undo_landed(None)
        if news.went_down and result.fault:
            self.view.show_message(
                f"A decision could not be saved yet and will be tried again: {result.error}"
            )
        elif news.went_down:
            self.view.show_message(
                f"Database unreachable, decisions are kept on this workstation: {result.error}"
            )
        if news.came_back:
            self.view.show_message("Database reachable again: waiting decisions saved.")
            self.poll_when_empty()
        elif result.error is None and result.landed:
            # A skip that just landed puts its item back in the queue: an empty screen looks
            # again now rather than at the next poll.
            self.poll_when_empty()
        self.view.show_sync(self.pending, self.outbox.error)
        if result.landed:
            self.refresh_counts()
        self._after_sync(news)

    def _sync_crashed(self, exc: Exception) -> None:  # the journal itself failed
        self.view.show_message(f"Could not read the local journal: {describe(exc)}")
        self._after_sync(self.outbox.crashed(str(exc), self.clock()))

    def _after_sync(self, news: SyncNews) -> None:
        if news.retry_in is None:
            return
        if news.retry_in <= 0:
            self._pump()
        else:
            self.runner.later(news.retry_in, self._pump)

    # -- upkeep ----------------------------------------------------------------------------

    def refresh_counts(self) -> None:
        service, uid, queue = self.service, self.user.id, self.queue
        self.runner.read(
            lambda: service.counts(uid, queue=queue),
            on_done=self._counted,
            on_error=_ignore,
        )

    def _counted(self, counts: QueueCounts) -> None:
        self.counts = counts
        self.view.show_counts(counts)

    def renew_leases(self) -> None:
        ids = self.held_ids()
        if ids:
            service, uid = self.service, self.user.id
            self.runner.write(lambda: service.renew(uid, ids), on_error=_ignore)

    def tick(self) -> None:
        """About once a second: review time for the break rules, the idle lock, the leases,
        an empty screen's poll, a sync whose backoff has run out."""
        self.meter.tick()
        self._check_break()
        if self.page is not Page.LOCK and self.idle.due():
            self.lock()
        now = self.clock()
        if now >= self._next_renew:
            self._next_renew = now + self.renew_every
            self.renew_leases()
        if now >= self._next_poll:
            self._next_poll = now + POLL_SECONDS
            self.poll_when_empty()
        self._pump()

    def shutdown(self) -> None:
        """Give back claimed items and wait for pending writes (on window close)."""
        self._conceal()  # journalled before the last sync below
        if self.outbox.pending_count():  # one last try; what cannot land now lands next start
            self.runner.write(self.outbox.sync, on_error=_ignore)
        self.runner.wait(15000)  # work in flight (a claim for the next item) lands first
        ids = set(self.held_ids())
        service, uid, queue = self.service, self.user.id, self.queue
        self.runner.write(
            lambda: service.release(uid, sorted(ids | set(service.my_claims(uid, queue)))),
            on_error=_ignore,
        )
        self.runner.wait(15000)

    # -- cluster paging --------------------------------------------------------------------

    def page_member(self, delta: int) -> None:
        """Show the next/previous member of the cluster on screen. The decision still covers
        the whole cluster; this is for looking, not deciding one member alone."""
        cur = self.current
        if cur is None or cur.item.cluster_size <= 1 or self.guard.busy:
            return
        if self._members is None:
            rep, service = cur, self.service

            def loaded(members: list[QueueItem]) -> None:
                if self.current is not rep:
                    return  # the screen moved on meanwhile
                self._member_items = members
                self._members = [rep] + [None] * len(members)
                self.page_member(delta)

            self.runner.read(
                lambda: service.cluster_members(rep.item.id),
                on_done=loaded,
                on_error=lambda e: self.view.show_message(str(e)),
            )
            return
        n = len(self._members)
        index = (self.member_index + delta) % n
        self.member_index = index
        shown = self._members[index]
        if shown is not None:
            self._show_member(shown, index, n)
            return
        item = self._member_items[index - 1]
        owner, prepare = self.current, self.prepare

        def prepared(p: PreparedItem) -> None:
            if self.current is owner and self._members is not None:
                self._members[index] = p
                if self.member_index == index:
                    self._show_member(p, index, n)

        self.runner.read(lambda: prepare(item), on_done=prepared)

    def _show_member(self, prepared: PreparedItem, index: int, size: int) -> None:
        self._conceal()
        self.lens_area = 0.0
        self.shown = prepared
        self.view.show_member(prepared, index, size)

    # -- exposure --------------------------------------------------------------------------

    def reveal_pressed(self, auto_repeat: bool = False) -> None:
        """The reveal key (Space) went down: the whole picture unblurred while it is held."""
        self.idle.activity()
        if self.hold.press(auto_repeat) is not Hold.START:
            return
        if self.page is not Page.REVIEW or self.shown is None:
            self.hold.spend()
            return
        self.revealed = True
        self.view.show_revealed(True)
        self._measure()

    def reveal_released(self, auto_repeat: bool = False) -> None:
        """The reveal key came up: blurred again once the release has stood for the grace (a
        press within it is the platform's auto-repeat, the same hold)."""
        token = self.hold.release(auto_repeat)
        if token is not None:
            self.runner.later(HOLD_GRACE_SECONDS, lambda: self._release_settled(token))

    def _release_settled(self, token: int) -> None:
        if self.hold.settle(token) and self.revealed:
            self.revealed = False
            self.view.show_revealed(False)
            self._measure()

    def region_changed(self, area: float) -> None:
        """The region lens: the share of the picture it shows unblurred (0.0: none)."""
        self.lens_area = area
        self._measure()

    def conceal(self) -> None:
        """Blur everything now (the window lost the focus): no grace, the moment ends."""
        self._conceal()

    def _conceal(self) -> None:
        if self.revealed:
            self.revealed = False
            self.hold.spend()
            self.view.show_revealed(False)
        self._measure()

    def _measure(self) -> None:
        """What the preview shows unblurred now, for the meter: all of it, a region, nothing."""
        item = self.shown.item if self.shown is not None else None
        item_id = item.id if item is not None else None
        if self.page is not Page.REVIEW:
            self.meter.end()
        elif self.revealed:
            video = item is not None and item.kind is MediaKind.VIDEO
            self.meter.begin(item_id, ExposureKind.FRAME if video else ExposureKind.REVEAL)
        elif self.lens_area > 0:
            self.meter.begin(item_id, ExposureKind.REGION, self.lens_area)
        else:
            self.meter.end()

    def _exposure_ended(self, event: ExposureEvent) -> None:
        """An unblurred moment ended: journalled (fsync'd) and landed with the decisions."""
        try:
            self.journal.record_exposure(event)
        except Exception as exc:  # never lose the screen over the meter; say so
            self.view.show_message(f"An unblurred moment was NOT recorded: {exc}")
        self.view.show_exposure(self.meter.status_text())
        self._journalled()
        self._check_break()

    # -- breaks, the daily limit and the lock ------------------------------------------------

    def _check_break(self) -> None:
        if self.page is not Page.REVIEW:
            return
        why = self.meter.break_reason()
        if why is not None:
            self.show_break(why)

    def show_break(self, why: str) -> None:
        """A break is due: a calm screen hides the queue until the person comes back."""
        if self.page is not Page.REVIEW:
            return
        self.page = Page.BREAK
        self._leave_review()
        self._break_why = why
        self._break_past_limit = self.meter.limit_reached()
        self.view.show_break(why, self._break_past_limit)

    def end_break(self) -> None:
        """Back to the queue from the break screen (past the limit: the explicit "go on")."""
        if self.page is not Page.BREAK:
            return
        self.meter.resume(acknowledge_limit=self._break_past_limit)
        self._back_to_review()

    def lock(self) -> None:
        """Nothing of the queue stays on screen; the password brings it back."""
        if self.page is Page.LOCK:
            return
        self._page_before_lock = self.page
        self.page = Page.LOCK
        self._leave_review()
        self.view.show_lock("")

    def unlock(self, password: str) -> None:
        """Check the password off the screen's thread; right, back to the page it covered."""
        check, name = self.verify_password, self.user.username
        if check is None:
            self._unlocked(True)
            return
        self.runner.read(
            lambda: check(name, password),
            on_done=self._unlocked,
            on_error=lambda e: self.view.show_lock(str(e)),
        )

    def _unlocked(self, ok: bool) -> None:
        if self.page is not Page.LOCK:
            return
        if not ok:
            self.view.show_lock("That password is not right.")
            return
        self.idle.activity()
        if self._page_before_lock is Page.BREAK:
            self.page = Page.BREAK
            self._break_past_limit = self.meter.limit_reached()
            self.view.show_break(self._break_why, self._break_past_limit)
            return
        # Away long enough to lock: the break counters start again, but the daily limit is
        # never agreed to by unlocking: if the lock's last reveal passed it, say so now.
        self.meter.resume(acknowledge_limit=False)
        self._back_to_review()
        self._check_break()

    def activity(self) -> None:
        """A key press or a mouse move in the window (the idle lock's clock)."""
        self.idle.activity()

    def _leave_review(self) -> None:
        self._conceal()  # the page is no longer the review: the moment ends
        self.meter.paused = True

    def _back_to_review(self) -> None:
        self.page = Page.REVIEW
        self.view.show_review()


def _ignore(_exc: Exception) -> None:
    return None
