"""First start on an empty database: create the admin account (no one can sign in yet)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
)

from app.storage.users import UserInfo, UserService
from app.ui.tasks import TaskRunner


class FirstRunDialog(QDialog):
    def __init__(self, users: UserService, tasks: TaskRunner, database_label: str) -> None:
        super().__init__()
        self.users = users
        self.tasks = tasks
        self.user: UserInfo | None = None
        self.setWindowTitle("Hashdesk — first start")
        self.setMinimumWidth(420)
        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel(
                "<h2>Create the admin account</h2>This database has no users yet. The admin "
                "adds moderators and leads, and can disable accounts."
            )
        )
        form = QFormLayout()
        self.username = QLineEdit("admin")
        self.username.setObjectName("username")
        self.display_name = QLineEdit()
        self.password = QLineEdit()
        self.password.setObjectName("password")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.repeat = QLineEdit()
        self.repeat.setObjectName("repeat")
        self.repeat.setEchoMode(QLineEdit.EchoMode.Password)
        form.addRow("User name", self.username)
        form.addRow("Display name", self.display_name)
        form.addRow("Password (8+ characters)", self.password)
        form.addRow("Repeat the password", self.repeat)
        layout.addLayout(form)
        self.error = QLabel("")
        self.error.setObjectName("first_run_error")
        self.error.setStyleSheet("color: #c0392b;")
        self.error.setWordWrap(True)
        layout.addWidget(self.error)
        db = QLabel(f"Database: {database_label}")
        db.setStyleSheet("color: gray;")
        layout.addWidget(db)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Create and sign in")
        self.buttons.accepted.connect(self._try)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

    def _try(self) -> None:
        name, pw = self.username.text().strip(), self.password.text()
        if pw != self.repeat.text():
            self.error.setText("The passwords differ.")
            return
        display = self.display_name.text().strip() or None
        self.buttons.setEnabled(False)
        self.error.setText("Creating…")
        self.tasks.write(
            lambda: self.users.create_first_admin(name, pw, display),
            on_done=self._done,
            on_error=self._failed,
        )

    def _done(self, user: UserInfo) -> None:
        self.user = user
        self.accept()

    def _failed(self, exc: Exception) -> None:
        self.buttons.setEnabled(True)
        self.error.setText(str(exc))
