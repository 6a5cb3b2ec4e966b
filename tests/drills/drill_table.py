"""The whole insider drill on one team server (issue 21): every person with psql on their own
login (a moderator, another moderator as the blind second reviewer, a lead, an admin) tries
every class of attack the drill lists (tests/drills/insider*.py), on a server set up as the
README sets it up (the owner a CREATEROLE login, not a superuser). Each attempt must get the
answer expected of it and leave the record byte for byte as it was. Used by
tests/storage/test_insider_drill.py; printable as the closing note's table:
``python -m tests.drills.drill_table`` (needs HASHDESK_TEST_POSTGRES_URL)."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.drills import (
    insider,
    insider_accounts,
    insider_core,
    insider_ingest,
    insider_lists,
    insider_review2,
)


def build(server, tmp: Path) -> dict:
    """Accounts, items, a confirm under blind second review, a reject, a partner list, list
    feedback and a badged copy: what every attempt list names."""
    facts = insider_review2.setup(server, tmp)
    facts["prefix"] = server.prefix
    facts["item"] = facts["confirmed"].item_id
    facts["password"] = server.PASSWORD
    insider_lists.prepare(server, facts, tmp)
    insider_ingest.prepare(server, facts)
    return facts


def plan(facts) -> list[tuple[str, list[insider.Attempt]]]:
    """(whose psql, their attempts), in the order they run."""
    return [
        ("mo", insider.moderator_attempts(facts)),
        ("mo", insider_core.moderator_attempts(facts)),
        ("max", insider.blind_attempts(facts)),
        ("max", insider_review2.attempts(facts)),
        *((name, make(facts)) for name, make in insider_accounts.BY_PERSON),
        ("lena", insider_lists.attempts(facts)),
        ("mo", insider_lists.moderator_attempts(facts)),
        ("root", insider_lists.admin_attempts(facts)),
        ("root", insider_ingest.attempts(facts)),
        ("mo", insider_ingest.moderator_attempts(facts)),
    ]


def record(server) -> tuple[str, ...]:
    """Every table of the record, the lists, the sightings and the roles, digested."""
    return (
        insider.fingerprint(server),
        insider_accounts.fingerprint(server),
        insider_lists.fingerprint(server),
        insider_ingest.fingerprint(server),
    )


def run(server, facts) -> list[tuple[str, insider.Outcome]]:
    out: list[tuple[str, insider.Outcome]] = []
    for person, attempts in plan(facts):
        with insider.psql(server, person) as conn:
            out += [(person, o) for o in insider.run(conn, attempts)]
    return out


ROLE_OF = {"mo": "moderator", "max": "moderator (blind 2nd)", "lena": "lead", "root": "admin"}


def table(rows: list[tuple[str, insider.Outcome]]) -> list[str]:
    lines = ["| attempt | role | server's answer |", "| --- | --- | --- |"]
    for person, o in rows:
        answer = o.result.replace("|", "\\|")
        lines.append(f"| {o.label} | {ROLE_OF[person]} | {answer} |")
    return lines


def main() -> None:  # pragma: no cover - a printing aid for the closing note
    import tempfile

    import tests.conftest as conftest

    schema = f"t_drill_{uuid.uuid4().hex[:8]}"
    server = conftest.TeamServer(schema, owner=conftest.create_team_schema(schema))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            facts = build(server, Path(tmp))
            before = record(server)
            rows = run(server, facts)
            print("\n".join(table(rows)))
            print(f"\n{len(rows)} attempts, {sum(o.result.startswith('refused') for _p, o in rows)}"
                  f" refused; unexpected: {[o.label for _p, o in rows if not o.as_expected]}; "
                  f"record unchanged: {record(server) == before}")  # fmt: skip
    finally:
        server.close()


if __name__ == "__main__":  # pragma: no cover
    main()
