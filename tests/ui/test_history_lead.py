"""The lead's workspace driven by the keyboard on a real database (SQLite and PostgreSQL):
history paging and filters, the timeline, overturn, the escalation queue, blind second review,
statistics and exports."""

from __future__ import annotations

import csv

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from sqlalchemy import select

from app.compose import AppContext
from app.core.model.decisions import DecisionRequest
from app.core.model.domain import DecisionMethod, ItemStatus, Role, Verdict
from app.core.model.history_types import HistoryFilter
from app.core.settings.config import Settings
from app.storage.models import HashListEntry
from app.ui.lead_window import LeadWindow
from app.ui.review_window import ReviewWindow
from tests.helpers import ingest, make_user, write_samples

KEY = Qt.Key


@pytest.fixture
def lead_env(qtbot, db, store, taxonomy, tmp_path):
    """Six ingested items (three user reports, three removal orders), two moderators and a lead,
    and a factory for the lead window."""
    paths = write_samples(tmp_path / "in", range(6))
    ingest(db, store, paths[:3], source="user_report")
    ingest(db, store, paths[3:], source="removal_order")
    settings = Settings(database_url=str(db.engine.url), media_root=store.root)
    ctx = AppContext(settings=settings, db=db, store=store, taxonomy=taxonomy)
    ctx.review.second_review_share = 0.0
    env = {
        "ctx": ctx,
        "mod1": make_user(db, "mod1"),
        "mod2": make_user(db, "mod2"),
        "lead": make_user(db, "lead1", Role.LEAD),
    }
    windows: list = []

    def lead_window(page_size: int = 100) -> LeadWindow:
        w = LeadWindow(ctx, env["lead"])
        w.history.model.page_size = page_size
        qtbot.addWidget(w)
        with qtbot.waitActive(w):
            w.show()
            w.activateWindow()
        with qtbot.waitSignal(w.history.model.page_loaded, timeout=10000):
            w.start()
        windows.append(w)
        return w

    env["lead_window"] = lead_window
    env["windows"] = windows
    yield env
    for w in windows:
        w.close()


def _decide(ctx, user, verdict, category=None, note=None):
    item = ctx.review.claim_next(user.id)
    ctx.review.decide(
        DecisionRequest(item.id, user.id, verdict, category, category and category.title(), note)
    )
    return item


def _active(db, item_id):
    with db.session() as s:
        return s.scalars(
            select(HashListEntry).where(
                HashListEntry.item_id == item_id, HashListEntry.retracted_at.is_(None)
            )
        ).all()


def _table_items(w):
    return [r.item_id for r in w.history.model.rows]


def test_history_pages_in_the_background_filters_and_timeline(qtbot, lead_env, db):
    ctx, mod1, mod2 = lead_env["ctx"], lead_env["mod1"], lead_env["mod2"]
    made = []
    for i in range(6):
        user = mod1 if i % 2 == 0 else mod2
        verdict = Verdict.CONFIRM if i % 3 == 0 else Verdict.REJECT
        made.append(_decide(ctx, user, verdict, "glorification" if i % 3 == 0 else None,
                            "looks like satire" if i == 4 else None))  # fmt: skip
    w = lead_env["lead_window"](page_size=2)
    h = w.history
    assert len(h.model.rows) == 2 and h.model.has_more
    # Scrolling to the end asks for more; each page arrives from the reader pool.
    while h.model.has_more:
        with qtbot.waitSignal(h.model.page_loaded, timeout=10000):
            qtbot.keyClick(h.table, KEY.Key_End, Qt.KeyboardModifier.ControlModifier)
            if not h.model.loading:
                h.model.fetchMore()
    assert _table_items(w) == [m.id for m in reversed(made)]
    # The first row is current and its timeline shows, with the blurred preview.
    with qtbot.waitSignal(h.timeline.loaded, timeout=10000):
        qtbot.keyClick(h.table, KEY.Key_Home, Qt.KeyboardModifier.ControlModifier)
    assert h.timeline.item_id == made[-1].id
    assert h.timeline.preview.frame_count == 1 and not h.timeline.preview.revealed
    events = h.timeline.events_model.stringList()
    source = ctx.review.load_item(made[-1].id).sightings[0].source
    assert any(f"Flagged by {source}" in e for e in events)
    assert any("by mod2 (manual)" in e for e in events)
    with qtbot.waitSignal(h.timeline.loaded, timeout=10000):
        qtbot.keyClick(h.table, KEY.Key_Down)
    assert h.timeline.item_id == made[-2].id
    # Filters by keyboard: Ctrl+F, type, Enter.
    h.model.page_size = 100
    qtbot.keyClick(h, KEY.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert h.f_text.hasFocus()
    with qtbot.waitSignal(h.model.page_loaded, timeout=10000):
        qtbot.keyClicks(h.f_text, "SATIRE")
        qtbot.keyClick(h.f_text, KEY.Key_Return)
    assert _table_items(w) == [made[4].id] and h.table.hasFocus()
    h.f_text.clear()
    h.f_user.setCurrentIndex(h.f_user.findData("mod1"))
    h.f_verdict.setCurrentIndex(h.f_verdict.findData("confirm"))
    with qtbot.waitSignal(h.model.page_loaded, timeout=10000):
        h.apply_filters()
    assert _table_items(w) == [made[0].id]
    h.f_user.setCurrentIndex(0)
    h.f_verdict.setCurrentIndex(0)
    h.f_source.setCurrentIndex(h.f_source.findData("user_report"))
    with qtbot.waitSignal(h.model.page_loaded, timeout=10000):
        h.apply_filters()
    sources = {m.id: ctx.review.load_item(m.id).sightings[0].source for m in made}
    assert _table_items(w) == [m.id for m in reversed(made) if sources[m.id] == "user_report"]
    with qtbot.waitSignal(h.model.page_loaded, timeout=10000):
        qtbot.keyClick(h, KEY.Key_L, Qt.KeyboardModifier.ControlModifier)  # clear filters
    assert len(_table_items(w)) == 6  # everything again


def test_overturn_from_history_retracts_then_adds_hashes(qtbot, lead_env, db, tmp_path):
    ctx, mod1 = lead_env["ctx"], lead_env["mod1"]
    confirmed = _decide(ctx, mod1, Verdict.CONFIRM, "glorification")
    rejected = _decide(ctx, mod1, Verdict.REJECT)
    assert _active(db, confirmed.id) and not _active(db, rejected.id)
    w = lead_env["lead_window"]()
    h = w.history
    assert _table_items(w) == [rejected.id, confirmed.id]
    # Row 2 (the confirm): O opens the dialog; a reason is required.
    qtbot.keyClick(h.table, KEY.Key_Down)
    dialog = None
    qtbot.keyClick(h.table, KEY.Key_O)
    dialog = h._dialog
    assert dialog.isVisible() and not dialog.category.isEnabled()
    dialog._accept()
    assert dialog.isVisible() and "required" in dialog.error.text()
    qtbot.keyClicks(dialog.reason, "news report, not glorification")
    assert dialog.error.text() == ""  # typing a reason clears the complaint
    chosen = h.selected_row()
    with qtbot.waitSignal(h.model.page_loaded, timeout=10000):
        dialog._accept()
    assert h.last_overturn is not None and h.last_overturn.hashes_retracted >= 4
    # Said, and the overturned decision is still the selected row (not the first).
    assert h.notice.text().startswith(f"Overturned on item #{confirmed.id}: confirm → reject")
    assert h.selected_row().uuid == chosen.uuid and h.table.currentIndex().row() != 0
    assert _active(db, confirmed.id) == []
    rows = {r.item_id: r for r in h.model.rows if r.verdict is not Verdict.OVERTURN}
    assert rows[confirmed.id].overturned
    assert h.model.rows[0].verdict is Verdict.OVERTURN  # newest first
    # The reject: overturning it confirms, with a category, adding hashes.
    h.set_filter(HistoryFilter(verdicts=(Verdict.REJECT,)))
    qtbot.waitUntil(lambda: _table_items(w) == [rejected.id], timeout=10000)
    h.table.setCurrentIndex(h.model.index(0, 0))
    dialog = h.overturn_selected()
    assert dialog is not None and dialog.category.isEnabled()
    dialog.category.setCurrentIndex(dialog.category.findData(("branded", "Branded terrorist "
                                                              "publication")))  # fmt: skip
    if dialog.category.currentIndex() < 0:
        dialog.category.setCurrentIndex(0)
    qtbot.keyClicks(dialog.reason, "official magazine issue")
    with qtbot.waitSignal(h.model.page_loaded, timeout=10000):
        dialog._accept()
    added = _active(db, rejected.id)
    assert len(added) == h.last_overturn.hashes_added >= 4
    assert ctx.review.load_item(rejected.id).status is ItemStatus.DECIDED
    # An undone or overturned decision cannot be overturned again.
    h.set_filter(HistoryFilter(verdicts=(Verdict.REJECT,)))
    qtbot.waitUntil(lambda: bool(h.model.rows) and h.model.rows[0].overturned, timeout=10000)
    h.table.setCurrentIndex(h.model.index(0, 0))
    assert h.overturn_selected() is None and "already taken back" in h.status.text()
    # Export of the filtered history (every matching row, not only the loaded ones).
    h.set_filter(HistoryFilter())
    qtbot.waitUntil(lambda: len(h.model.rows) == 4, timeout=10000)
    out = tmp_path / "history.csv"
    h.export_csv(out)
    qtbot.waitUntil(lambda: h.last_export is not None, timeout=10000)
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["verdict"] for r in rows].count("overturn") == 2 and len(rows) == 4


def test_escalation_is_decided_by_a_lead_on_the_review_screen(qtbot, lead_env, db):
    ctx, mod1 = lead_env["ctx"], lead_env["mod1"]
    esc = _decide(ctx, mod1, Verdict.ESCALATE, note="could be a satire account")
    w = lead_env["lead_window"]()
    qtbot.keyClick(w.history.table, KEY.Key_E, Qt.KeyboardModifier.ControlModifier
                   | Qt.KeyboardModifier.ShiftModifier)  # fmt: skip
    rw = w.queue_windows.get("escalations")
    assert isinstance(rw, ReviewWindow) and rw.queue == "escalations"
    qtbot.waitUntil(lambda: rw.controller.current is not None, timeout=10000)
    rw.controller.dwell_seconds = 0
    with qtbot.waitActive(rw):
        rw.activateWindow()
    assert rw.controller.current.item.id == esc.id
    assert rw.facts["escalation"].text() == "Escalated by mod1: could be a satire account"
    assert not rw.actions_by_id["undo"].isEnabled()
    qtbot.keyClick(rw.preview, KEY.Key_3)
    with qtbot.waitSignal(rw.controller.decision_recorded, timeout=10000):
        qtbot.keyClick(rw.preview, KEY.Key_Y)
    qtbot.waitUntil(
        lambda: ctx.review.load_item(esc.id).status is ItemStatus.DECIDED, timeout=10000
    )
    assert len(_active(db, esc.id)) >= 4
    rw.close()


def test_e_on_the_escalation_queue_passes_it_to_another_lead(qtbot, lead_env, db):
    ctx, mod1 = lead_env["ctx"], lead_env["mod1"]
    esc = _decide(ctx, mod1, Verdict.ESCALATE, note="could be a satire account")
    w = lead_env["lead_window"]()
    rw = w.open_queue("escalations")
    rw.controller.dwell_seconds = 0
    qtbot.waitUntil(lambda: rw.controller.current is not None, timeout=10000)
    with qtbot.waitActive(rw):
        rw.activateWindow()
    # Labelled as what it does here, in the button, the menu and the cheat sheet alike.
    assert rw.decision_buttons["escalate"].text() == "Pass to another lead   [E]"
    assert rw.actions_by_id["escalate"].text() == "Pass to another lead"
    qtbot.keyClick(rw.preview, KEY.Key_E)
    dialog = rw._reason_dialog
    assert dialog.isVisible() and dialog.windowTitle() == "Pass to another lead"
    qtbot.keyClicks(dialog.reason, "needs the Arabic speaker")
    with qtbot.waitSignal(rw.controller.decision_recorded, timeout=10000) as done:
        qtbot.keyClick(dialog.reason, KEY.Key_Return)
    assert done.args[0].verdict is Verdict.SKIP
    qtbot.waitUntil(lambda: "another lead" in rw.feedback.text(), timeout=10000)
    assert rw.feedback.text() == f"Passed #{esc.id} on to another lead"
    with db.session() as s:
        from app.storage.models import Decision

        last = s.scalars(select(Decision).order_by(Decision.id.desc())).first()
    assert (last.verdict, last.note) == ("skip", "needs the Arabic speaker")
    assert ctx.review.load_item(esc.id).status is ItemStatus.ESCALATED  # still with the leads
    rw.close()
    lead2 = make_user(db, "lead2", Role.LEAD)

    def released() -> bool:  # the closed window gives its claim back in the background
        from app.storage.models import Item

        with db.session() as s:
            return s.get(Item, esc.id).claimed_by is None

    qtbot.waitUntil(released, timeout=10000)
    item = ctx.review.claim_next(lead2.id, queue="escalations")
    assert item.escalation_note == (
        "Escalated by mod1: could be a satire account. Passed on by lead1: needs the Arabic speaker"
    )


def test_second_review_is_blind_and_a_disagreement_reaches_the_lead(
    qtbot, lead_env, db, store, taxonomy
):
    ctx, mod1, mod2 = lead_env["ctx"], lead_env["mod1"], lead_env["mod2"]
    ctx.review.second_review_share = 1.0
    first = _decide(ctx, mod1, Verdict.CONFIRM, "glorification")
    rw = ReviewWindow(ctx, mod2, queue="second_review")
    qtbot.addWidget(rw)
    rw.controller.dwell_seconds = 0
    with qtbot.waitActive(rw):
        rw.show()
        rw.activateWindow()
    rw.start()
    qtbot.waitUntil(lambda: rw.controller.current is not None, timeout=10000)
    assert rw.controller.current.item.id == first.id
    assert rw.facts["match"].text() == "none"  # nothing hints at the first verdict
    with qtbot.waitSignal(rw.controller.decision_recorded, timeout=10000):
        qtbot.keyClick(rw.preview, KEY.Key_N)
    qtbot.waitUntil(
        lambda: ctx.review.load_item(first.id).status is ItemStatus.ESCALATED, timeout=10000
    )
    assert len(_active(db, first.id)) >= 4  # an opinion changes no hashes
    rw.close()
    with db.session() as s:
        from app.storage.models import Decision

        methods = [d.method for d in s.scalars(select(Decision).order_by(Decision.id))]
    assert methods == [DecisionMethod.MANUAL.value, DecisionMethod.SECOND_REVIEW.value]
    item = ctx.review.claim_next(lead_env["lead"].id, queue="escalations")
    assert item.escalation_note.startswith("Second review disagreed")


def test_stats_view_charts_and_summary_export(qtbot, lead_env, db, tmp_path):
    ctx, mod1, mod2 = lead_env["ctx"], lead_env["mod1"], lead_env["mod2"]
    _decide(ctx, mod1, Verdict.CONFIRM, "glorification")
    _decide(ctx, mod2, Verdict.REJECT)
    _decide(ctx, mod2, Verdict.ESCALATE)
    w = lead_env["lead_window"]()
    with qtbot.waitSignal(w.tabs.currentChanged, timeout=2000):
        qtbot.keyClick(w.history.table, KEY.Key_2, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: w.stats.stats is not None, timeout=10000)
    st = w.stats.stats
    assert w.stats.cards["human"].text() == "2"  # confirm + reject; an escalation decides nothing
    assert st.by_verdict == {"confirm": 1, "reject": 1}  # the human decisions, as the card
    assert st.other_actions == {"escalate": 1}
    per_mod = w.stats.charts["per_moderator"]
    assert sorted(per_mod.labels) == ["mod1", "mod2"]
    per_hour = w.stats.charts["per_hour"]
    # The charts add up to the card: the same rows (an escalation is not a decision).
    assert sum(per_hour.total(i) for i in range(len(per_hour.values))) == 2
    assert sum(per_mod.total(i) for i in range(len(per_mod.values))) == 2
    w.stats.grab()  # paints every chart without error
    html_path, csv_path = w.stats.export(tmp_path / "summary.html")
    page = html_path.read_text(encoding="utf-8")
    assert "<svg" in page and "mod2" in page and "src=" not in page
    assert "verdict,reject,1" in csv_path.read_text(encoding="utf-8")
    QApplication.processEvents()


def test_moderator_opens_the_second_review_queue_by_key(qtbot, lead_env, db):
    ctx, mod1, mod2 = lead_env["ctx"], lead_env["mod1"], lead_env["mod2"]
    ctx.review.second_review_share = 1.0
    first = _decide(ctx, mod1, Verdict.REJECT)
    w = ReviewWindow(ctx, mod2)
    qtbot.addWidget(w)
    with qtbot.waitActive(w):
        w.show()
        w.activateWindow()
    w.start()
    qtbot.keyClick(
        w.preview,
        KEY.Key_S,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    sr = w.second_review_window
    assert sr is not None and sr.queue == "second_review"
    qtbot.waitUntil(lambda: sr.controller.current is not None, timeout=10000)
    assert sr.controller.current.item.id == first.id
    sr.close()
    w.close()


def test_stats_view_shows_exposure_as_care_and_exports_it(qtbot, lead_env, db, tmp_path):
    from app.core.model.domain import utcnow
    from app.core.model.exposure import ExposureEvent, ExposureKind

    ctx, mod1 = lead_env["ctx"], lead_env["mod1"]
    seen = _decide(ctx, mod1, Verdict.REJECT)
    _decide(ctx, mod1, Verdict.REJECT)  # decided without unblurring anything
    ctx.exposure.record(ExposureEvent(mod1.id, seen.id, ExposureKind.REVEAL, utcnow(), 9.0))
    w = lead_env["lead_window"]()
    with qtbot.waitSignal(w.tabs.currentChanged, timeout=2000):
        qtbot.keyClick(w.history.table, KEY.Key_2, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: w.stats.stats is not None, timeout=10000)
    assert w.stats.cards["zero_exposure"].text() == "50.0%  (1/2)"
    assert w.stats.cards["exposure"].text().startswith("4.5 s")
    assert w.stats.charts["exposure"].labels == ["mod1"]
    html_path, csv_path = w.stats.export(tmp_path / "summary.html")
    assert "Resolved with zero exposure" in html_path.read_text(encoding="utf-8")
    assert "exposure,zero_exposure_share,50.0%" in csv_path.read_text(encoding="utf-8")


def test_a_lead_signs_out_from_the_workspace_and_its_queue_windows_give_their_claims_back(
    qtbot, lead_env, db
):
    ctx, lead = lead_env["ctx"], lead_env["lead"]
    w = lead_env["lead_window"]()
    menus = [a.text().replace("&", "") for a in w.menuBar().actions()]
    assert "Session" in menus
    assert w.session_actions["quit"].shortcut().toString() == "Ctrl+Q"
    rw = w.open_queue("review")
    qtbot.waitUntil(lambda: rw.controller.current is not None, timeout=10000)
    assert ctx.review.my_claims(lead.id, "review")  # the lead holds the item on screen
    with qtbot.waitSignal(w.signed_out, timeout=10000):
        w.session_actions["sign_out"].trigger()
    assert not w.isVisible() and not rw.isVisible()
    assert ctx.review.my_claims(lead.id) == []  # every claim given back on the way out
