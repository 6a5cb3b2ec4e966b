"""The server enforces the roles (team deployment on PostgreSQL).

Each Hashdesk account is its own PostgreSQL login role, a member of one group role per
Hashdesk role (lead includes moderator, admin includes lead), named per database
(app.storage.server_roles).

The program is SQL, in ``app/storage/sql/`` (:data:`PROGRAM`, run in that order, in one
transaction). What varies per database (the role prefix) and the role table (ROLE_PERMISSIONS)
reach it as settings bound by the driver (``hashdesk.role_prefix``,
``hashdesk.role_permissions``); the schema is the connection's own (``current_schema()``); the
server quotes every name itself (``format('%I')``). Nothing here formats SQL from data.

People write no table. Their groups are granted reads (narrowed by row-level security and
column grants: blind second review, own exposure, no password hashes) and EXECUTE on the write
API, the ``hd_api_*`` functions of ``api_*.sql``, and nothing else: no INSERT, UPDATE or
DELETE, no sequence, so no row lock either. Each function runs as the schema owner with
``search_path = pg_catalog, <schema>, pg_temp``, identifies the person by ``session_user``,
checks the account is active and its role allows the call, takes ids from the sequences and
times from the server's clock, appends the chain entries itself (``chain.sql``: under a row
lock on the chain's own row, which people cannot take) and writes the audit event of what it
did in the same call. The application calls the same functions (app.storage.server_api), so
the app and a person with psql have one way to change the record.

The schema owner (the role ``hashdesk db upgrade`` runs as) and superusers are trusted: they
can change anything anyway. SQLite (one workstation) has none of this; its files are readable
by their owner only (app.storage.db).
"""

from __future__ import annotations

import json
import weakref
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from app.core.errors import Refusal
from app.core.model.roles import ROLE_PERMISSIONS
from app.storage.server_roles import role_prefix

#: The server-side program's files, shipped as package data beside this module (the frozen
#: bundle puts them at the same place, like the migrations: packaging/hashdesk.spec).
SQL_DIR = Path(__file__).resolve().parent / "sql"
#: The server-side program, in the order it runs.
PROGRAM = (
    "roles.sql",  # the role prefix, the user-name rule, group roles, people's login roles
    "identity.sql",  # who is acting and what their role allows
    "chain.sql",  # the chains, appended by the server alone
    "api_review.sql",  # the moderators' writes: claim, renew, release, decide, undo
    "api_review2.sql",  # second review, escalations, overturn
    "api_accounts.sql",  # accounts: created, disabled, enabled, re-keyed, on the record
    "api_exposure.sql",  # exposure records and comfort defaults, in one's own name
    "api_lists.sql",  # the hash lists' writes: retract, disable, flood guard, rules, import
    "api_ingest.sql",  # ingest's writes: items, sightings, signals, auto-matches
    "api_tokens.sql",  # the HTTP intake's tokens (admins), reports without a file (leads)
    "api_intake.sql",  # the intake's writes: arrivals and their jobs, runs, failures, workers
    "api_incidents.sql",  # incidents declared, concluded, people moved; re-scans recorded
    "api_deltas.sql",  # hash deltas: taken, delivered or failed; a partner's imported in order
    "api_dense.sql",  # a confirmed video's dense frames, added after the confirm
    "retired.sql",  # what older programs installed (the write triggers): removed
    "row_security.sql",  # blind second review, own rows: row-level security
    "grants.sql",  # what each group may touch at all; the owner's functions' search path
)

_GIVE_CREATEROLE = "(a superuser gives it: ALTER ROLE <owner> CREATEROLE)"
_GIVE_SIGNAL = "(a superuser gives it: GRANT pg_signal_backend TO <owner>)"

_enforced: weakref.WeakKeyDictionary[Engine, bool] = weakref.WeakKeyDictionary()


class ServerSecurityError(Refusal, RuntimeError):
    pass


def enforced(engine: Engine) -> bool:
    """Whether this PostgreSQL database has the server-side checks installed."""
    if engine.dialect.name != "postgresql":
        return False
    known = _enforced.get(engine)
    if known is None:
        with engine.connect() as conn:
            known = conn.execute(text("SELECT to_regproc('hd_account') IS NOT NULL")).scalar()
        _enforced[engine] = bool(known)
    return bool(known)


def program_sql(name: str) -> str:
    """One file of the server-side program (:data:`PROGRAM`), from the package's data."""
    return (SQL_DIR / name).read_text(encoding="utf-8")


def _role_permissions() -> str:
    """ROLE_PERMISSIONS as the JSON list of ``[role, permission]`` pairs identity.sql reads."""
    return json.dumps(
        sorted([r.value, p.value] for r, perms in ROLE_PERMISSIONS.items() for p in perms)
    )


def install(engine: Engine) -> str:
    """Install (or bring up to date) the group roles, grants, checks and policies in the
    database ``engine`` points at, connected as the schema owner. Idempotent. Returns the role
    prefix. An account row whose name Hashdesk would not make (written around the
    application, on a database without the user-name check) gets no login role: the server
    warns and goes on."""
    if engine.dialect.name != "postgresql":
        raise ServerSecurityError("server-side roles exist only on PostgreSQL")
    program = [program_sql(name) for name in PROGRAM]
    with engine.begin() as conn:
        database, schema, owner, can_create, can_signal = conn.execute(
            text(
                "SELECT current_database(), current_schema(), current_user, "
                "(SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user), "
                "pg_has_role(current_user, 'pg_signal_backend', 'MEMBER')"
            )
        ).one()
        if not can_create:
            raise ServerSecurityError(
                f"{owner} cannot create roles: the schema owner needs CREATEROLE {_GIVE_CREATEROLE}"
            )
        if not can_signal:  # disabling an account ends its open sessions (api_accounts.sql)
            raise ServerSecurityError(
                f"{owner} cannot end a disabled person's open sessions: the schema owner needs "
                f"pg_signal_backend {_GIVE_SIGNAL.replace('<owner>', owner)}"
            )
        prefix = role_prefix(database, schema)
        # The program's parameters, for this transaction only: the functions it creates keep
        # this search path (SET search_path FROM CURRENT) until grants.sql puts pg_catalog
        # first.
        conn.execute(
            text(
                "SELECT set_config('search_path', "
                "quote_ident(current_schema()) || ', pg_catalog, pg_temp', true), "
                "set_config('hashdesk.role_prefix', :prefix, true), "
                "set_config('hashdesk.role_permissions', :permissions, true)"
            ),
            {"prefix": prefix, "permissions": _role_permissions()},
        )
        driver = conn.connection.driver_connection
        assert driver is not None
        for sql in program:
            driver.execute(sql)
    _enforced[engine] = True
    return prefix


def drop_roles(engine: Engine, prefix: str) -> None:
    """Remove every role of one Hashdesk database (its schema already dropped): tests, and
    taking a staging database down."""
    with engine.begin() as conn:
        conn.execute(
            text("SELECT set_config('hashdesk.role_prefix', :prefix, true)"), {"prefix": prefix}
        )
        conn.execute(
            text(
                "DO $$ DECLARE r text; BEGIN "
                "FOR r IN SELECT rolname FROM pg_roles "
                "WHERE starts_with(rolname, current_setting('hashdesk.role_prefix')) "
                "ORDER BY rolname DESC LOOP "
                "EXECUTE 'DROP ROLE IF EXISTS ' || quote_ident(r); END LOOP; END $$"
            )
        )
