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


def test_the_lists_view_clears_a_flood_guard_off_the_gui_thread(
    qtbot, db, store, taxonomy, tmp_path, monkeypatch
):
    import threading

    from PySide6.QtWidgets import QInputDialog, QPushButton
    from sqlalchemy import select, update

    from app.core.model.domain import utcnow
    from app.storage.audit import AuditKind
    from app.storage.models import AuditEvent, HashListEntry

    settings = Settings(database_url=str(db.engine.url), media_root=store.root)
    ctx = AppContext(settings=settings, db=db, store=store, taxonomy=taxonomy)
    admin = make_user(db, "admin1", Role.ADMIN)
    lead = make_user(db, "lead1", Role.LEAD)
    path = tmp_path / "partner.txt"
    path.write_text(f"pdq {HASHES[0]}\npdq {HASHES[1]}\n")
    ctx.hash_lists.import_file(path, "partner", actor=admin)
    with db.session() as s:
        guarded = s.scalar(select(HashListEntry.id).where(HashListEntry.value == HASHES[0]))
        s.execute(
            update(HashListEntry)
            .where(HashListEntry.id == guarded)
            .values(flood_guarded_at=utcnow())
        )
    threads: list[threading.Thread] = []
    real = ctx.hash_lists.clear_flood_guard

    def clear(*args, **kwargs):
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(ctx.hash_lists, "clear_flood_guard", clear)
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("checked by hand", True))
    w = LeadWindow(ctx, lead)
    qtbot.addWidget(w)
    with qtbot.waitActive(w):
        w.show()
        w.activateWindow()
    view = w.lists
    with qtbot.waitSignal(view.entries.page_loaded, timeout=10000):
        qtbot.keyClick(w, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    view.lists_table.selectRow([r.name for r in view.lists_model.rows].index("partner"))
    qtbot.waitUntil(lambda: len(view.entries.rows) == 2, timeout=10000)
    button = view.findChild(QPushButton, "button_lists_clear_guard")
    assert button is not None and button.isEnabled()
    row = {r.id: i for i, r in enumerate(view.entries.rows)}
    plain = next(r.id for r in view.entries.rows if r.id != guarded)

    view.entries_table.selectRow(row[plain])  # not guarded: said, nothing written
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert view.status.text() == f"Entry #{plain} is not held by the flood guard."
    assert threads == []

    view.entries_table.selectRow(row[guarded])
    assert view.entries.rows[row[guarded]].flood_guarded
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Cleared the flood guard" in view.status.text(), timeout=10000)
    qtbot.waitUntil(
        lambda: [r.flood_guarded for r in view.entries.rows if r.id == guarded] == [False],
        timeout=10000,
    )
    assert len(threads) == 1 and threads[0] is not threading.main_thread()
    with db.session() as s:
        assert s.get(HashListEntry, guarded).flood_guarded_at is None
        event = s.scalar(select(AuditEvent).where(AuditEvent.kind == AuditKind.ENTRY_ENABLED.value))
    assert event.actor_id == lead.id and "checked by hand" in event.detail
    w.close()
