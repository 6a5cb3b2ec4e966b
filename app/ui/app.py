"""Starting the GUI: the QApplication, the login, the review window."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from app import APP_ID, APP_NAME, __version__
from app.compose import AppContext, sign_in
from app.core.model.domain import UserInfo
from app.core.model.roles import Permission, allowed
from app.core.settings.config import Settings, data_dir
from app.paths import resource
from app.ui.login import LoginDialog
from app.ui.review_window import ReviewWindow
from app.ui.tasks import TaskRunner


def make_qapp() -> QApplication:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setOrganizationDomain(APP_ID)
    app.setDesktopFileName(APP_ID)
    icon = resource("icons/hashdesk.png")
    if icon.exists():
        app.setWindowIcon(QIcon(str(icon)))
    QApplication.setAttribute(Qt.ApplicationAttribute.AA_DontShowIconsInMenus, False)
    return app


def run_gui(ctx: AppContext, user: UserInfo | None = None) -> int:
    app = make_qapp()
    tasks = TaskRunner()
    if user is None and ctx.users.count() == 0:
        from app.ui.first_run import FirstRunDialog

        first = FirstRunDialog(ctx.users, tasks, ctx.db.label)
        if first.exec() != FirstRunDialog.DialogCode.Accepted or first.user is None:
            return 0
        user = first.user

    def ask() -> tuple[AppContext, UserInfo] | None:
        login = LoginDialog(ctx.users.authenticate, tasks, ctx.db.label)
        if login.exec() != LoginDialog.DialogCode.Accepted or login.user is None:
            return None
        return ctx, login.user

    if user is None:
        signed = ask()
        if signed is None:
            return 0
        user = signed[1]
    return _show(app, ctx, user, tasks, ask)


_OPEN: dict[str, object] = {}
SignIn = Callable[[], "tuple[AppContext, UserInfo] | None"]


def _show(
    app: QApplication, ctx: AppContext, user: UserInfo, tasks: TaskRunner, ask: SignIn
) -> int:
    _open_window(app, ctx, user, tasks, ask)
    return app.exec()


def _open_window(
    app: QApplication, ctx: AppContext, user: UserInfo, tasks: TaskRunner, ask: SignIn
) -> None:
    """The person's window; after a sign-out (the shared workstation) the next person signs
    in, and the application ends when nobody does."""
    from app.storage.verification import SeenHeads, chain_state

    # This workstation remembers the chains' heads it saw (audit verify reports a head that
    # went backwards): a cheap read, off the GUI thread.
    seen = SeenHeads(data_dir() / "chain-heads.json")
    tasks.read(lambda: seen.remember(ctx.db.label, chain_state(ctx.db)), on_error=lambda e: None)
    if allowed(user.role, Permission.VIEW_HISTORY):
        from app.ui.lead_window import LeadWindow

        window: LeadWindow | ReviewWindow = LeadWindow(ctx, user, tasks)  # history, numbers
    else:
        window = ReviewWindow(ctx, user, tasks)

    def next_person() -> None:
        signed = ask()
        if signed is None:
            app.quit()
            return
        if signed[0] is not ctx:  # a team workstation: the last person's connection ends
            ctx.close()
        _open_window(app, signed[0], signed[1], tasks, ask)

    window.signed_out.connect(next_person, Qt.ConnectionType.QueuedConnection)
    _OPEN["window"] = window  # the one window of this person, kept alive while it is open
    window.show()
    window.start()
    _quit_on_signals(app, window)


def run_team_gui(settings: Settings) -> int:
    """A team workstation: the person signs in to PostgreSQL as themselves (no shared
    credential on the workstation); the window works on that connection."""
    app = make_qapp()
    tasks = TaskRunner()
    signed: dict[str, AppContext] = {}

    def authenticate(name: str, password: str) -> UserInfo | None:
        ctx, user = sign_in(settings, name, password)
        signed["ctx"] = ctx
        return user

    def ask() -> tuple[AppContext, UserInfo] | None:
        login = LoginDialog(authenticate, tasks, settings.database_label)
        if login.exec() != LoginDialog.DialogCode.Accepted or login.user is None:
            return None
        return signed["ctx"], login.user

    first = ask()
    if first is None:
        return 0
    try:
        return _show(app, first[0], first[1], tasks, ask)
    finally:
        signed["ctx"].close()


def _quit_on_signals(app: QApplication, window) -> None:
    """Ctrl+C (or a TERM) in the terminal closes the window as the close button would, so the
    review window gives its claims back and the demo removes its folder. Qt's loop runs no
    Python while idle: a light timer lets the interpreter see the signal."""

    def close(_signum, _frame) -> None:
        window.close()
        app.quit()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, close)
    tick = QTimer(app)
    tick.timeout.connect(lambda: None)
    tick.start(250)
