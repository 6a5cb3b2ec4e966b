"""A team workstation's sign-in dialog connects to PostgreSQL as the person: the window's
context runs on that person's own login, and a refusal is one line in the dialog."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from app.compose import sign_in
from app.core.model.domain import Role
from app.core.settings.config import load_settings
from app.ui.login import LoginDialog
from app.ui.tasks import TaskRunner

pytestmark = pytest.mark.postgres


def test_the_dialog_signs_a_person_in_to_the_server_as_themselves(qtbot, team_server):
    root = team_server.add("root", Role.ADMIN)
    team_server.add("mo", Role.MODERATOR, actor=root, via=team_server.connect("root"))
    url = team_server.team_url
    settings = load_settings(
        {"HASHDESK_DATABASE_URL": url, "HASHDESK_NO_KEYRING": "1", "HASHDESK_ALLOW_TRUST_AUTH": "1"}
    )
    assert settings.team_sign_in
    signed = {}

    def authenticate(name, password):
        ctx, user = sign_in(settings, name, password)
        signed["ctx"] = ctx
        return user

    tasks = TaskRunner()
    dialog = LoginDialog(authenticate, tasks, settings.database_label)
    qtbot.addWidget(dialog)
    dialog.username.setText("nobody")
    dialog.password.setText(team_server.PASSWORD)
    qtbot.mouseClick(dialog.buttons.button(dialog.buttons.StandardButton.Ok), Qt.LeftButton)
    qtbot.waitUntil(lambda: "Checking" not in dialog.error.text(), timeout=10000)
    assert dialog.user is None
    assert "\n" not in dialog.error.text()
    assert "wrong user name or password" in dialog.error.text()

    dialog.username.setText("mo")
    dialog.password.setText(team_server.PASSWORD)
    with qtbot.waitSignal(dialog.accepted, timeout=10000):
        qtbot.mouseClick(dialog.buttons.button(dialog.buttons.StandardButton.Ok), Qt.LeftButton)
    assert dialog.user is not None and dialog.user.username == "mo"
    ctx = signed["ctx"]
    try:
        with ctx.db.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT session_user").scalar() == (
                f"{team_server.prefix}u_mo"
            )
        assert ctx.review.claim_next(dialog.user.id) is None  # an empty queue, as mo
    finally:
        ctx.close()
        tasks.wait()
