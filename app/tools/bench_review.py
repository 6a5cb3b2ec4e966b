"""Review-screen timings for `hashdesk bench`: key press to the next blurred item painted, with
a large queue, and cold start to the first item. Runs offscreen."""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
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


_BENCH_PASSWORD = "bench-password"
_MAKE_TEAM = """DO $$
DECLARE s text := current_setting('hashdesk.bench_schema'); o text := s || '_owner';
BEGIN
  EXECUTE format('CREATE ROLE %I LOGIN CREATEROLE PASSWORD %L', o,
                 current_setting('hashdesk.bench_password'));
  EXECUTE format('GRANT pg_signal_backend TO %I', o);
  EXECUTE format('CREATE SCHEMA %I AUTHORIZATION %I', s, o);
END $$"""
# Every session of the throwaway team (a watcher's, a pool's) ends first: one still reading
# while the schema goes can deadlock with the DROP.
_DROP_SCHEMA = """DO $$
DECLARE s text := current_setting('hashdesk.bench_schema');
BEGIN
  PERFORM pg_terminate_backend(pid, 5000) FROM pg_stat_activity
  WHERE usename = s || '_owner' OR starts_with(usename, current_setting('hashdesk.bench_prefix'));
  EXECUTE format('DROP SCHEMA %I CASCADE', s);
END $$"""
_DROP_OWNER = """DO $$ DECLARE o text := current_setting('hashdesk.bench_schema') || '_owner';
BEGIN
  EXECUTE format('DROP OWNED BY %I', o);
  EXECUTE format('DROP ROLE %I', o);
END $$"""


@contextlib.contextmanager
def team_database(admin_url: str) -> Iterator[tuple]:
    """A throwaway team database on the PostgreSQL server at ``admin_url`` (a role that may
    create roles and schemas): its own schema, owned by its own CREATEROLE login as the README
    sets a team up, the server program installed. Yields (the owner's Database, a function
    giving a person's own URL); removes schema and roles afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from app.storage import server_roles, server_security
    from app.storage.db import open_database

    schema = f"hd_bench_{uuid.uuid4().hex[:10]}"
    owner = f"{schema}_owner"  # as _MAKE_TEAM names it
    admin = create_engine(admin_url)
    # The names reach SQL as settings, quoted by the server (%I), never formatted here.
    bind = text(
        "SELECT set_config('hashdesk.bench_schema', :schema, false), "
        "set_config('hashdesk.bench_password', :pw, false)"
    )
    with admin.begin() as conn:
        conn.execute(bind, {"schema": schema, "pw": _BENCH_PASSWORD})
        conn.execute(text(_MAKE_TEAM))
    base = make_url(admin_url)
    opts = {"options": f"-csearch_path={schema}"}
    owner_url = base.set(username=owner, password=_BENCH_PASSWORD, query=opts)
    owner_db = open_database(owner_url.render_as_string(hide_password=False))
    prefix = server_security.install(owner_db.engine)

    def person_url(username: str) -> str:
        role = server_roles.person_role(prefix, username)
        url = base.set(username=role, password=_BENCH_PASSWORD, query=opts)
        return url.render_as_string(hide_password=False)

    try:
        yield owner_db, person_url
    finally:
        owner_db.dispose()
        with admin.begin() as conn:
            conn.execute(bind, {"schema": schema, "pw": _BENCH_PASSWORD})
            conn.execute(
                text("SELECT set_config('hashdesk.bench_prefix', :p, false)"), {"p": prefix}
            )
            conn.execute(text(_DROP_SCHEMA))
        server_security.drop_roles(admin, prefix)
        with admin.begin() as conn:
            conn.execute(bind, {"schema": schema, "pw": _BENCH_PASSWORD})
            conn.execute(text(_DROP_OWNER))
        admin.dispose()


def bench_review(n_items: int = 100_000, presses: int = 200, team: str | None = None) -> dict:
    """The key press figure on a throwaway SQLite file, or (``team``: a PostgreSQL URL that
    may create roles and schemas) on a team database with the server program, the moderator
    on their own login."""
    with contextlib.ExitStack() as stack:
        if team is None:
            return _bench_review(n_items, presses, None, None)
        owner_db, person_url = stack.enter_context(team_database(team))
        return _bench_review(n_items, presses, owner_db, person_url)


def _bench_review(n_items: int, presses: int, owner_db, person_url) -> dict:
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
        if owner_db is None:
            url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
            settings = Settings(database_url=url, media_root=Path(tmp) / "media")
            ctx = open_context(settings, journal_dir=Path(tmp) / "journal")
            user = ctx.users.add("bench", _BENCH_PASSWORD, Role.MODERATOR)
            fill_db = ctx.db
        else:  # the admin adds the moderator; the window runs on the moderator's own login
            from app.storage.db import open_database

            media = Path(tmp) / "media"
            owner_url = owner_db.engine.url.render_as_string(hide_password=False)
            owner = open_context(Settings(database_url=owner_url, media_root=media), db=owner_db)
            admin = owner.users.create_first_admin("bench-admin", _BENCH_PASSWORD)
            user = owner.users.add("bench", _BENCH_PASSWORD, Role.MODERATOR, actor=admin)
            settings = Settings(database_url=person_url("bench"), media_root=media)
            person = open_database(person_url("bench"), upgrade=False)
            ctx = open_context(settings, db=person, journal_dir=Path(tmp) / "journal")
            fill_db = owner_db
        store = ctx.store
        t = time.perf_counter()
        _fill_queue(fill_db, store, n_items)
        fill_s = time.perf_counter() - t
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
        ctx.close()  # the hash-list watcher too: nothing left reading while the schema goes
    samples.sort()
    return {
        "database": "PostgreSQL, team server" if owner_db is not None else "SQLite",
        "queue": n_items,
        "fill_s": fill_s,
        "presses": presses,
        "median_ms": statistics.median(samples),
        "p95_ms": samples[int(0.95 * (len(samples) - 1))],
        "max_ms": samples[-1],
        "cold_start_s": cold_start_s,
    }
