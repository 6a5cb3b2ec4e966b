"""The silent video scrubber (issue 13) on corpus videos: every sampled frame with its
timestamp, stepped by key and wheel, blurred and revealed like a picture, known-match frames
marked; frames decoded on a reader."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication
from sqlalchemy import select

from app.core.ingest.jobs import jobs_from_paths
from app.core.matching.match_rules import MatchPolicy
from app.core.model.decisions import DecisionRequest
from app.core.model.domain import Algorithm, Verdict
from app.core.model.exposure import BreakPolicy
from app.storage.ingest_recorder import ingest_jobs
from app.storage.models import ExposureRow, SignalRow
from app.storage.review import ReviewService
from app.tools.runs_bench import video_part, write_compilation
from app.ui.scrubber import MATCH_COLOR
from tests.helpers import ingest, make_user
from tests.helpers import recorder as make_recorder
from tests.ui.conftest import KEY, FakeClock, press, wait_saved

NO_BREAKS = BreakPolicy(review_minutes=0, reveals=0, graphic_items=0, daily_limit_minutes=0)
SHIFT = Qt.KeyboardModifier.ShiftModifier


def _sampled_times(db, item_id):
    with db.session() as s:
        return sorted(
            {
                ts
                for ts in s.scalars(
                    select(SignalRow.frame_ts).where(
                        SignalRow.item_id == item_id,
                        SignalRow.algorithm == Algorithm.PDQ_FRAME.value,
                        SignalRow.variant == "",
                    )
                )
            }
        )


def _wheel(widget, notches: int) -> None:
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    event = QWheelEvent(
        pos,
        QPointF(widget.mapToGlobal(pos.toPoint())),
        QPoint(0, 0),
        QPoint(0, 120 * notches),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, event)


def test_scrubber_steps_through_every_sampled_frame_with_timestamps(qtbot, make_window, db, corpus):
    clip = corpus / "videos" / "chair-orig-22-sd-bar.mp4"
    clock = FakeClock()
    w = make_window(db, paths=[clip], clock=clock, breaks=NO_BREAKS, idle_lock_minutes=0)
    item = w.controller.current.item
    times = _sampled_times(db, item.id)
    assert len(times) > 8  # a 22 s clip: one frame a second, not a strip of eight
    qtbot.waitUntil(lambda: w.scrub_item == item.id, timeout=30000)
    p = w.preview
    assert p.times == times and p.frame_count == len(times) and w.strip.isVisible()
    seen = [(p.frame, p.times[p.frame])]
    for _ in range(len(times) - 1):
        press(qtbot, w, KEY.Key_Right)
        seen.append((p.frame, p.times[p.frame]))
        assert f"frame {p.frame + 1} of {len(times)}" in w.frame_label.text()
    assert seen == list(enumerate(times))
    assert "0:" in w.frame_label.text() and "no sound" in w.frame_label.text()
    press(qtbot, w, KEY.Key_Right)  # round the end to the first
    assert p.frame == 0
    qtbot.keyClick(w.preview, KEY.Key_Right, SHIFT)
    assert p.frame == 10
    qtbot.keyClick(w.preview, KEY.Key_Left, SHIFT)
    assert p.frame == 0
    _wheel(w.preview, -3)  # the wheel scrubs: three notches down, three frames on
    assert p.frame == 3
    _wheel(w.strip, 1)
    assert p.frame == 2
    # Every frame is blurred until revealed, and a revealed frame is exposure like a picture.
    assert not p.revealed
    qtbot.keyPress(w.preview, KEY.Key_Space)
    clock.advance(2.0)
    qtbot.keyRelease(w.preview, KEY.Key_Space)
    qtbot.waitUntil(lambda: not p.revealed, timeout=2000)  # blurred after the hold's grace
    wait_saved(qtbot, w)
    with db.session() as s:
        rows = [(r.item_id, r.kind, r.seconds) for r in s.scalars(select(ExposureRow))]
    assert rows == [(item.id, "frame", 2.0)]


def test_frames_that_matched_known_content_are_marked(qtbot, make_window, db, store, corpus):
    videos = corpus / "videos"
    ingest(db, store, [videos / "chair-orig-22-sd-bar.mp4"])
    first = make_user(db, "mod0")
    review = ReviewService(db)
    original = review.claim_next(first.id)
    review.decide(DecisionRequest(original.id, first.id, Verdict.CONFIRM, "glorification"))
    # A copy with a logo waits in the queue with its "known match" badge.
    recorder = make_recorder(db, store, policy=MatchPolicy(auto_resolve=False))
    ingest_jobs(recorder, jobs_from_paths([videos / "chair-22-with-small-logo-bar.mp4"]), workers=1)
    w = make_window(db, paths=[], breaks=NO_BREAKS, idle_lock_minutes=0)
    item = w.controller.current.item
    assert (item.match_note and "known match" in w.facts["match"].text().lower()) or item.match_note
    qtbot.waitUntil(lambda: w.scrub_item == item.id, timeout=30000)
    p = w.preview
    assert p.matched and p.matched <= set(range(p.frame_count))
    marked = min(p.matched)
    p.set_frame(marked)
    assert "matched known content" in w.frame_label.text()
    w.strip.grab()  # paints the strip (marks and timestamps) without error


def test_a_partial_copys_matched_span_is_drawn_on_the_timeline(
    qtbot, make_window, db, store, corpus, tmp_path
):
    """A compilation holding 7 s of a confirmed video (from its 8th second on) waits with its
    badge; the strip's timeline colours the matched seconds, and only them."""
    videos = corpus / "videos"
    ingest(db, store, [videos / "chair-orig-22-sd-bar.mp4"])
    first = make_user(db, "mod0")
    review = ReviewService(db)
    original = review.claim_next(first.id)
    review.decide(DecisionRequest(original.id, first.id, Verdict.CONFIRM, "glorification"))
    middle = video_part(videos / "chair-orig-22-sd-bar.mp4", 5.0, 7)
    clip = write_compilation(tmp_path / "compilation.mp4", corpus / "pdq-images", middle)
    recorder = make_recorder(db, store, policy=MatchPolicy(auto_resolve=False))
    ingest_jobs(recorder, jobs_from_paths([clip]), workers=1)
    w = make_window(db, paths=[], breaks=NO_BREAKS, idle_lock_minutes=0)
    item = w.controller.current.item
    badge = w.facts["match"].text()
    assert f"contains known video #{original.id} from 0:08 to 0:14" in badge
    qtbot.waitUntil(lambda: w.scrub_item == item.id, timeout=30000)
    strip = w.strip
    assert strip.span is not None and strip.duration is not None
    assert abs(strip.span[0] - 8.0) <= 1.0 and abs(strip.span[1] - 14.0) <= 1.0
    assert abs(strip.duration - 23.0) <= 1.0
    band, line = strip.span_rect(), strip.line_rect()
    assert band is not None
    # The band stands where the seconds are along the whole line.
    assert abs(band.left() - line.width() * strip.span[0] / strip.duration) <= 1.0
    assert abs(band.right() - line.width() * strip.span[1] / strip.duration) <= 1.0
    # The frame line says so for a frame inside the span, and not outside it.
    times = w.preview.times
    inside_frame = next(i for i, t in enumerate(times) if strip.span[0] <= t <= strip.span[1])
    w.preview.set_frame(inside_frame - 1)
    press(qtbot, w, KEY.Key_Right)
    assert w.preview.frame == inside_frame
    assert "in the part of a known video" in w.frame_label.text()
    w.preview.set_frame(w.preview.frame_count - 2)  # the position tick away from the band
    press(qtbot, w, KEY.Key_Right)
    assert "in the part of a known video" not in w.frame_label.text()
    image = strip.grab().toImage()
    y = int(line.center().y())

    def colour(x: float) -> str:
        return image.pixelColor(int(x), y).name()

    inside = [band.left() + band.width() * f for f in (0.2, 0.5, 0.8)]
    before = [band.left() * f for f in (0.2, 0.5, 0.8)]
    after = [band.right() + (line.right() - 4 - band.right()) * f for f in (0.2, 0.5)]
    assert {colour(x) for x in inside} == {MATCH_COLOR}
    assert MATCH_COLOR not in {colour(x) for x in before + after}
    # Another item without a partial copy's match: no band.
    strip.set_span(None, strip.duration)
    assert strip.span_rect() is None
    image = strip.grab().toImage()
    assert MATCH_COLOR not in {image.pixelColor(int(x), y).name() for x in inside}
