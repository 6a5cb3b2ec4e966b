"""The team's numbers for a chosen period: cards on top, charts below, and the period summary
exported as HTML (self-contained) and CSV. Computed on the reader pool."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.compose import AppContext
from app.core.errors import describe
from app.core.model.domain import UserInfo, utcnow
from app.core.model.history_types import PeriodStats
from app.core.reports import (
    EXPOSURE_CARE,
    format_duration,
    format_percent,
    summary_csv,
    summary_html,
)
from app.ui.actions import STATS_ACTIONS, build_actions
from app.ui.charts import MET, MISSED, PALETTE, URGENT, BarChart
from app.ui.history_window import documents_path
from app.ui.tasks import TaskRunner

PERIODS = (
    ("Last 24 hours", timedelta(hours=24)),
    ("Last 7 days", timedelta(days=7)),
    ("Last 30 days", timedelta(days=30)),
    ("Last 365 days", timedelta(days=365)),
)
# The verdicts a human decision has (app.storage.stats): the per-moderator bars add up to the
# card and to the per-hour chart.
VERDICT_SERIES = ("confirm", "reject", "overturn")


CARD_VALUE_STYLE = "font-size: 17px; font-weight: bold; border: none;"


class StatsView(QWidget):
    def __init__(self, ctx: AppContext, viewer: UserInfo, tasks: TaskRunner, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("stats_view")
        self.ctx = ctx
        self.viewer = viewer
        self.tasks = tasks
        self.service = ctx.stats
        self.stats: PeriodStats | None = None
        self.loading = False
        self._build()

    def _build(self) -> None:
        outer = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(QLabel("Period:"))
        self.period = QComboBox()
        self.period.setObjectName("stats_period")
        for label, span in PERIODS:
            self.period.addItem(label, span)
        self.period.setCurrentIndex(1)
        self.period.activated.connect(lambda _i: self.refresh())
        top.addWidget(self.period)
        self.refresh_button = QPushButton("Recompute  [Ctrl+R]")
        self.refresh_button.clicked.connect(self.refresh)
        top.addWidget(self.refresh_button)
        self.export_button = QPushButton("Export summary…  [Ctrl+S]")
        self.export_button.clicked.connect(self.export_dialog)
        top.addWidget(self.export_button)
        top.addStretch(1)
        self.status = QLabel("")
        self.status.setObjectName("stats_status")
        top.addWidget(self.status)
        outer.addLayout(top)

        self.cards: dict[str, QLabel] = {}
        work, care = QHBoxLayout(), QHBoxLayout()
        for row, key, title in (
            (work, "human", "Human decisions"),
            (work, "auto", "Auto-matched"),
            (work, "deadlines", "Deadlines met"),
            (work, "overturns", "Overturn rate"),
            (work, "agreement", "Second-review agreement"),
            (work, "flag", "Median flag → decision"),
            (work, "queue", "Queue now"),
            (care, "zero_exposure", "Resolved with zero exposure"),
            (care, "exposure", "Unblurred per decision"),
        ):
            box = QFrame()
            box.setFrameShape(QFrame.Shape.StyledPanel)
            box.setStyleSheet("QFrame { background: #ffffff; border-radius: 4px; }")
            lay = QVBoxLayout(box)
            lay.setContentsMargins(10, 6, 10, 6)
            cap = QLabel(title)
            cap.setStyleSheet("color: #555; border: none;")
            value = QLabel("…")
            value.setObjectName(f"card_{key}")
            value.setStyleSheet(CARD_VALUE_STYLE)
            value.setTextFormat(Qt.TextFormat.PlainText)
            lay.addWidget(cap)
            lay.addWidget(value)
            row.addWidget(box, 1)
            self.cards[key] = value
        outer.addLayout(work)
        # Exposure on a row of its own, said as what it is for: looking after people.
        note = QLabel(EXPOSURE_CARE)
        note.setObjectName("exposure_care")
        note.setWordWrap(True)
        note.setStyleSheet("color: #1f3a2b; background: #e9f1ec; padding: 6px; border-radius: 4px;")
        care.insertWidget(0, note, 2)
        outer.addLayout(care)

        grid = QGridLayout()
        self.charts = {
            "per_hour": BarChart("Human decisions per hour"),
            "per_moderator": BarChart("Human decisions per moderator", horizontal=True),
            "queue_age": BarChart("Open queue by age"),
            "deadlines": BarChart("Deadlines", horizontal=True),
            "agreement": BarChart("Agreement with second review, by moderator", horizontal=True),
            "methods": BarChart("Auto-matched vs human-decided", horizontal=True),
            # Care, not speed: who may need a word today, and how the team's days went.
            "exposure": BarChart("Unblurred seconds per person, for their care", True),
        }
        self.charts["queue_age"].empty_text = "the queue is empty"
        for i, (key, chart) in enumerate(self.charts.items()):
            chart.setObjectName(f"chart_{key}")
            grid.addWidget(chart, i // 3, i % 3)
        outer.addLayout(grid, 1)
        handlers = {"stats_refresh": self.refresh, "stats_export": self.export_dialog}
        self.actions_by_id = build_actions(self, STATS_ACTIONS, handlers, self.ctx.key_overrides)

    # -- loading ---------------------------------------------------------------------------

    def period_bounds(self) -> tuple[datetime, datetime]:
        until = utcnow()
        return until - self.period.currentData(), until

    def refresh(self) -> None:
        since, until = self.period_bounds()
        self.loading = True
        self.status.setText("computing…")
        service, viewer = self.service, self.viewer
        self.tasks.read(
            lambda: service.period(viewer, since, until),
            on_done=self.show_stats,
            on_error=self._failed,
        )

    def _failed(self, exc: Exception) -> None:
        self.loading = False
        self.status.setText(f"Could not compute statistics: {describe(exc)}")

    def show_stats(self, st: PeriodStats) -> None:
        self.loading = False
        self.stats = st
        self.status.setText(f"{st.since:%Y-%m-%d %H:%M} to {st.until:%Y-%m-%d %H:%M} UTC")
        c = self.cards
        c["human"].setText(str(st.human_decided))
        c["auto"].setText(str(st.auto_matched))
        judged = st.deadlines_judged
        c["deadlines"].setText(f"{format_percent(st.deadline_rate)}  ({st.deadlines_met}/{judged})")
        c["deadlines"].setStyleSheet(
            CARD_VALUE_STYLE + (f" color: {URGENT};" if st.overdue_open else "")
        )
        c["overturns"].setText(f"{format_percent(st.overturn_rate)}  ({st.overturns})")
        agr = st.agreement
        if agr is not None and agr.pairs:
            kappa = "—" if agr.kappa is None else f"{agr.kappa:.2f}"
            c["agreement"].setText(f"{agr.percent:.0f}%  κ {kappa}  (n={agr.pairs})")
        else:
            c["agreement"].setText("no second reviews")
        c["flag"].setText(format_duration(st.flag_to_decision.median_s))
        c["queue"].setText(
            f"{st.queue_open} open · {st.queue_escalated} esc · {st.queue_second_review} 2nd"
        )
        ex = st.exposure
        c["zero_exposure"].setText(
            f"{format_percent(ex.zero_exposure_share)}  ({ex.resolved_unseen}/{ex.resolved})"
        )
        per = ex.seconds_per_decision
        c["exposure"].setText(
            ("—" if per is None else f"{per:.1f} s")
            + f"  · {len(ex.limit_passed)} day(s) past the limit"
        )
        ch = self.charts
        per_person: dict[str, float] = {}
        for d in ex.days:
            per_person[d.user] = per_person.get(d.user, 0.0) + d.seconds
        ch["exposure"].set_data(list(per_person), [round(v) for v in per_person.values()], unit="s")
        hours = self._hours(st)
        ch["per_hour"].set_data([h.strftime("%d %H:00") for h, _ in hours], [n for _, n in hours])
        ch["per_moderator"].set_data(
            [name for name, _ in st.per_moderator[:12]],
            [[counts.get(v, 0) for v in VERDICT_SERIES] for _, counts in st.per_moderator[:12]],
            series=list(VERDICT_SERIES),
            colours=[PALETTE[0], PALETTE[1], PALETTE[4]],
        )
        ch["queue_age"].set_data([label for label, _ in st.queue_age], [n for _, n in st.queue_age])
        ch["deadlines"].set_data(
            ["met", "missed", "overdue, still open"],
            [[st.deadlines_met, 0, 0], [0, st.deadlines_missed, 0], [0, 0, st.overdue_open]],
            colours=[MET, MISSED, URGENT],
        )
        ch["agreement"].set_data(
            [f"{name} (n={a.pairs})" for name, a in st.agreement_by_moderator],
            [round(a.percent or 0.0, 1) for _, a in st.agreement_by_moderator],
            unit="%",
        )
        ch["methods"].set_data(
            ["auto-matched", "human (manual)", "cluster (one key, many items)", "second review"],
            [
                [st.by_method.get("auto_match", 0), 0],
                [0, st.by_method.get("manual", 0)],
                [0, st.by_method.get("cluster", 0)],
                [0, st.by_method.get("second_review", 0)],
            ],
        )

    @staticmethod
    def _hours(st: PeriodStats) -> list[tuple[datetime, int]]:
        """Every hour from the first to the last with decisions (empty hours as zero), at most
        the last 72."""
        if not st.per_hour:
            return []
        counts = {h: n for h, n in st.per_hour}
        start, end = st.per_hour[0][0], st.per_hour[-1][0]
        start = max(start, end - timedelta(hours=71))
        out = []
        h = start
        while h <= end:
            out.append((h, counts.get(h, 0)))
            h += timedelta(hours=1)
        return out

    # -- export ----------------------------------------------------------------------------

    def export_dialog(self) -> None:
        if self.stats is None:
            self.status.setText("Nothing to export yet.")
            return
        # Two files: say so before choosing, and name both after.
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Export period summary: the HTML report, and a CSV of the same name beside it",
            documents_path("hashdesk-summary.html"),
            "HTML report + CSV beside it (*.html)",
        )
        if path:
            self.export(Path(path))

    def export(self, html_path: Path) -> tuple[Path, Path]:
        """Writes the summary as ``X.html`` and ``X.csv`` (small: on the GUI thread is fine)."""
        assert self.stats is not None
        html_path = html_path.with_suffix(".html")
        csv_path = html_path.with_suffix(".csv")
        html_path.write_text(summary_html(self.stats), encoding="utf-8")
        with open(csv_path, "w", newline="", encoding="utf-8") as out:
            summary_csv(self.stats, out)
        self.status.setText(f"Saved {html_path.name} and {csv_path.name} in {html_path.parent}")
        return html_path, csv_path
