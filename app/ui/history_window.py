"""The lead's history view: filters on top, the lazy decision table, the selected item's
timeline beside it. Keyboard first: Ctrl+F to the text filter, Enter applies, Ctrl+T (or Esc)
back to the table, arrows move, O overturns, I narrows to one item, Ctrl+E exports."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path

from PySide6.QtCore import QDate, QModelIndex, QStandardPaths, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.compose import AppContext
from app.core.errors import describe
from app.core.model.decisions import OverturnOutcome
from app.core.model.domain import DecisionMethod, UserInfo, Verdict
from app.core.model.history_types import HistoryFilter, HistoryRow
from app.core.reports import history_csv
from app.core.review.preview import BLUR_LEVELS
from app.ui.actions import HISTORY_ACTIONS, build_actions
from app.ui.history_model import HistoryModel
from app.ui.tasks import TaskRunner
from app.ui.timeline import TimelineView

ANY = "any"


def documents_path(name: str) -> str:
    """Where an export dialog starts: the user's documents folder (not the working folder)."""
    folder = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    return str(Path(folder or Path.home()) / name)


def _combo(name: str, items: list[tuple[str, object]]) -> QComboBox:
    c = QComboBox()
    c.setObjectName(name)
    for label, data in items:
        c.addItem(label, data)
    return c


class OverturnDialog(QDialog):
    """Reason (required), the new category when a reject becomes a confirm, and whether the
    cluster members decided with it go too."""

    def __init__(self, parent: QWidget, row: HistoryRow, taxonomy, cluster_members: int) -> None:
        super().__init__(parent)
        self.setWindowTitle("Overturn decision")
        self.row = row
        was_confirm = row.verdict is Verdict.CONFIRM or (
            row.verdict is Verdict.OVERTURN and bool(row.category)
        )
        self.to_confirm = not was_confirm
        layout = QVBoxLayout(self)
        what = (
            "confirm → reject: its hashes are retracted from the hash list"
            if was_confirm
            else "reject → confirm: the item's hashes are added to the hash list"
        )
        intro = QLabel(f"Item #{row.item_id}, decided by {row.username}: {what}.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.reason = QPlainTextEdit()
        self.reason.setObjectName("overturn_reason")
        self.reason.setPlaceholderText("Why (required; kept in the record)")
        self.reason.setTabChangesFocus(True)
        self.reason.setFixedHeight(80)
        form.addRow("Reason", self.reason)
        self.category = QComboBox()
        self.category.setObjectName("overturn_category")
        for c in taxonomy.categories:
            self.category.addItem(f"{c.shortcut}  {c.label}", (c.key, c.label))
        self.category.setEnabled(self.to_confirm)
        form.addRow("Category", self.category)
        self.cluster = QCheckBox(f"Also the {cluster_members} cluster member(s) decided with it")
        self.cluster.setObjectName("overturn_cluster")
        self.cluster.setVisible(cluster_members > 0)
        form.addRow("", self.cluster)
        layout.addLayout(form)
        self.error = QLabel("")
        self.error.setStyleSheet("color: #b33a3a;")
        layout.addWidget(self.error)
        self.reason.textChanged.connect(self._reason_changed)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Overturn")
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.reason.setFocus()

    def _reason_changed(self) -> None:
        if self.reason.toPlainText().strip():
            self.error.setText("")

    def _accept(self) -> None:
        if not self.reason.toPlainText().strip():
            self.error.setText("A reason is required.")
            return
        self.accept()

    def values(self) -> tuple[str, str | None, str | None, bool]:
        key, label = self.category.currentData() if self.to_confirm else (None, None)
        return self.reason.toPlainText().strip(), key, label, self.cluster.isChecked()


class HistoryView(QWidget):
    def __init__(self, ctx: AppContext, viewer: UserInfo, tasks: TaskRunner, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("history_view")
        self.ctx = ctx
        self.viewer = viewer
        self.tasks = tasks
        self.history = ctx.history
        self.leads = ctx.leads
        self.model = HistoryModel(self.history, viewer, tasks, self)
        self.last_overturn: OverturnOutcome | None = None
        self.last_export: tuple[Path, int] | None = None
        self._build()
        self._wire()

    # -- layout ----------------------------------------------------------------------------

    def _build(self) -> None:
        outer = QVBoxLayout(self)
        bar = QHBoxLayout()
        self.f_user = _combo("filter_user", [("any moderator", None)])
        self.f_verdict = _combo(
            "filter_verdict", [("any verdict", None)] + [(v.value, v.value) for v in Verdict]
        )
        self.f_category = _combo(
            "filter_category",
            [("any category", None)] + [(c.label, c.key) for c in self.ctx.taxonomy.categories],
        )
        self.f_category.setMaximumWidth(220)
        self.f_source = _combo("filter_source", [("any source", None)])
        self.f_method = _combo(
            "filter_method",
            [("made any way", None)]
            + [(m.value.replace("_", " "), m.value) for m in DecisionMethod],
        )
        self.f_since = QDateEdit()
        self.f_since.setObjectName("filter_since")
        self.f_since.setCalendarPopup(True)
        self.f_since.setDisplayFormat("yyyy-MM-dd")
        self.f_since.setSpecialValueText("from: any")
        self.f_since.setMinimumDate(QDate(2000, 1, 1))
        self.f_since.setDate(self.f_since.minimumDate())
        self.f_until = QDateEdit()
        self.f_until.setObjectName("filter_until")
        self.f_until.setCalendarPopup(True)
        self.f_until.setDisplayFormat("yyyy-MM-dd")
        self.f_until.setSpecialValueText("to: any")
        self.f_until.setMinimumDate(QDate(2000, 1, 1))
        self.f_until.setDate(self.f_until.minimumDate())
        self.f_text = QLineEdit()
        self.f_text.setObjectName("filter_text")
        self.f_text.setPlaceholderText("note, external id, hash prefix, #item  (Ctrl+F)")
        self.f_text.setClearButtonEnabled(True)
        for w in (
            self.f_user,
            self.f_verdict,
            self.f_category,
            self.f_source,
            self.f_method,
            self.f_since,
            self.f_until,
        ):
            bar.addWidget(w)
        bar.addWidget(self.f_text, 1)
        self.apply_button = QPushButton("Apply")
        self.apply_button.setObjectName("filter_apply")
        bar.addWidget(self.apply_button)
        outer.addLayout(bar)

        split = QSplitter(Qt.Orientation.Horizontal, self)
        self.table = QTableView(split)
        self.table.setObjectName("history_table")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setTabKeyNavigation(False)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(True)
        # Widths from sample text (ResizeToContents would measure every loaded row).
        fm = self.table.fontMetrics()
        samples = (
            "2026-12-31 23:59",
            "moderator1",
            "overturn → confirm",
            "overturned",
            "Glorification of",
            "second review",
            "reupload of known video",
            "removal_order",
            "EXT-100000",
            "#100000",
            "Deadline",
        )
        for col, sample in enumerate(samples):
            header.resizeSection(col, fm.horizontalAdvance(sample) + 12)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.timeline = TimelineView(self.ctx, self.viewer, self.tasks, split)
        split.addWidget(self.table)
        split.addWidget(self.timeline)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([1030, 336])
        outer.addWidget(split, 1)
        # The outcome of the last overturn or export stays here while the table reloads.
        self.notice = QLabel("")
        self.notice.setObjectName("history_notice")
        self.notice.setStyleSheet("color: #1d3b26; font-weight: bold;")
        self.notice.setWordWrap(True)
        outer.addWidget(self.notice)
        self.status = QLabel("")
        self.status.setObjectName("history_status")
        outer.addWidget(self.status)
        self._reselect: str | None = None  # the decision to select again after a reload

        handlers = {
            "history_find": self.focus_text,
            "history_table": self.focus_table,
            "history_clear": self.clear_filters,
            "history_refresh": self.model.reload,
            "history_item": self.only_this_item,
            "history_overturn": self.overturn_selected,
            "history_export": self.export_dialog,
            "history_blur": self._cycle_blur,
            "history_greyscale": self._toggle_grey,
        }
        self.actions_by_id = build_actions(self, HISTORY_ACTIONS, handlers, self.ctx.key_overrides)
        # Single-letter keys belong to the table; in a text field they are typing.
        for key in ("history_item", "history_overturn", "history_blur", "history_greyscale"):
            self.actions_by_id[key].setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
            self.table.addAction(self.actions_by_id[key])

    def _wire(self) -> None:
        self.apply_button.clicked.connect(self.apply_filters)
        self.f_text.returnPressed.connect(self.apply_filters)
        for c in (self.f_user, self.f_verdict, self.f_category, self.f_source, self.f_method):
            c.activated.connect(lambda _i: self.apply_filters())
        for d in (self.f_since, self.f_until):
            d.editingFinished.connect(self.apply_filters)
        self.model.loading_changed.connect(lambda _on: self._show_status())
        self.model.page_loaded.connect(self._page_loaded)
        self.model.failed.connect(lambda m: self.status.setText(f"Could not load history: {m}"))
        self.table.selectionModel().currentRowChanged.connect(self._row_changed)
        self.table.activated.connect(
            lambda ix: self.timeline.show_item(
                self._row(ix.row()).item_id if self._row(ix.row()) else None, immediately=True
            )
        )

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self.tasks.read(
            lambda: self.history.options(self.viewer),
            on_done=self._options,
            on_error=lambda e: self.status.setText(f"Could not load filters: {describe(e)}"),
        )
        self.model.set_filter(HistoryFilter())
        self.focus_table()

    def _options(self, options) -> None:
        for name in options.usernames:
            self.f_user.addItem(name, name)
        for src in options.sources:
            self.f_source.addItem(src, src)

    # -- filters ---------------------------------------------------------------------------

    def current_filter(self) -> HistoryFilter:
        def one(c: QComboBox) -> tuple:
            return () if c.currentData() is None else (c.currentData(),)

        def day(d: QDateEdit, plus: int = 0) -> datetime | None:
            if d.date() == d.minimumDate():
                return None
            return datetime.combine(d.date().toPython(), time()) + timedelta(days=plus)

        return HistoryFilter(
            usernames=one(self.f_user),
            verdicts=tuple(Verdict(v) for v in one(self.f_verdict)),
            categories=one(self.f_category),
            sources=one(self.f_source),
            methods=tuple(DecisionMethod(m) for m in one(self.f_method)),
            since=day(self.f_since),
            until=day(self.f_until, 1),  # the whole "to" day
            text=self.f_text.text().strip(),
            item_id=self.model.filter.item_id if self._keep_item else None,
        )

    _keep_item = False

    def apply_filters(self) -> None:
        self.model.set_filter(self.current_filter())
        self.focus_table()

    def set_filter(self, f: HistoryFilter) -> None:
        """Show exactly ``f`` (tests, and links from other views)."""
        self.model.set_filter(f)

    def clear_filters(self) -> None:
        for c in (self.f_user, self.f_verdict, self.f_category, self.f_source, self.f_method):
            c.setCurrentIndex(0)
        for d in (self.f_since, self.f_until):
            d.setDate(d.minimumDate())
        self.f_text.clear()
        self._keep_item = False
        self.apply_filters()

    def only_this_item(self) -> None:
        row = self.selected_row()
        if row is None:
            return
        self._keep_item = True
        self.model.set_filter(HistoryFilter(item_id=row.item_id))
        self.focus_table()

    def focus_text(self) -> None:
        self.f_text.setFocus()
        self.f_text.selectAll()

    def focus_table(self) -> None:
        self.table.setFocus()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.focus_table()
            event.accept()
            return
        if event.key() == Qt.Key.Key_Space and self.table.hasFocus():
            if not event.isAutoRepeat():
                self.timeline.preview.set_revealed(True)
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self.timeline.preview.set_revealed(False)
        super().keyReleaseEvent(event)

    # -- selection and timeline ------------------------------------------------------------

    def _row(self, r: int) -> HistoryRow | None:
        return self.model.row_at(r)

    def selected_row(self) -> HistoryRow | None:
        ix = self.table.currentIndex()
        return self._row(ix.row()) if ix.isValid() else None

    def _row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        row = self._row(current.row()) if current.isValid() else None
        if row is not None:
            self.timeline.show_item(row.item_id)

    def _page_loaded(self, count: int) -> None:
        if count and self._reselect is not None:
            uuid, self._reselect = self._reselect, None
            for r, row in enumerate(self.model.rows):
                if row.uuid == uuid:
                    self.table.setCurrentIndex(self.model.index(r, 0))
                    break
        if count and not self.table.currentIndex().isValid():
            self.table.setCurrentIndex(self.model.index(0, 0))
        self._show_status()

    def _show_status(self) -> None:
        n = len(self.model.rows)
        more = (
            "loading…"
            if self.model.loading
            else ("scroll for more" if self.model.has_more else "that is all")
        )
        self.status.setText(
            f"{n} decision(s) loaded, {more} · filter: {self.model.filter.describe()} · "
            "Ctrl+F filter · O overturn · I this item · Ctrl+E export · hold Space to reveal"
        )

    def _cycle_blur(self) -> None:
        p = self.timeline.preview
        p.set_blur_level((p.blur_level + 1) % len(BLUR_LEVELS))

    def _toggle_grey(self) -> None:
        p = self.timeline.preview
        p.set_greyscale(not p.greyscale)

    # -- overturn --------------------------------------------------------------------------

    def overturn_selected(self) -> OverturnDialog | None:
        row = self.selected_row()
        if row is None:
            return None
        if not row.can_overturn:
            why = (
                "it was already taken back"
                if row.superseded_by
                else f"a {row.verdict.value} ({row.method.value}) is not an outcome"
            )
            self.status.setText(f"Cannot overturn this decision: {why}.")
            return None
        size = self.leads.cluster_size_of(self.viewer, row.uuid)  # one indexed count
        dialog = OverturnDialog(self, row, self.ctx.taxonomy, size)
        dialog.setObjectName("overturn_dialog")
        dialog.accepted.connect(lambda: self._overturn(row, *dialog.values()))
        dialog.open()
        self._dialog = dialog
        return dialog

    def _overturn(
        self, row: HistoryRow, reason: str, key: str | None, label: str | None, cluster: bool
    ) -> None:
        leads, viewer = self.leads, self.viewer
        self.notice.setText(f"Overturning the decision on item #{row.item_id}…")
        self.tasks.write(
            lambda: leads.overturn(viewer, row.uuid, reason, key, label, cluster),
            on_done=lambda out: self._overturned(out, row),
            on_error=lambda e: self.notice.setText(f"Overturn failed: {describe(e)}"),
        )

    def _overturned(self, out: OverturnOutcome, row: HistoryRow | None = None) -> None:
        self.last_overturn = out
        change = (
            f"{out.hashes_retracted} hash(es) retracted"
            if out.hashes_retracted
            else f"{out.hashes_added} hash(es) added"
        )
        members = f", {out.cluster_members} cluster member(s) too" if out.cluster_members else ""
        # The overturned row stays selected after the reload (it is now marked overturned).
        self._reselect = row.uuid if row is not None else None
        self.notice.setText(
            f"Overturned on item #{out.item_id}: {out.was.value} → {out.now.value}; "
            f"{change}{members}."
        )
        self.model.reload()
        self.timeline.refresh()

    # -- export ----------------------------------------------------------------------------

    def export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export filtered history", documents_path("hashdesk-history.csv"), "CSV (*.csv)"
        )
        if path:
            self.export_csv(Path(path))

    def export_csv(self, path: Path) -> None:
        """Every row of the current filter (not only the loaded ones), in the background."""
        history, viewer, f = self.history, self.viewer, self.model.filter

        def work() -> tuple[Path, int]:
            with open(path, "w", newline="", encoding="utf-8") as out:
                return path, history_csv(history.iter_rows(viewer, f), out)

        self.notice.setText(f"Exporting to {path}…")
        self.tasks.read(
            work,
            on_done=self._exported,
            on_error=lambda e: self.notice.setText(f"Export failed: {describe(e)}"),
        )

    def _exported(self, result: tuple[Path, int]) -> None:
        self.last_export = result
        self.notice.setText(f"Exported {result[1]} decision(s) to {result[0]}")
