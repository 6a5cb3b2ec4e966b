"""The lead's hash-lists view: the lists with their counts, the entries of the selected list
paged in the background and searched by hash prefix, disable with a reason, import with its
summary (on SQLite and PostgreSQL)."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.compose import AppContext
from app.core.model.domain import Role
from app.core.settings.config import Settings
from app.storage.list_import import ListSettings
from app.ui.lead_window import LeadWindow
from tests.helpers import make_user

HASHES = [f"{i:02x}" * 32 for i in range(1, 251)]


def test_lists_view_shows_searches_disables_and_imports(qtbot, db, store, taxonomy, tmp_path):
    settings = Settings(database_url=str(db.engine.url), media_root=store.root)
    ctx = AppContext(settings=settings, db=db, store=store, taxonomy=taxonomy)
    admin = make_user(db, "admin1", Role.ADMIN)
    path = tmp_path / "partner.txt"
    path.write_text("".join(f"pdq {h}\n" for h in HASHES))
    ctx.hash_lists.import_file(path, "partner", actor=admin)
    w = LeadWindow(ctx, admin)
    qtbot.addWidget(w)
    with qtbot.waitActive(w):
        w.show()
        w.activateWindow()
    view = w.lists
    with qtbot.waitSignal(view.entries.page_loaded, timeout=10000):
        qtbot.keyClick(w, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    assert w.tabs.currentWidget() is view
    names = [r.name for r in view.lists_model.rows]
    assert names == ["local", "partner"]
    (partner,) = [r for r in view.lists_model.rows if r.name == "partner"]
    assert (partner.active, partner.policy.value) == (250, "queue")
    view.lists_table.selectRow(1)
    qtbot.waitUntil(lambda: len(view.entries.rows) == 200, timeout=10000)  # one page
    view.entries_table.scrollToBottom()
    qtbot.waitUntil(lambda: len(view.entries.rows) == 250, timeout=10000)  # the next, lazily

    view.prefix.setText(HASHES[41][:8].upper())  # "2A2A2A2A": one hash
    with qtbot.waitSignal(view.entries.page_loaded, timeout=10000):
        view.apply()
    assert [r.value for r in view.entries.rows] == [HASHES[41]]
    view.entries_table.selectRow(0)
    assert view.selected_entries() == [view.entries.rows[0].id]
    with qtbot.waitSignal(view.entries.page_loaded, timeout=10000):
        view.run_set_enabled(view.selected_entries(), False, "a news photo")
    qtbot.waitUntil(lambda: view.entries.rows and view.entries.rows[0].state == "disabled")
    assert view.entries.rows[0].reason == "a news photo"

    allow = tmp_path / "allow.txt"
    allow.write_text(f"pdq {HASHES[0]}\npdq nothex\n")
    view.run_import(allow, "news", None, ListSettings(allow=True))
    qtbot.waitUntil(lambda: "news" in [r.name for r in view.lists_model.rows], timeout=10000)
    qtbot.waitUntil(lambda: "1 added" in view.status.text(), timeout=10000)
    assert "line 2:" in view.status.text()
    (news,) = [r for r in view.lists_model.rows if r.name == "news"]
    assert news.allow and news.active == 1
    w.close()


def test_the_import_button_says_why_a_lead_cannot_use_it(qtbot, db, store, taxonomy):
    """Issue 25 (14): for a lead the Import button is disabled, not silently dead, and its
    tooltip says why; an admin's works."""
    from PySide6.QtWidgets import QPushButton

    settings = Settings(database_url=str(db.engine.url), media_root=store.root)
    ctx = AppContext(settings=settings, db=db, store=store, taxonomy=taxonomy)
    for user, may in (
        (make_user(db, "lead1", Role.LEAD), False),
        (make_user(db, "a1", Role.ADMIN), True),
    ):
        w = LeadWindow(ctx, user)
        qtbot.addWidget(w)
        button = w.lists.findChild(QPushButton, "button_lists_import")
        assert button is not None
        assert button.isEnabled() is may
        if not may:
            assert "needs an admin: you are signed in as a lead" in button.toolTip()
        w.close()
