"""Small charts drawn with QPainter (PySide6-Essentials has no QtCharts): vertical bars over
time or categories, and horizontal bars for ranked lists. Data in, paint out; no SQL here."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

PALETTE = ("#3d7bd9", "#b33a3a", "#2e7d4f", "#b7791f", "#6b46c1", "#777777")
# Deadlines read as traffic lights: met green, missed dark red, overdue and still open (the
# urgent one, something can still be done) bright red.
MET, MISSED, URGENT = "#2e7d4f", "#8b1e1e", "#e02424"


class BarChart(QWidget):
    """Bars with a title. ``horizontal`` for ranked lists with long labels; otherwise vertical
    bars, labelled below (every n-th label when they would overlap). ``series`` stacks several
    values per bar (e.g. confirm/reject per moderator), coloured from PALETTE."""

    def __init__(self, title: str, horizontal: bool = False, parent=None) -> None:
        super().__init__(parent)
        self.title = title
        self.horizontal = horizontal
        self.labels: list[str] = []
        self.values: list[list[float]] = []
        self.series: list[str] = []
        self.colours: list[str] = list(PALETTE)
        self.unit = ""
        self.empty_text = "nothing in this period"
        self.setMinimumSize(260, 170)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:
        return QSize(420, 220)

    def set_data(
        self,
        labels: list[str],
        values: list[float] | list[list[float]],
        series: list[str] | None = None,
        unit: str = "",
        colours: list[str] | None = None,
    ) -> None:
        """``colours``: one per series (stacked part), instead of the palette's."""
        self.labels = list(labels)
        self.colours = list(colours or PALETTE)
        self.values = [list(v) if isinstance(v, list | tuple) else [v] for v in values]
        self.series = list(series or [])
        self.unit = unit
        self.update()

    def colour(self, k: int) -> QColor:
        return QColor(self.colours[k % len(self.colours)])

    def total(self, i: int) -> float:
        return sum(self.values[i])

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.fillRect(self.rect(), QColor("#ffffff"))
        p.setPen(QPen(QColor("#d5d8de")))
        p.drawRect(self.rect().adjusted(0, 0, -1, -1))
        title_font = QFont(self.font())
        title_font.setBold(True)
        p.setFont(title_font)
        p.setPen(QColor("#1d1f23"))
        p.drawText(QRectF(8, 4, self.width() - 16, 20), Qt.AlignmentFlag.AlignLeft, self.title)
        p.setFont(self.font())
        area = QRectF(8, 28, self.width() - 16, self.height() - 36)
        if self.series:
            area.setTop(area.top() + 16)
            self._legend(p, QRectF(8, 26, self.width() - 16, 14))
        if not self.values or max((self.total(i) for i in range(len(self.values))), default=0) <= 0:
            p.setPen(QColor("#777777"))
            p.drawText(area, Qt.AlignmentFlag.AlignCenter, self.empty_text)
            return
        if self.horizontal:
            self._horizontal(p, area)
        else:
            self._vertical(p, area)

    def _legend(self, p: QPainter, r: QRectF) -> None:
        x = r.left()
        fm = QFontMetrics(self.font())
        for i, name in enumerate(self.series):
            p.fillRect(QRectF(x, r.top() + 3, 10, 10), self.colour(i))
            p.setPen(QColor("#333333"))
            p.drawText(QRectF(x + 14, r.top(), 200, 14), Qt.AlignmentFlag.AlignLeft, name)
            x += 24 + fm.horizontalAdvance(name)

    def _segments(self, p: QPainter, i: int, rect_for) -> None:
        start = 0.0
        for k, v in enumerate(self.values[i]):
            if v > 0:
                p.fillRect(rect_for(start, v), self.colour(k))
            start += v

    def _vertical(self, p: QPainter, area: QRectF) -> None:
        fm = QFontMetrics(self.font())
        n = len(self.values)
        top = max(self.total(i) for i in range(n))
        label_h = fm.height() + 4
        plot = QRectF(area.left() + 30, area.top() + 14, area.width() - 34, area.height() - 14)
        plot.setBottom(area.bottom() - label_h)
        p.setPen(QColor("#999999"))
        p.drawLine(plot.bottomLeft(), plot.bottomRight())
        p.drawText(
            QRectF(area.left(), plot.top() - 7, 28, 14),
            Qt.AlignmentFlag.AlignRight,
            f"{top:g}",
        )
        slot = plot.width() / n
        bar_w = max(1.0, slot * 0.7)
        widest = max((fm.horizontalAdvance(lbl) for lbl in self.labels), default=0) + 6
        every = max(1, int(widest / slot) + 1) if slot > 0 else 1
        for i in range(n):
            x = plot.left() + i * slot + (slot - bar_w) / 2
            scale = plot.height() / top

            def rect_for(start: float, v: float, x=x, scale=scale) -> QRectF:
                return QRectF(x, plot.bottom() - (start + v) * scale, bar_w, v * scale)

            self._segments(p, i, rect_for)
            total = self.total(i)
            if n <= 24 and total > 0:
                p.setPen(QColor("#333333"))
                p.drawText(
                    QRectF(x - 10, plot.bottom() - total * scale - 14, bar_w + 20, 14),
                    Qt.AlignmentFlag.AlignHCenter,
                    f"{total:g}",
                )
            if i % every == 0 and i < len(self.labels):
                p.setPen(QColor("#555555"))
                p.drawText(
                    QRectF(x - (widest - bar_w) / 2, plot.bottom() + 2, widest, label_h),
                    Qt.AlignmentFlag.AlignHCenter,
                    self.labels[i],
                )

    def _horizontal(self, p: QPainter, area: QRectF) -> None:
        fm = QFontMetrics(self.font())
        n = len(self.values)
        top = max(self.total(i) for i in range(n))
        label_w = min(area.width() * 0.4, max(fm.horizontalAdvance(lbl) for lbl in self.labels) + 8)
        row_h = min(22.0, area.height() / n)
        bar_h = max(2.0, row_h * 0.7)
        width = area.width() - label_w - 48
        for i in range(n):
            y = area.top() + i * row_h
            p.setPen(QColor("#333333"))
            label = fm.elidedText(self.labels[i], Qt.TextElideMode.ElideRight, int(label_w) - 6)
            p.drawText(
                QRectF(area.left(), y, label_w - 6, row_h),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                label,
            )
            x0 = area.left() + label_w
            scale = width / top

            def rect_for(start: float, v: float, x0=x0, y=y, scale=scale) -> QRectF:
                return QRectF(x0 + start * scale, y + (row_h - bar_h) / 2, v * scale, bar_h)

            self._segments(p, i, rect_for)
            total = self.total(i)
            p.setPen(QColor("#333333"))
            p.drawText(
                QRectF(x0 + total * scale + 4, y, 60, row_h),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                f"{total:g}{self.unit}",
            )
