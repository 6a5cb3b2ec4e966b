"""A table model over keyset pages, read lazily: the one home of the paging every long list in
the app uses (the lead's history, the hash-list entries).

Qt asks ``canFetchMore``/``fetchMore`` as the view scrolls near the end; each page is read on the
reader pool (TaskRunner) and appended when it arrives, so scrolling never waits for SQL on the
GUI thread. A filter change starts a new generation: pages of the old one that arrive late are
dropped. A subclass says how to read one page (``load_page``: run on a worker, returns an object
with ``rows`` and ``next_cursor``), its ``columns`` (key, header) and its ``data``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal

from app.core.errors import describe
from app.ui.tasks import TaskRunner

_Index = QModelIndex | QPersistentModelIndex


class KeysetPagedModel(QAbstractTableModel):
    loading_changed = Signal(bool)
    page_loaded = Signal(int)  # rows now loaded
    failed = Signal(str)

    #: (key, header) of each column.
    columns: ClassVar[tuple[tuple[str, str], ...]] = ()

    def __init__(self, tasks: TaskRunner, first_filter: Any, parent=None) -> None:
        super().__init__(parent)
        self.tasks = tasks
        self.filter = first_filter
        self.rows: list[Any] = []
        self._cursor: Any = None
        self._more = False
        self._loading = False
        self._generation = 0

    def load_page(self, f: Any, cursor: Any) -> Any:
        """Read one page after ``cursor`` under ``f`` (on a worker thread)."""
        raise NotImplementedError

    # -- loading ---------------------------------------------------------------------------

    def set_filter(self, f: Any) -> None:
        """Start again from the first page under ``f``."""
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
        gen, f, cursor, load = self._generation, self.filter, self._cursor, self.load_page
        self.tasks.read(
            lambda: load(f, cursor),
            on_done=lambda page: self._arrived(gen, page),
            on_error=lambda exc: self._failed(gen, exc),
        )

    def _arrived(self, gen: int, page: Any) -> None:
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
        self.failed.emit(describe(exc))

    # -- the table -------------------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.columns[section][1]
        return None

    def row_at(self, r: int) -> Any:
        return self.rows[r] if 0 <= r < len(self.rows) else None
