"""The review screen's calm pages: the break screen (and the daily limit's) and the lock screen.
Nothing of the queue shows on them. When they show is the presenter's rule
(``app.core.review.presenter``); the exposure meter is ``app.core.review.exposure_meter``.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

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
