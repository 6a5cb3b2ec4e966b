"""The whole insider drill on one team server (tests/drills/drill_table.py): every class of
issue 21, each person on their own psql login, each attempt answered as expected, the record
byte for byte unchanged and still verifying; and the server's functions cannot be led astray by
anything a person can create."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.core.model.domain import Role
from app.storage.audit import verify_chains
from app.storage.verification import verify_hash_list
from tests.drills import drill_table, insider

pytestmark = pytest.mark.postgres


def test_every_attempt_answered_as_expected_and_nothing_changed(team_server, tmp_path):
    facts = drill_table.build(team_server, tmp_path)
    before = drill_table.record(team_server)
    rows = drill_table.run(team_server, facts)
    unexpected = [(p, o) for p, o in rows if not o.as_expected]
    assert unexpected == []
    refused = sum(o.result.startswith("refused") for _p, o in rows)
    assert refused >= 150, refused
    assert {p for p, _o in rows} == {"mo", "max", "lena", "root"}
    assert drill_table.record(team_server) == before
    assert all(r.ok for r in verify_chains(team_server.owner))
    assert verify_hash_list(team_server.owner) == []


def test_no_person_holds_a_write_privilege_on_any_table(team_server):
    """What psql's \\dp shows a person: SELECT (some columns only) and nothing else."""
    team_server.add("root", Role.ADMIN)
    with insider.psql(team_server, "root") as conn:  # an admin: the widest group
        rows = conn.execute(
            "SELECT c.relname, p.privilege_type FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "CROSS JOIN LATERAL (VALUES ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE'), "
            "('REFERENCES'), ('TRIGGER')) p(privilege_type) "
            "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v') "
            "AND (has_table_privilege(c.oid, p.privilege_type) "
            "     OR has_any_column_privilege(c.oid, 'UPDATE') "
            "     OR has_any_column_privilege(c.oid, 'INSERT'))"
        ).fetchall()
        sequences = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND CASE WHEN c.relkind = 'S' "
            "THEN has_sequence_privilege(c.oid, 'USAGE') OR has_sequence_privilege(c.oid, "
            "'UPDATE') ELSE false END"
        ).fetchall()
    assert rows == [] and sequences == []


def test_every_server_function_runs_with_the_catalog_first(team_server):
    """A person who could create an operator or a table anywhere on the path cannot make a
    SECURITY DEFINER function use it: pg_catalog comes first, pg_temp last, and no one but
    the owner may create in the app's schema."""
    with team_server.owner.engine.connect() as conn:
        configs = conn.execute(
            text(
                "SELECT p.proname, p.proconfig FROM pg_proc p "
                "WHERE p.pronamespace = current_schema()::regnamespace AND p.prosecdef"
            )
        ).all()
        public_create = conn.execute(
            text("SELECT has_schema_privilege('public', current_schema(), 'CREATE')")
        ).scalar_one()
    assert len(configs) > 40
    for name, config in configs:
        path = next(c for c in config if c.startswith("search_path="))
        parts = [p.strip() for p in path.removeprefix("search_path=").split(",")]
        assert parts[0] == "pg_catalog" and parts[-1] == "pg_temp", (name, parts)
    assert public_create is False


def test_a_temporary_table_cannot_stand_in_for_the_record(team_server, tmp_path):
    facts = drill_table.build(team_server, tmp_path)
    with insider.psql(team_server, "mo") as conn:
        conn.execute("CREATE TEMP TABLE decisions (id int, uuid text)")
        conn.execute("CREATE TEMP TABLE items (id int, status text)")
        claimed = conn.execute(
            "SELECT hd_api_claim('review', ARRAY(SELECT id FROM pg_temp.items))"
        ).fetchone()
        assert claimed == (None,)  # read from the temporary table: nothing in it
        got = conn.execute(f"SELECT hd_api_claim('review', ARRAY[{facts['open_item']}])").fetchone()
        assert got == (facts["open_item"],)  # the server's items, not the temporary table
