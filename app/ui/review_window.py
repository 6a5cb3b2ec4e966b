"""The moderator's review window: layout and wiring only; the controller holds the state."""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
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
    QVBoxLayout,
    QWidget,
)

from app.compose import AppContext
from app.core.decisions import QueueCounts
from app.core.domain import Category, UserInfo, Verdict, utcnow
from app.core.preview import BLUR_LEVELS
from app.core.roles import Permission, allowed
from app.ui.actions import (
    HOLD_KEYS,
    QUEUE_ACTIONS,
    REVIEW_ACTIONS,
    ActionSpec,
    build_actions,
    category_specs,
    key_text,
)
from app.ui.preview import PreviewWidget
from app.ui.review_controller import PreparedItem, ReviewController
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


def _fmt_left(deadline: datetime | None) -> str:
    if deadline is None:
        return "none"
    secs = int((deadline - utcnow()).total_seconds())
    sign = "" if secs >= 0 else "overdue by "
    secs = abs(secs)
    return f"{sign}{secs // 3600:d}:{secs % 3600 // 60:02d}:{secs % 60:02d}"


class CheatSheet(QDialog):
    def __init__(self, parent: QWidget, specs: tuple[ActionSpec, ...], actions: dict) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard cheat sheet")
        rows = [(key_text(actions[s.id]), s.label) for s in specs]
        rows += list(HOLD_KEYS)
        layout = QVBoxLayout(self)
        grid = QGridLayout()
        for i, (key, label) in enumerate(rows):
            k = QLabel(f"<b>{key}</b>")
            grid.addWidget(k, i // 2, (i % 2) * 2)
            grid.addWidget(QLabel(label), i // 2, (i % 2) * 2 + 1)
        layout.addLayout(grid)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.rows = rows


QUEUE_TITLES = {
    "review": "review",
    "escalations": "escalations (lead queue)",
    "second_review": "second review (blind)",
}


class ReviewWindow(QMainWindow):
    def __init__(
        self,
        ctx: AppContext,
        user: UserInfo,
        tasks: TaskRunner | None = None,
        queue: str = "review",
    ) -> None:
        super().__init__()
        self.ctx = ctx
        self.user = user
        self.tasks = tasks or TaskRunner(self)
        self.queue = queue
        self.controller = ReviewController(ctx, user, self.tasks, queue=queue)
        what = QUEUE_TITLES.get(queue, queue)
        self.setWindowTitle(f"Hashdesk — {what} — {user.display_name} ({user.role.value})")
        self.resize(1280, 800)
        self._build()
        self._wire()
        self._countdown = QTimer(self)
        self._countdown.timeout.connect(self._update_deadline)
        self._countdown.start(1000)

    # -- layout ----------------------------------------------------------------------------

    def _build(self) -> None:
        central = QWidget(self)
        outer = QVBoxLayout(central)
        self.warning = QLabel("Loading…")
        self.warning.setObjectName("warning")
        self.warning.setWordWrap(True)
        self.warning.setTextFormat(Qt.TextFormat.PlainText)
        self.warning.setStyleSheet(
            "QLabel#warning { background: #5a1e1e; color: #ffdede; padding: 6px; "
            "font-weight: bold; border-radius: 3px; }"
        )
        outer.addWidget(self.warning)

        middle = QHBoxLayout()
        left = QVBoxLayout()
        self.preview = PreviewWidget(self)
        self.preview.blur_level = min(self.ctx.settings.blur_radius // 20, len(BLUR_LEVELS) - 1)
        left.addWidget(self.preview, 1)
        self.frame_label = QLabel("")
        self.frame_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        left.addWidget(self.frame_label)
        middle.addLayout(left, 1)

        side = QFrame(self)
        side.setFrameShape(QFrame.Shape.StyledPanel)
        side.setFixedWidth(360)
        side_layout = QVBoxLayout(side)
        facts = QFormLayout()
        self.facts: dict[str, QLabel] = {}
        for key, title in (
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
        ):
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
            b.setStyleSheet("text-align: left; padding: 3px 6px;")
            b.clicked.connect(lambda _c=False, c=cat: self.controller.choose_category(c))
            side_layout.addWidget(b)
            self.category_buttons[cat.key] = b
        side_layout.addWidget(QLabel("<b>Note</b>"))
        self.note = QLineEdit()
        self.note.setPlaceholderText("Optional note (Ctrl+N; Esc returns to the keys)")
        self.note.returnPressed.connect(self.preview.setFocus)
        side_layout.addWidget(self.note)
        side_layout.addStretch(1)
        middle.addWidget(side)
        outer.addLayout(middle, 1)

        self.cat_specs = category_specs(self.ctx.taxonomy)
        handlers = {
            "confirm": lambda: self._decide("confirm"),
            "reject": lambda: self._decide("reject"),
            "skip": lambda: self._decide("skip"),
            "escalate": lambda: self._decide("escalate"),
            "undo": lambda: self.controller.undo(by_key=True),
            "greyscale": self._toggle_grey,
            "blur": self._cycle_blur,
            "prev_frame": lambda: self._step(-1),
            "next_frame": lambda: self._step(1),
            "prev_member": lambda: self.controller.page_member(-1),
            "next_member": lambda: self.controller.page_member(1),
            "note": self.note.setFocus,
            "cheatsheet": self.show_cheatsheet,
        }
        for spec in self.cat_specs:
            cat = self.ctx.taxonomy.by_key(spec.id.split(":", 1)[1])
            handlers[spec.id] = lambda c=cat: self.controller.choose_category(c)
        self.actions_by_id = build_actions(
            self, REVIEW_ACTIONS + self.cat_specs, handlers, self.ctx.key_overrides
        )

        bar = QHBoxLayout()
        self.decision_buttons: dict[str, QPushButton] = {}
        for spec in REVIEW_ACTIONS:
            if spec.group != "decide":
                continue
            b = QPushButton(f"{spec.label}   [{key_text(self.actions_by_id[spec.id])}]")
            b.setObjectName(f"button_{spec.id}")
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.setMinimumHeight(36)
            if spec.id == "undo":
                b.clicked.connect(lambda: self.controller.undo(by_key=False))
            else:
                b.clicked.connect(lambda _c=False, i=spec.id: self._decide(i, by_key=False))
            bar.addWidget(b)
            self.decision_buttons[spec.id] = b
        outer.addLayout(bar)
        self.setCentralWidget(central)

        menu = self.menuBar().addMenu("&Review")
        for spec in REVIEW_ACTIONS:
            if spec.group == "decide":
                menu.addAction(self.actions_by_id[spec.id])
        view = self.menuBar().addMenu("&View")
        for spec in REVIEW_ACTIONS:
            if spec.group == "view":
                view.addAction(self.actions_by_id[spec.id])
        if self.queue == "review" and allowed(self.user.role, Permission.SECOND_REVIEW):
            self.actions_by_id.update(
                build_actions(
                    self,
                    QUEUE_ACTIONS,
                    {"queue_second_review": self.open_second_review},
                    self.ctx.key_overrides,
                )
            )
            queues = self.menuBar().addMenu("&Queues")
            queues.addAction(self.actions_by_id["queue_second_review"])
        self.second_review_window: ReviewWindow | None = None
        helpm = self.menuBar().addMenu("&Help")
        helpm.addAction(self.actions_by_id["cheatsheet"])

        sb = self.statusBar()
        self.status_left = QLabel("")
        self.status_today = QLabel("")
        self.status_sync = QLabel("")
        self.status_db = QLabel(self.ctx.db.label)
        for w in (self.status_left, self.status_today, self.status_sync):
            sb.addWidget(w)
        sb.addPermanentWidget(self.status_db)

    def _wire(self) -> None:
        c = self.controller
        c.item_changed.connect(self._show_item)
        c.counts_changed.connect(self._show_counts)
        c.sync_changed.connect(self._show_sync)
        c.sync_problem.connect(lambda _why: self._show_sync(c.pending))
        c.message.connect(lambda m: self.statusBar().showMessage(m, 6000))
        c.category_changed.connect(self._show_category)
        c.member_changed.connect(self._show_member)
        self._show_sync(0)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self.queue != "review":
            # Undo takes back moderator-queue decisions; here a lead overturns from history.
            self.actions_by_id["undo"].setEnabled(False)
            self.decision_buttons["undo"].setEnabled(False)
        self.controller.start()
        self.preview.setFocus()

    def closeEvent(self, event) -> None:
        self.controller.shutdown()
        super().closeEvent(event)

    # -- keyboard --------------------------------------------------------------------------

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self.preview.set_revealed(True)
            event.accept()
            return
        if event.key() == Qt.Key.Key_Escape:
            self.preview.setFocus()
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if not event.isAutoRepeat():
            if event.key() == Qt.Key.Key_Space:
                self.preview.set_revealed(False)
            self.controller.key_released()
        super().keyReleaseEvent(event)

    def focusOutEvent(self, event) -> None:
        self.preview.set_revealed(False)
        super().focusOutEvent(event)

    def changeEvent(self, event) -> None:
        # Never leave content revealed when the window loses focus mid-hold.
        preview = getattr(self, "preview", None)  # changeEvent also fires during __init__
        if preview is not None and not self.isActiveWindow():
            preview.set_revealed(False)
        super().changeEvent(event)

    # -- actions ---------------------------------------------------------------------------

    def _decide(self, action_id: str, by_key: bool = True) -> None:
        if self.controller.decide(VERDICT_FOR[action_id], self.note.text(), by_key=by_key):
            self.note.clear()

    def _toggle_grey(self) -> None:
        self.preview.set_greyscale(not self.preview.greyscale)
        self.statusBar().showMessage(
            "Greyscale on" if self.preview.greyscale else "Greyscale off", 2000
        )

    def _cycle_blur(self) -> None:
        level = (self.preview.blur_level + 1) % len(BLUR_LEVELS)
        self.preview.set_blur_level(level)
        self.statusBar().showMessage(f"Blur strength {level + 1} of {len(BLUR_LEVELS)}", 2000)

    def _step(self, delta: int) -> None:
        self.preview.step_frame(delta)
        self._show_frame_label()

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
        sheet = CheatSheet(self, REVIEW_ACTIONS + self.cat_specs, self.actions_by_id)
        sheet.setObjectName("cheatsheet")
        sheet.open()
        self._cheatsheet = sheet

    # -- showing state ---------------------------------------------------------------------

    def _show_item(self, prepared: PreparedItem | None) -> None:
        self.note.clear()
        if prepared is None:
            self.preview.show_preview(None, "The queue is empty. New items appear here.")
            self.warning.setText("No item to review.")
            for label in self.facts.values():
                label.setText("")
            self._show_frame_label()
            return
        item = prepared.item
        self.preview.show_preview(prepared.preview, prepared.message)
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
        f["kind"].setText(kind)
        f["source"].setText(", ".join(sorted({s.source for s in item.sightings})) or "—")
        f["external_id"].setText(first.external_id or "—" if first else "—")
        f["url"].setText(first.source_url or "—" if first else "—")
        f["flagged_at"].setText(first.flagged_at.strftime("%Y-%m-%d %H:%M UTC") if first else "—")
        f["score"].setText(f"{first.score:.2f}" if first and first.score is not None else "—")
        f["sightings"].setText(str(len(item.sightings)))
        f["cluster"].setText(
            f"{item.cluster_size} item(s) (PgUp/PgDn to look through them)"
            if item.cluster_size > 1
            else "1 item(s)"
        )
        f["match"].setText(item.match_note or "none")
        f["sha256"].setText(item.sha256[:16] + "…")
        f["escalation"].setText(item.escalation_note or "—")
        self._update_deadline()
        self._show_frame_label()

    def _show_member(self, prepared: PreparedItem, index: int, size: int) -> None:
        self.preview.show_preview(prepared.preview, prepared.message)
        self.facts["cluster"].setText(
            f"{size} item(s): showing {index + 1} of {size} (PgUp/PgDn); one decision covers all"
        )
        self._show_frame_label()

    def _update_deadline(self) -> None:
        cur = self.controller.current
        self.facts["deadline"].setText(_fmt_left(cur.item.deadline) if cur else "")

    def _show_frame_label(self) -> None:
        n = self.preview.frame_count
        self.frame_label.setText(
            f"frame {self.preview.frame + 1} of {n}  (Left/Right)" if n > 1 else ""
        )

    def _show_category(self, category: Category | None) -> None:
        for key, b in self.category_buttons.items():
            b.setChecked(category is not None and key == category.key)

    def _show_counts(self, counts: QueueCounts) -> None:
        self.status_left.setText(f"{counts.open_items} left  ·")
        self.status_today.setText(f"{counts.decided_today} decided today  ·")

    def _show_sync(self, pending: int) -> None:
        problem = self.controller.sync_error
        if problem is not None:
            self.status_sync.setText(f"database unreachable: {pending} waiting to sync")
            self.status_sync.setToolTip(problem)
        else:
            self.status_sync.setText("all saved" if pending == 0 else f"{pending} waiting to sync")
            self.status_sync.setToolTip("")
