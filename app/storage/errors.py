"""The database library's errors, seen through the one error tree (app/core/errors.py).

Core knows no SQLAlchemy, so this module teaches ``describe`` and ``is_transient`` about it:
a lost or refused connection (``OperationalError``, ``InterfaceError``, any error that
invalidated the connection; SQLite's "database is locked" too) is transient and reads
"database unreachable: <the driver's first line>"; any other database error reads
"database error: ..." and is not transient (retrying the same statement gives the same answer).
Registered on import; ``app.storage.db`` imports it, so every process that has a database has it.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

from app.core.errors import Foreign, first_line, register


def _driver_line(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    return first_line(str(orig if orig is not None else exc)) or type(exc).__name__


def classify(exc: BaseException) -> Foreign | None:
    if not isinstance(exc, SQLAlchemyError):
        return None
    if isinstance(exc, OperationalError | InterfaceError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    ):
        return Foreign(f"database unreachable: {_driver_line(exc)}", transient=True)
    return Foreign(f"database error: {_driver_line(exc)}", transient=False)


register(classify)
