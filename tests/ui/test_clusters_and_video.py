"""Clusters decided with one key, and a video's keyframe strip stepped with Left/Right."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.storage.models import Decision
from app.tools.demo import write_sample_video
from tests.ui.conftest import KEY, press


@pytest.mark.corpus
def test_bridge_mods_cluster_is_one_key_press(qtbot, make_window, db, corpus):
    paths = sorted((corpus / "pdq-images").glob("bridge-mods__*"))
    w = make_window(db, paths=paths)
    qtbot.waitUntil(lambda: w.controller.current is not None, timeout=10000)
    assert w.controller.current.item.cluster_size == len(paths)
    assert w.facts["cluster"].text().startswith(f"{len(paths)} item")
    rep = w.controller.current.item
    seen = []
    for _ in range(len(paths)):
        with qtbot.waitSignal(w.controller.member_changed, timeout=10000) as shown:
            press(qtbot, w, KEY.Key_PageDown)
        seen.append(shown.args[0].item.id)
        assert shown.args[2] == len(paths)
    assert len(set(seen)) == len(paths) and seen[-1] == rep.id  # every member, then back
    assert "showing 1 of" in w.facts["cluster"].text()
    assert not w.preview.revealed  # members are blurred like the representative
    with qtbot.waitSignal(w.controller.decision_recorded, timeout=10000) as blocker:
        press(qtbot, w, KEY.Key_N)
    assert blocker.args[0].cluster_members == len(paths) - 1
    with db.session() as s:
        rows = s.scalars(select(Decision)).all()
    assert len(rows) == len(paths)
    assert sorted(r.method for r in rows) == ["cluster"] * (len(paths) - 1) + ["manual"]
    assert {r.verdict for r in rows} == {"reject"}
    qtbot.waitUntil(lambda: w.controller.current is None, timeout=10000)  # nothing else left


def test_video_strip_steps_with_left_and_right(qtbot, make_window, db, tmp_path):
    clip = tmp_path / "clip.mp4"
    write_sample_video(clip, 11)
    w = make_window(db, paths=[clip])
    qtbot.waitUntil(lambda: w.controller.current is not None, timeout=20000)
    # Every sampled frame (decoded on a reader) replaces the ingest's strip of eight.
    qtbot.waitUntil(lambda: w.scrub_item == w.controller.current.item.id, timeout=20000)
    n = w.preview.frame_count
    assert n >= 4 and w.controller.current.item.kind.value == "video"
    assert w.frame_label.text() == (
        f"frame 1 of {n} · 0:00.0   (Left/Right · Shift+Left/Right ten · wheel; no sound)"
    )
    before = w.preview.grab().toImage()
    press(qtbot, w, KEY.Key_Right)
    assert w.preview.frame == 1 and w.frame_label.text().startswith("frame 2 of")
    assert w.preview.grab().toImage() != before  # a different (still blurred) frame
    assert not w.preview.revealed
    press(qtbot, w, KEY.Key_Left)
    press(qtbot, w, KEY.Key_Left)
    assert w.preview.frame == n - 1
