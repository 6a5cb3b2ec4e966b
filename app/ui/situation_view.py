"""The lead's situational view of an incident (issue 23, 4 and 5): the figures since its start
(app.core.model.situation), a chart of who resolved what over time and the queue, the times
that matter, the update text a lead sends to partners, the figures as CSV, and the debrief (HTML
and CSV). A hash delta that could not be delivered is shown on top, in red, until it is. Read on
the reader pool; nothing here touches the database on the GUI thread."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.compose import AppContext
from app.core.errors import describe
from app.core.model.domain import UserInfo
from app.core.model.situation import (
    Situation,
    SituationEvents,
    figure_rows,
    milestones,
    situation,
    situation_csv,
    situation_text,
)
from app.core.reports import debrief_csv, debrief_html, to_text
from app.ui.charts import PALETTE, BarChart
from app.ui.history_window import documents_path
from app.ui.stats_window import CARD_VALUE_STYLE
from app.ui.tasks import TaskRunner

TROUBLE_STYLE = "color: #ffffff; background: #b33a3a; padding: 6px; border-radius: 4px;"


class SituationView(QWidget):
    def __init__(self, ctx: AppContext, viewer: UserInfo, tasks: TaskRunner, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("situation_view")
        self.ctx = ctx
        self.viewer = viewer
        self.tasks = tasks
        self.situation: Situation | None = None
        self.loading = False
        self._build()

    def _build(self) -> None:
        outer = QVBoxLayout(self)
        self.trouble = QLabel("")
        self.trouble.setObjectName("delta_trouble")
        self.trouble.setWordWrap(True)
        self.trouble.setStyleSheet(TROUBLE_STYLE)
        self.trouble.setTextFormat(Qt.TextFormat.PlainText)
        self.trouble.hide()
        outer.addWidget(self.trouble)
        top = QHBoxLayout()
        top.addWidget(QLabel("Incident:"))
        self.choice = QComboBox()
        self.choice.setObjectName("incident_choice")
        self.choice.setMinimumWidth(280)
        self.choice.activated.connect(lambda _i: self.refresh())
        top.addWidget(self.choice)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        top.addWidget(self.refresh_button)
        self.copy_button = QPushButton("Copy update text")
        self.copy_button.setObjectName("incident_copy_text")
        self.copy_button.clicked.connect(self.copy_text)
        top.addWidget(self.copy_button)
        self.csv_button = QPushButton("Figures as CSV…")
        self.csv_button.clicked.connect(self.export_csv)
        top.addWidget(self.csv_button)
        self.debrief_button = QPushButton("Debrief report…")
        self.debrief_button.setObjectName("incident_debrief")
        self.debrief_button.clicked.connect(self.export_debrief)
        top.addWidget(self.debrief_button)
        top.addStretch(1)
        self.status = QLabel("")
        self.status.setObjectName("incident_status")
        top.addWidget(self.status)
        outer.addLayout(top)

        self.cards: dict[str, QLabel] = {}
        grid = QGridLayout()
        for i, (key, _v) in enumerate(figure_rows_template()):
            box = QFrame()
            box.setFrameShape(QFrame.Shape.StyledPanel)
            box.setStyleSheet("QFrame { background: #ffffff; border-radius: 4px; }")
            lay = QVBoxLayout(box)
            lay.setContentsMargins(10, 6, 10, 6)
            cap = QLabel(key)
            cap.setStyleSheet("color: #555; border: none;")
            value = QLabel("…")
            value.setStyleSheet(CARD_VALUE_STYLE)
            value.setTextFormat(Qt.TextFormat.PlainText)
            lay.addWidget(cap)
            lay.addWidget(value)
            grid.addWidget(box, i // 6, i % 6)
            self.cards[key] = value
        outer.addLayout(grid)
        self.times = QLabel("")
        self.times.setObjectName("incident_times")
        self.times.setTextFormat(Qt.TextFormat.PlainText)
        self.times.setStyleSheet("padding: 4px; font-size: 13px;")
        outer.addWidget(self.times)

        charts = QGridLayout()
        self.charts = {
            "resolved": BarChart("Resolved per interval: by a person, and without one"),
            "queue": BarChart("Queue depth (open items of the incident)"),
            "shared": BarChart("Hashes shared (running total)"),
            "kinds": BarChart("Variants and items by kind", horizontal=True),
        }
        for i, (key, chart) in enumerate(self.charts.items()):
            chart.setObjectName(f"incident_chart_{key}")
            chart.empty_text = "nothing yet"
            charts.addWidget(chart, i // 2, i % 2)
        outer.addLayout(charts, 1)
        outer.addWidget(QLabel("Situational update for partners (hashes and counts only):"))
        self.text = QPlainTextEdit()
        self.text.setObjectName("incident_text")
        self.text.setReadOnly(True)
        self.text.setMaximumHeight(130)
        outer.addWidget(self.text)

    # -- loading ---------------------------------------------------------------------------

    def refresh(self) -> None:
        """Load the incidents, the chosen one's situation and any delta not delivered, on the
        reader pool."""
        name = self.choice.currentData()
        ctx, viewer = self.ctx, self.viewer
        self.loading = True
        self.status.setText("computing…")

        def load():
            incidents = ctx.incidents.list()
            chosen = name or (incidents[0].name if incidents else None)
            sit = ctx.situation.situation(chosen, actor=viewer) if chosen else None
            return incidents, sit, ctx.deltas.trouble()

        self.tasks.read(load, on_done=self._show, on_error=self._failed)

    def _failed(self, exc: Exception) -> None:
        self.loading = False
        self.status.setText(f"Could not compute the situation: {describe(exc)}")

    def _show(self, result) -> None:
        incidents, sit, trouble = result
        self.loading = False
        if trouble is not None:
            self.trouble.setText(
                f"Hash delta {trouble.seq} NOT DELIVERED after {trouble.attempts} attempt(s), "
                f"last at {trouble.last_error_at:%H:%M:%S} UTC: {trouble.last_error}. It is "
                "retried by `hashdesk deltas run`; nothing after it is sent before it."
            )
            self.trouble.show()
        else:
            self.trouble.hide()
        current = sit.name if sit else None
        self.choice.blockSignals(True)
        self.choice.clear()
        for i in incidents:
            state = "active" if i.ended_at is None else f"concluded {i.ended_at:%Y-%m-%d}"
            self.choice.addItem(f"{i.name} — {i.label} ({state})", i.name)
        if current is not None:
            self.choice.setCurrentIndex(max(0, self.choice.findData(current)))
        self.choice.blockSignals(False)
        self.situation = sit
        has = sit is not None
        for b in (self.copy_button, self.csv_button, self.debrief_button):
            b.setEnabled(has)
        if sit is None:
            self.status.setText("no incident declared")
            self.times.setText("")
            self.text.setPlainText("")
            for card in self.cards.values():
                card.setText("—")  # nothing to count, not "still loading"
            for chart in self.charts.values():
                chart.set_data([], [])
            return
        state = f"concluded {sit.ended_at:%Y-%m-%d %H:%M}" if sit.ended_at else "active"
        self.status.setText(f"{sit.label}: since {sit.started_at:%Y-%m-%d %H:%M} UTC, {state}")
        for key, value in figure_rows(sit):
            self.cards[key].setText(value)
        self.times.setText(
            "Times:   "
            + "   →   ".join(
                f"{what} {when}" + (f" (+{after})" if after and after != "-" else "")
                for what, when, after in milestones(sit)
            )
        )
        labels = [p.at.strftime("%H:%M") for p in sit.points]
        ch = self.charts
        ch["resolved"].set_data(
            labels,
            [[p.per_human, p.per_auto] for p in sit.points],
            series=["by a person", "without one"],
            colours=[PALETTE[0], PALETTE[2]],
        )
        ch["queue"].set_data(labels, [p.queue for p in sit.points], colours=[PALETTE[3]])
        ch["shared"].set_data(labels, [p.hashes_shared for p in sit.points], colours=[PALETTE[4]])
        kinds = list(sit.variants_by_kind.items())
        ch["kinds"].set_data(
            [k for k, _ in kinds],
            [[v, n - v] for _, (v, n) in kinds],
            series=["variants", "more copies"],
            colours=[PALETTE[0], PALETTE[5]],
        )
        self.text.setPlainText(situation_text(sit))

    # -- out -------------------------------------------------------------------------------

    def copy_text(self) -> None:
        if self.situation is None:
            return
        QApplication.clipboard().setText(situation_text(self.situation))
        self.status.setText("update text copied")

    def export_csv(self) -> None:
        sit = self.situation
        if sit is None:
            return
        path, _ = QFileDialog.getSaveFileName(
            self, "Figures as CSV", documents_path(f"{sit.name}-situation.csv"), "CSV (*.csv)"
        )
        if path:
            self._write(Path(path), situation_csv(sit))

    def export_debrief(self, path: str | None = None) -> None:
        """Write the debrief as HTML, and its figures as CSV beside it (same name, .csv)."""
        sit = self.situation
        if sit is None:
            return
        if path is None:
            path, _ = QFileDialog.getSaveFileName(
                self, "Debrief report", documents_path(f"{sit.name}-debrief.html"), "HTML (*.html)"
            )
        if not path:
            return
        html_path = Path(path)
        html_text, csv_text = debrief_html(sit), to_text(debrief_csv, sit)
        if self._write(html_path, html_text) and self._write(
            html_path.with_suffix(".csv"), csv_text
        ):
            note = "" if sit.ended_at else " (still active: as of now)"
            self.status.setText(f"debrief written to {html_path.name} and .csv{note}")

    def _write(self, path: Path, text: str) -> bool:
        try:
            path.write_text(text, encoding="utf-8", newline="")
        except OSError as exc:
            self.status.setText(f"Could not write {path}: {exc.strerror or exc}")
            return False
        self.status.setText(f"written: {path}")
        return True


def figure_rows_template() -> list[tuple[str, str]]:
    """The cards' captions, in the order figure_rows gives them."""
    t = datetime(2000, 1, 1)
    return figure_rows(situation(SituationEvents("", "", t, None, t), intervals=1))
