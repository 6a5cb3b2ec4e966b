"""The history table's model: a lazy adapter over HistoryService pages (the paging itself is
``app.ui.paged_model.KeysetPagedModel``)."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from app.core.model.domain import UserInfo, Verdict
from app.core.model.history_types import HistoryCursor, HistoryFilter, HistoryPage, HistoryRow
from app.storage.history_queries import PAGE_SIZE, HistoryService
from app.ui.paged_model import KeysetPagedModel
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


class HistoryModel(KeysetPagedModel):
    columns = COLUMNS

    def __init__(
        self, history: HistoryService, viewer: UserInfo, tasks: TaskRunner, parent=None
    ) -> None:
        super().__init__(tasks, HistoryFilter(), parent)
        self.history = history
        self.viewer = viewer
        self.page_size = PAGE_SIZE
        self.rows: list[HistoryRow] = []

    def load_page(self, f: HistoryFilter, cursor: HistoryCursor | None) -> HistoryPage:
        return self.history.page(self.viewer, f, cursor, self.page_size)

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
