"""The history table's model: a lazy adapter over HistoryService pages.

Qt asks ``canFetchMore``/``fetchMore`` as the view scrolls near the end; each page is read on the
reader pool (TaskRunner) and appended when it arrives, so scrolling never waits for SQL on the
GUI thread. A filter change starts a new generation: pages of the old one that arrive late are
dropped.
"""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor

from app.core.domain import UserInfo, Verdict
from app.core.history_types import HistoryCursor, HistoryFilter, HistoryPage, HistoryRow
from app.storage.history_queries import PAGE_SIZE, HistoryService
from app.ui.tasks import TaskRunner

COLUMNS = (
    ("decided_at", "Decided (UTC)"),
    ("username", "Moderator"),
    ("verdict", "Verdict"),
    ("state", "Now"),
    ("category", "Category"),
    ("method", "How"),
    ("note", "Note"),
    ("source", "Source"),
    ("external_id", "External id"),
    ("item_id", "Item"),
    ("deadline", "Deadline"),
)
_VERDICT_COLOURS = {
    Verdict.CONFIRM: "#b33a3a",
    Verdict.REJECT: "#2e7d4f",
    Verdict.ESCALATE: "#b7791f",
    Verdict.OVERTURN: "#6b46c1",
    Verdict.UNDO: "#777777",
    Verdict.SKIP: "#777777",
}
_Index = QModelIndex | QPersistentModelIndex


def cell_text(row: HistoryRow, key: str) -> str:
    if key == "decided_at":
        return row.decided_at.strftime("%Y-%m-%d %H:%M")
    if key == "verdict":
        if row.verdict is Verdict.OVERTURN:
            return "overturn → confirm" if row.category else "overturn → reject"
        return row.verdict.value
    if key == "category":
        return row.category_label or row.category or ""
    if key == "method":
        return row.method.value.replace("_", " ")
    if key == "item_id":
        return f"#{row.item_id}"
    if key == "deadline":
        return row.deadline_state
    if key == "state":
        if row.superseded_verdict is Verdict.OVERTURN:
            return "overturned"
        if row.superseded_verdict is Verdict.UNDO:
            return "undone"
        return ""
    if key == "note":
        return (row.note or "").replace("\n", " ")
    value = getattr(row, key)
    return "" if value is None else str(value)


class HistoryModel(QAbstractTableModel):
    loading_changed = Signal(bool)
    page_loaded = Signal(int)  # rows now loaded
    failed = Signal(str)

    def __init__(
        self, history: HistoryService, viewer: UserInfo, tasks: TaskRunner, parent=None
    ) -> None:
        super().__init__(parent)
        self.history = history
        self.viewer = viewer
        self.tasks = tasks
        self.page_size = PAGE_SIZE
        self.filter = HistoryFilter()
        self.rows: list[HistoryRow] = []
        self._cursor: HistoryCursor | None = None
        self._more = False
        self._loading = False
        self._generation = 0

    # -- loading ---------------------------------------------------------------------------

    def set_filter(self, f: HistoryFilter) -> None:
        """Start again from the newest decision under ``f``."""
        self._generation += 1
        self.beginResetModel()
        self.filter = f
        self.rows = []
        self._cursor = None
        self._more = True
        self._loading = False
        self.endResetModel()
        self._fetch()

    def reload(self) -> None:
        self.set_filter(self.filter)

    @property
    def loading(self) -> bool:
        return self._loading

    @property
    def has_more(self) -> bool:
        return self._more

    def canFetchMore(self, parent: _Index = QModelIndex()) -> bool:  # noqa: B008
        return not parent.isValid() and self._more and not self._loading

    def fetchMore(self, parent: _Index = QModelIndex()) -> None:  # noqa: B008
        if self.canFetchMore(parent):
            self._fetch()

    def _fetch(self) -> None:
        self._loading = True
        self.loading_changed.emit(True)
        gen, f, cursor, limit = self._generation, self.filter, self._cursor, self.page_size
        history, viewer = self.history, self.viewer
        self.tasks.read(
            lambda: history.page(viewer, f, cursor, limit),
            on_done=lambda page: self._arrived(gen, page),
            on_error=lambda exc: self._failed(gen, exc),
        )

    def _arrived(self, gen: int, page: HistoryPage) -> None:
        if gen != self._generation:
            return  # a page of an earlier filter
        self._loading = False
        if page.rows:
            first = len(self.rows)
            self.beginInsertRows(QModelIndex(), first, first + len(page.rows) - 1)
            self.rows.extend(page.rows)
            self.endInsertRows()
        self._cursor = page.next_cursor
        self._more = page.next_cursor is not None
        self.loading_changed.emit(False)
        self.page_loaded.emit(len(self.rows))

    def _failed(self, gen: int, exc: Exception) -> None:
        if gen != self._generation:
            return
        self._loading = False
        self._more = False
        self.loading_changed.emit(False)
        self.failed.emit(str(exc))

    # -- the table -------------------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section][1]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self.rows):
            return None
        row = self.rows[index.row()]
        key = COLUMNS[index.column()][0]
        if role == Qt.ItemDataRole.DisplayRole:
            return cell_text(row, key)
        if role == Qt.ItemDataRole.ToolTipRole and key in ("note", "category"):
            return cell_text(row, key) or None
        if role == Qt.ItemDataRole.ForegroundRole:
            if key == "verdict":
                return QBrush(QColor(_VERDICT_COLOURS.get(row.verdict, "#222222")))
            if key == "deadline" and row.deadline_state == "missed":
                return QBrush(QColor("#b33a3a"))
            if row.superseded_by is not None:
                return QBrush(QColor("#8a8a8a"))
        if role == Qt.ItemDataRole.FontRole and row.superseded_by is not None and key == "state":
            from PySide6.QtGui import QFont

            font = QFont()
            font.setItalic(True)
            return font
        return None

    def row_at(self, r: int) -> HistoryRow | None:
        return self.rows[r] if 0 <= r < len(self.rows) else None
