"""The review screen's exposure meter, break screen and lock screen.

:class:`ExposureMeter` turns "the preview is unblurred now" / "blurred again" into one
:class:`~app.core.model.exposure.ExposureEvent` each, journalled like a decision (an outbox: it
lands
when the database is reachable), and keeps the person's tally for the status bar and the break
rules. Time comes from an injected clock (``time.monotonic`` by default) so tests move it by hand.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from app.core.model.domain import utcnow
from app.core.model.exposure import (
    BreakPolicy,
    ExposureEvent,
    ExposureKind,
    SessionTally,
    break_due,
    format_exposure,
)
from app.storage.journal import DecisionJournal

Clock = Callable[[], float]


class ExposureMeter(QObject):
    changed = Signal()  # the tally changed (status bar)
    recorded = Signal(object)  # ExposureEvent, journalled
    break_due = Signal(str)  # why a break is offered now

    def __init__(
        self,
        user_id: int,
        journal: DecisionJournal,
        policy: BreakPolicy,
        clock: Clock | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.user_id = user_id
        self.journal = journal
        self.policy = policy
        self.clock: Clock = clock or time.monotonic
        self.tally = SessionTally()
        self.paused = False  # on a break or locked: review time does not run
        self._open: tuple[int | None, ExposureKind, float, float, object] | None = None
        self._last_tick = self.clock()
        self.failed: str | None = None
        #: When this meter began: moments from before it are today's earlier sessions
        #: (:meth:`load_today`), the rest it tallies itself.
        self.since = utcnow()

    # -- unblurred moments -------------------------------------------------------------------

    @property
    def revealing(self) -> bool:
        return self._open is not None

    def begin(self, item_id: int | None, kind: ExposureKind, area: float = 1.0) -> None:
        """The preview shows ``item_id`` unblurred (``area``: the share of the picture)."""
        if self._open is not None:
            same = self._open[0] == item_id and self._open[1] is kind
            if same and abs(self._open[3] - area) < 1e-9:
                return
            self.end()
        self._open = (item_id, kind, self.clock(), area, utcnow())

    def end(self) -> ExposureEvent | None:
        """Blurred again: the moment is journalled (fsync'd, about a millisecond)."""
        if self._open is None:
            return None
        item_id, kind, start, area, wall = self._open
        self._open = None
        event = ExposureEvent(
            user_id=self.user_id,
            item_id=item_id,
            kind=kind,
            started_at=wall,  # type: ignore[arg-type]
            seconds=max(0.0, self.clock() - start),
            area=area,
        )
        try:
            self.journal.record_exposure(event)
        except Exception as exc:  # never lose the screen over the meter; say so
            self.failed = str(exc)
        self.tally.add(event)
        self.recorded.emit(event)
        self.changed.emit()
        self._check()
        return event

    # -- time under review and breaks --------------------------------------------------------

    def load_today(self, seconds: float, items: set[int]) -> None:
        """What the database held for today from before :attr:`since` (earlier sessions)."""
        self.tally.today_seconds += seconds
        self.tally.today_items |= items
        self.changed.emit()

    def tick(self) -> None:
        """Called about once a second: review time runs unless on a break or locked."""
        now = self.clock()
        if not self.paused:
            self.tally.review_seconds += max(0.0, now - self._last_tick)
        self._last_tick = now
        self._check()

    def _check(self) -> None:
        if self.paused:
            return
        why = break_due(self.policy, self.tally)
        if why is not None:
            self.break_due.emit(why)

    def limit_reached(self) -> bool:
        p = self.policy
        return bool(p.daily_limit_minutes) and self.tally.today_seconds >= (
            p.daily_limit_minutes * 60
        )

    def resume(self) -> None:
        """Back from a break: the break counters start again (today's totals stay)."""
        if self.limit_reached():
            self.tally.limit_acknowledged = True
        self.tally.took_break()
        self.paused = False
        self._last_tick = self.clock()

    def status_text(self) -> str:
        t = self.tally
        n = len(t.today_items)
        return (
            f"unblurred today {format_exposure(t.today_seconds)} · "
            f"{n} graphic item{'' if n == 1 else 's'} seen"
        )


CALM_STYLE = (
    "QWidget#calm { background: #e9f1ec; }"
    "QLabel { color: #1f3a2b; }"
    "QLabel#calm_title { font-size: 26px; font-weight: bold; }"
    "QPushButton { padding: 8px 18px; font-size: 15px; }"
)


def _calm_layout(screen: QWidget) -> QVBoxLayout:
    """Style ``screen`` as a calm screen (nothing of the queue) and give it its layout, the
    content pushed down a little."""
    screen.setObjectName("calm")
    screen.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
    screen.setStyleSheet(CALM_STYLE)
    layout = QVBoxLayout(screen)
    layout.addStretch(2)
    return layout


class BreakScreen(QWidget):
    """A calm screen that hides the queue. Enter (or the button) goes back to the queue; past
    the daily limit, going on needs a second, explicit confirmation."""

    resume_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = _calm_layout(self)
        self.title = QLabel("Time for a short break")
        self.title.setObjectName("calm_title")
        self.reason = QLabel("")
        self.reason.setObjectName("break_reason")
        self.advice = QLabel(
            "Look away from the screen, stand up, stretch, drink some water.\n"
            "The queue waits for you; your claimed item stays yours."
        )
        self.limit_note = QLabel("")
        self.limit_note.setObjectName("limit_note")
        self.limit_note.setWordWrap(True)
        self.back = QPushButton("Back to the queue   [Enter]")
        self.back.setObjectName("break_back")
        self.back.clicked.connect(self.resume_requested.emit)
        for w in (self.title, self.reason, self.advice, self.limit_note):
            w.setAlignment(Qt.AlignmentFlag.AlignCenter)
            layout.addWidget(w)
        layout.addSpacing(16)
        layout.addWidget(self.back, 0, Qt.AlignmentFlag.AlignCenter)
        layout.addStretch(3)
        self.past_limit = False

    def show_reason(self, why: str, past_limit: bool) -> None:
        self.reason.setText(why)
        self.past_limit = past_limit
        self.limit_note.setText(
            "You have passed today's exposure limit. You can go on, but please consider "
            "stopping for today or talking to your lead; your lead sees that the limit was "
            "passed, to look after you, not to rate you."
            if past_limit
            else ""
        )
        self.back.setText(
            "I understand, go on today   [Enter]" if past_limit else "Back to the queue   [Enter]"
        )

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not event.isAutoRepeat():
            self.resume_requested.emit()
            event.accept()
            return
        super().keyPressEvent(event)


class LockScreen(QWidget):
    """Shown after the idle time: nothing of the queue, the person's password to go on."""

    unlock_requested = Signal(str)

    def __init__(self, username: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = _calm_layout(self)
        title = QLabel(f"Locked: {username} was away")
        title.setObjectName("calm_title")
        hint = QLabel("Enter your password to go on (or sign out from the Session menu).")
        self.password = QLineEdit()
        self.password.setObjectName("lock_password")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setMaximumWidth(320)
        self.password.returnPressed.connect(self._send)
        self.problem = QLabel("")
        self.problem.setObjectName("lock_problem")
        for w in (title, hint, self.problem):
            w.setAlignment(Qt.AlignmentFlag.AlignCenter)
            layout.addWidget(w)
        layout.addWidget(self.password, 0, Qt.AlignmentFlag.AlignCenter)
        layout.addStretch(3)

    def _send(self) -> None:
        text = self.password.text()
        self.password.clear()
        if text:
            self.unlock_requested.emit(text)
