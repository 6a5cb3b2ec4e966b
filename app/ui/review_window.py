"""The moderator's review window: layout, keys bound to the review presenter's calls
(``app.core.review.presenter``, through its Qt adapter ``review_controller``), and painting
what the presenter says. The screen's rules are the presenter's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.compose import AppContext
from app.core.model.decisions import QueueCounts
from app.core.model.domain import Category, MediaKind, QueueItem, UserInfo, Verdict, utcnow
from app.core.model.exposure import ExposureSummary
from app.core.model.roles import Permission, allowed
from app.core.review.feedback import cluster_text, empty_queue_text, my_exposure_text
from app.core.review.locks import Page
from app.core.review.ports import Clock, PreparedItem
from app.core.review.preview import BLUR_LEVELS, ComfortDefaults
from app.ui.actions import (
    HOLD_KEYS,
    QUEUE_ACTIONS,
    QUEUE_LABELS,
    RELATED_KEYS,
    REVIEW_ACTIONS,
    SESSION_ACTIONS,
    ActionSpec,
    build_actions,
    category_specs,
    key_text,
)
from app.ui.exposure import BreakScreen, LockScreen
from app.ui.preview import PreviewWidget
from app.ui.review_controller import ReviewController
from app.ui.scrubber import FrameStrip, ScrubFrames, format_ts, load_scrub
from app.ui.tasks import TaskRunner

VERDICT_FOR = {
    "confirm": Verdict.CONFIRM,
    "reject": Verdict.REJECT,
    "skip": Verdict.SKIP,
    "escalate": Verdict.ESCALATE,
}


def _fmt_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


OVERDUE_STYLE = (
    "background: #b91c1c; color: #ffffff; font-weight: bold; padding: 1px 4px; border-radius: 2px;"
)


def _fmt_left(deadline: datetime | None) -> str:
    if deadline is None:
        return "none"
    secs = int((deadline - utcnow()).total_seconds())
    sign = "" if secs >= 0 else "overdue by "
    secs = abs(secs)
    return f"{sign}{secs // 3600:d}:{secs % 3600 // 60:02d}:{secs % 60:02d}"


def cheat_sheet_rows(specs: tuple[ActionSpec, ...], actions: dict) -> list[list[tuple[str, str]]]:
    """The cheat sheet's rows: related keys share a row (confirm/reject, previous/next, the
    categories two by two); everything else has a row of its own; hold keys last."""
    by_id = {s.id: s for s in specs}
    partner = {a: b for a, b in RELATED_KEYS} | {b: a for a, b in RELATED_KEYS}
    rows: list[list[tuple[str, str]]] = []
    placed: set[str] = set()
    categories = [s for s in specs if s.group == "category"]
    for spec in specs:
        if spec.id in placed or spec.group == "category":
            continue
        row = [spec]
        other = partner.get(spec.id)
        if other in by_id and other not in placed:
            row.append(by_id[other])
        placed.update(s.id for s in row)
        rows.append([(key_text(actions[s.id]), actions[s.id].text()) for s in row])
    for i in range(0, len(categories), 2):
        pair = categories[i : i + 2]
        rows.append([(key_text(actions[s.id]), actions[s.id].text()) for s in pair])
    rows += [[hold] for hold in HOLD_KEYS]
    return rows


class CheatSheet(QDialog):
    def __init__(self, parent: QWidget, specs: tuple[ActionSpec, ...], actions: dict) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard cheat sheet")
        self.row_groups = cheat_sheet_rows(specs, actions)
        self.rows = [entry for row in self.row_groups for entry in row]
        layout = QVBoxLayout(self)
        grid = QGridLayout()
        for r, row in enumerate(self.row_groups):
            for c, (key, label) in enumerate(row):
                k = QLabel(f"<b>{key}</b>")
                grid.addWidget(k, r, c * 2)
                grid.addWidget(QLabel(label), r, c * 2 + 1)
        layout.addLayout(grid)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)


class ReasonDialog(QDialog):
    """A short reason, asked in one line: Enter sends, Esc cancels."""

    def __init__(self, parent: QWidget, title: str, prompt: str, text: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setObjectName("reason_dialog")
        layout = QVBoxLayout(self)
        ask = QLabel(prompt)
        ask.setWordWrap(True)
        layout.addWidget(ask)
        self.reason = QLineEdit(text)
        self.reason.setObjectName("reason")
        self.reason.setMaxLength(500)
        self.reason.setPlaceholderText("a few words (required)")
        self.reason.setMinimumWidth(420)
        self.reason.returnPressed.connect(self._send)
        layout.addWidget(self.reason)
        self.hint = QLabel("Enter sends · Esc cancels")
        self.hint.setObjectName("reason_hint")
        self.hint.setStyleSheet("color: #555;")
        layout.addWidget(self.hint)
        self.reason.textChanged.connect(lambda _t: self.hint.setText("Enter sends · Esc cancels"))
        self.reason.setFocus()

    def text(self) -> str:
        return self.reason.text().strip()

    def _send(self) -> None:
        if not self.text():
            self.hint.setText("A short reason is required (Esc cancels).")
            return
        self.accept()


# The selected category: a strong fill, a border and a check mark, never a faint grey.
CATEGORY_STYLE = (
    "QPushButton { text-align: left; padding: 3px 6px; }"
    "QPushButton:checked { background: #1d4ed8; color: #ffffff; font-weight: bold; "
    "border: 2px solid #0b2a7a; border-radius: 3px; }"
)
FEEDBACK_STYLE = (
    "QLabel#feedback { background: #e6f0e8; color: #1d3b26; border: 1px solid #9cc3a6; "
    "border-radius: 3px; padding: 4px 8px; }"
    'QLabel#feedback[refused="true"] { background: #fdecea; color: #7a1c12; '
    "border: 1px solid #e3a29a; }"
    'QLabel#feedback[empty="true"] { background: transparent; border: none; }'
)
FEEDBACK_MS = 8000


QUEUE_TITLES = {
    "review": "review",
    "escalations": "escalations (lead queue)",
    "second_review": "second review (blind)",
}


ACTIVITY_EVENTS = frozenset(
    {
        QEvent.Type.KeyPress,
        QEvent.Type.MouseButtonPress,
        QEvent.Type.MouseMove,
        QEvent.Type.Wheel,
    }
)

KEY_DOWN_EVENTS = frozenset({QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress})
FILTERED_EVENTS = ACTIVITY_EVENTS | KEY_DOWN_EVENTS

FACTS: tuple[tuple[str, str], ...] = (
    ("item", "Item"),
    ("kind", "Media"),
    ("source", "Source"),
    ("external_id", "External id"),
    ("url", "Source URL"),
    ("flagged_at", "Flagged at"),
    ("score", "Score"),
    ("sightings", "Sightings"),
    ("cluster", "Cluster"),
    ("match", "Known match"),
    ("deadline", "Deadline"),
    ("sha256", "SHA-256"),
    ("escalation", "Escalation"),
)


class ReviewWindow(QMainWindow):
    """Layout, keys bound to the presenter's calls, and painting what the presenter says."""

    # The person signed out (their claims given back): the application asks who is next.
    signed_out = Signal()

    def __init__(
        self,
        ctx: AppContext,
        user: UserInfo,
        tasks: TaskRunner | None = None,
        queue: str = "review",
        clock: Clock | None = None,
        verify_password: Callable[[str, str], bool] | None = None,
    ) -> None:
        super().__init__()
        self.ctx = ctx
        self.user = user
        self.tasks = tasks or TaskRunner(self)
        self.queue = queue
        self.controller = ReviewController(
            ctx, user, self.tasks, queue=queue, clock=clock, verify_password=verify_password
        )
        self.presenter = self.controller.presenter
        self.meter = self.presenter.meter
        self.clock = self.presenter.clock
        self._signing_out = False
        self.counts: QueueCounts | None = None
        self.shown_item: QueueItem | None = None  # whose facts the side pane shows
        self.scrub_item: int | None = None  # the item whose every sampled frame is shown
        self.second_review_window: ReviewWindow | None = None
        self._reason_dialog: ReasonDialog | None = None
        what = QUEUE_TITLES.get(queue, queue)
        self.setWindowTitle(f"Hashdesk — {what} — {user.display_name} ({user.role.value})")
        self.resize(1280, 800)
        self._build()
        self._wire()
        self._countdown = QTimer(self)
        self._countdown.timeout.connect(self._update_deadline)
        self._countdown.start(1000)
        self._tick = QTimer(self)  # review time, the idle lock, leases, retries
        self._tick.timeout.connect(self.tick)
        self._tick.start(1000)
        QApplication.instance().installEventFilter(self)

    # -- layout ----------------------------------------------------------------------------

    def _build(self) -> None:
        central = QWidget(self)
        outer = QVBoxLayout(central)
        outer.addWidget(self._build_incident_banner())
        outer.addWidget(self._build_warning())
        middle = QHBoxLayout()
        middle.addLayout(self._build_picture(), 1)
        middle.addWidget(self._build_side())
        outer.addLayout(middle, 1)
        outer.addWidget(self._build_feedback())
        self._build_actions()
        outer.addLayout(self._build_decision_bar())
        self._build_pages(central)
        self._build_menus()
        self._build_status_bar()

    def _build_incident_banner(self) -> QLabel:
        """The active incident an item is under (its name and label): shown only for such
        items, above everything else (app.storage.incidents)."""
        self.incident_banner = QLabel("")
        self.incident_banner.setObjectName("incidentBanner")
        self.incident_banner.setTextFormat(Qt.TextFormat.PlainText)
        self.incident_banner.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.incident_banner.setStyleSheet(
            "QLabel#incidentBanner { background: #c05a00; color: white; padding: 8px; "
            "font-size: 15pt; font-weight: bold; border-radius: 3px; letter-spacing: 1px; }"
        )
        self.incident_banner.hide()
        return self.incident_banner

    def _build_warning(self) -> QLabel:
        self.warning = QLabel("Loading…")
        self.warning.setObjectName("warning")
        self.warning.setWordWrap(True)
        self.warning.setTextFormat(Qt.TextFormat.PlainText)
        self.warning.setStyleSheet(
            "QLabel#warning { background: #5a1e1e; color: #ffdede; padding: 6px; "
            "font-weight: bold; border-radius: 3px; }"
        )
        return self.warning

    def _build_picture(self) -> QVBoxLayout:
        """The preview, a video's frame strip under it, and the frame line."""
        left = QVBoxLayout()
        self.preview = PreviewWidget(self)
        self.apply_comfort(self.ctx.settings.comfort)  # the person's own arrive at start()
        left.addWidget(self.preview, 1)
        self.strip = FrameStrip(self.preview, self)
        self.strip.hide()
        left.addWidget(self.strip)
        self.frame_label = QLabel("")
        self.frame_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        left.addWidget(self.frame_label)
        return left

    def _build_side(self) -> QFrame:
        """What the item is, the category picker, the note."""
        side = QFrame(self)
        side.setFrameShape(QFrame.Shape.StyledPanel)
        side.setFixedWidth(360)
        side_layout = QVBoxLayout(side)
        facts = QFormLayout()
        self.facts: dict[str, QLabel] = {}
        for key, title in FACTS:
            label = QLabel("")
            label.setTextFormat(Qt.TextFormat.PlainText)  # flagged text is never markup or a link
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setWordWrap(True)
            label.setObjectName(f"fact_{key}")
            facts.addRow(title, label)
            self.facts[key] = label
        side_layout.addLayout(facts)
        side_layout.addWidget(QLabel("<b>Category</b>"))
        self.category_buttons: dict[str, QPushButton] = {}
        for cat in self.ctx.taxonomy.categories:
            b = QPushButton(f"{cat.shortcut}  {cat.label}")
            b.setCheckable(True)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.setStyleSheet(CATEGORY_STYLE)
            b.clicked.connect(lambda _c=False, c=cat: self.presenter.choose_category(c))
            side_layout.addWidget(b)
            self.category_buttons[cat.key] = b
        side_layout.addWidget(QLabel("<b>Note</b>"))
        self.note = QLineEdit()
        self.note.setPlaceholderText("Optional note (Ctrl+N; Esc returns to the keys)")
        self.note.returnPressed.connect(self.preview.setFocus)
        side_layout.addWidget(self.note)
        side_layout.addStretch(1)
        return side

    def _build_feedback(self) -> QLabel:
        """What the last key did, for a few seconds; a label never takes the keyboard focus."""
        self.feedback = QLabel("")
        self.feedback.setObjectName("feedback")
        self.feedback.setTextFormat(Qt.TextFormat.PlainText)
        self.feedback.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.feedback.setStyleSheet(FEEDBACK_STYLE)
        self.feedback.setFixedHeight(28)
        self.feedback.setProperty("empty", True)
        self._feedback_timer = QTimer(self)
        self._feedback_timer.setSingleShot(True)
        self._feedback_timer.timeout.connect(lambda: self._show_feedback(""))
        return self.feedback

    def _build_actions(self) -> None:
        """Every key from the one registry (ui/actions.py), bound to the presenter's calls."""
        p = self.presenter
        self.cat_specs = category_specs(self.ctx.taxonomy)
        handlers: dict[str, Callable[[], object]] = {
            "confirm": lambda: self._decide("confirm"),
            "reject": lambda: self._decide("reject"),
            "skip": lambda: self._decide("skip"),
            "escalate": lambda: self._decide("escalate"),
            "undo": lambda: p.undo(by_key=True),
            "greyscale": self._toggle_grey,
            "blur": self._cycle_blur,
            "keep_comfort": self.keep_comfort,
            "prev_frame": lambda: self._step(-1),
            "next_frame": lambda: self._step(1),
            "back_ten": lambda: self._step(-10),
            "forward_ten": lambda: self._step(10),
            "prev_member": lambda: p.page_member(-1),
            "next_member": lambda: p.page_member(1),
            "note": self.note.setFocus,
            "cheatsheet": self.show_cheatsheet,
        }
        for spec in self.cat_specs:
            cat = self.ctx.taxonomy.by_key(spec.id.split(":", 1)[1])
            handlers[spec.id] = lambda c=cat: p.choose_category(c)
        self.labels = QUEUE_LABELS.get(self.queue, {})
        self.actions_by_id = build_actions(
            self, REVIEW_ACTIONS + self.cat_specs, handlers, self.ctx.key_overrides, self.labels
        )
        if self.queue == "review" and allowed(self.user.role, Permission.SECOND_REVIEW):
            self.actions_by_id.update(
                build_actions(
                    self,
                    QUEUE_ACTIONS,
                    {"queue_second_review": self.open_second_review},
                    self.ctx.key_overrides,
                )
            )
        self.session_actions = build_actions(
            self,
            SESSION_ACTIONS,
            {
                "my_exposure": self.show_my_exposure,
                "lock": self.lock,
                "sign_out": self.sign_out,
                "quit": self.quit,
            },
            self.ctx.key_overrides,
        )

    def _build_decision_bar(self) -> QHBoxLayout:
        """The decision buttons, each showing its key."""
        bar = QHBoxLayout()
        self.decision_buttons: dict[str, QPushButton] = {}
        for spec in REVIEW_ACTIONS:
            if spec.group != "decide":
                continue
            label = self.labels.get(spec.id, spec.label)
            b = QPushButton(f"{label}   [{key_text(self.actions_by_id[spec.id])}]")
            b.setObjectName(f"button_{spec.id}")
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.setMinimumHeight(36)
            if spec.id == "undo":
                b.clicked.connect(lambda: self.presenter.undo(by_key=False))
            else:
                b.clicked.connect(lambda _c=False, i=spec.id: self._decide(i, by_key=False))
            bar.addWidget(b)
            self.decision_buttons[spec.id] = b
        return bar

    def _build_pages(self, central: QWidget) -> None:
        """The review, the break screen and the lock screen: only one is ever visible."""
        self.pages = QStackedWidget(self)
        self.pages.addWidget(central)
        self.review_page = central
        self.break_screen = BreakScreen(self)
        self.break_screen.resume_requested.connect(self.end_break)
        self.pages.addWidget(self.break_screen)
        self.lock_screen = LockScreen(self.user.display_name, self)
        self.lock_screen.unlock_requested.connect(self.presenter.unlock)
        self.pages.addWidget(self.lock_screen)
        self.setCentralWidget(self.pages)

    def _build_menus(self) -> None:
        menu = self.menuBar().addMenu("&Review")
        for spec in REVIEW_ACTIONS:
            if spec.group == "decide":
                menu.addAction(self.actions_by_id[spec.id])
        view = self.menuBar().addMenu("&View")
        for spec in REVIEW_ACTIONS:
            if spec.group == "view":
                view.addAction(self.actions_by_id[spec.id])
        if "queue_second_review" in self.actions_by_id:
            queues = self.menuBar().addMenu("&Queues")
            queues.addAction(self.actions_by_id["queue_second_review"])
        session = self.menuBar().addMenu("&Session")
        for spec in SESSION_ACTIONS:
            session.addAction(self.session_actions[spec.id])
        helpm = self.menuBar().addMenu("&Help")
        helpm.addAction(self.actions_by_id["cheatsheet"])

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.status_left = QLabel("")
        self.status_today = QLabel("")
        self.status_sync = QLabel("")
        self.status_db = QLabel(self.ctx.db.label)
        self.status_exposure = QLabel(self.meter.status_text())
        self.status_exposure.setObjectName("status_exposure")
        for w in (self.status_left, self.status_today, self.status_exposure, self.status_sync):
            sb.addWidget(w)
        sb.addPermanentWidget(self.status_db)

    def _wire(self) -> None:
        c = self.controller
        c.item_changed.connect(self._show_item)
        c.counts_changed.connect(self._show_counts)
        c.sync_changed.connect(self._show_sync)
        c.message.connect(lambda m: self.statusBar().showMessage(m, 6000))
        c.category_changed.connect(self._show_category)
        c.member_changed.connect(self._show_member)
        c.feedback.connect(self._show_feedback)
        c.refused.connect(self._show_refusal)
        c.revealed_changed.connect(self.preview.set_revealed)
        c.exposure_changed.connect(lambda text: self.status_exposure.setText(text + "  ·"))
        c.review_shown.connect(self._page_review)
        c.break_shown.connect(self._page_break)
        c.lock_shown.connect(self._page_lock)
        self.preview.region_changed.connect(self.presenter.region_changed)
        self.preview.frame_changed.connect(lambda _i: self._show_frame_label())
        self._show_sync(0, None)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self.queue != "review":
            # Undo takes back moderator-queue decisions; here a lead overturns from history.
            self.actions_by_id["undo"].setEnabled(False)
            self.decision_buttons["undo"].setEnabled(False)
        self.presenter.start()
        self.controller.dense.start()  # confirms of videos still without dense frames
        uid, exposure = self.user.id, self.ctx.exposure
        self.tasks.read(
            lambda: exposure.comfort(uid), on_done=self.apply_comfort, on_error=lambda e: None
        )
        self.preview.setFocus()

    def closeEvent(self, event) -> None:
        self.preview.clear_lens()
        self._tick.stop()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)
        self.presenter.shutdown()  # the moment on screen is journalled before the last sync
        self.controller.dense.stop(timeout=0)  # a half-hashed video is redone at next start
        super().closeEvent(event)
        if self._signing_out:
            self.signed_out.emit()

    # -- the shared workstation ------------------------------------------------------------

    def sign_out(self) -> None:
        """Give the claimed items back, close, and let the next person sign in."""
        self._signing_out = True
        self.close()

    def show_my_exposure(self) -> None:
        """The person's own trend, read on a worker: for them, as care, not as a score."""
        stats, me = self.ctx.stats, self.user

        def shown(summary: ExposureSummary) -> None:
            dialog = QDialog(self)
            dialog.setObjectName("my_exposure")
            dialog.setWindowTitle("My exposure")
            layout = QVBoxLayout(dialog)
            self.my_exposure_text = my_exposure_text(summary)
            text = QLabel(self.my_exposure_text)
            text.setObjectName("my_exposure_text")
            text.setTextFormat(Qt.TextFormat.PlainText)
            text.setWordWrap(True)
            layout.addWidget(text)
            buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
            buttons.rejected.connect(dialog.reject)
            layout.addWidget(buttons)
            dialog.finished.connect(lambda _r: self.preview.setFocus())
            dialog.open()
            self._my_exposure = dialog

        self.tasks.read(
            lambda: stats.my_exposure(me),
            on_done=shown,
            on_error=lambda e: self.statusBar().showMessage(str(e), 6000),
        )

    def quit(self) -> None:
        self.close()
        app = QApplication.instance()
        if app is not None:
            app.quit()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        kind = event.type()  # every event of the application passes here: the cheap test first
        if kind not in FILTERED_EVENTS or not isinstance(obj, QWidget) or obj.window() is not self:
            return False
        if kind in ACTIVITY_EVENTS:
            self.presenter.activity()
        if kind in KEY_DOWN_EVENTS and isinstance(event, QKeyEvent):
            # A decision key's unflagged X11 auto-repeat (release + press at the same
            # server time) must not reach its shortcut: accepted here, then dropped. Space
            # has its own rule (the hold's grace) in keyPressEvent.
            key = event.key()
            if key != Qt.Key.Key_Space and self.presenter.is_repeat(key, event.timestamp()):
                event.accept()
                return True
        return False

    def tick(self) -> None:
        """About once a second: review time for the break rules, the idle lock, upkeep."""
        self.presenter.tick()

    @property
    def locked(self) -> bool:
        return self.presenter.page is Page.LOCK

    @property
    def on_break(self) -> bool:
        return self.presenter.page is Page.BREAK

    def lock(self) -> None:
        """Nothing of the queue stays on screen; the password brings it back."""
        self.presenter.lock()

    def show_break(self, why: str) -> None:
        self.presenter.show_break(why)

    def end_break(self) -> None:
        self.presenter.end_break()

    # -- the pages, as the presenter says ------------------------------------------------------

    def _review_keys(self, on: bool) -> None:
        for spec_id, action in self.actions_by_id.items():
            action.setEnabled(on and not (spec_id == "undo" and self.queue != "review"))
        for b in self.decision_buttons.values():
            b.setEnabled(on)

    def _leave_review(self, page: QWidget) -> None:
        self.preview.clear_lens()
        self._review_keys(False)
        self.pages.setCurrentWidget(page)

    def _page_review(self) -> None:
        self._review_keys(True)
        self.pages.setCurrentWidget(self.review_page)
        self.preview.setFocus()

    def _page_break(self, why: str, past_limit: bool) -> None:
        """A calm screen hides the queue until the person comes back."""
        self.break_screen.show_reason(why, past_limit)
        self._leave_review(self.break_screen)
        self.break_screen.setFocus()

    def _page_lock(self, problem: str) -> None:
        if self.pages.currentWidget() is not self.lock_screen:
            self._leave_review(self.lock_screen)
            self.lock_screen.password.setFocus()
        self.lock_screen.problem.setText(problem)

    # -- keyboard --------------------------------------------------------------------------

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space:
            self.presenter.reveal_pressed(auto_repeat=event.isAutoRepeat())
            event.accept()
            return
        if event.key() == Qt.Key.Key_Escape:
            self.preview.setFocus()
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space:
            # Blurred again once the release stands for the grace: a press within it is the
            # platform's auto-repeat (X11 sends release + press pairs), the same hold.
            self.presenter.reveal_released(auto_repeat=event.isAutoRepeat())
        if not event.isAutoRepeat():
            if event.key() == Qt.Key.Key_Shift:
                self.preview.clear_lens()
            self.presenter.key_released(event.key(), event.timestamp())
        super().keyReleaseEvent(event)

    def focusOutEvent(self, event) -> None:
        self.presenter.conceal()
        self.preview.clear_lens()
        super().focusOutEvent(event)

    def changeEvent(self, event) -> None:
        # Never leave content revealed when the window loses focus mid-hold.
        preview = getattr(self, "preview", None)  # changeEvent also fires during __init__
        if preview is not None and not self.isActiveWindow():
            self.presenter.conceal()
            preview.clear_lens()
        super().changeEvent(event)

    # -- actions ---------------------------------------------------------------------------

    def _decide(self, action_id: str, by_key: bool = True) -> None:
        if action_id == "escalate":
            self.ask_reason(by_key)
            return
        if self.presenter.decide(VERDICT_FOR[action_id], self.note.text(), by_key=by_key):
            self.note.clear()

    def ask_reason(self, by_key: bool = True) -> ReasonDialog | None:
        """E: escalating asks why in one line (Enter sends, Esc cancels). On the leads'
        escalation queue E passes the item on to another lead (a skip, with the note)."""
        cur = self.presenter.current
        if cur is None or not self.presenter.accepts(by_key):
            return None
        passing = self.queue == "escalations"
        dialog = ReasonDialog(
            self,
            "Pass to another lead" if passing else "Escalate to a lead",
            f"Why pass #{cur.item.id} on to another lead?"
            if passing
            else f"Why escalate #{cur.item.id} to a lead? (the lead sees this)",
            self.note.text(),
        )
        item_id = cur.item.id

        def send() -> None:
            now = self.presenter.current
            if now is None or now.item.id != item_id:
                return  # the screen moved on meanwhile (an undo landed): decide nothing
            verdict = Verdict.SKIP if passing else Verdict.ESCALATE
            if self.presenter.decide(verdict, dialog.text(), by_key=False):
                self.note.clear()

        dialog.accepted.connect(send)
        dialog.finished.connect(lambda _r: self.preview.setFocus())
        dialog.open()
        self._reason_dialog = dialog
        return dialog

    def apply_comfort(self, comfort: ComfortDefaults | None) -> None:
        if comfort is not None:
            self.preview.set_greyscale(comfort.greyscale)
            self.preview.set_blur_level(comfort.blur_level)

    def keep_comfort(self) -> None:
        """Greyscale and blur as they are now become this person's defaults."""
        comfort = ComfortDefaults(self.preview.greyscale, self.preview.blur_level)
        exposure, me = self.ctx.exposure, self.user
        self.tasks.write(
            lambda: exposure.keep_comfort(me, comfort),
            on_done=lambda _r: self.statusBar().showMessage(
                f"Kept as your defaults: greyscale {'on' if comfort.greyscale else 'off'}, "
                f"blur {comfort.blur_level + 1} of {len(BLUR_LEVELS)}",
                4000,
            ),
            on_error=lambda e: self.statusBar().showMessage(f"Not kept: {e}", 6000),
        )

    def _toggle_grey(self) -> None:
        self.preview.set_greyscale(not self.preview.greyscale)
        self.strip.update()
        self.statusBar().showMessage(
            "Greyscale on" if self.preview.greyscale else "Greyscale off", 2000
        )

    def _cycle_blur(self) -> None:
        level = (self.preview.blur_level + 1) % len(BLUR_LEVELS)
        self.preview.set_blur_level(level)
        self.strip.update()
        self.statusBar().showMessage(f"Blur strength {level + 1} of {len(BLUR_LEVELS)}", 2000)

    def _step(self, delta: int) -> None:
        self.preview.step_frame(delta)
        self._show_frame_label()

    def _load_scrub(self, item: QueueItem) -> None:
        """A video's every sampled frame, decoded on a reader; the ingest's strip until then."""
        self.strip.set_span(None, None)
        if item.kind is not MediaKind.VIDEO:
            return
        review, path_for = self.ctx.review, self.ctx.store.path_for
        threshold = self.ctx.settings.match.pdq_threshold

        def loaded(scrub: ScrubFrames | None) -> None:
            if scrub is None or self.shown_item is None or self.shown_item.id != item.id:
                return  # the screen moved on meanwhile
            p = self.preview
            # Where the moderator was on the ingest's strip, as near as the new frames allow.
            at = p.frame / (p.frame_count - 1) if p.frame_count > 1 else 0.0
            p.show_preview(scrub.preview, "", scrub.times, scrub.matched)
            self.strip.set_span(scrub.span, scrub.duration)
            p.set_frame(round(at * (p.frame_count - 1)))
            self.scrub_item = item.id
            self._show_frame_label()

        self.tasks.read(
            lambda: load_scrub(review, path_for, item.id, threshold),
            on_done=loaded,
            on_error=lambda e: self.statusBar().showMessage(f"Video frames: {e}", 6000),
        )

    def open_second_review(self) -> ReviewWindow:
        """The blind second-review queue: other moderators' decisions, to decide again without
        seeing them. Opens in its own window; closing it returns here."""
        w = self.second_review_window
        if w is None or not w.isVisible():
            w = ReviewWindow(self.ctx, self.user, self.tasks, queue="second_review")
            self.second_review_window = w
            w.show()
            w.start()
        w.raise_()
        w.activateWindow()
        return w

    def show_cheatsheet(self) -> None:
        sheet = CheatSheet(
            self,
            REVIEW_ACTIONS + self.cat_specs + SESSION_ACTIONS,
            {**self.actions_by_id, **self.session_actions},
        )
        sheet.setObjectName("cheatsheet")
        sheet.open()
        self._cheatsheet = sheet

    # -- showing state ---------------------------------------------------------------------

    def _show_item(self, prepared: PreparedItem | None) -> None:
        self.note.clear()
        if prepared is None:
            self.shown_item = None
            self.incident_banner.hide()
            self.preview.show_preview(None, empty_queue_text(self.counts))
            self.warning.setText("No item to review.")
            for label in self.facts.values():
                label.setText("")
            self._show_frame_label()
            return
        self.preview.show_preview(prepared.preview, prepared.message)
        self._show_facts(prepared.item)
        item = prepared.item
        self._load_scrub(item)
        self.facts["cluster"].setText(cluster_text(item.cluster_size))
        self._show_frame_label()

    def _show_facts(self, item: QueueItem) -> None:
        """The side pane and the warning line describe ``item`` (the one whose picture shows)."""
        self.shown_item = item
        self.incident_banner.setText(item.incident or "")
        self.incident_banner.setVisible(bool(item.incident))
        first = item.sightings[0] if item.sightings else None
        reason = first.reason if first and first.reason else "no reason given"
        self.warning.setText(f"Content warning: flagged for: {reason}")
        kind = item.kind.value
        if item.width and item.height:
            kind += f", {item.width}×{item.height}"
        if item.duration:
            kind += f", {item.duration:.1f} s"
        kind += f", {_fmt_size(item.size)}"
        if item.error:
            kind += f" — unreadable: {item.error}"
        f = self.facts
        f["item"].setText(f"#{item.id}")
        f["kind"].setText(kind)
        f["source"].setText(", ".join(sorted({s.source for s in item.sightings})) or "—")
        f["external_id"].setText(first.external_id or "—" if first else "—")
        f["url"].setText(first.source_url or "—" if first else "—")
        f["flagged_at"].setText(first.flagged_at.strftime("%Y-%m-%d %H:%M UTC") if first else "—")
        f["score"].setText(f"{first.score:.2f}" if first and first.score is not None else "—")
        f["sightings"].setText(str(len(item.sightings)))
        f["match"].setText(item.match_note or "none")
        f["sha256"].setText(item.sha256[:16] + "…")
        f["escalation"].setText(item.escalation_note or "—")
        self._update_deadline()

    def _show_member(self, prepared: PreparedItem, index: int, size: int) -> None:
        self.preview.show_preview(prepared.preview, prepared.message)
        self._show_facts(prepared.item)
        self._load_scrub(prepared.item)
        self.facts["cluster"].setText(cluster_text(size, index))
        self._show_frame_label()

    def _show_feedback(self, text: str, refused: bool = False) -> None:
        self.feedback.setText(text)
        self.feedback.setProperty("empty", not text)
        self.feedback.setProperty("refused", refused)
        self.feedback.style().unpolish(self.feedback)
        self.feedback.style().polish(self.feedback)
        if text and not refused:
            self._feedback_timer.start(FEEDBACK_MS)

    def _show_refusal(self, text: str) -> None:
        """What did not happen stays on the line until the next action (no fading)."""
        self._feedback_timer.stop()
        self._show_feedback(text, refused=True)

    def _update_deadline(self) -> None:
        item = self.shown_item
        text = _fmt_left(item.deadline) if item is not None else ""
        label = self.facts["deadline"]
        label.setText(text)
        # Overdue is urgent: bold white on red, not plain text.
        label.setStyleSheet(OVERDUE_STYLE if text.startswith("overdue") else "")

    def _show_frame_label(self) -> None:
        p = self.preview
        n = p.frame_count
        self.strip.setVisible(n > 1)
        self.strip.update()
        if n <= 1:
            self.frame_label.setText("")
            return
        text = f"frame {p.frame + 1} of {n}"
        if p.frame < len(p.times):
            text += f" · {format_ts(p.times[p.frame])}"
        if p.frame in p.matched:
            text += " · matched known content"
        span = self.strip.span
        if span is not None and p.frame < len(p.times) and span[0] <= p.times[p.frame] <= span[1]:
            text += " · in the part of a known video"
        keys = "Left/Right · Shift+Left/Right ten · wheel" if p.times else "Left/Right"
        self.frame_label.setText(f"{text}   ({keys}; no sound)")

    def _show_category(self, category: Category | None) -> None:
        for cat in self.ctx.taxonomy.categories:
            b = self.category_buttons[cat.key]
            chosen = category is not None and cat.key == category.key
            b.setChecked(chosen)
            b.setText(f"{'✔' if chosen else cat.shortcut}  {cat.label}")

    def _show_counts(self, counts: QueueCounts) -> None:
        self.counts = counts
        if self.presenter.current is None:
            self.preview.show_preview(None, empty_queue_text(counts))
        self.status_left.setText(f"{counts.open_items} left  ·")
        self.status_today.setText(f"{counts.decided_today} decided today  ·")

    def _show_sync(self, pending: int, problem: str | None) -> None:
        if problem is not None:
            self.status_sync.setText(f"database unreachable: {pending} waiting to sync")
            self.status_sync.setToolTip(problem)
        else:
            self.status_sync.setText("all saved" if pending == 0 else f"{pending} waiting to sync")
            self.status_sync.setToolTip("")
