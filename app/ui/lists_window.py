"""The lead's hash-lists view: the lists with their counts, policy and last import on top; the
entries of the selected list below, searchable by hash prefix and label, paged lazily;
disable/enable with a reason; an entry the flood guard holds let resolve again, with a reason;
import and export with a progress bar. Every read and write runs
on the task runner (reads in parallel, writes in order), never on the GUI thread."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.compose import AppContext
from app.core.errors import describe
from app.core.exchange import FORMATS
from app.core.matching.hash_lists import EntryFilter, ImportSummary, ListInfo, ListPolicy
from app.core.model.domain import UserInfo
from app.core.model.roles import Permission, allowed
from app.storage.list_import import ListSettings
from app.ui.actions import LISTS_ACTIONS, build_actions
from app.ui.lists_model import EntriesModel, ListsModel
from app.ui.tasks import TaskRunner

AUTO = "detect"


class _Progress(QObject):
    """Created on the GUI thread: a worker's progress calls arrive here queued."""

    step = Signal(int, int)


class ImportDialog(QDialog):
    """The file, the list to import into, its format and (for a new list) its policy."""

    def __init__(self, parent: QWidget, path: str, default_list: str) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import a hash list")
        form = QFormLayout(self)
        form.addRow("File", QLabel(path))
        self.list_name = QLineEdit(default_list)
        self.list_name.setObjectName("import_list")
        self.fmt = QComboBox()
        self.fmt.addItems([AUTO, *FORMATS])
        self.policy = QComboBox()
        self.policy.addItems(["keep / queue", *(p.value for p in ListPolicy), "allow list"])
        form.addRow("Into list", self.list_name)
        form.addRow("Format", self.fmt)
        form.addRow("Policy", self.policy)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def settings(self) -> ListSettings:
        choice = self.policy.currentText()
        if choice == "allow list":
            return ListSettings(allow=True)
        if choice in {p.value for p in ListPolicy}:
            return ListSettings(policy=ListPolicy(choice))
        return ListSettings()


class ListsView(QWidget):
    def __init__(
        self, ctx: AppContext, user: UserInfo, tasks: TaskRunner, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.user = user
        self.tasks = tasks
        self.service = ctx.hash_lists
        self.lists_model = ListsModel(self)
        self.lists_table = QTableView()
        self.lists_table.setObjectName("lists_table")
        self.lists_table.setModel(self.lists_model)
        self.lists_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.lists_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.lists_table.verticalHeader().hide()
        self.lists_table.setWordWrap(False)
        self.lists_table.horizontalHeader().setStretchLastSection(True)
        self.lists_table.selectionModel().currentRowChanged.connect(lambda *_: self.apply())

        self.prefix = QLineEdit()
        self.prefix.setObjectName("lists_prefix")
        self.prefix.setPlaceholderText("hash prefix")
        self.label = QLineEdit()
        self.label.setObjectName("lists_label")
        self.label.setPlaceholderText("label")
        for edit in (self.prefix, self.label):
            edit.returnPressed.connect(self.apply)
        self.entries = EntriesModel(self.service, user, tasks, self)
        self.entries_table = QTableView()
        self.entries_table.setObjectName("entries_table")
        self.entries_table.setModel(self.entries)
        self.entries_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.entries_table.verticalHeader().hide()
        self.entries_table.verticalHeader().setDefaultSectionSize(24)
        self.entries_table.setWordWrap(False)
        header = self.entries_table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        for col, width in ((0, 70), (1, 110), (2, 70), (3, 480), (4, 90), (5, 90), (6, 110)):
            self.entries_table.setColumnWidth(col, width)
        self.entries_table.setColumnWidth(7, 260)
        self.progress = QProgressBar()
        self.progress.setObjectName("lists_progress")
        self.progress.setVisible(False)
        self.status = QLabel("")
        self._result = ""  # what the last change (import, disable, enable) did
        self.status.setObjectName("lists_status")
        self.status.setWordWrap(True)

        handlers = {
            "lists_find": self.focus_search,
            "lists_refresh": self.refresh,
            "lists_disable": lambda: self.set_enabled(False),
            "lists_enable": lambda: self.set_enabled(True),
            "lists_clear_guard": self.clear_guard,
            "lists_import": self.import_dialog,
            "lists_export": self.export_dialog,
        }
        self.actions_by_id = build_actions(self, LISTS_ACTIONS, handlers, ctx.key_overrides)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Entries of the selected list:"))
        bar.addWidget(self.prefix)
        bar.addWidget(self.label)
        for key in (
            "lists_disable",
            "lists_enable",
            "lists_clear_guard",
            "lists_import",
            "lists_export",
        ):
            a = self.actions_by_id[key]
            short = "Clear flood guard" if key == "lists_clear_guard" else None
            b = QPushButton(short or a.text().split(" the ")[0].split(" a ")[0])
            b.setObjectName(f"button_{key}")
            b.setToolTip(a.toolTip())
            b.clicked.connect(a.trigger)
            # The button follows its action: a disabled action's button looks disabled too.
            a.changed.connect(
                lambda a=a, b=b: (b.setEnabled(a.isEnabled()), b.setToolTip(a.toolTip()))
            )
            bar.addWidget(b)
        may_import = allowed(user.role, Permission.IMPORT_HASHES)
        importing = self.actions_by_id["lists_import"]
        if not may_import:
            importing.setToolTip(
                f"Importing a list needs an admin: you are signed in as a {user.role.value}"
            )
        importing.setEnabled(may_import)
        may_clear = allowed(user.role, Permission.RETRACT)
        self.actions_by_id["lists_clear_guard"].setEnabled(may_clear)
        lower = QWidget()
        lv = QVBoxLayout(lower)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addLayout(bar)
        lv.addWidget(self.entries_table)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.lists_table)
        split.addWidget(lower)
        split.setSizes([220, 560])
        layout = QVBoxLayout(self)
        layout.addWidget(split)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        self.entries.page_loaded.connect(self._loaded)
        self.entries.failed.connect(lambda msg: self.status.setText(f"Could not load: {msg}"))

    # -- reading ---------------------------------------------------------------------------

    def refresh(self) -> None:
        service, user = self.service, self.user
        self.tasks.read(
            lambda: service.lists(actor=user),
            on_done=self._lists_arrived,
            on_error=lambda exc: self.status.setText(f"Could not read the lists: {describe(exc)}"),
        )

    def _lists_arrived(self, rows: list[ListInfo]) -> None:
        current = self.selected_list()
        self.lists_model.set_rows(rows)
        self.lists_table.resizeColumnsToContents()
        names = [r.name for r in rows]
        row = names.index(current) if current in names else 0
        if rows:
            self.lists_table.selectRow(row)
        self.apply()

    def selected_list(self) -> str | None:
        idx = self.lists_table.currentIndex()
        if not idx.isValid() or idx.row() >= len(self.lists_model.rows):
            return None
        return self.lists_model.rows[idx.row()].name

    def apply(self) -> None:
        self.entries.set_filter(
            EntryFilter(
                list_name=self.selected_list(),
                hash_prefix=self.prefix.text().strip(),
                label=self.label.text().strip(),
            )
        )

    def focus_search(self) -> None:
        self.prefix.setFocus()
        self.prefix.selectAll()

    def _loaded(self, n: int) -> None:
        more = "scroll for more" if self.entries.canFetchMore() else "all shown"
        flood = sum(r.flood_guarded for r in self.lists_model.rows)
        warn = (
            f" · {flood} entr{'y' if flood == 1 else 'ies'} held by the flood guard"
            if flood
            else ""
        )
        loaded = f"{n} entr{'y' if n == 1 else 'ies'} loaded, {more}{warn}"
        # What the last change did stays on screen above the count (the reload it triggers
        # must not wipe an import's summary before anyone has read it).
        self.status.setText(f"{self._result}\n{loaded}" if self._result else loaded)

    # -- changing --------------------------------------------------------------------------

    def selected_entries(self) -> list[int]:
        rows = {i.row() for i in self.entries_table.selectionModel().selectedRows()}
        return [r.id for r in (self.entries.row_at(i) for i in sorted(rows)) if r is not None]

    def set_enabled(self, enabled: bool) -> None:
        ids = self.selected_entries()
        if not ids:
            self.status.setText("Select entries first.")
            return
        verb = "Enable" if enabled else "Disable"
        reason, ok = QInputDialog.getText(self, f"{verb} {len(ids)} entries", "Reason (required):")
        if not ok:
            return
        self.run_set_enabled(ids, enabled, reason)

    def run_set_enabled(self, ids: list[int], enabled: bool, reason: str) -> None:
        service, user = self.service, self.user
        self.tasks.write(
            lambda: service.set_enabled(ids, enabled, reason, actor=user),
            on_done=lambda n: self._changed(f"{'Enabled' if enabled else 'Disabled'} {n}."),
            on_error=lambda exc: self.status.setText(describe(exc)),
        )

    def clear_guard(self) -> None:
        """Let the one selected entry the flood guard holds resolve again (asks the reason)."""
        rows = {i.row() for i in self.entries_table.selectionModel().selectedRows()}
        selected = [r for r in (self.entries.row_at(i) for i in sorted(rows)) if r is not None]
        if len(selected) != 1:
            self.status.setText("Select the one entry whose flood guard to clear.")
            return
        entry = selected[0]
        if not entry.flood_guarded:
            self.status.setText(f"Entry #{entry.id} is not held by the flood guard.")
            return
        reason, ok = QInputDialog.getText(
            self, f"Clear the flood guard of entry #{entry.id}", "Reason (required):"
        )
        if ok:
            self.run_clear_guard(entry.id, reason)

    def run_clear_guard(self, entry_id: int, reason: str) -> None:
        service, user = self.service, self.user
        self.tasks.write(
            lambda: service.clear_flood_guard(entry_id, reason, actor=user),
            on_done=lambda name: self._changed(
                f"Cleared the flood guard of entry #{entry_id} ({name}): it resolves again."
            ),
            on_error=lambda exc: self.status.setText(str(exc)),
        )

    def _changed(self, message: str) -> None:
        self._result = message
        self.status.setText(message)
        self.refresh()

    def import_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a hash list")
        if not path:
            return
        current = self.selected_list()
        dlg = ImportDialog(self, path, current if current not in (None, "local") else "")
        if dlg.exec() != QDialog.DialogCode.Accepted:
            return
        fmt = dlg.fmt.currentText()
        self.run_import(
            Path(path), dlg.list_name.text(), None if fmt == AUTO else fmt, dlg.settings()
        )

    def run_import(
        self, path: Path, list_name: str, fmt: str | None, settings: ListSettings
    ) -> None:
        relay = _Progress(self)
        relay.step.connect(self._step)
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.status.setText(f"Importing {path.name} into {list_name}…")
        service, user = self.service, self.user
        rescanner = self.ctx.rescanner(user)

        def work() -> tuple[ImportSummary, str]:
            before = rescanner.high_water()
            summary = service.import_file(
                path,
                list_name,
                actor=user,
                fmt=fmt,
                settings=settings,
                progress=relay.step.emit,
            )
            # the waiting and recent items matched again against the new hashes only
            return summary, rescanner.after_import(list_name, before).line()

        self.tasks.write(work, on_done=self._imported, on_error=self._failed)

    def _step(self, done: int, total: int) -> None:
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)

    def _imported(self, result: tuple[ImportSummary, str]) -> None:
        summary, rescan = result
        self.progress.setVisible(False)
        lines = summary.lines_text()
        self._changed("\n".join([*lines[:6], *(["…"] if len(lines) > 6 else []), rescan]))

    def _failed(self, exc: Exception) -> None:
        self.progress.setVisible(False)
        self.status.setText(describe(exc))

    def export_dialog(self) -> None:
        name = self.selected_list() or "local"
        fmt, ok = QInputDialog.getItem(self, f"Export {name}", "Format", list(FORMATS), 0, False)
        if not ok:
            return
        path, _ = QFileDialog.getSaveFileName(self, f"Export {name} as {fmt}")
        if path:
            self.run_export(Path(path), fmt, name)

    def run_export(self, path: Path, fmt: str, list_name: str) -> None:
        service, user = self.service, self.user
        self.status.setText(f"Exporting {list_name}…")
        self.tasks.write(
            lambda: service.export_file(path, fmt, actor=user, list_name=list_name),
            on_done=lambda s: self.status.setText(
                f"Exported {s.entries} hash(es) of {list_name} to {s.path} ({s.fmt})."
            ),
            on_error=self._failed,
        )
