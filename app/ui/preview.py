"""The preview area: shows an item blurred by default, optionally greyscale, revealed only
while Space is held, or a small circle of it while Shift is held and the mouse moves over it
(the region lens: a flag, a logo, a face, without the rest). Either says so on screen in words.
Paints prepared images only; nothing here decodes or blurs."""

from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import Image
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetricsF,
    QImage,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPalette,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.core.review.preview import DEFAULT_BLUR_LEVEL, PreparedPreview

REVEAL_COLOR = "#d4145a"
LENS_RADIUS = 56  # px on screen: a flag, a logo or a face, not the picture
LENS_TEXT = "REGION UNBLURRED under the pointer while you hold Shift (counted as exposure)"
REVEAL_TEXT = "UNBLURRED — shown as it is while you hold Space (counted as exposure)"
BANNER_FLAGS = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
BANNER_PAD = 8  # px of banner colour round the words
BANNER_MIN_POINTS = 7  # below this the words are elided rather than shrunk further


@dataclass(frozen=True)
class Banner:
    """A banner over the top of the picture: where, in what font, what it says (wrapped in
    ``rect`` with ``BANNER_FLAGS``). Sized from the picture's own width, whatever its aspect:
    the words wrap, then shrink, and only past ``BANNER_MIN_POINTS`` are they elided."""

    rect: QRectF
    font: QFont
    text: str

    def text_rect(self) -> QRectF:
        """Where the words land when painted into ``rect``."""
        return QFontMetricsF(self.font).boundingRect(self.rect, BANNER_FLAGS, self.text)


def fit_banner(target: QRectF, base: QFont, text: str, points: int, min_height: float) -> Banner:
    """The banner for ``text`` over ``target``: as wide as the picture, as tall as the wrapped
    words need (at least ``min_height``, at most the picture's height)."""
    inner = max(1.0, target.width() - 2 * BANNER_PAD)
    font = QFont(base)
    for size in range(points, BANNER_MIN_POINTS - 1, -1):
        font.setPointSize(size)
        need = QFontMetricsF(font).boundingRect(QRectF(0, 0, inner, 1e6), BANNER_FLAGS, text)
        height = max(min_height, need.height() + 2 * BANNER_PAD)
        if need.width() <= inner and height <= target.height():
            return Banner(QRectF(target.x(), target.y(), target.width(), height), font, text)
    # A sliver of a picture: one line, elided, at the smallest size.
    metrics = QFontMetricsF(font)
    line = metrics.elidedText(text, Qt.TextElideMode.ElideRight, inner)
    height = min(target.height(), max(min_height, metrics.height() + 2 * BANNER_PAD))
    return Banner(QRectF(target.x(), target.y(), target.width(), height), font, line)


def pil_to_qimage(img: Image.Image) -> QImage:
    rgb = img.convert("RGB")
    data = rgb.tobytes()
    q = QImage(data, rgb.width, rgb.height, rgb.width * 3, QImage.Format.Format_RGB888)
    return q.copy()  # own the pixels: ``data`` goes away


@dataclass
class ScreenPreview:
    """Preview images ready for the GUI thread (QImage may be made on any thread)."""

    frames: list[QImage]
    blurred: list[list[QImage]]

    @classmethod
    def from_prepared(cls, p: PreparedPreview) -> ScreenPreview:
        return cls(
            frames=[pil_to_qimage(f) for f in p.frames],
            blurred=[[pil_to_qimage(b) for b in levels] for levels in p.blurred],
        )


class PreviewWidget(QWidget):
    # True while any part of the picture is shown unblurred (the exposure meter listens).
    revealed_changed = Signal(bool)
    # The region lens: the share of the picture it shows unblurred (0.0: none).
    region_changed = Signal(float)
    frame_changed = Signal(int)  # the frame on screen (a video's sampled frames)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("preview")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAutoFillBackground(True)
        pal = self.palette()
        pal.setColor(QPalette.ColorRole.Window, QColor("#1e1f22"))
        self.setPalette(pal)
        self._preview: ScreenPreview | None = None
        self.times: list[float] = []  # each frame's timestamp, when known (the scrubber)
        self.matched: set[int] = set()  # frames that matched known content
        self._wheel_rest = 0
        self._message = ""
        self._frame = 0
        self.blur_level = DEFAULT_BLUR_LEVEL
        self.blur_enabled = True
        self.greyscale = False
        self.revealed = False
        self.lens: QPointF | None = None  # the region lens's centre, on screen
        self.lens_radius = LENS_RADIUS
        self.setMouseTracking(True)
        self._cache: dict[tuple, QPixmap] = {}

    def sizeHint(self) -> QSize:
        return QSize(720, 480)

    # -- what to show ----------------------------------------------------------------------

    def show_preview(
        self,
        preview: ScreenPreview | None,
        message: str = "",
        times: list[float] | None = None,
        matched: set[int] | None = None,
    ) -> None:
        self._preview = preview
        self._message = message
        self.times = list(times or [])
        self.matched = set(matched or ())
        self._frame = 0
        self.clear_lens()
        if self.revealed:
            self.revealed = False
            self.revealed_changed.emit(False)
        self._cache.clear()
        self.update()

    @property
    def frame(self) -> int:
        return self._frame

    @property
    def frame_count(self) -> int:
        return len(self._preview.frames) if self._preview else 0

    @property
    def screen_preview(self) -> ScreenPreview | None:
        return self._preview

    def step_frame(self, delta: int) -> None:
        """One frame on or back (round the ends); a jump of ten stops at the ends."""
        n = self.frame_count
        if n > 1:
            target = self._frame + delta
            self.set_frame(target % n if abs(delta) == 1 else max(0, min(n - 1, target)))

    def set_frame(self, index: int) -> None:
        if 0 <= index < self.frame_count and index != self._frame:
            self._frame = index
            self.update()
            self.frame_changed.emit(index)

    def wheelEvent(self, event) -> None:
        """The wheel scrubs: one frame a notch."""
        dy = event.angleDelta().y() or event.angleDelta().x()
        if dy and self.frame_count > 1:
            # 120 is one notch; a touchpad sends less at a time, so it adds up.
            self._wheel_rest += dy
            notches = int(self._wheel_rest / 120)
            self._wheel_rest -= notches * 120
            for _ in range(abs(notches)):
                self.step_frame(-1 if notches > 0 else 1)
            event.accept()
            return
        super().wheelEvent(event)

    def set_revealed(self, on: bool) -> None:
        if on != self.revealed:
            self.revealed = on
            self.update()
            self.revealed_changed.emit(on)

    # -- the region lens (hold Shift and move the mouse over the picture) -------------------

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self.set_lens(event.position())
        else:
            self.clear_lens()
        super().mouseMoveEvent(event)

    def leaveEvent(self, event) -> None:
        self.clear_lens()
        super().leaveEvent(event)

    def set_lens(self, pos: QPointF) -> None:
        """Unblur a small circle at ``pos`` (only over the picture)."""
        target = self._target()
        if target is None or not target.contains(pos):
            self.clear_lens()
            return
        was = self.lens
        self.lens = QPointF(pos)
        self.update()
        if was is None:
            self.region_changed.emit(self.lens_area())

    def clear_lens(self) -> None:
        if self.lens is not None:
            self.lens = None
            self.update()
            self.region_changed.emit(0.0)

    def lens_area(self) -> float:
        """The share of the picture the lens shows (its circle over the picture's area)."""
        target = self._target()
        if target is None or target.isEmpty():
            return 0.0
        circle = math.pi * self.lens_radius**2
        return min(1.0, circle / (target.width() * target.height()))

    def set_greyscale(self, on: bool) -> None:
        self.greyscale = on
        self.update()

    def set_blur_level(self, level: int) -> None:
        self.blur_level = level
        self.update()

    # -- painting --------------------------------------------------------------------------

    def _pixmap(self, unblurred: bool = False) -> QPixmap | None:
        if self._preview is None:
            return None
        blurred = self.blur_enabled and not self.revealed and not unblurred
        key = (self._frame, blurred, self.blur_level if blurred else -1, self.greyscale)
        pm = self._cache.get(key)
        if pm is None:
            if blurred:
                image = self._preview.blurred[self._frame][self.blur_level]
            else:
                image = self._preview.frames[self._frame]
            if self.greyscale:
                image = image.convertToFormat(QImage.Format.Format_Grayscale8)
            pm = QPixmap.fromImage(image)
            self._cache[key] = pm
        return pm

    def _target(self) -> QRectF | None:
        """Where the picture is drawn: fitted, centred, 8 px inside the widget."""
        if self._preview is None or not self._preview.frames:
            return None
        frame = self._preview.frames[self._frame]
        w, h = frame.width(), frame.height()
        if w <= 0 or h <= 0:
            return None
        area = self.rect().adjusted(8, 8, -8, -8)
        scale = min(area.width() / w, area.height() / h)
        tw, th = w * scale, h * scale
        return QRectF(
            area.x() + (area.width() - tw) / 2, area.y() + (area.height() - th) / 2, tw, th
        )

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        pm = self._pixmap()
        target = self._target()
        if pm is None or pm.isNull() or target is None:
            painter.setPen(QColor("#d0d0d0"))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self._message)
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        painter.drawPixmap(target, pm, QRectF(pm.rect()))
        if self.revealed:
            self._paint_reveal_banner(painter, target)
        elif self.lens is not None:
            self._paint_lens(painter, target)

    def _paint_lens(self, painter: QPainter, target: QRectF) -> None:
        """The circle under the pointer unblurred, ringed so it is never mistaken for blur."""
        sharp = self._pixmap(unblurred=True)
        if sharp is None or self.lens is None:
            return
        r = self.lens_radius
        path = QPainterPath()
        path.addEllipse(self.lens, r, r)
        painter.save()
        painter.setClipPath(path)
        painter.drawPixmap(target, sharp, QRectF(sharp.rect()))
        painter.restore()
        pen = QPen(QColor(REVEAL_COLOR))
        pen.setWidth(4)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.drawEllipse(self.lens, r, r)
        self._paint_banner(painter, self.lens_banner())

    def reveal_banner(self) -> Banner | None:
        """The banner shown while Space reveals the picture (None: no picture on screen)."""
        target = self._target()
        if target is None:
            return None
        font = QFont(self.font())
        font.setBold(True)
        return fit_banner(target, font, REVEAL_TEXT, points=13, min_height=34)

    def lens_banner(self) -> Banner | None:
        """The banner shown while the region lens is on (None: no picture on screen)."""
        target = self._target()
        if target is None:
            return None
        points = max(BANNER_MIN_POINTS, self.font().pointSize())  # -1: a pixel-sized font
        return fit_banner(target, self.font(), LENS_TEXT, points=points, min_height=26)

    @staticmethod
    def _paint_banner(painter: QPainter, banner: Banner | None) -> None:
        if banner is None:
            return
        painter.fillRect(banner.rect, QColor(REVEAL_COLOR))
        painter.setFont(banner.font)
        painter.setPen(QColor("#ffffff"))
        painter.drawText(banner.rect, BANNER_FLAGS, banner.text)

    def _paint_reveal_banner(self, painter: QPainter, target: QRectF) -> None:
        """Unmistakable: a thick frame round the picture and a banner that says so in words."""
        pen = QPen(QColor(REVEAL_COLOR))
        pen.setWidth(8)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(target.adjusted(4, 4, -4, -4))
        self._paint_banner(painter, self.reveal_banner())
