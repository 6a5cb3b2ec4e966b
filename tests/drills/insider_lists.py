"""The insider drill's hash-list rows (issue 21): a lead, a moderator and an admin with psql on
their own logins try to change the lists behind the server's functions (app/storage/sql/
api_lists.sql), or to make the functions do what their role may not. Each attempt is refused
and leaves the record as it was (:func:`fingerprint`, which also covers the lists' rules and
feedback). Run with tests.drills.insider.run on the person's own connection:

    facts = insider.setup(server, tmp); facts["prefix"] = server.prefix
    prepare(server, facts)
    with insider.psql(server, "lena") as conn: insider.run(conn, attempts(facts))
    with insider.psql(server, "mo") as conn: insider.run(conn, moderator_attempts(facts))
    with insider.psql(server, "root") as conn: insider.run(conn, admin_attempts(facts))
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import select, text

from app.storage.hash_lists import HashListService
from app.storage.models import HashListEntry
from tests.drills.insider import TABLES, Attempt

LIST_TABLES = (*TABLES, "hash_lists", "hash_list_feedback")


def fingerprint(server) -> str:
    """A digest of every row of the record's tables and the lists' (read as the owner)."""
    h = hashlib.sha256()
    with server.owner.engine.connect() as conn:
        for table in LIST_TABLES:
            for row in conn.execute(text(f"SELECT * FROM {table} ORDER BY id")):
                h.update(repr(tuple(row)).encode())
    return h.hexdigest()


def prepare(server, facts, tmp: Path) -> None:
    """A partner list imported by the admin (two entries): ``partner_entry`` is one of them,
    ``local_entry`` a row of mo's confirm."""
    path = tmp / "partner.txt"
    path.write_text(f"pdq {'ab' * 32}\npdq {'cd' * 32}\n")
    HashListService(facts["rootdb"]).import_file(path, "partner", actor=facts["root"])
    with server.owner.session() as s:
        facts["partner_entry"] = s.scalar(
            select(HashListEntry.id).where(HashListEntry.list_name == "partner").limit(1)
        )
        facts["local_entry"] = s.scalar(
            select(HashListEntry.id).where(HashListEntry.list_name == "local").limit(1)
        )


def attempts(facts) -> list[Attempt]:
    """As the lead (lena): the lists' writes by hand, and the functions beyond a lead's role."""
    e, lead = facts["partner_entry"], facts["lead"]
    return [
        Attempt(
            "disable an entry by hand (UPDATE disabled_at)",
            f"UPDATE hash_list SET disabled_at = now(), disabled_by = {lead.id}, "
            f"disabled_reason = 'x', changed_at = now() WHERE id = {e}",
            "refused",
        ),
        Attempt(
            "clear a flood guard by hand (UPDATE flood_guarded_at)",
            f"UPDATE hash_list SET flood_guarded_at = NULL, changed_at = now() WHERE id = {e}",
            "refused",
        ),
        Attempt(
            "move the watermark (UPDATE changed_at to 9999)",
            f"UPDATE hash_list SET changed_at = '9999-01-01' WHERE id = {e}",
            "refused",
        ),
        Attempt(
            "set a list's PDQ threshold to 256 by hand (UPDATE hash_lists)",
            "UPDATE hash_lists SET pdq_threshold = 256, policy = 'resolve'",
            "refused",
        ),
        Attempt(
            "make a list by hand (INSERT hash_lists)",
            "INSERT INTO hash_lists (name, policy, allow, created_at, updated_at) "
            "VALUES ('mine', 'resolve', false, now(), now())",
            "refused",
        ),
        Attempt(
            "write feedback by hand (INSERT hash_list_feedback)",
            "INSERT INTO hash_list_feedback (entry_id, user_id, verdict, created_at) "
            f"VALUES ({e}, {lead.id}, 'agree', now())",
            "refused",
        ),
        Attempt(
            "change a list's rule through the server (an admin's)",
            "SELECT hd_api_set_list_rule('partner', 'resolve', 40, false, NULL, NULL, false)",
            "refused",
        ),
        Attempt(
            "import into a list through the server (an admin's)",
            "SELECT * FROM hd_api_import_entries('partner', "
            f"""'[{{"algorithm": "pdq", "value": "{"ef" * 32}"}}]', '[]', '{{}}', '{{}}', """
            "'{}', NULL, NULL, NULL, NULL, NULL)",
            "refused",
        ),
        Attempt(
            "retract without a reason through the server",
            f"SELECT hd_api_retract_entries(ARRAY[{e}]::bigint[], '   ')",
            "refused",
        ),
        Attempt(
            "disable an unknown entry through the server",
            "SELECT hd_api_set_entry_disabled(ARRAY[999999999]::bigint[], true, 'x')",
            "refused",
        ),
        Attempt(
            "clear a flood guard that is not set, through the server",
            f"SELECT hd_api_clear_flood_guard({e}, 'checked')",
            "refused",
        ),
    ]


def moderator_attempts(facts) -> list[Attempt]:
    """As a moderator (mo): the lead's and admin's list functions, and feedback off-limits."""
    e, local = facts["partner_entry"], facts["local_entry"]
    return [
        Attempt(
            "retract an entry through the server (a lead's)",
            f"SELECT hd_api_retract_entries(ARRAY[{e}]::bigint[], 'not terrorist')",
            "refused",
        ),
        Attempt(
            "disable an entry through the server (a lead's)",
            f"SELECT hd_api_set_entry_disabled(ARRAY[{e}]::bigint[], true, 'benign')",
            "refused",
        ),
        Attempt(
            "clear a flood guard through the server (a lead's)",
            f"SELECT hd_api_clear_flood_guard({e}, 'checked')",
            "refused",
        ),
        Attempt(
            "feedback on our own (local) entry through the server",
            f"SELECT hd_api_list_feedback({local}, 'agree', NULL, NULL)",
            "refused",
        ),
        Attempt(
            "feedback with a verdict outside the vocabulary",
            f"SELECT hd_api_list_feedback({e}, 'maybe', NULL, NULL)",
            "refused",
        ),
        Attempt(
            "feedback in another person's name by hand",
            "INSERT INTO hash_list_feedback (entry_id, user_id, verdict, created_at) "
            f"VALUES ({e}, {facts['max'].id}, 'disagree', now())",
            "refused",
        ),
    ]


def admin_attempts(facts) -> list[Attempt]:
    """As the admin (root): values the server refuses, and the lists' tables by hand."""
    e = facts["partner_entry"]
    bad_part = "SELECT * FROM hd_api_import_entries('partner', '{}', '[]', NULL, NULL, '{{}}', "
    bad_part += "NULL, NULL, NULL, NULL, NULL)"
    return [
        Attempt(
            "a PDQ threshold of 256 through the server",
            "SELECT hd_api_set_list_rule('partner', 'resolve', 256, false, NULL, NULL, false)",
            "refused",  # "PDQ threshold 256 is out of range: use 0 to 64 ..."
        ),
        Attempt(
            "a policy outside the vocabulary through the server",
            "SELECT hd_api_set_list_rule('partner', 'always', NULL, false, NULL, NULL, false)",
            "refused",
        ),
        Attempt(
            "import a hash of the wrong length",
            bad_part.format(f'[{{"algorithm": "pdq", "value": "{"ab" * 31}"}}]'),
            "refused",
        ),
        Attempt(
            "import a hash of an unknown type",
            bad_part.format(f'[{{"algorithm": "crc32", "value": "{"ab" * 4}"}}]'),
            "refused",
        ),
        Attempt(
            "import a duplicate of an active entry",
            bad_part.format(f'[{{"algorithm": "pdq", "value": "{"ab" * 32}"}}]'),
            "refused",
        ),
        Attempt(
            "import an entry with quality 255",
            bad_part.format(f'[{{"algorithm": "pdq", "value": "{"ee" * 32}", "quality": 255}}]'),
            "refused",
        ),
        Attempt(
            "import an entry with its own time and author",
            bad_part.format(
                f'[{{"algorithm": "pdq", "value": "{"ee" * 32}", "added_by": 1, '
                '"added_at": "9999-01-01"}]'
            ),
            "refused",
        ),
        Attempt(
            "retract our own (local) entry through an import",
            "SELECT * FROM hd_api_import_entries('partner', '[]', '[]', "
            f"ARRAY[{facts['local_entry']}]::bigint[], NULL, '{{}}', NULL, NULL, NULL, NULL, "
            "NULL)",
            "refused",
        ),
        Attempt(
            "import into the local list",
            "SELECT * FROM hd_api_import_entries('local', '[]', '[]', NULL, NULL, '{}', NULL, "
            "NULL, NULL, NULL, NULL)",
            "refused",
        ),
        Attempt(
            "an entry's quality set to 0 by hand",
            f"UPDATE hash_list SET quality = 0 WHERE id = {e}",
            "refused",
        ),
        Attempt(
            "a list's rule by hand (UPDATE hash_lists)",
            "UPDATE hash_lists SET pdq_threshold = 64",
            "refused",
        ),
    ]
