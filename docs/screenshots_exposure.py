"""Screenshots for the README (issue 13): region reveal, the break screen, the video scrubber on
a corpus video, the reveal banner, the idle lock, the weakest blur on corpus photos and the
exposure figures in the statistics view. Run from the repository root:

    xvfb-run -a -s "-screen 0 1280x900x24" .venv/bin/python docs/screenshots_exposure.py

The corpus is looked for in ../shared/corpus (HASHDESK_CORPUS names another place).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CORPUS = Path(os.environ.get("HASHDESK_CORPUS", ROOT.parent / "shared" / "corpus"))
DOCS = ROOT / "docs"


def main() -> None:
    from PySide6.QtCore import QEvent, QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    from app.compose import AppContext, default_taxonomy
    from app.core.ingest.contentstore import ContentStore
    from app.core.ingest.jobs import jobs_from_paths
    from app.core.matching.match_rules import MatchPolicy
    from app.core.model.decisions import DecisionRequest
    from app.core.model.domain import Role, Verdict, utcnow
    from app.core.model.exposure import BreakPolicy, ExposureEvent, ExposureKind
    from app.core.review.preview import BLUR_LEVELS, blur_small
    from app.core.settings.config import Settings
    from app.storage.db import open_database
    from app.storage.ingest_recorder import IngestRecorder, ingest_jobs
    from app.storage.users import UserService
    from app.ui.lead_window import LeadWindow
    from app.ui.review_window import ReviewWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])

    def wait(cond, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        while not cond():
            app.processEvents()
            time.sleep(0.01)
            if time.monotonic() > end:
                raise TimeoutError("waited too long")
        for _ in range(5):
            app.processEvents()

    tmp = Path(tempfile.mkdtemp(prefix="hashdesk-shots-"))
    db = open_database(f"sqlite:///{tmp / 'db.sqlite3'}")
    store = ContentStore(tmp / "media")
    videos, photos = CORPUS / "videos", CORPUS / "pdq-images"
    ingest_jobs(IngestRecorder(db, store), jobs_from_paths([videos / "chair-orig-22-sd-bar.mp4"]))
    users = UserService(db)
    first = users.add("amira", "correct horse battery", Role.MODERATOR)
    ctx = AppContext(
        settings=Settings(
            database_url=str(db.engine.url),
            media_root=store.root,
            breaks=BreakPolicy(review_minutes=0, reveals=0, graphic_items=0),
            idle_lock_minutes=0,
        ),
        db=db,
        store=store,
        taxonomy=default_taxonomy(),
        journal_dir=tmp,
    )
    original = ctx.review.claim_next(first.id)
    ctx.review.decide(DecisionRequest(original.id, first.id, Verdict.CONFIRM, "glorification"))
    queued = IngestRecorder(db, store, policy=MatchPolicy(auto_resolve=False))
    ingest_jobs(queued, jobs_from_paths([videos / "chair-22-with-small-logo-bar.mp4"]))
    ingest_jobs(queued, jobs_from_paths([photos / "pen-and-coaster.png"], reason="user report"))
    mod = users.add("sam", "correct horse battery", Role.MODERATOR)
    lead = users.add("lena", "correct horse battery", Role.LEAD)

    w = ReviewWindow(ctx, mod)
    w.resize(1280, 820)
    w.show()
    w.activateWindow()
    w.start()
    wait(lambda: w.controller.current is not None)
    video = w.controller.current.item
    wait(lambda: w.scrub_item == video.id)
    p = w.preview
    p.set_frame(min(p.matched) + 2 if p.matched else 5)
    wait(lambda: True)
    w.grab().save(str(DOCS / "video-scrubber.png"))
    print("video-scrubber.png:", p.frame_count, "frames,", len(p.matched), "matched")

    w.controller.dwell_seconds = 0.0
    w.controller.decide(Verdict.REJECT, by_key=False)
    wait(lambda: w.controller.current is not None and w.controller.current.item.id != video.id)
    wait(lambda: p._target() is not None)
    target = p._target()
    spot = QPointF(target.x() + target.width() * 0.62, target.y() + target.height() * 0.5)
    move = QMouseEvent(
        QEvent.Type.MouseMove,
        spot,
        QPointF(p.mapToGlobal(spot.toPoint())),
        Qt.MouseButton.NoButton,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.ShiftModifier,
    )
    QApplication.sendEvent(p, move)
    wait(lambda: p.lens is not None)
    w.grab().save(str(DOCS / "region-reveal.png"))
    p.clear_lens()
    p.set_revealed(True)
    wait(lambda: True)
    w.grab().save(str(DOCS / "reveal-banner.png"))
    p.set_revealed(False)
    w.show_break("You have revealed 30 pictures since your last break.")
    wait(lambda: w.on_break)
    w.grab().save(str(DOCS / "break-screen.png"))
    w.end_break()
    w.lock()
    wait(lambda: w.locked)
    w.grab().save(str(DOCS / "idle-lock.png"))
    w.close()

    # The weakest blur on corpus photos, beside the originals, as the review screen blurs.
    names = ["bridge-mods__aaa-orig.jpg", "pen-and-coaster.png", "labelme-subset__q2821.jpg"]
    width, rows = 300, []
    for name in names:
        img = Image.open(photos / name).convert("RGB")
        img.thumbnail((1000, 1000))
        height = round(width * img.height / img.width)
        tiles = [img] + [blur_small(img, lvl) for lvl in range(len(BLUR_LEVELS))]
        rows.append([t.resize((width, height), Image.Resampling.BILINEAR) for t in tiles])
    sheet = Image.new(
        "RGB", ((width + 10) * len(rows[0]), sum(r[0].height + 10 for r in rows)), "white"
    )
    y = 0
    for r in rows:
        for i, t in enumerate(r):
            sheet.paste(t, (i * (width + 10), y))
        y += r[0].height + 10
    sheet.save(DOCS / "blur-levels.png")

    # The statistics view with the period's exposure figures.
    now = utcnow()
    ctx.exposure.record(ExposureEvent(mod.id, video.id, ExposureKind.FRAME, now, 14.0))
    lw = LeadWindow(ctx, lead)
    lw.resize(1280, 820)
    lw.show()
    lw.start()
    lw.tabs.setCurrentWidget(lw.stats)
    wait(lambda: lw.stats.stats is not None)
    lw.grab().save(str(DOCS / "stats-exposure.png"))
    lw.close()
    print("saved to", DOCS)


if __name__ == "__main__":
    main()
