"""The insider drill: a moderator opens psql with their own credentials and tries to change the
record behind the application's back. Each attempt is plain SQL on the moderator's own
connection (psycopg, as psql would send it); the drill says what the server answered and
whether anything changed. Used by tests/storage/test_server_enforced.py, and printable as a
table: ``python -m tests.drills.insider`` (needs HASHDESK_TEST_POSTGRES_URL)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.core.ingest.contentstore import ContentStore
from app.core.model.decisions import DecisionRequest
from app.core.model.domain import Role, Verdict
from app.storage.review import ReviewService
from tests.helpers import ingest, write_samples

TABLES = ("users", "items", "signals", "decisions", "hash_list", "audit_events", "second_reviews")


@dataclass(frozen=True)
class Attempt:
    label: str
    sql: str
    expect: str  # "refused" or "allowed"


@dataclass(frozen=True)
class Outcome:
    label: str
    expect: str
    result: str  # "refused: <server message>" or "allowed"

    @property
    def as_expected(self) -> bool:
        return self.result.split(":", 1)[0].split(" (", 1)[0] == self.expect.split(" (", 1)[0] and (
            " (" not in self.expect or self.result == self.expect
        )


def fingerprint(server) -> str:
    """A digest of every row of the record's tables, read as the owner."""
    h = hashlib.sha256()
    with server.owner.engine.connect() as conn:
        for table in TABLES:
            for row in conn.execute(text(f"SELECT * FROM {table} ORDER BY id")):
                h.update(repr(tuple(row)).encode())
    return h.hexdigest()


def psql(server, username: str) -> psycopg.Connection:
    """What psql with the person's own credentials gives: a plain connection, autocommit."""
    url = make_url(server.url_for(username))
    opts = url.query.get("options")
    return psycopg.connect(
        host=url.host,
        port=url.port or 5432,
        dbname=url.database,
        user=url.username,
        password=url.password,
        options=opts if isinstance(opts, str) else None,
        autocommit=True,
    )


def run(conn: psycopg.Connection, attempts: list[Attempt]) -> list[Outcome]:
    out = []
    for a in attempts:
        try:
            cur = conn.execute(a.sql)
            rows = cur.fetchall() if cur.description else None
            result = "allowed" if rows is None else f"allowed ({len(rows)} rows)"
        except psycopg.Error as exc:
            result = "refused: " + str(exc).strip().splitlines()[0].removeprefix("hashdesk: ")
        out.append(Outcome(a.label, a.expect, result))
    return out


def setup(server, tmp: Path):
    """Accounts (an admin, a lead, two moderators), three items ingested by the admin, one
    confirmed by mo (queued for blind second review), one rejected."""
    root = server.add("root", Role.ADMIN)
    rootdb = server.connect("root")
    lead = server.add("lena", Role.LEAD, actor=root, via=rootdb)
    mo = server.add("mo", Role.MODERATOR, actor=root, via=rootdb)
    max_ = server.add("max", Role.MODERATOR, actor=root, via=rootdb)
    store = ContentStore(tmp / "media")
    server.set_second_review_share(1.0)  # the server draws: every decision is sampled
    assert ingest(rootdb, store, write_samples(tmp / "in", range(3))).new == 3
    review = ReviewService(server.connect("mo"), second_review_share=1.0)
    first = review.claim_next(mo.id)
    confirmed = review.decide(DecisionRequest(first.id, mo.id, Verdict.CONFIRM, "glorification"))
    second = review.claim_next(mo.id)
    review.decide(DecisionRequest(second.id, mo.id, Verdict.REJECT))
    return {
        "root": root,
        "lead": lead,
        "mo": mo,
        "max": max_,
        "confirmed": confirmed,
        "rootdb": rootdb,
        "store": store,
    }


def moderator_attempts(facts) -> list[Attempt]:
    mo, max_ = facts["mo"], facts["max"]
    c = facts["confirmed"]
    return [
        Attempt(
            "UPDATE decisions (change a verdict)",
            "UPDATE decisions SET verdict = 'reject'",
            "refused",
        ),
        Attempt("DELETE decisions", "DELETE FROM decisions", "refused"),
        Attempt(
            "INSERT a decision in another moderator's name",
            f"INSERT INTO decisions (uuid, item_id, user_id, verdict, method, decided_at, "
            f"recorded_at, prev_hash, entry_hash) VALUES ('forged-1', {c.item_id}, "
            f"{max_.id}, 'confirm', 'manual', now(), now(), 'x', 'y')",
            "refused",
        ),
        Attempt(
            "INSERT a system auto-match decision",
            f"INSERT INTO decisions (uuid, item_id, user_id, verdict, method, decided_at, "
            f"recorded_at, prev_hash, entry_hash) VALUES ('forged-2', {c.item_id}, NULL, "
            "'confirm', 'auto_match', now(), now(), 'x', 'y')",
            "refused",
        ),
        Attempt(
            "INSERT a decision off the chain head",
            f"INSERT INTO decisions (uuid, item_id, user_id, verdict, method, decided_at, "
            f"recorded_at, prev_hash, entry_hash) VALUES ('forged-3', {c.item_id}, {mo.id},"
            " 'skip', 'manual', now(), now(), repeat('0', 64), 'y')",
            "refused",
        ),
        Attempt(
            "INSERT a forged PDQ into the hash list",
            "INSERT INTO hash_list (algorithm, value, list_name, decision_uuid, item_id, "
            f"added_by, added_at) VALUES ('pdq', repeat('ab', 32), 'local', '{c.uuid}', "
            f"{c.item_id}, {mo.id}, now())",
            "refused",
        ),
        Attempt(
            "INSERT a hash into a partner list",
            "INSERT INTO hash_list (algorithm, value, list_name, added_by, added_at) "
            f"VALUES ('pdq', repeat('cd', 32), 'partner', {mo.id}, now())",
            "refused",
        ),
        Attempt(
            "UPDATE a hash-list value", "UPDATE hash_list SET value = repeat('ef', 32)", "refused"
        ),
        Attempt(
            "retract a hash by hand (no undo, no event)",
            f"UPDATE hash_list SET retracted_at = now(), retracted_by = {mo.id}, "
            "retraction_reason = 'oops'",
            "refused",
        ),
        Attempt("DELETE hash-list rows", "DELETE FROM hash_list", "refused"),
        Attempt("UPDATE audit events", "UPDATE audit_events SET subject = 'x'", "refused"),
        Attempt("DELETE audit events", "DELETE FROM audit_events", "refused"),
        Attempt(
            "INSERT an audit event in the admin's name",
            "INSERT INTO audit_events (uuid, kind, actor_id, actor_name, occurred_at, "
            f"prev_hash, entry_hash) VALUES ('forged-4', 'user_added', {facts['root'].id},"
            " 'root', now(), 'x', 'y')",
            "refused",
        ),
        Attempt(
            "make oneself an admin (UPDATE users)",
            f"UPDATE users SET role = 'admin' WHERE id = {mo.id}",
            "refused",
        ),
        Attempt(
            "INSERT an account",
            "INSERT INTO users (username, display_name, role, "
            "password_hash, active, created_at) VALUES ('eve', 'eve', 'admin', '', true, "
            "now())",
            "refused",
        ),
        Attempt("DELETE an account", f"DELETE FROM users WHERE id = {max_.id}", "refused"),
        Attempt(
            "create an account through the server function",
            "SELECT hd_api_account_create('eve', 'eve', 'admin', 'password123')",
            "refused",
        ),
        Attempt(
            "GRANT oneself the admin group",
            f'GRANT "{facts["prefix"]}admin" TO CURRENT_USER',
            "refused",
        ),
        Attempt(
            "claim an item in another moderator's name",
            f"UPDATE items SET claimed_by = {max_.id}, status = 'claimed'",
            "refused",
        ),
        Attempt(
            "mark an item decided without a decision",
            "UPDATE items SET status = 'decided'",
            "refused",
        ),
        Attempt(
            "read one's own decisions",
            f"SELECT * FROM decisions WHERE user_id = {mo.id}",
            "allowed",
        ),
    ]


def blind_attempts(facts) -> list[Attempt]:
    c = facts["confirmed"]
    return [
        Attempt(
            "read the first decision of an item under second review",
            f"SELECT verdict FROM decisions WHERE item_id = {c.item_id} AND verdict <> "
            "'undo' LIMIT 1 -- expect no row",
            "allowed (0 rows)",
        ),
        Attempt(
            "read the hashes that decision added",
            f"SELECT value FROM hash_list WHERE item_id = {c.item_id}",
            "allowed (0 rows)",
        ),
    ]


def main() -> None:  # pragma: no cover - a printing aid for the closing note
    import tempfile

    from sqlalchemy import create_engine

    import tests.conftest as conftest

    schema = "t_drill_" + hashlib.sha256(str(Path.cwd()).encode()).hexdigest()[:6]
    admin = create_engine(conftest.PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        left = conn.execute(
            text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": f"{schema}_owner"}
        ).first()
        if left:  # an earlier run's owner
            conn.execute(text(f'DROP OWNED BY "{schema}_owner"'))
            conn.execute(text(f'DROP ROLE "{schema}_owner"'))
    admin.dispose()
    owner = conftest.create_team_schema(schema)
    server = conftest.TeamServer(schema, owner=owner)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            facts = setup(server, Path(tmp))
            facts["prefix"] = server.prefix
            before = fingerprint(server)
            with psql(server, "mo") as conn:
                rows = run(conn, moderator_attempts(facts))
            with psql(server, "max") as conn:
                rows += run(conn, blind_attempts(facts))
            print("| attempt (as moderator, own credentials, psql) | server answer |")
            print("| --- | --- |")
            for r in rows:
                print(f"| {r.label} | {r.result} |")
            print(f"record unchanged: {fingerprint(server) == before}")
    finally:
        server.close()


if __name__ == "__main__":  # pragma: no cover
    main()
