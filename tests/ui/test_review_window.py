"""The review window driven by the keyboard, on a real database, checked in the database."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QImage, QKeyEvent
from PySide6.QtWidgets import QApplication
from sqlalchemy import select

from app.core.model.domain import ItemStatus
from app.storage.models import Decision, HashListEntry
from tests.ui.conftest import KEY, press, wait_saved


def _decisions(db):
    with db.session() as s:
        return s.scalars(select(Decision).order_by(Decision.id)).all()


def _active_hashes(db, item_id):
    with db.session() as s:
        return s.scalars(
            select(HashListEntry).where(
                HashListEntry.item_id == item_id, HashListEntry.retracted_at.is_(None)
            )
        ).all()


def _wait_item(qtbot, w):
    qtbot.waitUntil(lambda: w.controller.current is not None, timeout=10000)
    return w.controller.current.item


def test_category_then_confirm_writes_hashes(qtbot, make_window, db):
    w = make_window(db)
    item = _wait_item(qtbot, w)
    press(qtbot, w, KEY.Key_3)
    assert w.category_buttons["glorification"].isChecked()
    with qtbot.waitSignal(w.controller.decision_recorded, timeout=10000):
        press(qtbot, w, KEY.Key_Y)
    rows = _decisions(db)
    assert [(r.verdict, r.category, r.item_id) for r in rows] == [
        ("confirm", "glorification", item.id)
    ]
    assert rows[0].category_label == "Glorification of terrorist acts"
    hashes = _active_hashes(db, item.id)
    assert {h.algorithm for h in hashes} >= {"pdq", "phash", "md5", "sha256"}
    _wait_item(qtbot, w)  # the next claim is prepared in the background
    assert w.controller.current.item.id != item.id  # the next item is on screen


def test_confirm_without_category_is_refused(qtbot, make_window, db):
    w = make_window(db)
    _wait_item(qtbot, w)
    press(qtbot, w, KEY.Key_Y)
    wait_saved(qtbot, w)
    assert _decisions(db) == []
    assert "category" in w.statusBar().currentMessage()


def test_reject_skip_escalate(qtbot, make_window, db):
    w = make_window(db, n=3)
    ids = []
    for key in (KEY.Key_N, KEY.Key_S, KEY.Key_E):
        ids.append(_wait_item(qtbot, w).id)
        with qtbot.waitSignal(w.controller.decision_recorded, timeout=10000):
            press(qtbot, w, key)
            if key == KEY.Key_E:  # E asks why: a short reason, Enter sends
                qtbot.keyClicks(w._reason_dialog.reason, "unsure")
                qtbot.keyClick(w._reason_dialog.reason, KEY.Key_Return)
    rows = _decisions(db)
    assert [(r.verdict, r.item_id) for r in rows] == list(
        zip(["reject", "skip", "escalate"], ids, strict=True)
    )
    assert all(_active_hashes(db, i) == [] for i in ids)
    status = {i: w.ctx.review.load_item(i).status for i in ids}
    assert status[ids[0]] is ItemStatus.DECIDED
    assert status[ids[2]] is ItemStatus.ESCALATED
    # Skipped: back in the queue, and (nothing else being left) on this screen again.
    assert status[ids[1]] in (ItemStatus.QUEUED, ItemStatus.CLAIMED)
    qtbot.waitUntil(lambda: w.controller.current is not None, timeout=10000)
    assert w.controller.current.item.id == ids[1]
    assert w.ctx.review.load_item(ids[1]).status is ItemStatus.CLAIMED


def test_undo_retracts_and_brings_the_item_back(qtbot, make_window, db):
    w = make_window(db, n=2)
    item = _wait_item(qtbot, w)
    press(qtbot, w, KEY.Key_1)
    with qtbot.waitSignal(w.controller.decision_recorded, timeout=10000):
        press(qtbot, w, KEY.Key_Y)
    assert _active_hashes(db, item.id)
    with qtbot.waitSignal(w.controller.undo_done, timeout=10000):
        press(qtbot, w, KEY.Key_U)
    assert w.controller.current.item.id == item.id
    assert _active_hashes(db, item.id) == []
    assert [r.verdict for r in _decisions(db)] == ["confirm", "undo"]
    # Ctrl+Z is the same action: with nothing left to undo it says so and writes nothing.
    with qtbot.waitSignal(w.controller.undo_done, timeout=10000):
        qtbot.keyClick(w.preview, KEY.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert len(_decisions(db)) == 2


def test_held_key_records_one_decision(qtbot, make_window, db):
    w = make_window(db, n=3)
    first = _wait_item(qtbot, w)
    qtbot.keyPress(w.preview, KEY.Key_N)
    # The key stays down: the window system sends auto-repeated presses.
    for _ in range(5):
        ev = QKeyEvent(QEvent.Type.KeyPress, KEY.Key_N, Qt.KeyboardModifier.NoModifier, "n", True)
        QApplication.sendEvent(w.preview, ev)
        qtbot.keyPress(w.preview, KEY.Key_N)
    wait_saved(qtbot, w)
    qtbot.keyRelease(w.preview, KEY.Key_N)
    rows = _decisions(db)
    assert [(r.verdict, r.item_id) for r in rows] == [("reject", first.id)]
    # After the release the next press decides the next item (once it is on screen: the next
    # claim is prepared in the background).
    qtbot.waitUntil(
        lambda: w.controller.current is not None and w.controller.current.item.id != first.id,
        timeout=10000,
    )
    second = w.controller.current.item
    with qtbot.waitSignal(w.controller.decision_recorded, timeout=10000):
        press(qtbot, w, KEY.Key_N)
    assert [r.item_id for r in _decisions(db)] == [first.id, second.id]


def test_an_unflagged_x11_repeat_never_reaches_the_decision_key(qtbot, make_window, db):
    """X11 auto-repeat as release + press at the same server time, not flagged (issue 25):
    the window drops the press before its shortcut fires; a press later is a press."""
    w = make_window(db, n=2)

    def key(kind, ts):
        ev = QKeyEvent(kind, KEY.Key_N, Qt.KeyboardModifier.NoModifier, "n", False)
        ev.setTimestamp(ts)
        return ev

    w.keyReleaseEvent(key(QEvent.Type.KeyRelease, 70_000))
    for kind in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress):
        repeat = key(kind, 70_000)
        repeat.ignore()
        assert w.eventFilter(w.preview, repeat) is True and repeat.isAccepted()
        assert w.eventFilter(w.preview, key(kind, 70_500)) is False
    wait_saved(qtbot, w)
    assert _decisions(db) == []


def test_double_press_within_dwell_records_one_decision(qtbot, make_window, db):
    w = make_window(db, n=3, dwell=30.0)
    w.presenter.guard.shown_at -= 60  # the first item has been on screen long enough
    press(qtbot, w, KEY.Key_N)
    press(qtbot, w, KEY.Key_N)  # lands on an item shown a moment ago: refused
    wait_saved(qtbot, w)
    assert len(_decisions(db)) == 1


def _high_frequency_energy(widget) -> float:
    img = widget.grab().toImage().convertToFormat(QImage.Format.Format_Grayscale8)
    w, h, bpl = img.width(), img.height(), img.bytesPerLine()
    arr = np.frombuffer(img.constBits(), dtype=np.uint8, count=bpl * h).reshape(h, bpl)[:, :w]
    # The picture's middle only: its outline against the background is sharp either way.
    a = arr[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4].astype(np.float64)
    lap = a[1:-1, 1:-1] * 4 - a[:-2, 1:-1] - a[2:, 1:-1] - a[1:-1, :-2] - a[1:-1, 2:]
    return float(np.mean(lap**2))


def test_preview_is_blurred_and_space_reveals(qtbot, make_window, db):
    w = make_window(db, n=1)
    _wait_item(qtbot, w)
    blurred = _high_frequency_energy(w.preview)
    qtbot.keyPress(w.preview, KEY.Key_Space)
    assert w.preview.revealed
    revealed = _high_frequency_energy(w.preview)
    qtbot.keyRelease(w.preview, KEY.Key_Space)
    qtbot.waitUntil(lambda: not w.preview.revealed, timeout=2000)  # after the hold's grace
    again = _high_frequency_energy(w.preview)
    print(f"high-frequency energy blurred={blurred:.2f} revealed={revealed:.2f}")
    assert blurred * 10 < revealed  # rendered pixels: far less fine detail when blurred
    assert abs(again - blurred) <= 0.05 * blurred + 1e-9


def test_greyscale_blur_and_cheat_sheet(qtbot, make_window, db):
    w = make_window(db, n=1)
    _wait_item(qtbot, w)
    level = w.preview.blur_level
    press(qtbot, w, KEY.Key_G)
    assert w.preview.greyscale
    img = w.preview.grab().toImage()
    c = img.pixelColor(img.width() // 2, img.height() // 2)
    assert c.red() == c.green() == c.blue()
    press(qtbot, w, KEY.Key_B)
    assert w.preview.blur_level != level
    press(qtbot, w, KEY.Key_Question)
    sheet = w._cheatsheet
    assert sheet.isVisible()
    labels = [label for _key, label in sheet.rows]
    assert "Confirm (violating)" in labels and "Reveal unblurred while held" in labels
    assert ("Y", "Confirm (violating)") in sheet.rows


def test_typing_a_note_does_not_decide(qtbot, make_window, db):
    w = make_window(db, n=2)
    item = _wait_item(qtbot, w)
    w.note.setFocus()
    qtbot.keyClicks(w.note, "yes no skip")
    assert w.note.text() == "yes no skip"
    assert _decisions(db) == []
    qtbot.keyClick(w.note, KEY.Key_Escape)
    with qtbot.waitSignal(w.controller.decision_recorded, timeout=10000):
        press(qtbot, w, KEY.Key_N)
    rows = _decisions(db)
    assert [(r.item_id, r.note) for r in rows] == [(item.id, "yes no skip")]


def test_unreadable_item_shows_its_reason(qtbot, make_window, db, tmp_path):
    bad = tmp_path / "cut.jpg"
    from tests.helpers import write_samples

    good = write_samples(tmp_path / "g", [3])[0]
    bad.write_bytes(good.read_bytes()[:200])
    w = make_window(db, paths=[bad])
    _wait_item(qtbot, w)
    assert w.controller.current.preview is None
    assert w.controller.current.message.startswith("unreadable:")
    assert "unreadable" in w.facts["kind"].text()


def test_items_appear_in_queue_order(qtbot, make_window, db, store, tmp_path):
    """Deadline first, whatever order the background previews finish preparing in."""
    from datetime import timedelta

    from sqlalchemy import update

    from app.core.model.domain import utcnow
    from app.storage.models import Item
    from tests.helpers import ingest, write_samples

    ingest(db, store, write_samples(tmp_path / "order", range(20, 26)))
    with db.session() as s:
        ids = list(s.scalars(select(Item.id).order_by(Item.id)))
        # The last ingested gets the tightest deadline, the first ingested the loosest.
        for rank, item_id in enumerate(reversed(ids)):
            s.execute(
                update(Item)
                .where(Item.id == item_id)
                .values(deadline=utcnow() + timedelta(minutes=10 + rank))
            )
    w = make_window(db, paths=[])
    shown = []
    for _ in ids:
        qtbot.waitUntil(lambda: w.controller.current is not None, timeout=10000)
        shown.append(w.controller.current.item.id)
        with qtbot.waitSignal(w.controller.decision_recorded, timeout=10000):
            press(qtbot, w, KEY.Key_N)
    assert shown == list(reversed(ids))
