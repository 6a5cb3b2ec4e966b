"""The review window while the shared database comes and goes: the moderator keeps working,
the status bar says what waits, and every decision lands once."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from app.core.model.decisions import DecisionRequest
from app.core.model.domain import ItemStatus, Verdict
from app.storage.journal import DecisionJournal
from app.storage.models import Decision
from tests.ui.conftest import KEY, press


def _decisions(db):
    with db.session() as s:
        return s.scalars(select(Decision).order_by(Decision.id)).all()


class _Outage:
    """Makes the review service's writes fail like a dropped connection while ``down``."""

    def __init__(self, review, monkeypatch) -> None:
        self.down = False
        for name in ("decide", "undo_last"):
            real = getattr(review, name)

            def failing(*a, _real=real, **kw):
                if self.down:
                    raise OperationalError("INSERT", {}, ConnectionRefusedError("refused"))
                return _real(*a, **kw)

            monkeypatch.setattr(review, name, failing)


def test_outage_keeps_the_moderator_working_and_nothing_is_lost(
    qtbot, make_window, db, monkeypatch
):
    w = make_window(db, n=3)
    c = w.controller
    outage = _Outage(w.ctx.review, monkeypatch)
    outage.down = True
    first = c.current.item
    press(qtbot, w, KEY.Key_N)
    # The screen moved on at once; the decision waits in the journal.
    qtbot.waitUntil(lambda: c.current is not None and c.current.item.id != first.id, timeout=5000)
    qtbot.waitUntil(lambda: c.sync_error is not None, timeout=5000)
    assert c.pending == 1
    assert w.status_sync.text() == "database unreachable: 1 waiting to sync"
    # Undo while the decision it takes back has not landed: the item is back at once.
    press(qtbot, w, KEY.Key_U)
    assert c.current.item.id == first.id
    qtbot.waitUntil(lambda: c.pending == 2, timeout=5000)
    press(qtbot, w, KEY.Key_1)
    press(qtbot, w, KEY.Key_Y)
    qtbot.waitUntil(lambda: c.pending == 3, timeout=5000)
    assert _decisions(db) == []

    outage.down = False  # the database is back: a retry lands everything, in order
    # The backoff may have grown to 30 s during the outage; ask for the retry now rather than
    # depend on how long the outage lasted on a loaded machine.
    qtbot.waitUntil(lambda: not c._sync_running, timeout=10000)
    c.sync_now()
    qtbot.waitUntil(lambda: c.pending == 0, timeout=15000)
    assert w.status_sync.text() == "all saved"
    rows = _decisions(db)
    assert [(r.verdict, r.item_id) for r in rows] == [
        ("reject", first.id),
        ("undo", first.id),
        ("confirm", first.id),
    ]
    assert rows[1].supersedes == rows[0].uuid
    assert w.ctx.review.load_item(first.id).status is ItemStatus.DECIDED


def test_decisions_journalled_by_a_killed_run_land_on_the_next_start(
    qtbot, make_window, db, store, tmp_path
):
    from app.storage.review import ReviewService
    from tests.helpers import ingest, make_user, write_samples

    # An earlier run claimed an item and journalled a decision, then was killed.
    ingest(db, store, write_samples(tmp_path / "earlier", range(100, 102)))
    earlier = make_user(db, "mod0")
    item = ReviewService(db).claim_next(earlier.id)
    from app.core.settings.config import data_dir
    from app.core.settings.config import redact_url as _r
    from app.storage.journal import journal_path

    url = _r(db.engine.url.render_as_string(hide_password=True))
    journal = DecisionJournal(journal_path(url, data_dir()))
    req = DecisionRequest(item.id, earlier.id, Verdict.REJECT)
    journal.record_decision(req)
    journal.close()

    w = make_window(db, n=1)
    qtbot.waitUntil(lambda: w.controller.pending == 0, timeout=10000)
    rows = [r for r in _decisions(db) if r.uuid == req.uuid]
    assert len(rows) == 1 and rows[0].item_id == item.id
    qtbot.waitUntil(lambda: w.controller.current is not None, timeout=10000)
    assert w.controller.current.item.id != item.id


def test_first_start_on_an_empty_database_creates_the_admin(qtbot, sqlite_db):
    from PySide6.QtWidgets import QDialogButtonBox

    from app.core.model.domain import Role
    from app.storage.users import UserService
    from app.ui.first_run import FirstRunDialog
    from app.ui.tasks import TaskRunner

    users = UserService(sqlite_db)
    dialog = FirstRunDialog(users, TaskRunner(), "test")
    qtbot.addWidget(dialog)
    dialog.password.setText("a good password")
    dialog.repeat.setText("a different one")
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    ok.click()
    assert dialog.error.text() == "The passwords differ." and users.count() == 0
    dialog.repeat.setText("a good password")
    with qtbot.waitSignal(dialog.accepted, timeout=10000):
        ok.click()
    assert dialog.user is not None and dialog.user.role is Role.ADMIN
    assert users.authenticate("admin", "a good password") == dialog.user
