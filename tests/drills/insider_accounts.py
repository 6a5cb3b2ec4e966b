"""The insider drill's rows for accounts, exposure records and comfort defaults (issue 21): what a
moderator, a lead and an admin try with psql on their own login, and what the server answers.
Each list runs on that person's connection with ``insider.run``; :data:`BY_PERSON` pairs them.
Every attempt is expected refused except the few marked ``allowed`` (reads, and what PostgreSQL
lets every login do to itself: see :func:`attempts`). ``facts`` is ``insider.setup``'s, with
``prefix`` (the database's role prefix), ``item`` (an item id) and ``password`` (the people's
password: the one known-allowed attempt sets it again) added."""

from __future__ import annotations

import hashlib

from sqlalchemy import text

from tests.drills.insider import Attempt

#: A name made to break out of a quoted role name in SQL formatted from data (issue 21, 1).
HOSTILE = 'x"; GRANT "{prefix}admin" TO "{prefix}u_mo"; --'
#: One byte over the limit: refused, never truncated to another account's name.
LONG_NAME = "a" * 51

#: The record tables these rows touch beyond insider.TABLES, read as the owner.
TABLES = ("exposure_events", "comfort_preferences")


def fingerprint(server) -> str:
    """A digest of the rows of :data:`TABLES`, the users' password hashes and every role of
    the database with its memberships and settings (what an account change alters)."""
    h = hashlib.sha256()
    with server.owner.engine.connect() as conn:
        for table in TABLES:
            for row in conn.execute(text(f"SELECT * FROM {table} ORDER BY 1")):
                h.update(repr(tuple(row)).encode())
        for row in conn.execute(
            text(
                "SELECT r.rolname, r.rolcanlogin, r.rolconfig, "
                "ARRAY(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g "
                "ON g.oid = m.roleid WHERE m.member = r.oid ORDER BY 1) "
                "FROM pg_roles r WHERE starts_with(r.rolname, :p) ORDER BY 1"
            ),
            {"p": server.prefix},
        ):
            h.update(repr(tuple(row)).encode())
    return h.hexdigest()


def _exposure(item: int, seconds: str) -> str:
    return (
        f"SELECT hd_api_record_exposure(gen_random_uuid()::text, {item}, 'reveal', "
        f"now()::timestamp, {seconds}, 1)"
    )


def attempts(facts) -> list[Attempt]:
    """As a moderator (mo)."""
    mo, max_, root = facts["mo"], facts["max"], facts["root"]
    p, item = facts["prefix"], facts["item"]
    return [
        Attempt("read the accounts' password hashes", "SELECT password_hash FROM users", "refused"),
        Attempt("read whole account rows (SELECT *)", "SELECT * FROM users", "refused"),
        Attempt(
            "read the accounts without their hashes",
            "SELECT id, username, display_name, role, active FROM users",
            "allowed (4 rows)",
        ),
        Attempt(
            "make oneself an admin (UPDATE users)",
            f"UPDATE users SET role = 'admin' WHERE id = {mo.id}",
            "refused",
        ),
        Attempt(
            "re-enable or disable an account by hand",
            f"UPDATE users SET active = false WHERE id = {root.id}",
            "refused",
        ),
        Attempt(
            "INSERT an account",
            "INSERT INTO users (username, display_name, role, password_hash, active, "
            "created_at) VALUES ('eve', 'eve', 'admin', '', true, now())",
            "refused",
        ),
        Attempt("DELETE an account", f"DELETE FROM users WHERE id = {max_.id}", "refused"),
        Attempt(
            "create an account through the server function",
            "SELECT hd_api_account_create('eve', 'eve', 'admin', 'password123')",
            "refused",
        ),
        Attempt(
            "disable another account through the server function",
            "SELECT hd_api_account_disable('max')",
            "refused",
        ),
        Attempt(
            "set another person's password through the server function",
            "SELECT hd_api_account_set_password('max', 'another password 1')",
            "refused",
        ),
        Attempt(
            "call the internal enable/disable",
            "SELECT hd_account_activate('max', false)",
            "refused",
        ),
        Attempt(
            "call the account function of the older program",
            "SELECT hd_account_create('eve', 'eve', 'admin', 'password123')",
            "refused",
        ),
        Attempt(
            "take away another person's login (ALTER ROLE)",
            f'ALTER ROLE "{p}u_max" NOLOGIN',
            "refused",
        ),
        Attempt(
            "clear another person's timeouts (ALTER ROLE ... RESET)",
            f'ALTER ROLE "{p}u_max" RESET ALL',
            "refused",
        ),
        Attempt(
            "INSERT an exposure record by hand (own name)",
            "INSERT INTO exposure_events (uuid, user_id, item_id, kind, started_at, seconds, "
            f"area, recorded_at) VALUES (gen_random_uuid()::text, {mo.id}, {item}, 'reveal', "
            "now(), 1, 1, now())",
            "refused",
        ),
        Attempt(
            "INSERT an exposure record in another's name",
            "INSERT INTO exposure_events (uuid, user_id, item_id, kind, started_at, seconds, "
            f"area, recorded_at) VALUES (gen_random_uuid()::text, {max_.id}, {item}, 'reveal', "
            "now(), 1, 1, now())",
            "refused",
        ),
        Attempt("UPDATE exposure records", "UPDATE exposure_events SET seconds = 0", "refused"),
        Attempt("DELETE exposure records", "DELETE FROM exposure_events", "refused"),
        Attempt("record negative exposure seconds", _exposure(item, "-3600"), "refused"),
        Attempt("record more than a day of exposure", _exposure(item, "1e9"), "refused"),
        Attempt("record NaN exposure seconds", _exposure(item, "'NaN'"), "refused"),
        Attempt(
            "record exposure of an unknown kind",
            f"SELECT hd_api_record_exposure(gen_random_uuid()::text, {item}, 'nap', "
            "now()::timestamp, 1, 1)",
            "refused",
        ),
        Attempt(
            "record exposure for a share of the picture above 1",
            f"SELECT hd_api_record_exposure(gen_random_uuid()::text, {item}, 'reveal', "
            "now()::timestamp, 1, 50)",
            "refused",
        ),
        Attempt(
            "INSERT comfort defaults by hand (own row)",
            "INSERT INTO comfort_preferences (user_id, greyscale, blur_level, updated_at) "
            f"VALUES ({mo.id}, true, 1, now()) ON CONFLICT (user_id) DO NOTHING",
            "refused",
        ),
        Attempt(
            "change another person's comfort defaults",
            "UPDATE comfort_preferences SET blur_level = 0",
            "refused",
        ),
        Attempt("DELETE comfort defaults", "DELETE FROM comfort_preferences", "refused"),
        Attempt(
            "keep a blur level that does not exist",
            "SELECT hd_api_keep_comfort(true, 99)",
            "refused",
        ),
        Attempt(
            "lock the accounts (SELECT ... FOR UPDATE)",
            "SELECT id FROM users FOR UPDATE",
            "refused",
        ),
        # What PostgreSQL lets every login do to itself, whatever it is granted: set its own
        # password (here the same one again). The server cannot refuse it nor record it.
        Attempt(
            "change one's own password with ALTER ROLE (no audit event)",
            f"ALTER ROLE CURRENT_USER PASSWORD '{facts['password']}'",
            "allowed",
        ),
    ]


def lead_attempts(facts) -> list[Attempt]:
    """As a lead (lena)."""
    lead = facts["lead"]
    return [
        Attempt(
            "make oneself an admin (UPDATE users)",
            f"UPDATE users SET role = 'admin' WHERE id = {lead.id}",
            "refused",
        ),
        Attempt("read the accounts' password hashes", "SELECT password_hash FROM users", "refused"),
        Attempt(
            "disable a moderator through the server function",
            "SELECT hd_api_account_disable('mo')",
            "refused",
        ),
        Attempt(
            "set a moderator's password through the server function",
            "SELECT hd_api_account_set_password('mo', 'another password 1')",
            "refused",
        ),
        Attempt(
            "create an account through the server function",
            "SELECT hd_api_account_create('eve', 'eve', 'lead', 'password123')",
            "refused",
        ),
        Attempt("UPDATE everyone's exposure", "UPDATE exposure_events SET seconds = 0", "refused"),
        Attempt("DELETE everyone's exposure", "DELETE FROM exposure_events", "refused"),
    ]


def admin_attempts(facts) -> list[Attempt]:
    """As an admin (root): the account functions are theirs, but only for what Hashdesk makes."""
    p = facts["prefix"]
    hostile = HOSTILE.format(prefix=p)
    return [
        Attempt(
            "create an account named to inject SQL",
            f"SELECT hd_api_account_create('{hostile}', 'x', 'moderator', 'password123')",
            "refused",
        ),
        Attempt(
            "create an account with a 51-byte name",
            f"SELECT hd_api_account_create('{LONG_NAME}', 'x', 'moderator', 'password123')",
            "refused",
        ),
        Attempt(
            "create an account of an unknown role",
            "SELECT hd_api_account_create('eve', 'eve', 'owner', 'password123')",
            "refused",
        ),
        Attempt(
            "create an account with a 200-character display name",
            f"SELECT hd_api_account_create('eve', '{'d' * 200}', 'moderator', 'password123')",
            "refused",
        ),
        Attempt(
            "create an account with a 3-character password",
            "SELECT hd_api_account_create('eve', 'eve', 'moderator', 'abc')",
            "refused",
        ),
        Attempt(
            "create an account that exists (a second login for it)",
            "SELECT hd_api_account_create('mo', 'mo', 'admin', 'password123')",
            "refused",
        ),
        Attempt("disable one's own account", "SELECT hd_api_account_disable('root')", "refused"),
        Attempt(
            "disable a name that is no account",
            f"SELECT hd_api_account_disable('{hostile}')",
            "refused",
        ),
        Attempt(
            "INSERT an account by hand",
            "INSERT INTO users (username, display_name, role, password_hash, active, "
            "created_at) VALUES ('eve', 'eve', 'admin', '', true, now())",
            "refused",
        ),
        Attempt(
            "re-enable an account by hand (no event)",
            "UPDATE users SET active = true",
            "refused",
        ),
        Attempt("read the accounts' password hashes", "SELECT password_hash FROM users", "refused"),
        Attempt("create a role", f'CREATE ROLE "{p}u_eve" LOGIN', "refused"),
        Attempt(
            "GRANT a moderator the admin group",
            f'GRANT "{p}admin" TO "{p}u_mo"',
            "refused",
        ),
        Attempt(
            "change a person's password with ALTER ROLE (no event)",
            f"ALTER ROLE \"{p}u_mo\" PASSWORD 'another password 1'",
            "refused",
        ),
    ]


#: Whose connection runs which list.
BY_PERSON = (("mo", attempts), ("lena", lead_attempts), ("root", admin_attempts))
