"""First start on an empty database: create the admin account (no one can sign in yet)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
)

from app.core.errors import describe
from app.core.model.domain import UserInfo
from app.storage.users import UserService
from app.ui.login import add_footer, password_field
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
        self.password = password_field("password")
        self.repeat = password_field("repeat")
        form.addRow("User name", self.username)
        form.addRow("Display name", self.display_name)
        form.addRow("Password (8+ characters)", self.password)
        form.addRow("Repeat the password", self.repeat)
        layout.addLayout(form)
        self.error, self.buttons = add_footer(
            self,
            layout,
            "first_run_error",
            database_label,
            "Create and sign in",
            self._try,
            wrap=True,
        )

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
        self.error.setText(describe(exc))
