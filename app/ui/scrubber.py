"""The silent video scrubber: every sampled frame of a video (about one a second, not a strip of
eight), each with its timestamp, blurred like a picture and revealed the same ways.

Frames are decoded on a reader (``load_scrub``), never on the GUI thread; until they arrive the
screen shows the keyframe strip made at ingest. The strip under the picture only ever shows the
blurred frames; the frames whose PDQ matched the item's known content are marked on it. There is
no audio anywhere: only the video stream is decoded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QWidget

from app.core.review.preview import BLUR_LEVELS, PreparedPreview, blur_small
from app.core.video.scrub import decode_frames_at
from app.storage.review import ReviewService
from app.ui.preview import PreviewWidget, ScreenPreview

SCRUB_MAX_FRAMES = 300  # a longer video is shown by this many of its samples, evenly spread
MATCH_COLOR = "#f59e0b"


def format_ts(seconds: float) -> str:
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


@dataclass
class ScrubFrames:
    preview: ScreenPreview
    times: list[float]
    matched: set[int]  # indexes of the frames that matched known content


def load_scrub(
    review: ReviewService, store_path: Callable[[str], Path], item_id: int, threshold: int
) -> ScrubFrames | None:
    """Runs on a reader: the item's sampled frames decoded small and blurred small."""
    sampled = review.sampled_frames(item_id, store_path, threshold)
    if sampled.path is None or not sampled.times:
        return None
    times = list(sampled.times)
    if len(times) > SCRUB_MAX_FRAMES:
        step = len(times) / SCRUB_MAX_FRAMES
        times = [times[int(i * step)] for i in range(SCRUB_MAX_FRAMES)]
    images = decode_frames_at(sampled.path, times)
    first = next((im for im in images if im is not None), None)
    if first is None:
        return None
    frames = [im if im is not None else Image.new("RGB", first.size, "#404040") for im in images]
    prepared = PreparedPreview(
        frames=frames,
        blurred=[[blur_small(f, lvl) for lvl in range(len(BLUR_LEVELS))] for f in frames],
    )
    matched = {i for i, t in enumerate(times) if t in sampled.matched}
    return ScrubFrames(ScreenPreview.from_prepared(prepared), times, matched)


class FrameStrip(QWidget):
    """The frames as a strip of blurred thumbnails with timestamps; the current one framed, the
    matched ones marked. Click a frame or turn the wheel to scrub."""

    THUMB_W, THUMB_H, GAP = 84, 48, 6

    def __init__(self, preview: PreviewWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("frame_strip")
        self.preview = preview
        self.setFixedHeight(self.THUMB_H + 34)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        preview.frame_changed.connect(lambda _i: self.update())

    def sizeHint(self) -> QSize:
        return QSize(720, self.THUMB_H + 34)

    def _first_shown(self) -> int:
        per = max(1, (self.width() + self.GAP) // (self.THUMB_W + self.GAP))
        n = self.preview.frame_count
        return max(0, min(self.preview.frame - per // 2, n - per))

    def frame_at(self, x: float) -> int | None:
        i = self._first_shown() + int(x // (self.THUMB_W + self.GAP))
        return i if 0 <= i < self.preview.frame_count else None

    def mousePressEvent(self, event) -> None:
        i = self.frame_at(event.position().x())
        if i is not None:
            self.preview.set_frame(i)

    def wheelEvent(self, event) -> None:
        self.preview.wheelEvent(event)

    def paintEvent(self, _event) -> None:
        p = self.preview
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#1e1f22"))
        if p.frame_count <= 1 or p.screen_preview is None:
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        w, h, gap = self.THUMB_W, self.THUMB_H, self.GAP
        first = self._first_shown()
        x = 0
        for i in range(first, p.frame_count):
            if x > self.width():
                break
            # Never the unblurred frame here: the strip is for finding, the picture for looking.
            image = p.screen_preview.blurred[i][p.blur_level]
            if p.greyscale:
                image = image.convertToFormat(QImage.Format.Format_Grayscale8)
            box = QRectF(x, 6, w, h)
            painter.drawImage(box, image)
            if i in p.matched:
                painter.fillRect(QRectF(x, 0, w, 6), QColor(MATCH_COLOR))
            if i == p.frame:
                pen = QPen(QColor("#ffffff"))
                pen.setWidth(3)
                painter.setPen(pen)
                painter.drawRect(box.adjusted(1, 1, -1, -1))
            painter.setPen(QColor("#f0f0f0" if i == p.frame else "#a0a0a0"))
            label = format_ts(p.times[i]) if i < len(p.times) else str(i + 1)
            painter.drawText(QRectF(x, h + 8, w, 18), Qt.AlignmentFlag.AlignCenter, label)
            x += w + gap
