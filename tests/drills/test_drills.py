"""Team drills on PostgreSQL: many workstations at once, a killed workstation, a dropped network,
and the tamper-evident record on a busy database. Slow (tens of seconds); run by .ci/run."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from app.core.model.domain import ItemStatus, Role
from app.storage.audit import verify_chains
from app.storage.db import open_database
from app.storage.exposure import ExposureService
from app.storage.journal import DecisionJournal, JournalSync
from app.storage.models import Decision, Item
from app.storage.review import ReviewService
from app.storage.users import UserService
from tests.conftest import PG_URL, _make_pg_database
from tests.drills import team_rate
from tests.drills.claimers import claim_and_decide

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def pg():
    if not PG_URL:
        pytest.skip("PostgreSQL not configured: set HASHDESK_TEST_POSTGRES_URL to run the drills")
    db, cleanup = _make_pg_database()
    yield db
    cleanup()


def _queue(db, n: int) -> None:
    """``n`` queued items inserted in bulk (no media: the drills exercise the queue)."""
    team_rate.queue(db, n)


def _moderators(db, n: int) -> list[int]:
    users = UserService(db)
    admin = users.create_first_admin("drill-admin", "drill password")
    return [
        users.add(f"drill{i:02d}", "drill password", Role.MODERATOR, actor=admin).id
        for i in range(n)
    ]


def _url(db) -> str:
    return db.engine.url.render_as_string(hide_password=False)


def test_sixteen_workstations_decide_five_thousand_items_exactly_once(pg):
    items, procs = 5000, 16
    _queue(pg, items)
    users = _moderators(pg, procs)
    ctx = multiprocessing.get_context("spawn")
    start_at = time.time() + 8  # time for every process to start and connect
    with ctx.Pool(procs) as pool:
        results = pool.starmap(claim_and_decide, [(_url(pg), u, start_at) for u in users])
    decided = [i for _u, ids, _t in results for i in ids]
    wall = max(t for _u, _ids, t in results)
    rate = len(decided) / wall
    print(
        f"\n{procs} processes decided {len(decided)} items in {wall:.1f} s: {rate:.0f} decisions/s"
    )
    # Every item claimed by exactly one process (no two ever held the same claim), none skipped.
    assert len(decided) == items and len(set(decided)) == items
    assert all(ids for _u, ids, _t in results), "a process got no work: claims are not shared"
    with pg.session() as s:
        per_item = s.execute(
            select(Decision.item_id, func.count()).group_by(Decision.item_id)
        ).all()
        statuses = dict(s.execute(select(Item.status, func.count()).group_by(Item.status)).all())
    assert len(per_item) == items and {n for _i, n in per_item} == {1}
    assert statuses == {ItemStatus.DECIDED.value: items}
    # The decision chain built by 16 writers at once is one unbroken chain.
    decisions, audit = verify_chains(pg)
    assert decisions.ok and decisions.entries == items, decisions.problem
    assert audit.ok and audit.entries == procs + 1


def test_killed_workstation_loses_nothing_and_its_claims_come_back(pg, tmp_path):
    _queue(pg, 400)
    (user,) = _moderators(pg, 1)
    journal_file = tmp_path / "journal.sqlite3"
    lease = 3
    cmd = [sys.executable, "-m", "tests.drills.workstation", _url(pg), str(journal_file)]
    proc = subprocess.Popen(
        [*cmd, str(user), str(lease)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        for line in proc.stdout:  # kill it mid-way, while it is deciding
            if line.startswith("journalled 40"):
                break
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    journal = DecisionJournal(journal_file)
    journalled = {e.uuid for e in journal.pending()}
    with journal._lock:
        journalled |= {r[0] for r in journal._conn.execute("SELECT uuid FROM entries")}
    assert len(journalled) >= 40
    with pg.session() as s:
        held = s.scalars(select(Item.id).where(Item.status == ItemStatus.CLAIMED.value)).all()
    assert held, "the killed workstation held no claims"
    print(f"\nkilled with {journal.pending_count()} of {len(journalled)} decisions not yet landed")

    # The restart: the journal is applied first; every journalled decision lands exactly once.
    review = ReviewService(pg, lease_seconds=lease, second_review_share=0.0)
    report = JournalSync(journal, review, ExposureService(pg)).sync()
    assert report.error is None and report.pending == 0
    with pg.session() as s:
        rows = s.execute(
            select(Decision.uuid, func.count())
            .where(Decision.uuid.in_(journalled))
            .group_by(Decision.uuid)
        ).all()
        total = s.scalar(select(func.count()).select_from(Decision))
    assert len(rows) == len(journalled) and {n for _u, n in rows} == {1}
    assert total == len(journalled)  # nothing but what was journalled, nothing twice

    # Its other claims come back to the queue when their leases end.
    other = _moderators_more(pg, "drill-b")
    undecided = [i for i in held if i not in _decided_items(pg)]
    assert undecided
    time.sleep(lease + 0.5)
    back = set()
    while (item := review.claim_next(other)) is not None and len(back) < 400:
        back.add(item.id)
    assert set(undecided) <= back


def _moderators_more(db, name: str) -> int:
    return UserService(db).add(name, "drill password", Role.MODERATOR).id


def _decided_items(db) -> set[int]:
    with db.session() as s:
        return set(s.scalars(select(Decision.item_id)))


def test_dropped_network_during_review_nothing_lost_nothing_doubled(pg, qtbot, tmp_path, taxonomy):
    from app.compose import AppContext
    from app.core.ingest.contentstore import ContentStore
    from app.core.settings.config import Settings
    from app.ui.review_window import ReviewWindow
    from tests.drills.proxy import TcpProxy
    from tests.ui.conftest import KEY, press

    _queue(pg, 12)
    (user_id,) = _moderators(pg, 1)
    host, port = pg.engine.url.host, pg.engine.url.port or 5432
    proxy = TcpProxy(host, port).start()
    via = pg.engine.url.set(host="127.0.0.1", port=proxy.port)
    url = via.update_query_dict({"connect_timeout": "2"}).render_as_string(hide_password=False)
    ws = open_database(url, upgrade=False)
    store = ContentStore(tmp_path / "media")
    ctx = AppContext(
        settings=Settings(database_url=url, media_root=store.root, lease_seconds=600),
        db=ws,
        store=store,
        taxonomy=taxonomy,
        journal_dir=tmp_path / "journal",
    )
    ctx.review.second_review_share = 0.0
    user = ctx.users.get("drill00")
    assert user is not None and user.id == user_id
    w = ReviewWindow(ctx, user)
    w.controller.dwell_seconds = 0.0
    qtbot.addWidget(w)
    try:
        with qtbot.waitActive(w):
            w.show()
            w.activateWindow()
        with qtbot.waitSignal(w.controller.item_changed, timeout=10000):
            w.start()
        c = w.controller
        qtbot.waitUntil(lambda: c.current is not None and len(c.upcoming) >= 2, timeout=10000)
        with qtbot.waitSignal(c.decision_recorded, timeout=10000):
            press(qtbot, w, KEY.Key_N)

        qtbot.waitUntil(lambda: c.current is not None and len(c.upcoming) >= 2, timeout=10000)
        proxy.cut()  # the network drops: the moderator keeps going through what is claimed
        decided_offline = []
        for _ in range(3):
            qtbot.waitUntil(lambda: c.current is not None and not c.busy, timeout=10000)
            decided_offline.append(c.current.item.id)
            press(qtbot, w, KEY.Key_N)
            qtbot.keyRelease(w.preview, KEY.Key_N)
        qtbot.waitUntil(lambda: c.sync_error is not None, timeout=15000)
        assert c.pending == 3
        assert w.status_sync.text() == "database unreachable: 3 waiting to sync"
        with pg.session() as s:
            assert s.scalar(select(func.count()).select_from(Decision)) == 1

        proxy.restore()  # back: the retry lands everything, once
        qtbot.waitUntil(lambda: c.pending == 0 and c.sync_error is None, timeout=40000)
        assert w.status_sync.text() == "all saved"
        with pg.session() as s:
            rows = s.execute(select(Decision.item_id, Decision.verdict)).all()
        assert len(rows) == 4 and len({i for i, _v in rows}) == 4
        assert set(decided_offline) <= {i for i, _v in rows}
    finally:
        w.close()
        ws.dispose()
        proxy.stop()


def test_audit_verify_on_a_busy_database_then_tampered(pg):
    _queue(pg, 300)
    users = _moderators(pg, 4)
    ctx = multiprocessing.get_context("spawn")
    start_at = time.time() + 6
    with ctx.Pool(4) as pool:
        pool.starmap(claim_and_decide, [(_url(pg), u, start_at) for u in users])
    from app.cli import main

    env = {"HASHDESK_DATABASE_URL": _url(pg)}
    code, out = _cli(main, env, "audit", "verify")
    assert code == 0 and "decisions: 300 entries checked, intact" in out
    with pg.session() as s:
        ordered = s.scalars(select(Decision).order_by(Decision.id)).all()
    victim, gone, after = ordered[150], ordered[200], ordered[201]
    with pg.engine.begin() as conn:  # a hand edit in SQL: a decision's verdict changed
        conn.execute(
            text("UPDATE decisions SET verdict = 'escalate' WHERE id = :i"), {"i": victim.id}
        )
    code, out = _cli(main, env, "audit", "verify")
    assert code == 1 and f"entry #{victim.id} ({victim.uuid}) was altered" in out
    with pg.engine.begin() as conn:  # restored by hand, then a row deleted instead
        conn.execute(
            text("UPDATE decisions SET verdict = :v WHERE id = :i"),
            {"v": victim.verdict, "i": victim.id},
        )
        conn.execute(text("DELETE FROM hash_list WHERE decision_uuid = :u"), {"u": gone.uuid})
        conn.execute(text("DELETE FROM decisions WHERE id = :i"), {"i": gone.id})
    code, out = _cli(main, env, "audit", "verify")
    assert code == 1 and f"entry #{after.id} ({after.uuid}) does not follow" in out
    print(f"\n{out}")


def _cli(main, env: dict[str, str], *argv: str) -> tuple[int, str]:
    import io
    from contextlib import redirect_stdout
    from unittest import mock

    out = io.StringIO()
    with mock.patch.dict(os.environ, env), redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


def test_sixteen_workstations_on_the_team_server_decide_each_item_once(team_server):
    """The same drill on a team server: each workstation on its own moderator's login, every
    write a server function (app/storage/sql/api_review.sql)."""
    items = 2000
    results, rate = team_rate.run(team_server, items, 16)
    print(f"\n16 workstations on their own logins: {rate:.0f} decisions/s")
    decided = [i for _u, ids, _t in results for i in ids]
    assert len(decided) == items and len(set(decided)) == items
    with team_server.owner.session() as s:
        per_item = s.execute(
            select(Decision.item_id, func.count()).group_by(Decision.item_id)
        ).all()
    assert len(per_item) == items and {n for _i, n in per_item} == {1}
    decisions, _audit = verify_chains(team_server.owner)
    assert decisions.ok and decisions.entries == items, decisions.problem
