"""The team server's write API, seen from the services.

On a PostgreSQL database with the server program installed (app.storage.server_security),
people have no INSERT, UPDATE or DELETE on any table: every write is a call to one of the
server's ``hd_api_*`` functions (app/storage/sql/api_*.sql), which checks who may do what, takes
ids from sequences and times from the server's clock, appends the chain entries and the audit
event itself, all in the caller's transaction. The services call them here, with the same
arguments whoever runs them (the application, or a person with psql); on SQLite (one
workstation) the services do the same work in Python, with the same checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import TextClause
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.core.errors import first_line
from app.storage.server_security import enforced


def on_server(s: Session) -> bool:
    """Whether this session's database enforces the roles (writes go through the API)."""
    bind = s.get_bind()
    return enforced(bind if isinstance(bind, Engine) else bind.engine)


def call(s: Session, statement: TextClause, params: dict[str, Any] | None = None) -> list[Row]:
    """Run one API call (a ``SELECT * FROM hd_api_...(:a, ...)`` statement) in the session's
    transaction; its rows. A refusal (SQLSTATE 42501) becomes PermissionDenied when the
    session ends (app.storage.db.Database.session)."""
    return list(s.execute(statement, params or {}))


def call_checked(
    s: Session,
    statement: TextClause,
    params: dict[str, Any] | None,
    error: Callable[[str], Exception],
) -> list[Row]:
    """:func:`call`, with the server's "bad value" answer (SQLSTATE 22023: a verdict that is
    not one, a decision that no longer stands, ...) raised as ``error(message)``, the error the
    service raises for the same request on SQLite. Refusals (42501) stay PermissionDenied."""
    try:
        return call(s, statement, params)
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == "22023":
            raise error(first_line(str(exc.orig)).removeprefix("hashdesk: ")) from None
        raise
