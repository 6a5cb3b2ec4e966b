"""The silent video scrubber: every sampled frame of a video (about one a second, not a strip of
eight), each with its timestamp, blurred like a picture and revealed the same ways.

Frames are decoded on a reader (``load_scrub``), never on the GUI thread; until they arrive the
screen shows the keyframe strip made at ingest. The strip under the picture only ever shows the
blurred frames; the frames whose PDQ matched the item's known content are marked on it, and
under them a line stands for the whole video, the span a partial copy's match names (the item
contains part of a known video) coloured on it. There is no audio anywhere: only the video
stream is decoded.
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
LINE_COLOR = "#4a4c52"


def format_ts(seconds: float) -> str:
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


@dataclass
class ScrubFrames:
    preview: ScreenPreview
    times: list[float]
    matched: set[int]  # indexes of the frames that matched known content
    span: tuple[float, float] | None = None  # a partial copy's matched seconds
    duration: float | None = None  # the video's, for the timeline


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
    duration = sampled.duration or (sampled.times[-1] if sampled.times else None)
    return ScrubFrames(
        ScreenPreview.from_prepared(prepared), times, matched, sampled.span, duration
    )


class FrameStrip(QWidget):
    """The frames as a strip of blurred thumbnails with timestamps; the current one framed, the
    matched ones marked. Click a frame or turn the wheel to scrub."""

    THUMB_W, THUMB_H, GAP = 84, 48, 6
    LINE_H = 8  # the timeline under the thumbnails

    def __init__(self, preview: PreviewWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("frame_strip")
        self.preview = preview
        # A partial copy's matched seconds, and the video's duration they are drawn against.
        self.span: tuple[float, float] | None = None
        self.duration: float | None = None
        self.setFixedHeight(self.THUMB_H + 34 + self.LINE_H)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        preview.frame_changed.connect(lambda _i: self.update())

    def sizeHint(self) -> QSize:
        return QSize(720, self.THUMB_H + 34 + self.LINE_H)

    def set_span(self, span: tuple[float, float] | None, duration: float | None) -> None:
        """The matched span of a partial copy (None: none) over a video of ``duration`` s."""
        self.span, self.duration = span, duration
        self.update()

    def line_rect(self) -> QRectF:
        """Where the timeline is: the whole video, left to right."""
        return QRectF(0, self.height() - self.LINE_H, self.width(), self.LINE_H)

    def span_rect(self) -> QRectF | None:
        """Where the matched span is drawn on the timeline (None: no span to draw)."""
        if self.span is None or not self.duration or self.duration <= 0:
            return None
        line = self.line_rect()
        a = max(0.0, min(1.0, self.span[0] / self.duration))
        b = max(a, min(1.0, self.span[1] / self.duration))
        # at least 3 px: a span is never invisible
        width = max(3.0, (b - a) * line.width())
        return QRectF(line.left() + a * line.width(), line.top(), width, line.height())

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
        self._paint_line(painter)
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

    def _paint_line(self, painter: QPainter) -> None:
        """The timeline: the whole video in grey, a partial copy's matched span coloured on
        it, the frame shown as a white tick."""
        line = self.line_rect()
        painter.fillRect(line.adjusted(0, 2, 0, -2), QColor(LINE_COLOR))
        band = self.span_rect()
        if band is not None:
            painter.fillRect(band, QColor(MATCH_COLOR))
        p = self.preview
        if self.duration and p.frame < len(p.times):
            x = line.left() + min(1.0, p.times[p.frame] / self.duration) * (line.width() - 2)
            painter.fillRect(QRectF(x, line.top(), 2, line.height()), QColor("#ffffff"))
