"""Exposure measured on the review screen (issue 13): every unblurred moment recorded with its
duration, item and person; break prompts; the idle lock and signing out on a shared workstation.
Durations and idle time come from a clock the test moves by hand (no sleeps, no timed asserts).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from PySide6.QtCore import Qt
from sqlalchemy import select

from app.core.model.domain import ItemStatus, Role, utcnow
from app.core.model.exposure import BreakPolicy
from app.storage.models import ExposureRow, Item
from app.storage.stats import StatsService
from tests.helpers import make_user
from tests.ui.conftest import KEY, FakeClock, press, wait_saved

MOD = Qt.KeyboardModifier
NO_BREAKS = BreakPolicy(review_minutes=0, reveals=0, graphic_items=0, daily_limit_minutes=0)


def _rows(db):
    with db.session() as s:
        return [
            (r.user_id, r.item_id, r.kind, r.seconds, r.area)
            for r in s.scalars(select(ExposureRow).order_by(ExposureRow.id))
        ]


def _hold_space(qtbot, w, clock, seconds: float) -> None:
    qtbot.keyPress(w.preview, KEY.Key_Space)
    assert w.preview.revealed
    clock.advance(seconds)
    qtbot.keyRelease(w.preview, KEY.Key_Space)
    # Blurred again once the release has stood for the grace (X11 auto-repeat is a release
    # and a press within it); the fake clock stands still meanwhile.
    qtbot.waitUntil(lambda: not w.preview.revealed, timeout=2000)


def test_reveal_durations_recorded_with_item_and_person(qtbot, make_window, db):
    clock = FakeClock()
    w = make_window(db, clock=clock, breaks=NO_BREAKS, idle_lock_minutes=0)
    first = w.controller.current.item
    _hold_space(qtbot, w, clock, 3.0)
    _hold_space(qtbot, w, clock, 1.25)
    press(qtbot, w, KEY.Key_N)
    qtbot.waitUntil(
        lambda: w.controller.current is not None and w.controller.current.item.id != first.id,
        timeout=10000,
    )
    second = w.controller.current.item
    _hold_space(qtbot, w, clock, 7.0)
    wait_saved(qtbot, w)
    uid = w.user.id
    assert _rows(db) == [
        (uid, first.id, "reveal", 3.0, 1.0),
        (uid, first.id, "reveal", 1.25, 1.0),
        (uid, second.id, "reveal", 7.0, 1.0),
    ]
    assert w.meter.tally.today_seconds == 11.25
    assert w.status_exposure.text().startswith("unblurred today 0:11 · 2 graphic items seen")


def test_a_moment_is_never_counted_while_blurred(qtbot, make_window, db):
    clock = FakeClock()
    w = make_window(db, clock=clock, breaks=NO_BREAKS, idle_lock_minutes=0)
    clock.advance(60)  # looked at the blurred preview for a minute: no exposure
    press(qtbot, w, KEY.Key_G)
    wait_saved(qtbot, w)
    assert _rows(db) == []
    assert w.status_exposure.text().startswith("unblurred today 0:00 · 0 graphic items seen")


def test_break_prompt_after_the_configured_number_of_reveals(qtbot, make_window, db):
    clock = FakeClock()
    policy = BreakPolicy(review_minutes=0, reveals=2, graphic_items=0, daily_limit_minutes=0)
    w = make_window(db, clock=clock, breaks=policy, idle_lock_minutes=0)
    _hold_space(qtbot, w, clock, 1.0)
    assert not w.on_break
    _hold_space(qtbot, w, clock, 1.0)
    assert w.on_break
    assert not w.review_page.isVisible()  # the queue is hidden
    # One picture unblurred twice is one picture (issue 25).
    assert "unblurred 1 picture 2 times" in w.break_screen.reason.text()
    held = w.controller.current.item.id
    qtbot.keyClick(w.break_screen, KEY.Key_N)  # decision keys do nothing on the break screen
    assert w.controller.current.item.id == held
    qtbot.keyClick(w.break_screen, KEY.Key_Return)
    assert not w.on_break and w.review_page.isVisible()
    _hold_space(qtbot, w, clock, 1.0)  # the count starts again after the break
    assert not w.on_break


def test_break_prompt_after_minutes_of_review(qtbot, make_window, db):
    clock = FakeClock()
    policy = BreakPolicy(review_minutes=45, reveals=0, graphic_items=0, daily_limit_minutes=0)
    w = make_window(db, clock=clock, breaks=policy, idle_lock_minutes=0)
    w.tick()
    clock.advance(44 * 60)
    w.tick()
    assert not w.on_break
    clock.advance(60)
    w.tick()
    assert w.on_break
    assert "45 minutes" in w.break_screen.reason.text()


def test_soft_daily_limit_passed_after_confirming_and_seen_by_a_lead(qtbot, make_window, db):
    clock = FakeClock()
    policy = BreakPolicy(review_minutes=0, reveals=0, graphic_items=0, daily_limit_minutes=1)
    w = make_window(db, clock=clock, breaks=policy, idle_lock_minutes=0)
    _hold_space(qtbot, w, clock, 50.0)
    assert not w.on_break
    _hold_space(qtbot, w, clock, 15.0)
    assert w.on_break and w.break_screen.past_limit
    assert "passed today's exposure limit" in w.break_screen.limit_note.text()
    qtbot.keyClick(w.break_screen, KEY.Key_Return)  # "I understand, go on today"
    assert not w.on_break
    _hold_space(qtbot, w, clock, 5.0)  # going on after confirming: no second prompt
    assert not w.on_break
    wait_saved(qtbot, w)
    lead = make_user(db, "lead1", Role.LEAD)
    now = utcnow()
    st = StatsService(db, daily_exposure_limit_s=60).period(
        lead, now - timedelta(hours=1), now + timedelta(hours=1)
    )
    assert [(d.user, d.seconds, d.limit_passed) for d in st.exposure.limit_passed] == [
        (w.user.username, 70.0, True)
    ]


def test_idle_lock_hides_the_queue_and_asks_for_the_password(qtbot, make_window, db):
    clock = FakeClock()
    w = make_window(db, clock=clock, breaks=NO_BREAKS, idle_lock_minutes=5)
    held = w.controller.current.item.id
    clock.advance(4 * 60)
    w.tick()
    assert not w.locked
    qtbot.keyPress(w.preview, KEY.Key_Space)  # a reveal held when the lock comes is ended
    clock.advance(5 * 60)
    w.tick()
    assert w.locked and not w.review_page.isVisible() and not w.preview.revealed
    qtbot.keyClick(w.lock_screen, KEY.Key_N)
    assert w.controller.current.item.id == held  # nothing decided while locked
    qtbot.keyClicks(w.lock_screen.password, "wrong")
    qtbot.keyClick(w.lock_screen.password, KEY.Key_Return)
    qtbot.waitUntil(lambda: "not right" in w.lock_screen.problem.text(), timeout=10000)
    assert w.locked
    qtbot.keyClicks(w.lock_screen.password, "correct horse battery")
    qtbot.keyClick(w.lock_screen.password, KEY.Key_Return)
    qtbot.waitUntil(lambda: not w.locked, timeout=10000)
    assert w.review_page.isVisible()
    with db.session() as s:  # locked, the claim stayed with the person
        assert s.get(Item, held).claimed_by == w.user.id


def test_sign_out_releases_the_claimed_items(qtbot, make_window, db):
    w = make_window(db, n=3, breaks=NO_BREAKS, idle_lock_minutes=0)
    qtbot.waitUntil(lambda: len(w.controller.held_ids()) >= 2, timeout=10000)
    with db.session() as s:
        claimed = s.scalars(select(Item.id).where(Item.claimed_by == w.user.id)).all()
    assert w.controller.current.item.id in claimed
    menu = {a.text(): a for a in w.menuBar().actions()}["&Session"].menu()
    titles = [a.text() for a in menu.actions()]
    assert any(t.startswith("Sign out") for t in titles) and "Quit" in titles
    assert w.session_actions["quit"].shortcut().toString() == "Ctrl+Q"
    with qtbot.waitSignal(w.signed_out, timeout=20000):
        w.session_actions["sign_out"].trigger()
    with db.session() as s:
        still = s.scalars(select(Item.id).where(Item.claimed_by == w.user.id)).all()
        statuses = {s.get(Item, i).status for i in claimed}
    assert still == []
    assert statuses == {ItemStatus.QUEUED.value}


def test_a_person_sees_their_own_trend(qtbot, make_window, db):
    clock = FakeClock()
    w = make_window(db, clock=clock, breaks=NO_BREAKS, idle_lock_minutes=0)
    _hold_space(qtbot, w, clock, 65.0)
    wait_saved(qtbot, w)
    w.session_actions["my_exposure"].trigger()
    qtbot.waitUntil(lambda: getattr(w, "_my_exposure", None) is not None, timeout=10000)
    text = w.my_exposure_text
    assert f"{utcnow().date().isoformat()}   1:05 unblurred, 1 item" in text
    assert "look after yourself" in text


def test_comfort_defaults_organisation_then_the_persons_own(qtbot, make_window, db):
    from app.core.review.preview import ComfortDefaults
    from app.ui.review_window import ReviewWindow

    w = make_window(db, breaks=NO_BREAKS, idle_lock_minutes=0, greyscale=True, blur_radius=0)
    assert w.preview.greyscale and w.preview.blur_level == 0  # the organisation's default
    press(qtbot, w, KEY.Key_G)
    press(qtbot, w, KEY.Key_B)
    press(qtbot, w, KEY.Key_B)
    qtbot.keyClick(w.preview, KEY.Key_G, MOD.ControlModifier | MOD.ShiftModifier)
    qtbot.waitUntil(lambda: w.ctx.exposure.comfort(w.user.id) is not None, timeout=10000)
    assert w.ctx.exposure.comfort(w.user.id) == ComfortDefaults(greyscale=False, blur_level=2)
    again = ReviewWindow(w.ctx, w.user)  # the same person, another day: their own defaults
    qtbot.addWidget(again)
    assert again.preview.greyscale  # the organisation's, until the person's arrive
    again.start()
    qtbot.waitUntil(lambda: not again.preview.greyscale, timeout=10000)
    assert again.preview.blur_level == 2
    again.close()


def _shift_move(w, pos) -> None:
    from PySide6.QtCore import QEvent, QPointF
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    local = QPointF(pos)
    event = QMouseEvent(
        QEvent.Type.MouseMove,
        local,
        QPointF(w.preview.mapToGlobal(local.toPoint())),
        Qt.MouseButton.NoButton,
        Qt.MouseButton.NoButton,
        MOD.ShiftModifier,
    )
    QApplication.sendEvent(w.preview, event)


def test_region_reveal_recorded_by_area_and_time(qtbot, make_window, db):
    import math

    clock = FakeClock()
    w = make_window(db, clock=clock, breaks=NO_BREAKS, idle_lock_minutes=0)
    qtbot.waitUntil(lambda: w.preview._target() is not None, timeout=10000)
    item = w.controller.current.item
    target = w.preview._target()
    centre = target.center()
    _shift_move(w, centre)
    assert w.preview.lens is not None and not w.preview.revealed
    clock.advance(2.0)
    _shift_move(w, centre + type(centre)(20, 10))  # following the pointer: the same moment
    clock.advance(1.5)
    qtbot.keyRelease(w.preview, KEY.Key_Shift)
    assert w.preview.lens is None
    wait_saved(qtbot, w)
    share = math.pi * w.preview.lens_radius**2 / (target.width() * target.height())
    ((uid, item_id, kind, seconds, area),) = _rows(db)
    assert (uid, item_id, kind, seconds) == (w.user.id, item.id, "region", 3.5)
    assert area == pytest.approx(share) and 0 < area < 0.25
    # Outside the picture there is nothing to unblur; Space then shows all of it.
    _shift_move(w, target.topLeft() - type(centre)(4, 4))
    assert w.preview.lens is None


def test_the_lens_shows_the_picture_sharp_inside_and_blurred_outside(qtbot, make_window, db):
    w = make_window(db, breaks=NO_BREAKS, idle_lock_minutes=0)
    qtbot.waitUntil(lambda: w.preview._target() is not None, timeout=10000)
    target = w.preview._target()
    centre = target.center()
    before = w.preview.grab().toImage()
    _shift_move(w, centre)
    after = w.preview.grab().toImage()
    c, far = centre.toPoint(), target.bottomRight().toPoint() - type(centre.toPoint())(30, 30)
    # ... the picture under the lens changed (unblurred), a corner far from it did not.
    assert before.pixelColor(far) == after.pixelColor(far)
    assert any(
        before.pixelColor(c.x() + dx, c.y() + dy) != after.pixelColor(c.x() + dx, c.y() + dy)
        for dx in range(-20, 21, 5)
        for dy in range(-20, 21, 5)
    )


def test_a_held_space_under_x11_auto_repeat_is_one_reveal(qtbot, make_window, db):
    """Issue 25: X11 auto-repeat (660 ms, then 25/s) delivers a held Space as a press, then
    release + press pairs that Qt mostly does not flag as repeats. It is one reveal of the
    whole hold, the picture never blurs in between, and no break opens for "30 pictures"."""
    clock = FakeClock()
    policy = BreakPolicy(review_minutes=0, reveals=30, graphic_items=0, daily_limit_minutes=0)
    w = make_window(db, clock=clock, breaks=policy, idle_lock_minutes=0)
    item = w.controller.current.item
    blurred_again = []
    w.preview.revealed_changed.connect(lambda on: on or blurred_again.append(clock.now))
    qtbot.keyPress(w.preview, KEY.Key_Space)
    clock.advance(0.66)
    for _ in range(29):
        qtbot.keyRelease(w.preview, KEY.Key_Space)  # not flagged as an auto-repeat
        qtbot.keyPress(w.preview, KEY.Key_Space)
        clock.advance(0.04)
    qtbot.keyRelease(w.preview, KEY.Key_Space)
    qtbot.waitUntil(lambda: not w.preview.revealed, timeout=2000)
    wait_saved(qtbot, w)
    assert blurred_again == [clock.now]  # once, at the end: no flicker
    ((uid, item_id, kind, seconds, _area),) = _rows(db)
    assert (uid, item_id, kind) == (w.user.id, item.id, "reveal")
    assert seconds == pytest.approx(0.66 + 29 * 0.04)
    assert not w.on_break


def test_unlocking_after_the_lock_passed_the_daily_limit_shows_the_limit(qtbot, make_window, db):
    """Issue 25: the lock ended a reveal that passed the daily limit; unlocking used to count
    as agreeing to go on (the limit screen came only after a restart)."""
    clock = FakeClock()
    policy = BreakPolicy(review_minutes=0, reveals=0, graphic_items=0, daily_limit_minutes=1)
    w = make_window(db, clock=clock, breaks=policy, idle_lock_minutes=0)
    qtbot.keyPress(w.preview, KEY.Key_Space)
    clock.advance(65)
    w.session_actions["lock"].trigger()  # Ctrl+L while the picture is unblurred
    assert w.locked and not w.preview.revealed
    qtbot.keyClicks(w.lock_screen.password, "correct horse battery")
    qtbot.keyClick(w.lock_screen.password, KEY.Key_Return)
    qtbot.waitUntil(lambda: not w.locked, timeout=10000)
    assert w.on_break and w.break_screen.past_limit
    assert "today's limit of 1 minute" in w.break_screen.reason.text()
    assert not w.review_page.isVisible()
    qtbot.keyClick(w.break_screen, KEY.Key_Return)  # the explicit "I understand, go on today"
    assert not w.on_break and w.review_page.isVisible()
