"""The lead workspace's Intake tab: the intake backlog, the rate in and out, the oldest waiting
arrival's age, each queue worker's last heartbeat, failures with their reasons
(app.storage.intake_status), and the reports that came without a file, open, nearest deadline
first (app.storage.intake_tokens: their URLs shown as text, never fetched nor made links); read
off the GUI thread by the task runner, every few seconds while the tab is shown."""

from __future__ import annotations

from datetime import timedelta

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.compose import AppContext
from app.core.errors import describe
from app.core.model.domain import UserInfo
from app.storage.intake_status import IntakeStatus, age_text, intake_status
from app.storage.intake_tokens import ReportInfo
from app.ui.tasks import TaskRunner

REFRESH_MS = 5000


class IntakeView(QWidget):
    def __init__(
        self, ctx: AppContext, user: UserInfo, tasks: TaskRunner, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.user = user
        self.tasks = tasks
        self.status: IntakeStatus | None = None
        self.loads = 0  # finished loads (tests wait on it)
        self._loading = False
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.summary = QLabel("Loading…", self)
        self.summary.setObjectName("intake_summary")
        self.summary.setWordWrap(True)
        top.addWidget(self.summary, 1)
        self.refresh_button = QPushButton("&Refresh", self)
        self.refresh_button.clicked.connect(self.refresh)
        top.addWidget(self.refresh_button)
        layout.addLayout(top)
        layout.addWidget(QLabel("Workers (their last heartbeat):", self))
        self.workers = QTableWidget(0, 4, self)
        self.workers.setObjectName("intake_workers")
        self.workers.setHorizontalHeaderLabels(["Worker", "Last heartbeat", "Last job", "State"])
        self.workers.horizontalHeader().setStretchLastSection(True)
        layout.addWidget(self.workers, 1)
        layout.addWidget(QLabel("Failures (the newest first):", self))
        self.failures = QTableWidget(0, 4, self)
        self.failures.setObjectName("intake_failures")
        self.failures.setHorizontalHeaderLabels(["Arrival", "File", "State", "Reason"])
        self.failures.horizontalHeader().setStretchLastSection(True)
        layout.addWidget(self.failures, 2)
        layout.addWidget(
            QLabel("Reports without a file (open, nearest deadline first; URLs never fetched):")
        )
        self.reports = QTableWidget(0, 6, self)
        self.reports.setObjectName("intake_reports")
        self.reports.setHorizontalHeaderLabels(
            ["Report", "Received (UTC)", "Deadline (UTC)", "Source", "External id", "URL (text)"]
        )
        self.reports.horizontalHeader().setStretchLastSection(True)
        layout.addWidget(self.reports, 2)
        self.open_reports: list[ReportInfo] = []
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.timer.start()

    def hideEvent(self, event) -> None:
        self.timer.stop()
        super().hideEvent(event)

    def refresh(self) -> None:
        """Load the status in the background (one load at a time)."""
        if self._loading:
            return
        self._loading = True
        db = self.ctx.db
        reports = self.ctx.intake_reports
        stalled = timedelta(seconds=self.ctx.settings.worker_stalled_s)
        self.tasks.read(
            lambda: (intake_status(db, stalled_after=stalled), reports.list(limit=200)),
            on_done=self._show,
            on_error=self._failed,
        )

    def _failed(self, exc: BaseException) -> None:
        self._loading = False
        self.summary.setText(f"The intake's status could not be read: {describe(exc)}")
        self.loads += 1

    def _show(self, loaded: tuple[IntakeStatus, list[ReportInfo]]) -> None:
        self._loading = False
        st, self.open_reports = loaded
        self.status = st
        queue = (
            f"queue: {st.queue_todo} waiting, {st.queue_doing} running"
            if st.queue_todo is not None
            else "no queue: jobs run where they arrive"
        )
        mins = int(st.window.total_seconds() // 60)
        alive = sum(w.alive for w in st.workers)
        self.summary.setText(
            f"Backlog: {st.waiting} waiting ({queue}). Oldest waiting: {age_text(st.oldest_age)}. "
            f"In: {st.rate_in:.1f}/min, out: {st.rate_out:.1f}/min (last {mins} min). "
            f"Workers alive: {alive}. Failures: {len(st.failures)}. "
            f"Reports without a file: {len(self.open_reports)} open."
        )
        self.workers.setRowCount(len(st.workers))
        for row, w in enumerate(st.workers):
            beat = f"{age_text(st.now - w.last_heartbeat)} ago" if w.last_heartbeat else "none"
            job = f"{age_text(st.now - w.last_job_at)} ago" if w.last_job_at else "-"
            cells = [f"#{w.id} {w.name}", beat, job, "alive" if w.alive else "NO HEARTBEAT"]
            for col, value in enumerate(cells):
                self.workers.setItem(row, col, QTableWidgetItem(value))
        self.failures.setRowCount(len(st.failures))
        for row, f in enumerate(st.failures):
            cells = [str(f.receipt_id), f.name or "", f.state, f.reason]
            for col, value in enumerate(cells):
                self.failures.setItem(row, col, QTableWidgetItem(value))
        self.reports.setRowCount(len(self.open_reports))
        for row, r in enumerate(self.open_reports):
            cells = [
                f"#{r.id}",
                f"{r.received_at:%Y-%m-%d %H:%M}",
                f"{r.deadline:%Y-%m-%d %H:%M}" if r.deadline else "-",
                r.source,
                r.external_id or "",
                r.source_url or "",  # plain text in a cell: never a link, never fetched
            ]
            for col, value in enumerate(cells):
                self.reports.setItem(row, col, QTableWidgetItem(value))
        self.loads += 1
