"""Engine and session set-up for SQLite (embedded default) and PostgreSQL (team deployment),
and the Alembic upgrade run at start-up."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.core.errors import HashdeskError, Refusal, Unavailable, first_line, is_transient
from app.core.model.roles import PermissionDenied
from app.core.settings.config import redact_url
from app.storage import errors as _errors  # noqa: F401  (registers the SQL errors' one line)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class DatabaseError(HashdeskError, RuntimeError):
    """A database problem explained in one line, with what to do about it."""


class DatabaseUnreachable(DatabaseError, Unavailable):
    """The database cannot be reached now (down, refused the connection, a timeout)."""


class DatabaseRefused(DatabaseError, Refusal):
    """The database was reached but cannot be used as asked (its schema is newer than this
    Hashdesk, the URL names no usable database, a migration failed)."""


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_begin(conn) -> None:
    # Take the write lock at BEGIN so read-then-write units (claims, the decision chain) never
    # hit SQLite's deadlock-on-upgrade; the busy timeout makes writers queue instead of failing.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _owner_only(path: Path) -> None:
    """The embedded database holds every decision: readable by its owner only (the -wal and
    -shm files SQLite makes beside it take the main file's permissions)."""
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if p.exists():
            p.chmod(0o600)


def make_engine(url: str, connect_args: dict[str, Any] | None = None) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            if not Path(path).exists():
                fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
            _owner_only(Path(path))
        engine = create_engine(url, connect_args={"timeout": 10, "isolation_level": None})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args=connect_args or {}
    )


def explain_connect_error(reason: str) -> str:
    """What to do about a refused connection, in one line."""
    low = reason.lower()
    if (
        "password authentication failed" in low
        or "is not permitted to log in" in low
        or ("role" in low and "does not exist" in low)
    ):
        return "wrong user name or password, or the account is disabled"
    if "does not support ssl" in low:
        return (
            f"{reason}: the server offers no TLS. Turn it on there (ssl = on, with a "
            "certificate, in postgresql.conf), or, only on a network you trust, set "
            "HASHDESK_DATABASE_SSLMODE to prefer"
        )
    if "certificate" in low or "ssl" in low:
        return (
            f"{reason}: the server's certificate is not the one expected (check "
            "HASHDESK_DATABASE_SSLROOTCERT and that the host name matches the certificate)"
        )
    return f"{reason}. Check HASHDESK_DATABASE_URL and that the server is running"


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection_engine"] = engine
    return cfg


@dataclass
class Database:
    engine: Engine
    sessions: sessionmaker[Session]

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def label(self) -> str:
        return redact_url(self.engine.url.render_as_string(hide_password=True))

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: commits on success, rolls back on error. A team server's refusal
        (SQLSTATE 42501, raised by its checks: app.storage.server_security) is PermissionDenied
        like the services' own, so callers tell a refusal from a broken connection."""
        try:
            with self.sessions() as s, s.begin():
                yield s
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) == "42501":
                reason = first_line(str(exc.orig)).removeprefix("hashdesk: ")
                raise PermissionDenied(f"refused by the server: {reason}") from None
            raise

    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head_revision(self) -> str | None:
        return ScriptDirectory.from_config(alembic_config(self.engine)).get_current_head()

    def known_revisions(self) -> set[str]:
        script = ScriptDirectory.from_config(alembic_config(self.engine))
        return {rev.revision for rev in script.walk_revisions()}

    def upgrade(self) -> None:
        current = self.current_revision()
        script = ScriptDirectory.from_config(alembic_config(self.engine))
        known = {rev.revision for rev in script.walk_revisions()}
        if current is not None and current not in known:
            raise DatabaseRefused(
                f"the database at {self.label} has schema revision {current}, newer than this "
                "Hashdesk knows: update Hashdesk on this workstation"
            )
        command.upgrade(alembic_config(self.engine), "head")

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(
    url: str, *, upgrade: bool = True, connect_args: dict[str, Any] | None = None
) -> Database:
    """Connect, check the connection and bring the schema to the current revision.
    ``connect_args``: for the driver (TLS: sslmode, sslrootcert)."""
    from app.storage.notify import install_hash_list_notify

    engine = make_engine(url, connect_args)
    db = Database(engine, sessionmaker(engine, expire_on_commit=False))
    install_hash_list_notify(db.sessions)  # other workstations hear of new or retracted hashes
    try:
        with engine.connect():
            pass
        if upgrade:
            db.upgrade()
    except OperationalError as exc:
        engine.dispose()
        reason = first_line(str(exc.orig if exc.orig is not None else exc))
        raise DatabaseUnreachable(
            f"cannot connect to the database at {redact_url(url)}: {explain_connect_error(reason)}"
        ) from None
    except SQLAlchemyError as exc:
        engine.dispose()
        failed = DatabaseUnreachable if is_transient(exc) else DatabaseRefused
        raise failed(f"database error at {redact_url(url)}: {first_line(str(exc))}") from None
    except DatabaseError:  # a migration's refusal, or a schema newer than this Hashdesk
        engine.dispose()
        raise
    return db
