"""Alembic environment: runs on the engine Hashdesk hands over (see app.storage.db)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

from app.storage.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    engine = config.attributes.get("connection_engine")
    if engine is None:
        engine = engine_from_config(
            config.get_section(config.config_ini_section, {}),
            prefix="sqlalchemy.",
            poolclass=pool.NullPool,
        )
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch mode rebuilds a table (copy, drop, rename): with foreign keys enforced, the
            # drop of a table other rows refer to fails. Off for the run, on the raw connection
            # before the transaction begins (the pragma does nothing inside one), checked after.
            _sqlite_pragma(connection, "PRAGMA foreign_keys=OFF")
        try:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=sqlite,
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            if sqlite:
                _sqlite_pragma(connection, "PRAGMA foreign_keys=ON")
        if sqlite:
            broken = _sqlite_pragma(connection, "PRAGMA foreign_key_check")
            if broken:
                raise RuntimeError(f"the migration left rows with broken references: {broken}")


def _sqlite_pragma(connection, pragma: str) -> list:
    cur = connection.connection.driver_connection.cursor()
    try:
        return cur.execute(pragma).fetchall()
    finally:
        cur.close()


run_migrations()
