"""Screenshots for the README (issue 23): the lead workspace's Incident tab (the situational
view) and the debrief report. Run from the repository root:

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python docs/screenshots_incident.py

A throwaway SQLite record is built through the services (ingest, an incident declared on seed
items, confirms, rejects, a cluster confirm, copies matched at upload, a re-scan, deltas written
to a folder, one delivery failing); the demo then spreads its times over three simulated hours
(an UPDATE of the demo database's time columns: the run itself takes seconds). The debrief's
HTML is rendered by Chromium headless when installed, else by Qt's QTextBrowser (no SVG).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DOCS = ROOT / "docs"


def build(tmp: Path):
    from sqlalchemy import select, text

    from app.compose import AppContext, default_taxonomy
    from app.core.exchange.deltas import DeltaCadence
    from app.core.ingest.contentstore import ContentStore
    from app.core.matching.match_rules import MatchPolicy
    from app.core.model.decisions import DecisionRequest
    from app.core.model.domain import Role, Verdict, utcnow
    from app.core.model.exposure import ExposureEvent, ExposureKind
    from app.core.settings.config import Settings
    from app.storage.db import open_database
    from app.storage.deltas import DeltaService
    from app.storage.exposure import ExposureService
    from app.storage.incidents import IncidentService, tag_items
    from app.storage.models import Item, Sighting
    from app.storage.rescan import Rescanner
    from app.storage.review import ReviewService
    from app.storage.users import UserService
    from tests.helpers import ingest, write_cluster, write_samples
    from tests.storage.test_rescan import _variant

    db = open_database(f"sqlite:///{tmp / 'db.sqlite3'}")
    store = ContentStore(tmp / "media")
    users = UserService(db)
    pw = "demo-password-123"
    lead = users.add("rana", pw, Role.LEAD)
    mods = [users.add(n, pw, Role.MODERATOR) for n in ("ahmed", "bea", "chen")]
    review = ReviewService(db, second_review_share=0.0)
    clusters = [write_cluster(tmp / "in", seed, size=5) for seed in (7, 8, 9, 10)]
    others = write_samples(tmp / "other", range(30, 38))
    ingest(db, store, [c[0] for c in clusters])

    def item_of(path: Path) -> int:
        with db.session() as s:
            return s.scalar(select(Sighting.item_id).where(Sighting.original_name == path.name))

    seeds = [item_of(c[0]) for c in clusters[:2]]
    inc = IncidentService(db).declare(
        "glendale-demo", "CIP-2026-0412", actor=lead, seed_items=seeds
    )
    ingest(db, store, [p for c in clusters for p in c[1:4]] + others[:5])
    with db.session() as s:
        tag_items(s, inc.id, [item_of(c[0]) for c in clusters] + [item_of(p) for p in others[:3]])
    out = tmp / "deltas"
    out.mkdir()
    deltas = DeltaService(db)
    rescanner = Rescanner(db, MatchPolicy(), actor=lead)
    for k, c in enumerate(clusters):
        mod = mods[k % 3]
        d = review.decide(
            DecisionRequest(item_of(c[0]), mod.id, Verdict.CONFIRM, "attack_recording", "x")
        )
        rescanner.after_confirm(d.uuid)
        ExposureService(db).record(
            ExposureEvent(mod.id, item_of(c[0]), ExposureKind.REVEAL, utcnow(), 8.0 + 5 * k)
        )
        if k == 1:
            deltas.plan(actor=lead, formats=("pytx", "tat"), incident_id=inc.id)
            deltas.deliver(1, actor=lead, folder=out)
    for p in others[:3]:
        review.decide(DecisionRequest(item_of(p), mods[0].id, Verdict.REJECT))
    # Copies uploaded after the confirms (matched at upload), and a late variant the re-scan
    # resolves after its original's confirm.
    ingest(db, store, [c[4] for c in clusters])
    ingest(db, store, [others[5]])
    with db.session() as s:
        tag_items(s, inc.id, [item_of(c[4]) for c in clusters] + [item_of(others[5])])
    review.decide(DecisionRequest(item_of(others[5]), mods[1].id, Verdict.ESCALATE, note="?"))
    ingest(db, store, [_variant(others[5], tmp / "late-variant.jpg")])
    d = review.decide(
        DecisionRequest(item_of(others[5]), lead.id, Verdict.CONFIRM, "attack_recording")
    )
    rescanner.after_confirm(d.uuid)
    deltas.plan(actor=lead, formats=("pytx", "tat"), incident_id=inc.id)
    deltas.deliver(2, actor=lead, folder=out)
    ingest(db, store, others[6:8])
    with db.session() as s:
        tag_items(s, inc.id, [item_of(p) for p in others[6:8]])
        # Spread the demo over three simulated hours (see the docstring).
        ids = list(s.scalars(select(Item.id).where(Item.incident_id == inc.id).order_by(Item.id)))
        start = utcnow() - timedelta(hours=3)
        s.execute(text("UPDATE incidents SET started_at = :t"), {"t": start})
        for rank, item_id in enumerate(ids):
            at = start + timedelta(minutes=4 + rank * 150 / len(ids))
            s.execute(
                text("UPDATE items SET created_at = :t WHERE id = :i"), {"t": at, "i": item_id}
            )
            s.execute(
                text("UPDATE sightings SET flagged_at = :t WHERE item_id = :i"),
                {"t": at, "i": item_id},
            )
            s.execute(
                text(
                    "UPDATE decisions SET decided_at = :t WHERE item_id = :i AND method <> 'manual'"
                ),
                {"t": at + timedelta(seconds=20), "i": item_id},
            )
            s.execute(
                text(
                    "UPDATE decisions SET decided_at = :t WHERE item_id = :i AND method = 'manual'"
                ),
                {"t": at + timedelta(minutes=9 + rank % 7), "i": item_id},
            )
        s.execute(
            text("UPDATE rescans SET started_at = :a, finished_at = :b"),
            {"a": start + timedelta(minutes=118), "b": start + timedelta(minutes=119)},
        )
        s.execute(
            text(
                "UPDATE decisions SET decided_at = :t WHERE method = 'auto_match' AND item_id = "
                "(SELECT item_id FROM sightings WHERE original_name = 'late-variant.jpg')"
            ),
            {"t": start + timedelta(minutes=118, seconds=30)},
        )
        for seq, minutes in ((1, 52), (2, 125)):
            s.execute(
                text("UPDATE deltas SET span_end = :a, written_at = :b WHERE seq = :n"),
                {
                    "a": start + timedelta(minutes=minutes),
                    "b": start + timedelta(minutes=minutes, seconds=2),
                    "n": seq,
                },
            )
    # The share goes away: the next delta fails, and the leads see it.
    mod = mods[2]
    review.decide(
        DecisionRequest(item_of(others[6]), mod.id, Verdict.CONFIRM, "attack_recording", "x")
    )
    shutil.rmtree(out)
    deltas.run_round(DeltaCadence(folder=out, always=True), actor=lead)
    seq = deltas.plan(actor=lead, formats=("pytx", "tat"), incident_id=inc.id)
    if seq is not None:
        deltas.deliver(seq, actor=lead, folder=out)
    settings = Settings(database_url=str(db.engine.url), media_root=store.root)
    ctx = AppContext(settings=settings, db=db, store=store, taxonomy=default_taxonomy())
    return ctx, lead


def main() -> None:
    from PySide6.QtWidgets import QApplication, QTextBrowser

    from app.core.reports import debrief_html
    from app.ui.lead_window import LeadWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])

    def wait(cond, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        while not cond():
            app.processEvents()
            time.sleep(0.01)
            if time.monotonic() > end:
                raise TimeoutError("waited too long")
        for _ in range(10):
            app.processEvents()

    tmp = Path(tempfile.mkdtemp(prefix="hashdesk-incident-shots-"))
    ctx, lead = build(tmp)
    w = LeadWindow(ctx, lead)
    w.resize(1280, 800)
    w.show()
    w.tabs.setCurrentWidget(w.situation)
    wait(lambda: w.situation.situation is not None and not w.situation.loading)
    w.grab().save(str(DOCS / "incident-situation.png"))
    sit = w.situation.situation
    w.close()

    # The debrief, once concluded.
    ctx.incidents.conclude(sit.name, actor=lead)
    done = ctx.situation.situation(sit.name, actor=lead)
    page = tmp / "debrief.html"
    page.write_text(debrief_html(done), encoding="utf-8")
    target = DOCS / "incident-debrief.png"
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser:
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--screenshot={target}",
                "--window-size=1000,1700",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    else:
        view = QTextBrowser()
        view.resize(1000, 1400)
        view.setHtml(page.read_text())
        view.show()
        wait(lambda: True)
        view.grab().save(str(target))
    print(f"wrote {DOCS / 'incident-situation.png'} and {target}")
    ctx.close()


if __name__ == "__main__":
    main()
