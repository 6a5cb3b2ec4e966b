"""The team server's program as SQL: no name reaches it unquoted, user names are held to the
rule everywhere (the service, the server's functions, the CHECK of migration 0011), an old
database with names outside the rule stops at the upgrade and says which, and the program
ships as package data."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import psycopg
import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from app.core.model.domain import Role
from app.core.model.roles import ROLE_PERMISSIONS, Permission
from app.storage import server_security
from app.storage.db import DatabaseError, alembic_config
from app.storage.server_roles import MAX_USERNAME, username_problem
from app.storage.users import UserError, UserService

ROOT = Path(__file__).resolve().parents[2]
SQL_DIR = ROOT / "app" / "storage" / "sql"
PW = "correct horse battery"


def hostile_names(prefix: str) -> list[str]:
    """Names that, formatted into ``GRANT "{group}" TO "{person}"`` (the old `db upgrade`),
    made their account a member of the admin group, or broke the upgrade."""
    admin = f"{prefix}admin"
    names = [
        f'm7q"; GRANT "{admin}" TO "{prefix}u_m7q"; --',
        f'eve7q" IN ROLE "{admin}',
        'x7q"y',
        "bob7q; DROP TABLE users",
    ]
    assert all(len(n) <= 64 for n in names)  # they fit the column: the server must judge them
    return names


REFUSED = ["Alice", "a b", "ann@example.org", "zoë", "x" * (MAX_USERNAME + 1), "", "a\nb", "a'b"]
ALLOWED = ["root", "mod-1", "j.smith", "lead_2", "x" * MAX_USERNAME, "0"]


# -- the rule, in Python and on the server ----------------------------------------------------


@pytest.mark.parametrize("name", REFUSED + hostile_names("hd12345678_"))
def test_users_add_refuses_names_outside_the_rule(db, name):
    users = UserService(db)
    admin = users.create_first_admin("root", PW)
    with pytest.raises(
        UserError, match=re.escape("lower-case letter a-z, a digit, '.', '_' or '-'")
    ):
        users.add(name, PW, Role.MODERATOR, actor=admin)
    assert [u.username for u in users.list()] == ["root"]


@pytest.mark.postgres
def test_the_rule_is_the_same_in_python_and_on_the_server(team_server):
    names = REFUSED + ALLOWED + hostile_names(team_server.prefix)
    with team_server.owner.engine.connect() as conn:
        on_server = {
            n: conn.execute(text("SELECT hd_valid_username(:n)"), {"n": n}).scalar() for n in names
        }
    assert on_server == {n: username_problem(n) is None for n in names}
    assert sum(on_server.values()) == len(ALLOWED)  # guard: both verdicts occur


@pytest.mark.postgres
def test_a_hostile_name_is_refused_on_the_team_server_and_makes_no_role(team_server):
    root = team_server.add("root", Role.ADMIN)
    rootdb = team_server.connect("root")
    before = _memberships(team_server)
    for name in hostile_names(team_server.prefix):
        with pytest.raises(UserError, match="is not allowed"):
            team_server.add(name, Role.MODERATOR, actor=root, via=rootdb)
    # The server's own account function refuses it too, before anything else.
    with psycopg.connect(**_owner_params(team_server), autocommit=True) as conn:
        for name in hostile_names(team_server.prefix):
            with pytest.raises(psycopg.errors.InvalidParameterValue, match="not a valid user"):
                conn.execute(
                    "SELECT hd_api_account_create(%s, 'd', 'moderator', 'pw 123 456 789')", (name,)
                )
    assert _memberships(team_server) == before
    assert _roles_like(team_server, "7q") == []


# -- db upgrade over rows written around the application ---------------------------------------


@pytest.mark.postgres
def test_upgrade_over_hostile_rows_neither_breaks_nor_grants(team_server):
    prefix = team_server.prefix
    team_server.add("root", Role.ADMIN)
    engine = team_server.owner.engine
    with engine.begin() as conn:  # the owner, around the application and its CHECK
        conn.execute(text("ALTER TABLE users DROP CONSTRAINT IF EXISTS ck_users_username"))
        for name in [*hostile_names(prefix), "plain"]:
            conn.execute(
                text(
                    "INSERT INTO users (username, display_name, role, password_hash, active, "
                    "created_at) VALUES (:u, 'x', 'moderator', '-', true, now())"
                ),
                {"u": name},
            )
    before = _memberships(team_server)

    assert server_security.install(engine) == prefix  # `db upgrade` again: no error

    after = _memberships(team_server)
    # The one valid account written around the application got its login role, as before...
    assert after - before == {(f"{prefix}moderator", f"{prefix}u_plain")}
    # ...and nothing else: no hostile name became a role, none joined a group.
    assert _roles_like(team_server, "7q") == []
    with engine.connect() as conn:
        admins = conn.execute(
            text(
                "SELECT m.rolname FROM pg_roles m WHERE starts_with(m.rolname, :p) "
                "AND pg_has_role(m.oid, :admin, 'MEMBER') ORDER BY 1"
            ),
            {"p": prefix, "admin": f"{prefix}admin"},
        ).scalars()
        assert list(admins) == [f"{prefix}admin", f"{prefix}u_root"]


# -- old databases ------------------------------------------------------------------------------


def _at_0008(db):
    command.downgrade(alembic_config(db.engine), "0008")
    assert db.current_revision() == "0008"


def _insert_user(conn, name: str) -> None:
    conn.execute(
        text(
            "INSERT INTO users (username, display_name, role, password_hash, active, created_at) "
            "VALUES (:u, :u, 'moderator', '-', true, CURRENT_TIMESTAMP)"
        ),
        {"u": name},
    )


@pytest.mark.postgres
def test_an_old_team_database_with_names_outside_the_rule_stops_and_says_which(team_server):
    db = team_server.owner
    _at_0008(db)
    with db.engine.begin() as conn:
        for name in ("Alice", "ann@example.org", "ok-name"):
            _insert_user(conn, name)
    with pytest.raises(DatabaseError) as caught:
        db.upgrade()
    message = str(caught.value)
    assert "'Alice', 'ann@example.org'" in message and "ok-name" not in message
    assert "UPDATE users SET username" in message  # what to do about it
    assert db.current_revision() == "0008"  # nothing half done
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE users SET username = 'alice' WHERE username = 'Alice'"))
        conn.execute(text("UPDATE users SET username = 'ann' WHERE username = 'ann@example.org'"))
    db.upgrade()
    assert db.current_revision() == db.head_revision()
    with pytest.raises(IntegrityError, match="ck_users_username"), db.engine.begin() as conn:
        _insert_user(conn, 'x"y')  # the owner too, from now on


def test_an_old_workstation_database_keeps_its_accounts(sqlite_db):
    # On SQLite a user name is no role name: old accounts stay; new ones follow the rule.
    _at_0008(sqlite_db)
    with sqlite_db.engine.begin() as conn:
        _insert_user(conn, "Alice")
    sqlite_db.upgrade()
    assert sqlite_db.current_revision() == sqlite_db.head_revision()
    users = UserService(sqlite_db)
    assert users.get("Alice") is not None
    with pytest.raises(UserError, match="is not allowed"):
        users.add("Bob", PW, Role.MODERATOR)


# -- the program --------------------------------------------------------------------------------


@pytest.mark.postgres
def test_the_owners_functions_run_with_the_catalog_first(team_server):
    with team_server.owner.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT p.proname, p.proconfig FROM pg_proc p "
                "WHERE p.pronamespace = current_schema()::regnamespace AND p.prosecdef"
            )
        ).all()
    assert len(rows) >= 15  # guard: the program is there
    expected = [f"search_path=pg_catalog, {team_server.schema}, pg_temp"]
    assert {name: config for name, config in rows if config != expected} == {}


@pytest.mark.postgres
def test_the_server_knows_each_roles_permissions(team_server):
    with team_server.owner.engine.connect() as conn:
        for role in Role:
            for perm in Permission:
                allowed = conn.execute(
                    text("SELECT hd_allowed(:r, :p)"), {"r": role.value, "p": perm.value}
                ).scalar()
                assert allowed == (perm in ROLE_PERMISSIONS[role]), (role, perm)


def test_the_server_program_takes_no_advisory_lock():
    """Anyone may take an advisory lock (and hold it to stall the record): the server's
    appends serialise on a row of hd_chain_lock instead, which people cannot lock."""
    for name in server_security.PROGRAM:
        assert "pg_advisory" not in server_security.program_sql(name), name


def test_the_program_ships_as_package_data():
    files = sorted(p.name for p in SQL_DIR.glob("*.sql"))
    assert sorted(server_security.PROGRAM) == files  # every file runs, none is missing
    assert all(server_security.program_sql(name).strip() for name in files)
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = data["tool"]["setuptools"]["package-data"]["app"]
    assert "storage/sql/*.sql" in globs
    spec = (ROOT / "packaging" / "hashdesk.spec").read_text(encoding="utf-8")
    assert '(str(ROOT / "app" / "storage" / "sql"), "app/storage/sql")' in spec


# -- helpers ------------------------------------------------------------------------------------


def _memberships(server) -> set[tuple[str, str]]:
    with server.owner.engine.connect() as conn:
        return set(
            conn.execute(
                text(
                    "SELECT g.rolname, m.rolname FROM pg_auth_members a "
                    "JOIN pg_roles g ON g.oid = a.roleid JOIN pg_roles m ON m.oid = a.member "
                    "WHERE starts_with(m.rolname, :p) OR starts_with(g.rolname, :p) "
                    "OR strpos(m.rolname, '7q') > 0"
                ),
                {"p": server.prefix},
            ).all()
        )


def _roles_like(server, fragment: str) -> list[str]:
    with server.owner.engine.connect() as conn:
        return list(
            conn.execute(
                text("SELECT rolname FROM pg_roles WHERE strpos(rolname, :f) > 0"), {"f": fragment}
            ).scalars()
        )


def _owner_params(server) -> dict:
    from sqlalchemy.engine import make_url

    url = make_url(server.owner_url)
    opts = url.query.get("options")
    return {
        "host": url.host,
        "port": url.port or 5432,
        "dbname": url.database,
        "user": url.username,
        "options": opts if isinstance(opts, str) else None,
    }
