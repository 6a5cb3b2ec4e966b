"""The lists view's two models: the lists with their counts (a handful of rows, read at once)
and the entries of the filtered lists, a lazy adapter over ``HashListService.entries_page``
(keyset pages read on the reader pool as the view scrolls, like ``history_model``; a filter
change starts a new generation and late pages of the old one are dropped)."""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from app.core.matching.hash_lists import EntryFilter, EntryPage, EntryRow, ListInfo
from app.core.model.domain import UserInfo
from app.storage.hash_lists import HashListService
from app.ui.paged_model import KeysetPagedModel
from app.ui.tasks import TaskRunner

_Index = QModelIndex | QPersistentModelIndex

LIST_COLUMNS = (
    ("name", "List"),
    ("kind", "Policy"),
    ("pdq", "PDQ ≤"),
    ("active", "Active"),
    ("disabled", "Disabled"),
    ("retracted", "Retracted"),
    ("flood", "Flood-guarded"),
    ("last_import", "Last import"),
    ("source", "Source"),
)
ENTRY_COLUMNS = (
    ("id", "Entry"),
    ("list_name", "List"),
    ("algorithm", "Type"),
    ("value", "Hash"),
    ("labels", "Labels"),
    ("external_id", "External id"),
    ("state", "State"),
    ("reason", "Why"),
    ("feedback", "Agree / disagree"),
    ("added_at", "Added (UTC)"),
)


def list_cell(li: ListInfo, key: str) -> str:
    if key == "kind":
        return "allow" if li.allow else li.policy.value
    if key == "pdq":
        return "settings" if li.pdq_threshold is None else str(li.pdq_threshold)
    if key == "flood":
        return str(li.flood_guarded) if li.flood_guarded else ""
    if key == "last_import":
        return f"{li.last_import_at:%Y-%m-%d %H:%M}" if li.last_import_at else ""
    value = getattr(li, key)
    return "" if value is None else str(value)


def entry_cell(r: EntryRow, key: str) -> str:
    if key == "id":
        return f"#{r.id}"
    if key == "value":
        return r.value if r.variant == "" else f"{r.value} ({r.variant})"
    if key == "state":
        return r.state + (" · flood guard" if r.flood_guarded else "")
    if key == "feedback":
        return f"{r.agree} / {r.disagree}" if r.agree or r.disagree else ""
    if key == "added_at":
        return r.added_at.strftime("%Y-%m-%d %H:%M")
    value = getattr(r, key)
    return "" if value is None else str(value)


class ListsModel(QAbstractTableModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows: list[ListInfo] = []

    def set_rows(self, rows: list[ListInfo]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(LIST_COLUMNS)

    def headerData(self, section: int, orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return LIST_COLUMNS[section][1]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self.rows):
            return None
        li = self.rows[index.row()]
        key = LIST_COLUMNS[index.column()][0]
        if role == Qt.ItemDataRole.DisplayRole:
            return list_cell(li, key)
        if role == Qt.ItemDataRole.ToolTipRole and key == "last_import":
            return li.last_import_note
        if role == Qt.ItemDataRole.ForegroundRole:
            if key == "kind" and li.allow:
                return QBrush(QColor("#2e7d4f"))
            if key == "flood" and li.flood_guarded:
                return QBrush(QColor("#b33a3a"))
        return None


class EntriesModel(KeysetPagedModel):
    columns = ENTRY_COLUMNS

    def __init__(
        self, service: HashListService, viewer: UserInfo, tasks: TaskRunner, parent=None
    ) -> None:
        super().__init__(tasks, EntryFilter(), parent)
        self.service = service
        self.viewer = viewer
        self.rows: list[EntryRow] = []

    def load_page(self, f: EntryFilter, cursor: int | None) -> EntryPage:
        return self.service.entries_page(f, actor=self.viewer, before=cursor)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self.rows):
            return None
        r = self.rows[index.row()]
        key = ENTRY_COLUMNS[index.column()][0]
        if role == Qt.ItemDataRole.DisplayRole:
            return entry_cell(r, key)
        if role == Qt.ItemDataRole.ToolTipRole and key in ("reason", "labels", "value"):
            return entry_cell(r, key) or None
        if role == Qt.ItemDataRole.ForegroundRole and r.state != "active":
            return QBrush(QColor("#8a8a8a"))
        if role == Qt.ItemDataRole.ForegroundRole and key == "state" and r.flood_guarded:
            return QBrush(QColor("#b33a3a"))
        return None
