"""The lead workspace's Intake tab (Ctrl+4), on SQLite and PostgreSQL: the backlog, the oldest
waiting arrival, a failure with its reason and, on PostgreSQL, a queue worker with its last
heartbeat, all read in the background by the task runner."""

from __future__ import annotations

from datetime import timedelta

import pytest
from PySide6.QtCore import Qt
from sqlalchemy import text

from app.compose import AppContext
from app.core.ingest.sidecar import meta_from_fields
from app.core.model.domain import Role, utcnow
from app.core.settings.config import Settings
from app.storage.intake import JobFailed
from app.ui.lead_window import LeadWindow
from tests.helpers import make_user, write_samples


class _Later:
    def defer(self, receipt_id: int, sha256: str) -> None:
        pass  # the jobs wait (no worker here)


def test_the_intake_tab_shows_backlog_workers_and_failures(qtbot, db, store, taxonomy, tmp_path):
    pg = db.engine.dialect.name == "postgresql"
    settings = Settings(
        database_url=str(db.engine.url),
        media_root=store.root,
        ingest_mode="queue" if pg else "local",
    )
    ctx = AppContext(settings=settings, db=db, store=store, taxonomy=taxonomy)
    ctx.intake.dispatcher = _Later()  # SQLite: the jobs wait instead of running here
    lead = make_user(db, "lead1", Role.LEAD)
    a, b = write_samples(tmp_path / "in", [1, 2])
    meta = meta_from_fields(source="partner", received_at=utcnow())
    ctx.intake.receive(path=a, meta=meta, via="drop")
    broken = ctx.intake.receive(path=b, meta=meta, via="http")
    store.path_for(broken.sha256).unlink()
    with pytest.raises(JobFailed):
        ctx.intake.run_job(broken.receipt_id)
    if pg:
        with db.session() as s:  # a worker's heartbeat row, as procrastinate registers one
            wid = s.execute(text("SELECT worker_id FROM procrastinate_register_worker_v1()"))
            wid = int(wid.scalar_one())
        ctx.intake.hello(wid, "box-7:4242")
    w = LeadWindow(ctx, lead)
    qtbot.addWidget(w)
    with qtbot.waitActive(w):
        w.show()
        w.activateWindow()
    qtbot.keyClick(w, Qt.Key.Key_4, Qt.KeyboardModifier.ControlModifier)
    assert w.tabs.currentWidget() is w.intake
    qtbot.waitUntil(lambda: w.intake.loads >= 1, timeout=10000)
    summary = w.intake.summary.text()
    assert "Backlog: 2 waiting" in summary and "Failures: 1." in summary
    table = w.intake.failures
    assert table.rowCount() == 1
    assert table.item(0, 1).text() == b.name
    assert "stored copy" in table.item(0, 3).text() and "is missing" in table.item(0, 3).text()
    workers = w.intake.workers
    if pg:
        assert "queue: 2 waiting, 0 running" in summary  # the jobs wait for a worker
        assert workers.rowCount() == 1
        assert "box-7:4242" in workers.item(0, 0).text()
        assert workers.item(0, 3).text() == "alive"
    else:
        assert "no queue" in summary and workers.rowCount() == 0
    w.close()


def test_the_intake_tab_lists_open_reports_without_a_file(qtbot, db, store, taxonomy):
    settings = Settings(database_url=str(db.engine.url), media_root=store.root)
    ctx = AppContext(settings=settings, db=db, store=store, taxonomy=taxonomy)
    lead = make_user(db, "lead1", Role.LEAD)
    admin = make_user(db, "root", Role.ADMIN)
    _info, token = ctx.intake_tokens.create("tcap", actor=admin)
    source = ctx.intake_tokens.check(token)
    at = utcnow()
    for ext, url, after in (("T-late", "https://x.invalid/a", 24), ("T-soon", None, 1)):
        ctx.intake_reports.record(
            source="tcap", external_id=ext, source_url=url, reason=None, reporter=None,
            score=None, received_at=at, deadline=None, deadline_after=timedelta(hours=after),
            token=source,
        )  # fmt: skip
    closed = ctx.intake_reports.record(
        source="tcap", external_id="T-done", source_url=None, reason=None, reporter=None,
        score=None, received_at=at, deadline=None, deadline_after=None, token=source,
    )  # fmt: skip
    ctx.intake_reports.close(closed.id, "handled", actor=lead)
    w = LeadWindow(ctx, lead)
    qtbot.addWidget(w)
    with qtbot.waitActive(w):
        w.show()
        w.activateWindow()
    qtbot.keyClick(w, Qt.Key.Key_4, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: w.intake.loads >= 1, timeout=10000)
    assert "Reports without a file: 2 open." in w.intake.summary.text()
    table = w.intake.reports
    assert table.rowCount() == 2
    assert [table.item(r, 4).text() for r in range(2)] == ["T-soon", "T-late"]  # nearest first
    assert table.item(1, 5).text() == "https://x.invalid/a"
    w.close()
