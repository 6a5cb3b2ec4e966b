from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from app.compose import AppContext
from app.core.settings.config import Settings
from app.ui.review_window import ReviewWindow
from tests.helpers import ingest, make_user, write_samples


@pytest.fixture
def make_window(qtbot, store, taxonomy, tmp_path):
    """Factory: a shown, active review window over ``db`` with ``n`` sample items ingested."""
    made: list[ReviewWindow] = []

    def make(db, n: int = 3, paths=None, dwell: float = 0.0, clock=None, **kw) -> ReviewWindow:
        """``clock``: a controllable clock for durations and idle time; ``kw``: Settings."""
        if paths is None:
            paths = write_samples(tmp_path / "incoming", range(n))
        ingest(db, store, paths)
        user = make_user(db)
        settings = Settings(database_url=str(db.engine.url), media_root=store.root, **kw)
        ctx = AppContext(settings=settings, db=db, store=store, taxonomy=taxonomy)
        w = ReviewWindow(ctx, user, clock=clock)
        w.controller.dwell_seconds = dwell
        qtbot.addWidget(w)
        with qtbot.waitActive(w):
            w.show()
            w.activateWindow()
        w.start()
        # The first item on screen (not merely the first item_changed: the screen may first
        # say "empty" while journalled work from an earlier run is replayed).
        qtbot.waitUntil(lambda: w.controller.current is not None, timeout=20000)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


def wait_saved(qtbot, w, count: int = 1) -> None:
    """Wait until ``count`` more decisions have been written by the background writer."""
    qtbot.waitUntil(lambda: w.controller.pending == 0, timeout=10000)


def press(qtbot, w, key) -> None:
    qtbot.keyClick(w.preview, key)


KEY = Qt.Key


class FakeClock:
    """A clock the test moves by hand (durations, idle time): no sleeps, no timed asserts."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
