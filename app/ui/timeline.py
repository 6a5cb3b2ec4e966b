"""An item's whole story beside the history table: the blurred preview, what the item is, and
every sighting, decision, overturn, second review and hash-list change in time order.

Loaded on the reader pool (the timeline query, the preview decode and the small blur), a short
moment after the selection settles, so stepping through rows with the arrow keys stays instant.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QStringListModel, Qt, QTimer, Signal
from PySide6.QtWidgets import QLabel, QListView, QSizePolicy, QVBoxLayout, QWidget

from app.compose import AppContext
from app.core.errors import describe
from app.core.model.domain import UserInfo
from app.core.model.history_types import Timeline
from app.core.review.preview import prepare_preview
from app.ui.preview import PreviewWidget, ScreenPreview
from app.ui.tasks import TaskRunner

_MARK = {
    "sighting": "⚑",
    "decision": "●",
    "overturn": "↺",
    "undo": "↶",
    "second_review": "◐",
    "match": "≡",
    "hash_added": "+",
    "hash_retracted": "−",
}


@dataclass
class LoadedTimeline:
    timeline: Timeline
    preview: ScreenPreview | None
    message: str


def timeline_lines(t: Timeline) -> list[str]:
    lines = []
    for e in t.events:
        mark = _MARK.get(e.kind, "·")
        line = f"{e.at:%Y-%m-%d %H:%M:%S}  {mark} {e.title}"
        if e.detail:
            line += f"\n      {e.detail}"
        lines.append(line)
    return lines


class TimelineView(QWidget):
    loaded = Signal(object)  # LoadedTimeline

    def __init__(self, ctx: AppContext, viewer: UserInfo, tasks: TaskRunner, parent=None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.viewer = viewer
        self.tasks = tasks
        self.history = ctx.history
        self.item_id: int | None = None
        self.current: LoadedTimeline | None = None
        self._wanted: int | None = None
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(120)
        self._debounce.timeout.connect(self._load_now)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.title = QLabel("Select a decision to see its item's timeline.")
        self.title.setObjectName("timeline_title")
        self.title.setStyleSheet("font-weight: bold; font-size: 13px;")
        layout.addWidget(self.title)
        self.preview = PreviewWidget(self)
        self.preview.setMinimumHeight(200)
        self.preview.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.preview.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        layout.addWidget(self.preview, 2)
        self.facts = QLabel("")
        self.facts.setObjectName("timeline_facts")
        self.facts.setTextFormat(Qt.TextFormat.PlainText)  # flagged text is never markup
        self.facts.setWordWrap(True)
        self.facts.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.facts)
        self.events_model = QStringListModel(self)
        self.events = QListView(self)
        self.events.setObjectName("timeline_events")
        self.events.setModel(self.events_model)
        self.events.setWordWrap(True)
        self.events.setUniformItemSizes(False)
        self.events.setAlternatingRowColors(True)
        self.events.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        layout.addWidget(self.events, 3)

    def show_item(self, item_id: int | None, immediately: bool = False) -> None:
        self._wanted = item_id
        if immediately:
            self._load_now()
        else:
            self._debounce.start()

    def _load_now(self) -> None:
        item_id = self._wanted
        if item_id is None or (item_id == self.item_id and self.current is not None):
            return
        history, viewer, store = self.history, self.viewer, self.ctx.store

        def work() -> LoadedTimeline:
            t = history.timeline(viewer, item_id)
            if not t.preview_key:
                return LoadedTimeline(t, None, f"unreadable: {t.error or 'no preview'}")
            try:
                prepared = prepare_preview(store.get_bytes(t.preview_key), t.preview_frames)
            except Exception as exc:  # the timeline still shows without a picture
                return LoadedTimeline(t, None, f"preview missing or damaged: {describe(exc)}")
            return LoadedTimeline(t, ScreenPreview.from_prepared(prepared), "")

        self.tasks.read(work, on_done=self._arrived, on_error=self._failed)

    def _arrived(self, loaded: LoadedTimeline) -> None:
        t = loaded.timeline
        if t.item_id != self._wanted:
            return  # the selection moved on
        self.item_id = t.item_id
        self.current = loaded
        self.preview.show_preview(loaded.preview, loaded.message)
        self.title.setText(f"Item #{t.item_id} — {t.kind}, {t.status}")
        deadline = f"{t.deadline:%Y-%m-%d %H:%M} UTC" if t.deadline else "none"
        signals = ", ".join(
            f"{a} {v[:12]}…" + (f" (×{n})" if n > 1 else "") for a, v, n in t.signals
        )
        self.facts.setText(
            f"SHA-256 {t.sha256[:24]}…   MD5 {t.md5}\n"
            f"Deadline: {deadline}.   Hash list: {t.active_hashes} active, "
            f"{t.retracted_hashes} retracted.\nSignals: {signals or 'none'}"
            + (f"\nUnreadable: {t.error}" if t.error else "")
        )
        self.events_model.setStringList(timeline_lines(t))
        self.loaded.emit(loaded)

    def _failed(self, exc: Exception) -> None:
        self.title.setText(f"Could not load the timeline: {describe(exc)}")

    def refresh(self) -> None:
        """Reload the item shown (after an overturn changed it)."""
        self.current = None
        self.show_item(self.item_id, immediately=True)
