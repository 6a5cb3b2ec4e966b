"""The incident banner in the review window (pytest-qt, a real database): an item under an
active incident shows the incident's name and label above everything else; the next item, under
none, shows no banner; the confirm carries the label into the hash list and its re-scan runs on
the writer (a rescans row), not on the GUI thread."""

from __future__ import annotations

import threading

from sqlalchemy import select

from app.compose import AppContext
from app.core.model.domain import Role
from app.core.settings.config import Settings
from app.storage.incidents import IncidentService
from app.storage.models import AuditEvent, HashListEntry, Item, Rescan
from app.storage.rescan import Rescanner
from app.ui.review_window import ReviewWindow
from tests.helpers import ingest, make_user, write_samples
from tests.ui.conftest import KEY, press


def test_the_banner_shows_the_incident_of_the_item_on_screen(
    qtbot, db, store, taxonomy, tmp_path, monkeypatch
):
    paths = write_samples(tmp_path / "in", [51, 52, 53])
    ingest(db, store, paths)
    lead = make_user(db, "lead1", Role.LEAD)
    mo = make_user(db, "mo1")
    with db.session() as s:  # the newest item: the incident makes it first in the queue
        seed = s.scalar(select(Item.id).order_by(Item.id.desc()))
    IncidentService(db).declare("christchurch", "CIP-2019-0315", actor=lead, seed_items=[seed])
    threads: list[str] = []
    real = Rescanner.after_confirm

    def spy(self, uuid):
        threads.append(threading.current_thread().name)
        return real(self, uuid)

    monkeypatch.setattr(Rescanner, "after_confirm", spy)
    settings = Settings(database_url=str(db.engine.url), media_root=store.root)
    ctx = AppContext(settings=settings, db=db, store=store, taxonomy=taxonomy)
    w = ReviewWindow(ctx, mo)
    w.controller.dwell_seconds = 0.0
    qtbot.addWidget(w)
    with qtbot.waitActive(w):
        w.show()
        w.activateWindow()
    w.start()
    qtbot.waitUntil(lambda: w.controller.current is not None, timeout=20000)
    assert w.controller.current.item.id == seed
    assert w.incident_banner.isVisible()
    assert w.incident_banner.text() == "INCIDENT christchurch · CIP-2019-0315"

    press(qtbot, w, KEY.Key_3)
    with qtbot.waitSignal(w.controller.decision_recorded, timeout=10000):
        press(qtbot, w, KEY.Key_Y)
    qtbot.waitUntil(
        lambda: w.controller.current is not None and w.controller.current.item.id != seed,
        timeout=10000,
    )
    assert not w.incident_banner.isVisible()  # the next item is under no incident

    def rescanned() -> bool:
        with db.session() as s:
            return s.scalar(select(Rescan.id)) is not None

    qtbot.waitUntil(rescanned, timeout=20000)
    assert threads and threading.main_thread().name not in threads
    with db.session() as s:
        labels = set(s.scalars(select(HashListEntry.labels).where(HashListEntry.item_id == seed)))
    assert labels == {"CIP-2019-0315"}
    w.close()


def test_the_lead_sees_the_possible_misses_and_moves_people_onto_an_incident(
    qtbot, db, store, taxonomy, tmp_path
):
    """A rejected item whose copy is confirmed later is a possible miss in the lead workspace's
    Incidents tab; the lead moves a moderator onto the active incident from there."""
    from PIL import Image

    from app.core.matching.match_rules import MatchPolicy
    from app.core.model.decisions import DecisionRequest
    from app.core.model.domain import Verdict
    from app.storage.review import ReviewService
    from app.ui.lead_window import LeadWindow

    (c,) = write_samples(tmp_path / "in", [71])
    ingest(db, store, [c])
    lead = make_user(db, "lead1", Role.LEAD)
    mo = make_user(db, "mo1")
    review = ReviewService(db, second_review_share=0.0)
    rejected = review.claim_next(mo.id)
    review.decide(DecisionRequest(rejected.id, mo.id, Verdict.REJECT))
    img = Image.open(c).convert("RGB")
    img.resize((img.width - 40, img.height - 26)).save(tmp_path / "c2.jpg", quality=70)
    ingest(db, store, [tmp_path / "c2.jpg"])
    copy = review.claim_next(mo.id)
    out = review.decide(DecisionRequest(copy.id, mo.id, Verdict.CONFIRM, "glorification"))
    assert Rescanner(db, MatchPolicy(), actor=mo).after_confirm(out.uuid).flagged_misses == 1
    IncidentService(db).declare("attack", "CIP-1", actor=lead)

    settings = Settings(database_url=str(db.engine.url), media_root=store.root)
    ctx = AppContext(settings=settings, db=db, store=store, taxonomy=taxonomy)
    w = LeadWindow(ctx, lead)
    qtbot.addWidget(w)
    w.show()
    w.tabs.setCurrentWidget(w.incidents)
    view = w.incidents
    qtbot.waitUntil(lambda: view.misses.rowCount() == 1, timeout=10000)
    assert view.misses.item(0, 0).text() == f"#{rejected.id}"
    assert view.incidents.item(0, 0).text() == "attack"
    view.people.setText("mo1")
    view.assign_button.click()
    qtbot.waitUntil(lambda: view.incidents.item(0, 4).text() == "mo1", timeout=10000)
    assert IncidentService(db).get("attack").assigned == ("mo1",)
    # The lead clears the miss after looking at it: with a note, on the record.
    view.misses.selectRow(0)
    view.clear_button.click()  # no note yet: nothing cleared, and said why
    assert "say what was done" in view.status.text() and view.misses.rowCount() == 1
    view.miss_note.setText("looked at: the reject stands (news report)")
    view.clear_button.click()
    qtbot.waitUntil(lambda: view.misses.rowCount() == 0, timeout=10000)
    assert IncidentService(db).possible_misses(actor=lead) == []
    with db.session() as s:
        (e,) = s.scalars(select(AuditEvent).where(AuditEvent.kind == "miss_cleared")).all()
    assert e.actor_name == "lead1" and "news report" in e.detail
    w.close()
