"""Does the PostgreSQL server check passwords at all?

A team deployment rests on the server judging each person's password (their own login role).
A server whose pg_hba.conf says ``trust`` for the workstations' addresses lets anyone sign in
as anyone, and nothing else would show it: every right password works, and so does every wrong
one. So before a sign-in or a schema upgrade is trusted, one connection is attempted as the
same role with a deliberately wrong (random) password: if the server lets it in, it asked for
no password, and the caller refuses, naming the pg_hba.conf line to change.

Only TCP connections are probed: a Unix-socket URL (no host) is an administrator on the server
itself, where ``peer`` authentication is the usual and sound choice.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

#: The opt-out for a test or development server (Settings.allow_trust_auth).
ALLOW_ENV = "HASHDESK_ALLOW_TRUST_AUTH"


def accepts_any_password(url: str, connect_args: dict[str, Any] | None = None) -> str | None:
    """None when the server refused a wrong password (or the URL is not a TCP connection to
    PostgreSQL); otherwise a one-line explanation naming the pg_hba.conf line to fix."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql") or not parsed.host:
        return None
    if parsed.host.startswith("/"):
        return None
    wrong = parsed.set(password="hashdesk-probe-" + secrets.token_urlsafe(24))
    args = {"connect_timeout": 10, **(connect_args or {})}
    engine = create_engine(wrong, poolclass=NullPool, connect_args=args)
    try:
        with engine.connect() as conn:
            where = _trust_line(conn)
    except SQLAlchemyError:
        return None  # refused (or unreachable): the server did not let a wrong password in
    finally:
        engine.dispose()
    return (
        f"the server at {parsed.host}:{parsed.port or 5432} let {parsed.username} in with a "
        f"wrong password: it checks no passwords (trust authentication). In {where}, change "
        f"`trust` to `scram-sha-256` (e.g. `host  {parsed.database or 'all'}  all  "
        "10.0.0.0/8  scram-sha-256` for your workstations' network) and reload the server "
        "(SELECT pg_reload_conf()). Only for a test server: "
        f"{ALLOW_ENV}=1"
    )


def _trust_line(conn) -> str:
    """Which line of which file, when the role may read it (a superuser); else the file."""
    try:
        hba = conn.execute(text("SHOW hba_file")).scalar()
    except SQLAlchemyError:
        return "the server's pg_hba.conf"
    where = f"pg_hba.conf ({hba})"
    try:
        lines = conn.execute(
            text(
                "SELECT line_number FROM pg_hba_file_rules "
                "WHERE auth_method = 'trust' AND type LIKE 'host%' ORDER BY line_number"
            )
        ).scalars()
        numbers = [str(n) for n in lines]
    except SQLAlchemyError:
        return where
    if not numbers:
        return where
    return f"{where}, line {', '.join(numbers)},"


def warning(explanation: str) -> str:
    """What is printed when the opt-out lets such a server through."""
    return (
        f"WARNING: {ALLOW_ENV} is set, so this goes on although {explanation.split(':', 1)[0]}: "
        "ANYONE CAN SIGN IN AS ANYONE. Never on a real team server."
    )
