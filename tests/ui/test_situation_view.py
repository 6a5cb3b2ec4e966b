"""Issue 23, 4-5 in the lead workspace: the Incident tab (Ctrl+5) loads the situation off the GUI
thread and shows the figures, the times, the charts and the update text; a hash delta that could
not be delivered is shown in red on top until it is; the debrief button writes the HTML and
CSV."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.compose import AppContext
from app.core.settings.config import Settings
from app.ui.lead_window import LeadWindow
from tests.storage.test_situation import _incident


def test_the_incident_tab_shows_the_situation_and_a_delta_not_delivered(
    qtbot, db, store, taxonomy, tmp_path
):
    team, _inc, _copy = _incident(db, store, tmp_path)
    # A confirm since the last delta, and the share gone: the next delta fails.
    team.confirm(1)
    gone = tmp_path / "gone"
    seq = team.deltas.plan(actor=team.lead, formats=("pytx",))
    assert seq == 2 and not team.deltas.deliver(seq, actor=team.lead, folder=gone).written
    settings = Settings(database_url=str(db.engine.url), media_root=store.root)
    ctx = AppContext(settings=settings, db=db, store=store, taxonomy=taxonomy)
    w = LeadWindow(ctx, team.lead)
    qtbot.addWidget(w)
    with qtbot.waitActive(w):
        w.show()
        w.activateWindow()
    view = w.situation
    qtbot.keyClick(w, Qt.Key.Key_5, Qt.KeyboardModifier.ControlModifier)
    assert w.tabs.currentWidget() is view
    qtbot.waitUntil(lambda: view.situation is not None and not view.loading, timeout=20000)
    assert view.cards["distinct items seen"].text() == "8"
    assert view.cards["copies resolved by re-scan"].text() == "1"
    assert "CIP-2019-03" in view.status.text()
    assert "first delta out" in view.times.text()
    assert view.text.toPlainText().startswith("Situational update: christchurch")
    assert view.charts["resolved"].series == ["by a person", "without one"]
    assert view.trouble.isVisible()
    assert view.trouble.text().startswith("Hash delta ")
    assert "NOT DELIVERED" in view.trouble.text() and str(gone) in view.trouble.text()
    # Delivered at last: the red line goes on the next refresh.
    gone.mkdir()
    trouble = team.deltas.trouble()
    assert team.deltas.deliver(trouble.seq, actor=team.lead, folder=gone).written
    view.refresh()
    qtbot.waitUntil(lambda: not view.loading and not view.trouble.isVisible(), timeout=20000)
    out = tmp_path / "debrief.html"
    view.export_debrief(str(out))
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert out.with_suffix(".csv").read_text().startswith("section,key,value")
    assert "debrief written" in view.status.text()
    w.close()
