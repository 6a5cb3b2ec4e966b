"""Login dialog. Password checking (argon2) runs off the GUI thread."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
)

from app.storage.users import LoginLocked, UserInfo, UserService
from app.ui.tasks import TaskRunner


class LoginDialog(QDialog):
    def __init__(self, users: UserService, tasks: TaskRunner, database_label: str) -> None:
        super().__init__()
        self.users = users
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
        self.password = QLineEdit()
        self.password.setObjectName("password")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        form.addRow("User name", self.username)
        form.addRow("Password", self.password)
        layout.addLayout(form)
        self.error = QLabel("")
        self.error.setObjectName("login_error")
        self.error.setStyleSheet("color: #c0392b;")
        layout.addWidget(self.error)
        db = QLabel(f"Database: {database_label}")
        db.setStyleSheet("color: gray;")
        layout.addWidget(db)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Sign in")
        self.buttons.accepted.connect(self._try)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

    def _try(self) -> None:
        name, pw = self.username.text(), self.password.text()
        if not name or not pw:
            self.error.setText("Enter your user name and password.")
            return
        self.buttons.setEnabled(False)
        self.error.setText("Checking…")
        self.tasks.read(
            lambda: self.users.authenticate(name, pw), on_done=self._done, on_error=self._failed
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
        if isinstance(exc, LoginLocked):
            self.error.setText(str(exc).capitalize() + ".")
            return
        self.error.setText(f"Could not check the password: {exc}")
