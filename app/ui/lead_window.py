"""The lead's workspace: the decision history, the team's numbers, the hash lists, the intake and
the incidents (with the re-scans' possible misses) in tabs, and the queues
(review, escalations, blind second review) one key away, each on the keyboard review screen."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QTabWidget

from app.compose import AppContext
from app.core.model.domain import UserInfo
from app.core.model.roles import Permission, allowed
from app.ui.actions import (
    HISTORY_ACTIONS,
    LEAD_ACTIONS,
    LISTS_ACTIONS,
    SESSION_ACTIONS,
    STATS_ACTIONS,
    build_actions,
)
from app.ui.history_window import HistoryView
from app.ui.incidents_view import IncidentsView
from app.ui.intake_view import IntakeView
from app.ui.lists_window import ListsView
from app.ui.review_window import CheatSheet, ReviewWindow
from app.ui.situation_view import SituationView
from app.ui.stats_window import StatsView
from app.ui.tasks import TaskRunner


class LeadWindow(QMainWindow):
    signed_out = Signal()  # closed by Sign out: the next person signs in

    #: The session actions a lead's workspace has (the lock and the exposure trend belong to
    #: the review screens it opens, which have their own).
    SESSION_IDS = ("sign_out", "quit")

    def __init__(self, ctx: AppContext, user: UserInfo, tasks: TaskRunner | None = None) -> None:
        super().__init__()
        self._signing_out = False
        self.ctx = ctx
        self.user = user
        self.tasks = tasks or TaskRunner(self)
        self.setWindowTitle(f"Hashdesk — lead workspace — {user.display_name} ({user.role.value})")
        self.resize(1366, 840)
        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.history = HistoryView(ctx, user, self.tasks, self.tabs)
        self.stats = StatsView(ctx, user, self.tasks, self.tabs)
        self.tabs.addTab(self.history, "History  [Ctrl+1]")
        self.tabs.addTab(self.stats, "Statistics  [Ctrl+2]")
        self.lists = ListsView(ctx, user, self.tasks, self.tabs)
        self.tabs.addTab(self.lists, "Hash lists  [Ctrl+3]")
        self.intake = IntakeView(ctx, user, self.tasks, self.tabs)
        self.tabs.addTab(self.intake, "Intake  [Ctrl+4]")
        self.incidents = IncidentsView(ctx, user, self.tasks, self.tabs)
        self.tabs.addTab(self.incidents, "Incidents")
        self.situation = SituationView(ctx, user, self.tasks, self.tabs)
        self.tabs.addTab(self.situation, "Situation  [Ctrl+5]")
        self.tabs.currentChanged.connect(self._tab_changed)
        self.setCentralWidget(self.tabs)
        self.queue_windows: dict[str, ReviewWindow] = {}
        handlers = {
            "lead_history": lambda: self.tabs.setCurrentWidget(self.history),
            "lead_stats": lambda: self.tabs.setCurrentWidget(self.stats),
            "lead_lists": lambda: self.tabs.setCurrentWidget(self.lists),
            "lead_intake": lambda: self.tabs.setCurrentWidget(self.intake),
            "lead_incident": lambda: self.tabs.setCurrentWidget(self.situation),
            "open_review": lambda: self.open_queue("review"),
            "open_escalations": lambda: self.open_queue("escalations"),
            "open_second_review": lambda: self.open_queue("second_review"),
            "lead_cheatsheet": self.show_cheatsheet,
        }
        self.actions_by_id = build_actions(self, LEAD_ACTIONS, handlers, ctx.key_overrides)
        view = self.menuBar().addMenu("&View")
        view.addAction(self.actions_by_id["lead_history"])
        view.addAction(self.actions_by_id["lead_stats"])
        view.addAction(self.actions_by_id["lead_lists"])
        view.addAction(self.actions_by_id["lead_intake"])
        view.addAction(self.actions_by_id["lead_incident"])
        queues = self.menuBar().addMenu("&Queues")
        for key in ("open_review", "open_escalations", "open_second_review"):
            queues.addAction(self.actions_by_id[key])
        history = self.menuBar().addMenu("&History")
        for spec in HISTORY_ACTIONS:
            history.addAction(self.history.actions_by_id[spec.id])
        stats = self.menuBar().addMenu("&Statistics")
        for spec in STATS_ACTIONS:
            stats.addAction(self.stats.actions_by_id[spec.id])
        lists = self.menuBar().addMenu("&Lists")
        for spec in LISTS_ACTIONS:
            lists.addAction(self.lists.actions_by_id[spec.id])
        session_specs = tuple(spec for spec in SESSION_ACTIONS if spec.id in self.SESSION_IDS)
        self.session_actions = build_actions(
            self,
            session_specs,
            {"sign_out": self.sign_out, "quit": self.quit},
            ctx.key_overrides,
        )
        session = self.menuBar().addMenu("&Session")
        for spec in session_specs:
            session.addAction(self.session_actions[spec.id])
        self.menuBar().addMenu("&Help").addAction(self.actions_by_id["lead_cheatsheet"])
        self.statusBar().addPermanentWidget(QLabel(ctx.db.label))
        self._stats_loaded = False
        self._lists_loaded = False

    def start(self) -> None:
        self.history.start()

    def _tab_changed(self, _index: int) -> None:
        if self.tabs.currentWidget() is self.stats:
            if not self._stats_loaded:
                self._stats_loaded = True
                self.stats.refresh()
        elif self.tabs.currentWidget() is self.lists:
            if not self._lists_loaded:
                self._lists_loaded = True
                self.lists.refresh()
            self.lists.entries_table.setFocus()
        elif self.tabs.currentWidget() is self.intake:
            self.intake.refresh()
        elif self.tabs.currentWidget() is self.situation:
            self.situation.refresh()  # always fresh: the figures move while it runs
        elif self.tabs.currentWidget() is self.incidents:
            self.incidents.refresh()  # what the re-scans flagged since
        else:
            self.history.focus_table()

    def open_queue(self, queue: str) -> ReviewWindow | None:
        need = {
            "review": Permission.REVIEW,
            "escalations": Permission.HANDLE_ESCALATIONS,
            "second_review": Permission.SECOND_REVIEW,
        }[queue]
        if not allowed(self.user.role, need):
            self.statusBar().showMessage(f"Your role may not open the {queue} queue.", 6000)
            return None
        w = self.queue_windows.get(queue)
        if w is not None and w.isVisible():
            w.raise_()
            w.activateWindow()
            return w
        w = ReviewWindow(self.ctx, self.user, self.tasks, queue=queue)
        self.queue_windows[queue] = w
        w.show()
        w.activateWindow()
        w.start()
        return w

    def show_cheatsheet(self) -> None:
        specs = LEAD_ACTIONS + HISTORY_ACTIONS + STATS_ACTIONS + LISTS_ACTIONS
        actions = {
            **self.actions_by_id,
            **self.history.actions_by_id,
            **self.stats.actions_by_id,
            **self.lists.actions_by_id,
        }
        sheet = CheatSheet(self, specs, actions)
        sheet.setObjectName("cheatsheet")
        sheet.open()
        self._cheatsheet = sheet

    def sign_out(self) -> None:
        """Close the workspace and its queue windows (giving their claims back) and let the
        next person sign in."""
        self._signing_out = True
        self.close()

    def quit(self) -> None:
        self.close()
        app = QApplication.instance()
        if app is not None:
            app.quit()

    def closeEvent(self, event) -> None:
        for w in self.queue_windows.values():
            if w.isVisible():
                w.close()
        # No new reads start after close, and the ones running finish before the window (and
        # its thread pools) go away: a pool destroyed with a task inside would block.
        self.history.timeline._debounce.stop()
        self.intake.timer.stop()
        self.tasks.wait(15000)
        super().closeEvent(event)
        if self._signing_out:
            self.signed_out.emit()
