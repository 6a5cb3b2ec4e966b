"""The lead workspace's Incidents tab: the active incidents (name, label, since, who is on
them), moving people onto one, and the possible misses the re-scans flagged (rejected items
that now match a confirmed hash). Every read and write runs on the task runner, never the GUI
thread; the services are the context's (app.storage.incidents)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.compose import AppContext
from app.core.errors import describe
from app.core.model.domain import UserInfo
from app.core.model.incidents import IncidentInfo, PossibleMiss
from app.ui.tasks import TaskRunner


class IncidentsView(QWidget):
    def __init__(
        self, ctx: AppContext, user: UserInfo, tasks: TaskRunner, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.user = user
        self.tasks = tasks
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<b>Active incidents</b>"))
        self.incidents = QTableWidget(0, 5, self)
        self.incidents.setObjectName("incidentsTable")
        self.incidents.setHorizontalHeaderLabels(
            ["Incident", "Label", "Since (UTC)", "Declared by", "People on it"]
        )
        self.incidents.horizontalHeader().setStretchLastSection(True)
        self.incidents.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.incidents.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        layout.addWidget(self.incidents, 1)
        row = QHBoxLayout()
        self.people = QLineEdit(self)
        self.people.setObjectName("assignPeople")
        self.people.setPlaceholderText("user names, separated by spaces")
        self.assign_button = QPushButton("Move onto the selected incident", self)
        self.assign_button.clicked.connect(self.assign)
        row.addWidget(self.people, 1)
        row.addWidget(self.assign_button)
        layout.addLayout(row)
        layout.addWidget(QLabel("<b>Possible misses</b>: rejected items that now match a confirm"))
        self.misses = QTableWidget(0, 4, self)
        self.misses.setObjectName("missesTable")
        self.misses.setHorizontalHeaderLabels(["Item", "Entry", "Flagged (UTC)", "Why"])
        self.misses.horizontalHeader().setStretchLastSection(True)
        self.misses.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        layout.addWidget(self.misses, 1)
        clear = QHBoxLayout()
        self.miss_note = QLineEdit(self)
        self.miss_note.setObjectName("missNote")
        self.miss_note.setPlaceholderText("what was done with the selected miss (needed)")
        self.clear_button = QPushButton("Clear the selected miss", self)
        self.clear_button.setObjectName("clearMiss")
        self.clear_button.clicked.connect(self.clear_miss)
        clear.addWidget(self.miss_note, 1)
        clear.addWidget(self.clear_button)
        layout.addLayout(clear)
        self.status = QLabel("")
        self.status.setObjectName("incidentsStatus")
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        layout.addWidget(self.status)
        self._shown: list[IncidentInfo] = []
        self._misses: list[PossibleMiss] = []

    def refresh(self) -> None:
        def read() -> tuple[list[IncidentInfo], list[PossibleMiss]]:
            misses = self.ctx.incidents.possible_misses(actor=self.user)
            return self.ctx.incidents.active(), misses

        self.tasks.read(read, self._show, lambda exc: self.status.setText(describe(exc)))

    def _show(self, result: tuple[list[IncidentInfo], list[PossibleMiss]]) -> None:
        incidents, misses = result
        self._shown = incidents
        self.incidents.setRowCount(len(incidents))
        for r, i in enumerate(incidents):
            for c, value in enumerate(
                [i.name, i.label, f"{i.started_at:%Y-%m-%d %H:%M}", i.declared_by or "—",
                 ", ".join(i.assigned) or "everyone (nobody moved)"]
            ):  # fmt: skip
                self.incidents.setItem(r, c, QTableWidgetItem(value))
        if incidents and not self.incidents.selectedItems():
            self.incidents.selectRow(0)
        self._misses = misses
        self.misses.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.misses.setRowCount(len(misses))
        for r, m in enumerate(misses):
            for c, value in enumerate(
                [f"#{m.item_id}", f"#{m.entry_id}" if m.entry_id else "—",
                 f"{m.flagged_at:%Y-%m-%d %H:%M}", m.note or ""]
            ):  # fmt: skip
                self.misses.setItem(r, c, QTableWidgetItem(value))
        self.status.setText(f"{len(incidents)} active incident(s), {len(misses)} possible miss(es)")

    def clear_miss(self) -> None:
        """Clear the selected possible miss with the note typed (audited; on the runner)."""
        rows = {i.row() for i in self.misses.selectedIndexes()}
        note = self.miss_note.text().strip()
        if not rows or not note:
            self.status.setText("Select a possible miss and say what was done with it.")
            return
        miss = self._misses[min(rows)]

        def write() -> PossibleMiss:
            return self.ctx.incidents.clear_miss(miss.id, note, actor=self.user)

        def done(m: PossibleMiss) -> None:
            self.miss_note.clear()
            self.status.setText(f"Cleared possible miss #{m.id} (item #{m.item_id})")
            self.refresh()

        self.tasks.write(write, done, lambda exc: self.status.setText(describe(exc)))

    def assign(self) -> None:
        rows = {i.row() for i in self.incidents.selectedIndexes()}
        names = self.people.text().split()
        if not rows or not names:
            self.status.setText("Select an incident and name the people to move onto it.")
            return
        incident = self._shown[min(rows)].name

        def write() -> IncidentInfo:
            return self.ctx.incidents.assign(incident, names, actor=self.user)

        def done(info: IncidentInfo) -> None:
            self.people.clear()
            self.status.setText(f"{info.name}: {', '.join(info.assigned)} on it")
            self.refresh()

        self.tasks.write(write, done, lambda exc: self.status.setText(describe(exc)))
