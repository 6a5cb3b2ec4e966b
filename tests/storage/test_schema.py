"""Migrations: an empty database upgrades to head and matches the models exactly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from app.storage.db import DatabaseError, open_database
from app.storage.models import Base


def _ours(name, type_, parent_names) -> bool:
    """Hashdesk's own schema objects: the job queue's tables (procrastinate_*, made from the
    library's own schema by migration 0014) are the library's, not the models'."""
    table = name if type_ == "table" else parent_names.get("table_name")
    return not (table or "").startswith("procrastinate_")


def test_migrated_schema_matches_models(db):
    assert db.current_revision() == db.head_revision()
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": _ours})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []
    if db.engine.dialect.name == "postgresql":
        queue = {t for t in inspect(db.engine).get_table_names() if not _ours(t, "table", {})}
        assert queue == {
            "procrastinate_jobs",
            "procrastinate_workers",
            "procrastinate_events",
            "procrastinate_periodic_defers",
        }
    tables = set(inspect(db.engine).get_table_names())
    assert {"users", "items", "sightings", "signals", "decisions", "hash_list"} <= tables


def test_sqlite_pragmas(sqlite_db):
    with sqlite_db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000


def test_newer_schema_is_refused_with_a_clear_message(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    db = open_database(url)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_future'")
    db.dispose()
    try:
        open_database(url)
    except DatabaseError as exc:
        assert "newer than this Hashdesk knows" in str(exc)
    else:
        raise AssertionError("a newer schema was accepted")


def test_unreachable_server_gives_one_clear_message():
    try:
        open_database("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    except DatabaseError as exc:
        assert "cannot connect to the database at postgresql+psycopg://nobody@127.0.0.1:1" in str(
            exc
        )
        assert "HASHDESK_DATABASE_URL" in str(exc)
    else:
        raise AssertionError("connected to a closed port")


def test_the_embedded_database_is_readable_by_its_owner_only(tmp_path):
    import stat

    path = tmp_path / "private.sqlite3"
    db = open_database(f"sqlite:///{path}")
    with db.engine.begin() as conn:  # write something, so the WAL file exists too
        conn.exec_driver_sql("CREATE TABLE t (x)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    files = [p for p in (path, tmp_path / "private.sqlite3-wal") if p.exists()]
    assert len(files) == 2
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    db.dispose()
