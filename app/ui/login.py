"""Login dialog. Password checking (argon2) runs off the GUI thread."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
)

from app.compose import SignInError
from app.core.errors import describe
from app.core.model.domain import UserInfo
from app.storage.users import LoginLocked
from app.ui.tasks import TaskRunner


def password_field(name: str) -> QLineEdit:
    """A password entry (echo off) with ``name`` as its object name."""
    field = QLineEdit()
    field.setObjectName(name)
    field.setEchoMode(QLineEdit.EchoMode.Password)
    return field


def add_footer(
    dialog: QDialog,
    layout: QVBoxLayout,
    error_name: str,
    database_label: str,
    ok_text: str,
    on_ok: Callable[[], None],
    *,
    wrap: bool = False,
) -> tuple[QLabel, QDialogButtonBox]:
    """The bottom of a sign-in dialog: the error line (object name ``error_name``, wrapping when
    ``wrap``), which database this is, and OK (labelled ``ok_text``, calls ``on_ok``) / Cancel.
    Returns the error label and the buttons."""
    error = QLabel("")
    error.setObjectName(error_name)
    error.setStyleSheet("color: #c0392b;")
    error.setWordWrap(wrap)
    layout.addWidget(error)
    db = QLabel(f"Database: {database_label}")
    db.setStyleSheet("color: gray;")
    layout.addWidget(db)
    buttons = QDialogButtonBox(
        QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
    )
    buttons.button(QDialogButtonBox.StandardButton.Ok).setText(ok_text)
    buttons.accepted.connect(on_ok)
    buttons.rejected.connect(dialog.reject)
    layout.addWidget(buttons)
    return error, buttons


class LoginDialog(QDialog):
    """Sign in. ``authenticate(name, password)`` runs off the GUI thread and returns the
    account (None: wrong password or disabled) or raises with a one-line reason: on SQLite the
    password is checked against the local account (argon2id), on a team server PostgreSQL
    checks it, the person connecting as their own login role."""

    def __init__(
        self,
        authenticate: Callable[[str, str], UserInfo | None],
        tasks: TaskRunner,
        database_label: str,
    ) -> None:
        super().__init__()
        self.authenticate = authenticate
        self.tasks = tasks
        self.user: UserInfo | None = None
        self.setWindowTitle("Hashdesk — sign in")
        self.setMinimumWidth(380)
        layout = QVBoxLayout(self)
        title = QLabel("<h2>Hashdesk</h2>Sign in to review flagged content.")
        layout.addWidget(title)
        form = QFormLayout()
        self.username = QLineEdit()
        self.username.setObjectName("username")
        self.password = password_field("password")
        form.addRow("User name", self.username)
        form.addRow("Password", self.password)
        layout.addLayout(form)
        self.error, self.buttons = add_footer(
            self, layout, "login_error", database_label, "Sign in", self._try
        )

    def _try(self) -> None:
        name, pw = self.username.text(), self.password.text()
        if not name or not pw:
            self.error.setText("Enter your user name and password.")
            return
        self.buttons.setEnabled(False)
        self.error.setText("Checking…")
        self.tasks.read(
            lambda: self.authenticate(name, pw), on_done=self._done, on_error=self._failed
        )

    def _done(self, user: UserInfo | None) -> None:
        self.buttons.setEnabled(True)
        if user is None:
            self.error.setText("Wrong user name or password, or the account is disabled.")
            self.password.clear()
            self.password.setFocus()
            return
        self.user = user
        self.accept()

    def _failed(self, exc: Exception) -> None:
        self.buttons.setEnabled(True)
        if isinstance(exc, LoginLocked | SignInError):
            text = describe(exc)
            self.error.setText(text[:1].upper() + text[1:].rstrip(".") + ".")
            self.password.clear()
            return
        self.error.setText(f"Could not check the password: {describe(exc)}")
