"""The insider drill's attempts on the record's core (issue 21's classes 2, 3, 5, 6 and 8): a
person with psql on their own login tries to choose ids, bend the chain, freeze or empty the
queue, freeze the matchers' watermarks, and plant an operator the server's functions would use.
Each is plain SQL on the person's own connection (tests.drills.insider.run)."""

from __future__ import annotations

import uuid

from tests.drills.insider import Attempt


def moderator_attempts(facts) -> list[Attempt]:
    c = facts["confirmed"]
    mo = facts["mo"]
    return [
        # 2: explicit ids
        Attempt(
            "insert a hash-list row with id 4e18 (freezes every loader)",
            "INSERT INTO hash_list (id, algorithm, value, list_name, decision_uuid, item_id, "
            f"added_by, added_at) VALUES (4000000000000000000, 'pdq', repeat('ab', 32), 'local',"
            f" '{c.uuid}', {c.item_id}, {mo.id}, now())",
            "refused",
        ),
        Attempt(
            "insert a decision with a huge id (the chain's head forever)",
            "INSERT INTO decisions (id, uuid, item_id, user_id, verdict, method, decided_at, "
            f"recorded_at, prev_hash, entry_hash) VALUES (9000000000000000000, "
            f"'{uuid.uuid4()}', {c.item_id}, {mo.id}, 'skip', 'manual', now(), now(), 'x', 'y')",
            "refused",
        ),
        Attempt(
            "move a sequence ahead of the others' inserts",
            "SELECT setval('decisions_id_seq', 9000000000000000000)",
            "refused",
        ),
        # 3: the chain
        Attempt(
            "append a decision with a chain entry of one's own making",
            "SELECT hd_append_decision("
            f"'{uuid.uuid4()}', {c.item_id}, {mo.id}, 'skip', NULL, NULL, NULL, 'manual', NULL)",
            "refused",
        ),
        Attempt(
            "append an audit event directly",
            "SELECT hd_append_audit('retraction', 'x', NULL)",
            "refused",
        ),
        # 5: the queue
        Attempt(
            "set every item's status to an unknown value",
            "UPDATE items SET status = 'gone'",
            "refused",
        ),
        Attempt(
            "park a claim with no lease",
            f"UPDATE items SET status = 'claimed', claimed_by = {mo.id}, lease_expires_at = NULL",
            "refused",
        ),
        Attempt(
            "hoard every item until 9999",
            "UPDATE items SET lease_expires_at = '9999-01-01'",
            "refused",
        ),
        Attempt(
            "lock every item (FOR UPDATE) and sit idle",
            "SELECT id FROM items FOR UPDATE",
            "refused",
        ),
        Attempt(
            "lock every second review (FOR SHARE)",
            "SELECT id FROM second_reviews FOR SHARE",
            "refused",
        ),
        Attempt(
            "lock the chain's row (stall every decision)",
            "SELECT * FROM hd_chain_lock FOR UPDATE",
            "refused",
        ),
        Attempt(
            "claim with a lease of one's own (the API takes none: nothing claimed, NULL)",
            "SELECT hd_api_claim('review', ARRAY[]::bigint[])",
            "allowed (1 rows)",
        ),
        # 6: watermarks from the client's clock
        Attempt(
            "retract by hand with retracted_at in 9999",
            "UPDATE hash_list SET retracted_at = '9999-01-01', retracted_by = "
            f"{mo.id}, retraction_reason = 'x' WHERE item_id = {c.item_id}",
            "refused",
        ),
        Attempt(
            "set changed_at in 9999",
            "UPDATE hash_list SET changed_at = '9999-01-01'",
            "refused",
        ),
        # 8: the functions' search path
        Attempt(
            "create an = operator in the app's schema",
            "CREATE FUNCTION always_true(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true'",
            "refused",
        ),
        Attempt(
            "create a table in the app's schema to shadow one",
            "CREATE TABLE users_shadow (id int)",
            "refused",
        ),
        Attempt(
            "a temporary table named like one of the record's",
            "CREATE TEMP TABLE decisions (id int)",
            "allowed",
        ),
    ]
