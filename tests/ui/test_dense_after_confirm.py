"""A confirmed video's dense frames are hashed in the background after the confirm key press:
the press returns at once, the next item shows while the video is still being hashed, and the
frames land later, after which a clip of the video waiting in the queue (cut between two
sampled frames: the sampled references miss it) is found by the re-scan on them."""

from __future__ import annotations

import threading

from sqlalchemy import select

from app.storage.models import HashListEntry, Item
from tests.ui.conftest import KEY, press
from tests.unit.test_video_dense import CORPUS, make_clip


def test_the_confirm_returns_at_once_and_the_dense_frames_land_later(
    qtbot, make_window, db, tmp_path
):
    original = CORPUS / "chair-orig-22-sd-bar.mp4"
    other = CORPUS / "pattern-hd-no-bar.mp4"
    clip = make_clip(original, tmp_path / "clip.mp4", 5.5, 15.5)
    w = make_window(db, paths=[original, other, clip])
    qtbot.waitUntil(lambda: w.controller.current is not None, timeout=20000)
    first = w.controller.current.item
    assert first.kind.value == "video"
    # The dense hashing waits on a latch the test holds: the real hashing, started late.
    started, release = threading.Event(), threading.Event()
    runner = w.controller.dense.runner
    real = runner.hasher

    def gated(path, **kw):
        started.set()
        release.wait(120)
        return real(path, **kw)

    runner.hasher = gated
    try:
        press(qtbot, w, KEY.Key_3)
        with qtbot.waitSignal(w.controller.decision_recorded, timeout=20000):
            press(qtbot, w, KEY.Key_Y)
        # The press has returned; the confirm landed; its video is being hashed now ...
        qtbot.waitUntil(started.is_set, timeout=20000)
        # ... and meanwhile the window goes on: the next item is on screen.
        qtbot.waitUntil(
            lambda: w.controller.current is not None and w.controller.current.item.id != first.id,
            timeout=20000,
        )
        with db.session() as s:
            dense_rows = select(HashListEntry.id).where(
                HashListEntry.item_id == first.id, HashListEntry.signal_id.is_(None)
            )
            assert s.scalars(dense_rows).all() == []  # not yet: the hashing waits
        with qtbot.waitSignal(w.controller.dense_landed, timeout=120000) as landed:
            release.set()
    finally:
        release.set()
    result = landed.args[0]
    assert result.added > 0 and not result.duplicate
    with db.session() as s:
        assert len(s.scalars(dense_rows).all()) == result.added
        found = s.scalar(select(Item).where(Item.sightings.any(original_name="clip.mp4")))
    # The clip waiting in the queue was found by the re-scan on the dense frames.
    assert found.known_entry_id is not None or found.status == "auto_matched"
