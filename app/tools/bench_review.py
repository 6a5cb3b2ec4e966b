"""Review-screen timings for `hashdesk bench`: key press to the next blurred item painted, with
a large queue, and cold start to the first item. Runs offscreen."""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _fill_queue(db, store, n_items: int) -> None:
    """``n_items`` queued items sharing a few real previews (bulk insert, no hashing)."""
    from sqlalchemy import insert

    from app.core.hashing.imaging import make_preview_jpeg
    from app.core.model.domain import utcnow
    from app.storage.models import Item
    from app.tools.demo import sample_picture

    previews = [store.put_bytes(make_preview_jpeg(sample_picture(s))) for s in range(8)]
    now = utcnow()
    rows = [
        {
            "sha256": f"{i:064x}",
            "md5": f"{i:032x}",
            "kind": "image",
            "size": 1000,
            "width": 960,
            "height": 640,
            "preview_key": previews[i % len(previews)],
            "preview_frames": 1,
            "status": "queued",
            "priority": 0,
            "created_at": now,
            "updated_at": now,
        }
        for i in range(1, n_items + 1)
    ]
    with db.session() as s:
        for start in range(0, len(rows), 10_000):
            s.execute(insert(Item), rows[start : start + 10_000])


def _quiet_offscreen_warning() -> None:
    """The offscreen platform warns "This plugin does not support propagateSizeHints()" for
    every window shown: true, and nothing the benchmark's reader can act on. That one line is
    dropped; every other Qt message still reaches stderr."""
    from PySide6.QtCore import qInstallMessageHandler

    previous = None

    def handler(mode, context, message: str) -> None:
        if "propagateSizeHints" in message:
            return
        if previous is not None:
            previous(mode, context, message)
        else:
            sys.stderr.write(message + "\n")

    previous = qInstallMessageHandler(handler)


def bench_review(n_items: int = 100_000, presses: int = 200) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QCoreApplication, Qt
    from PySide6.QtTest import QTest

    from app.compose import open_context
    from app.core.model.domain import Role
    from app.core.settings.config import Settings
    from app.ui.app import make_qapp
    from app.ui.review_window import ReviewWindow

    app = make_qapp()
    _quiet_offscreen_warning()
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        settings = Settings(database_url=url, media_root=Path(tmp) / "media")
        ctx = open_context(settings, journal_dir=Path(tmp) / "journal")
        db, store = ctx.db, ctx.store
        t = time.perf_counter()
        _fill_queue(db, store, n_items)
        fill_s = time.perf_counter() - t
        user = ctx.users.add("bench", "bench-password", Role.MODERATOR)
        painted = [0]
        t_start = time.perf_counter()
        w = ReviewWindow(ctx, user)
        original_paint = w.preview.paintEvent

        def counting_paint(event) -> None:
            original_paint(event)
            painted[0] += 1

        w.preview.paintEvent = counting_paint
        w.controller.dwell_seconds = 0.0
        w.show()
        w.start()
        deadline = time.perf_counter() + 30
        while w.controller.current is None and time.perf_counter() < deadline:
            app.processEvents()
        w.preview.repaint()
        cold_start_s = time.perf_counter() - t_start

        samples: list[float] = []
        for _ in range(presses):
            # Wait until the next item is prepared, as a moderator's pace allows.
            deadline = time.perf_counter() + 10
            while not w.controller.upcoming and time.perf_counter() < deadline:
                app.processEvents()
                time.sleep(0.001)
            before = painted[0]
            t0 = time.perf_counter()
            QTest.keyClick(w.preview, Qt.Key.Key_N)
            while painted[0] == before:
                app.processEvents()
            samples.append((time.perf_counter() - t0) * 1000)
        w.close()
        w.tasks.wait(15000)
        QCoreApplication.processEvents()
        db.dispose()
    samples.sort()
    return {
        "queue": n_items,
        "fill_s": fill_s,
        "presses": presses,
        "median_ms": statistics.median(samples),
        "p95_ms": samples[int(0.95 * (len(samples) - 1))],
        "max_ms": samples[-1],
        "cold_start_s": cold_start_s,
    }
