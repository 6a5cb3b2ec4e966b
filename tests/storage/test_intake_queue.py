"""The intake on the PostgreSQL job queue (procrastinate), with real `hashdesk worker`
processes: the round trip, a worker SIGKILLed mid-job (before it records, and after it recorded
but before the queue heard), three failures giving an unreadable item, and the same on the
enforced team server with the worker's own login.

No timing luck: a worker is caught "mid-job" by a row lock the test holds (the job waits on it),
and everything else waits on conditions with generous timeouts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from app.compose import open_context
from app.core.ingest.sidecar import meta_from_fields
from app.core.model.domain import ItemStatus, Role, utcnow
from app.core.settings.config import load_settings
from app.storage.models import IntakeReceipt, Item, Sighting
from tests.conftest import PG_URL, _make_pg_database
from tests.helpers import write_samples

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.postgres


def wait_for(what: Callable[[], object], timeout: float = 90.0, every: float = 0.1):
    """``what()`` once it is true; fails naming the condition after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while True:
        got = what()
        if got:
            return got
        if time.monotonic() > end:
            pytest.fail(f"condition not met within {timeout} s: {what.__doc__ or what}")
        time.sleep(every)


@pytest.fixture
def pg(tmp_path):
    if not PG_URL:
        pytest.skip("PostgreSQL not configured: set HASHDESK_TEST_POSTGRES_URL to run these")
    database, cleanup = _make_pg_database()
    yield database
    cleanup()


def queue_env(url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("HASHDESK_") or k == "HASHDESK_ALLOW_TRUST_AUTH"
    }
    env.update(
        HASHDESK_DATABASE_URL=url,
        HASHDESK_MEDIA_ROOT=str(tmp_path / "media"),
        HASHDESK_INGEST_MODE="queue",
        HASHDESK_INTAKE_RETRY_SECONDS="0",
        HASHDESK_WORKER_HEARTBEAT_SECONDS="1",
        HASHDESK_WORKER_STALLED_SECONDS="3",
        HASHDESK_INDEX_SNAPSHOT="off",
        PYTHONPATH=str(ROOT),
        XDG_DATA_HOME=str(tmp_path / "xdg-data"),
        XDG_CONFIG_HOME=str(tmp_path / "xdg-config"),
        HASHDESK_NO_KEYRING="1",
        QT_QPA_PLATFORM="offscreen",
    )
    env.update(extra)
    return env


def start_worker(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "app", "worker", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out or ""


def _url(db) -> str:
    return db.engine.url.render_as_string(hide_password=False)


def _count(db, model, *where) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)))


def _job_status(db, receipt_id: int) -> str | None:
    with db.session() as s:
        return s.scalar(
            text(
                "SELECT status::text FROM procrastinate_jobs WHERE (args->>'receipt_id')::int = :r"
            ),
            {"r": receipt_id},
        )


def test_round_trip_through_a_worker_process(pg, tmp_path):
    env = queue_env(_url(pg), tmp_path)
    ctx = open_context(load_settings(env), db=pg)
    assert ctx.intake.queue
    files = write_samples(tmp_path / "in", range(4))
    meta = meta_from_fields(source="partner", received_at=utcnow())
    got = [ctx.intake.receive(path=f, meta=meta, via="cli") for f in files]
    again = ctx.intake.receive(path=files[0], meta=meta, via="drop")  # waits with the first
    assert again.duplicate
    assert _count(pg, Item) == 0  # nothing analysed here: the jobs wait for a worker
    assert {_job_status(pg, r.receipt_id) for r in [*got, again]} == {"todo"}

    out = subprocess.run(
        [sys.executable, "-m", "app", "worker", "--until-empty"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr
    assert "worker " in out.stdout and "5 jobs done" in out.stdout
    assert _count(pg, Item) == 4 and _count(pg, Sighting) == 5
    assert _count(pg, IntakeReceipt, IntakeReceipt.state == "done") == 5
    with pg.session() as s:
        left = s.scalar(text("SELECT count(*) FROM procrastinate_jobs"))
        named = s.scalar(text("SELECT count(*) FROM intake_workers"))
    assert left == 0 and named == 1  # done jobs leave the queue; the worker said who it was


def test_a_worker_killed_mid_job_loses_nothing_and_records_once(pg, tmp_path):
    env = queue_env(_url(pg), tmp_path)
    ctx = open_context(load_settings(env), db=pg)
    (a, b) = write_samples(tmp_path / "in", [21, 22])
    meta = meta_from_fields(source="partner", received_at=utcnow())
    first = ctx.intake.receive(path=a, meta=meta, via="cli")
    blocker = create_engine(_url(pg))
    try:
        # 1. Killed before it records: the job waits on the arrival's row, which we hold.
        with blocker.connect() as hold:
            tx = hold.begin()
            hold.execute(
                text("SELECT id FROM intake_receipts WHERE id = :r FOR UPDATE"),
                {"r": first.receipt_id},
            )
            w1 = start_worker(env)

            def doing() -> bool:
                """the job is held by the first worker"""
                return _job_status(pg, first.receipt_id) == "doing"

            wait_for(doing)
            w1.send_signal(signal.SIGKILL)
            w1.wait(30)
            tx.rollback()
        assert _count(pg, Sighting) == 0
        # 2. What a worker killed after recording, before the queue heard, leaves: the arrival
        # recorded, its job still on the queue (here: recorded by this process's own run).
        second = ctx.intake.receive(path=b, meta=meta, via="cli")
        ctx.intake.run_job(second.receipt_id)
        assert _count(pg, Sighting, Sighting.receipt_id == second.receipt_id) == 1
        assert _job_status(pg, second.receipt_id) == "todo"
        w3 = start_worker(env)

        def all_finished() -> bool:
            """every job finished and left the queue"""
            with pg.session() as s:
                return s.scalar(text("SELECT count(*) FROM procrastinate_jobs")) == 0

        wait_for(all_finished)
        stop(w3)
    finally:
        blocker.dispose()
    assert _count(pg, Item) == 2
    assert _count(pg, Sighting) == 2  # one per arrival: the re-run recorded nothing twice
    assert _count(pg, IntakeReceipt, IntakeReceipt.state == "done") == 2
    with pg.session() as s:
        first_row = s.get(IntakeReceipt, first.receipt_id)
    # the killed run never committed its count; the run after it did
    assert first_row.runs == 1 and first_row.worker is not None


def test_a_worker_that_loses_the_database_mid_job_retries_it_and_records_once(pg, tmp_path):
    """The job's connection is cut (pg_terminate_backend) while the job waits on the arrival's
    row, which the test holds: the worker lives on, the queue retries the job, and the arrival
    is recorded once."""
    env = queue_env(_url(pg), tmp_path)
    ctx = open_context(load_settings(env), db=pg)
    (a,) = write_samples(tmp_path / "in", [23])
    meta = meta_from_fields(source="partner", received_at=utcnow())
    got = ctx.intake.receive(path=a, meta=meta, via="http")
    blocker = create_engine(_url(pg))
    w = None
    try:
        with blocker.connect() as hold:
            tx = hold.begin()
            hold.execute(
                text("SELECT id FROM intake_receipts WHERE id = :r FOR UPDATE"),
                {"r": got.receipt_id},
            )
            me = hold.execute(text("SELECT pg_backend_pid()")).scalar_one()
            w = start_worker(env)

            def the_job_waits_on_our_row() -> list[int]:
                """a worker's connection waits on the arrival's row the test holds"""
                # (asked on another connection: a transaction sees pg_stat_activity as it was)
                with pg.session() as s:
                    return list(
                        s.execute(
                            text(
                                "SELECT pid FROM pg_stat_activity "
                                "WHERE CAST(:me AS int) = ANY(pg_blocking_pids(pid))"
                            ),
                            {"me": me},
                        ).scalars()
                    )

            (job_pid,) = wait_for(the_job_waits_on_our_row)
            with pg.session() as s:
                cut = s.scalar(text("SELECT pg_terminate_backend(:p)"), {"p": job_pid})
            assert cut is True

            def retried() -> bool:
                """the job failed once and the queue runs it again (waiting on our row)"""
                with pg.session() as s:
                    attempts = s.scalar(
                        text(
                            "SELECT attempts FROM procrastinate_jobs "
                            "WHERE (args->>'receipt_id')::int = :r"
                        ),
                        {"r": got.receipt_id},
                    )
                return (attempts or 0) >= 1 and bool(the_job_waits_on_our_row())

            wait_for(retried)
            assert _count(pg, Sighting) == 0
            tx.rollback()  # the row free: the retry goes on

        def finished() -> bool:
            """the job finished and left the queue"""
            with pg.session() as s:
                return s.scalar(text("SELECT count(*) FROM procrastinate_jobs")) == 0

        wait_for(finished)
        assert w.poll() is None  # the worker lived through it
    finally:
        out = stop(w) if w is not None else ""
        blocker.dispose()
    assert _count(pg, Item) == 1, out
    assert _count(pg, Sighting, Sighting.receipt_id == got.receipt_id) == 1
    with pg.session() as s:
        row = s.get(IntakeReceipt, got.receipt_id)
    assert row.state == "done" and row.item_id is not None
    assert row.runs == 1  # the cut run never committed its count; the retry did


def test_three_failures_on_workers_make_a_visible_unreadable_item(pg, tmp_path):
    env = queue_env(_url(pg), tmp_path)
    ctx = open_context(load_settings(env), db=pg)
    (a,) = write_samples(tmp_path / "in", [31])
    got = ctx.intake.receive(
        path=a, meta=meta_from_fields(source="partner", received_at=utcnow()), via="cli"
    )
    ctx.store.path_for(got.sha256).unlink()  # the shared media folder lost the copy
    w = start_worker(env)

    def recorded() -> bool:
        """the arrival recorded (as unreadable)"""
        return _count(pg, IntakeReceipt, IntakeReceipt.state == "done") == 1

    wait_for(recorded)
    out = stop(w)
    with pg.session() as s:
        item = s.scalars(select(Item)).one()
        receipt = s.get(IntakeReceipt, got.receipt_id)
    assert item.status == ItemStatus.UNREADABLE, out
    assert item.error.startswith("failed 3 times: the stored copy")
    assert receipt.failures == 3 and "is missing" in receipt.error


# -- the enforced team server --------------------------------------------------------------


def _team_env(team_server, tmp_path, user: str) -> dict[str, str]:
    return queue_env(team_server.team_url, tmp_path, HASHDESK_ADMIN_PASSWORD=team_server.PASSWORD)


def test_team_server_round_trip_with_the_workers_own_login(team_server, tmp_path):
    admin = team_server.add("boss", Role.ADMIN)
    team_server.add("w1", Role.WORKER, actor=admin)
    env = _team_env(team_server, tmp_path, "w1")
    feeder = team_server.connect("w1")  # a worker account may receive, too (ingest only)
    ctx = open_context(load_settings(env), db=feeder)
    (a,) = write_samples(tmp_path / "in", [41])
    received = utcnow()
    got = ctx.intake.receive(
        path=a,
        meta=meta_from_fields(source="removal_order", received_at=received),
        via="drop",
    )
    out = subprocess.run(
        [sys.executable, "-m", "app", "worker", "--as", "w1", "--until-empty"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    with team_server.owner.session() as s:
        sighting = s.scalars(select(Sighting)).one()
        receipt = s.get(IntakeReceipt, got.receipt_id)
        item = s.get(Item, sighting.item_id)
    assert receipt.state == "done" and receipt.item_id == item.id
    assert sighting.flagged_at == received
    assert item.deadline is not None
    assert abs((item.deadline - received).total_seconds() - 3600) < 1  # from receipt


def _refused(conn, sql: str, params: dict | None = None) -> str:
    tx = conn.begin()
    try:
        conn.execute(text(sql), params or {})
    except Exception as exc:  # the server's refusal
        tx.rollback()
        return str(getattr(exc, "orig", exc)).splitlines()[0]
    tx.rollback()
    pytest.fail(f"the worker's login could run: {sql}")


def test_the_worker_login_may_only_ingest(team_server, tmp_path):
    admin = team_server.add("boss", Role.ADMIN)
    team_server.add("w1", Role.WORKER, actor=admin)
    team_server.add("mod", Role.MODERATOR, actor=admin)
    w = team_server.connect("w1")
    with w.engine.connect() as conn:
        for sql in (
            "INSERT INTO items (sha256, md5, kind, size, status, priority, created_at, "
            "updated_at, preview_frames) VALUES (repeat('a', 64), '', 'image', 1, 'queued', 0, "
            "now(), now(), 1)",
            "UPDATE items SET status = 'decided'",
            "DELETE FROM sightings",
            "UPDATE intake_receipts SET state = 'done'",
            "INSERT INTO intake_workers (id, name, started_at) VALUES (999, 'x', now())",
            "UPDATE users SET role = 'admin'",
            "SELECT * FROM decisions",
            "SELECT * FROM audit_events",
            "SELECT password_hash FROM users",
        ):
            assert "permission denied" in _refused(conn, sql), sql
        # the write API refuses every call but ingest's
        why = _refused(
            conn,
            "SELECT hd_api_account_create('x1', 'X', 'admin', 'pw')",
        )
        assert "may not manage users" in why
        why = _refused(conn, "SELECT * FROM hd_api_claim('second_review', ARRAY[1]::bigint[])")
        assert "may not second review" in why
        # What it can do to the queue's own tables (procrastinate's protocol writes them): delete
        # or reset jobs. That delays an arrival, never forges or loses one: the arrival's row
        # stays "waiting" (seen in `intake status`), and a job that names an arrival only makes a
        # worker record that arrival's own facts, once.
        tx = conn.begin()
        conn.execute(text("DELETE FROM procrastinate_jobs"))
        tx.rollback()
    assert "permission denied" in _refused(
        team_server.connect("mod").engine.connect(), "DELETE FROM procrastinate_jobs"
    )


def test_a_job_cannot_record_facts_other_than_its_arrivals(team_server, tmp_path):
    """A worker login that enqueues a forged job, or sends a batch naming an arrival with other
    facts, gets the arrival's own facts recorded (the server takes them from its row)."""
    admin = team_server.add("boss", Role.ADMIN)
    team_server.add("w1", Role.WORKER, actor=admin)
    env = _team_env(team_server, tmp_path, "w1")
    w = team_server.connect("w1")
    ctx = open_context(load_settings(env), db=w)
    (a,) = write_samples(tmp_path / "in", [51])
    got = ctx.intake.receive(
        path=a, meta=meta_from_fields(source="partner", received_at=utcnow()), via="cli"
    )
    ctx.intake.queue = False  # run the job here, on the worker's login
    from app.core.ingest.jobs import IngestJob
    from app.core.model.domain import SightingInfo
    from app.storage.ingest_recorder import ingest_jobs

    forged = SightingInfo(
        source="forged",
        external_id="x",
        source_url=None,
        reason="forged",
        score=None,
        flagged_at=utcnow(),
        receipt_id=got.receipt_id,
    )
    ingest_jobs(ctx.recorder(), [IngestJob(ctx.store.path_for(got.sha256), forged)])
    with team_server.owner.session() as s:
        sighting = s.scalars(select(Sighting)).one()
    assert (sighting.source, sighting.reason) == ("partner", None)
    assert sighting.original_name == a.name


@pytest.fixture(autouse=True)
def _unique_names():
    """Worker names stay apart between tests (host:pid is unique per process anyway)."""
    os.environ.setdefault("HASHDESK_TEST_RUN", uuid.uuid4().hex[:6])


# -- the commands ---------------------------------------------------------------------------


def test_ingest_enqueues_and_waits_for_the_workers(pg, tmp_path):
    env = queue_env(_url(pg), tmp_path)
    files = write_samples(tmp_path / "in", range(3))
    worker = start_worker(env)
    try:
        out = subprocess.run(
            [sys.executable, "-m", "app", "ingest", str(tmp_path / "in"), "--wait"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        stop(worker)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "enqueued 3 files for the workers" in out.stdout
    assert "recorded 3 files, 0 refused" in out.stdout
    assert _count(pg, Item) == 3 and len(files) == 3


def test_intake_status_on_the_team_server_as_a_lead(team_server, tmp_path):
    admin = team_server.add("boss", Role.ADMIN)
    team_server.add("w1", Role.WORKER, actor=admin)
    team_server.add("lena", Role.LEAD, actor=admin)
    env = _team_env(team_server, tmp_path, "w1")
    ctx = open_context(load_settings(env), db=team_server.connect("w1"))
    (a, b) = write_samples(tmp_path / "in", [61, 62])
    got = ctx.intake.receive(
        path=a, meta=meta_from_fields(source="partner", received_at=utcnow()), via="drop"
    )
    ctx.intake.receive(
        path=b, meta=meta_from_fields(source="partner", received_at=utcnow()), via="drop"
    )
    ctx.store.path_for(got.sha256).unlink()
    w = start_worker(env, "--as", "w1", "--name", "box-9")

    def failed_once() -> bool:
        """the first arrival failed once on the worker"""
        with team_server.owner.session() as s:
            return (s.get(IntakeReceipt, got.receipt_id).failures or 0) >= 1

    wait_for(failed_once)
    try:
        out = subprocess.run(
            [sys.executable, "-m", "app", "intake", "status", "--as", "lena"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        stop(w)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "box-9: last heartbeat" in out.stdout and "(alive)" in out.stdout
    assert f"arrival {got.receipt_id} {a.name}" in out.stdout and "is missing" in out.stdout
    refused = subprocess.run(
        [sys.executable, "-m", "app", "worker", "--as", "lena", "--until-empty"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # a lead's account may not run a worker: one line, no traceback
    assert refused.returncode == 2
    assert "lena (lead) may not ingest" in refused.stderr and "Traceback" not in refused.stderr
