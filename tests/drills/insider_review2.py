"""The insider drill for blind second review, escalations and overturns (issue 21, finding 4):
what a moderator tries with psql on their own login to read the first verdict of a decision
under blind second review, to close reviews without deciding, to review their own decision, or
to overturn. Run on the blind second reviewer's connection (``max`` of insider.setup, whose
decision of mo's is pending), with insider.run; tests/storage/test_second_review_server.py
runs it and checks the record is unchanged."""

from __future__ import annotations

from tests.drills.insider import Attempt

_UUID = "00000000-0000-4000-8000-00000000beef"


def attempts(facts) -> list[Attempt]:
    c = facts["confirmed"]
    item = c.item_id
    return [
        Attempt(
            "read the first verdict of a pending second review",
            f"SELECT first_verdict FROM second_reviews WHERE item_id = {item}",
            "refused",
        ),
        Attempt(
            "read every column of the second reviews", "SELECT * FROM second_reviews", "refused"
        ),
        Attempt(
            "read whether a done review agreed",
            "SELECT agreed, second_verdict FROM second_reviews",
            "refused",
        ),
        Attempt(
            "read the first decision of an item under second review",
            f"SELECT verdict FROM decisions WHERE item_id = {item} -- expect no row",
            "allowed (0 rows)",
        ),
        Attempt(
            "read the first decision by its UUID",
            f"SELECT verdict FROM decisions WHERE uuid = '{c.uuid}' -- expect no row",
            "allowed (0 rows)",
        ),
        Attempt(
            "read the hashes that decision added",
            f"SELECT value, category FROM hash_list WHERE item_id = {item}",
            "allowed (0 rows)",
        ),
        Attempt(
            "read the list feedback on the item",
            f"SELECT verdict FROM hash_list_feedback WHERE item_id = {item}",
            "allowed (0 rows)",
        ),
        Attempt(
            "read a later copy whose match note names the first decision's hash",
            f"SELECT match_note FROM items WHERE id = {facts.get('copy', 0)} "
            "-- the owner and mo see it",
            "allowed (0 rows)",
        ),
        Attempt(
            "set the review done, read the first decision, roll back (one transaction)",
            "DO $$ DECLARE n bigint; BEGIN "
            f"UPDATE second_reviews SET status = 'done' WHERE item_id = {item}; "
            f"SELECT count(*) INTO n FROM decisions WHERE item_id = {item}; "
            "RAISE EXCEPTION 'rolled back after reading % decisions', n; END $$",
            "refused",
        ),
        Attempt(
            "close every pending review as agreed without deciding",
            "UPDATE second_reviews SET status = 'done', agreed = true, done_at = now()",
            "refused",
        ),
        Attempt(
            "claim a second review by hand",
            f"UPDATE second_reviews SET status = 'claimed', claimed_by = {facts['max'].id}",
            "refused",
        ),
        Attempt(
            "queue a review of one's own making",
            "INSERT INTO second_reviews (item_id, first_decision_uuid, first_verdict, status, "
            f"created_at) VALUES ({item}, '{_UUID}', 'reject', 'pending', now())",
            "refused",
        ),
        Attempt("DELETE second reviews", "DELETE FROM second_reviews", "refused"),
        Attempt(
            "decide a second review one does not hold",
            f"SELECT * FROM hd_api_second_review_decide({item}, 'confirm', 'glorification', "
            f"NULL, NULL, '{_UUID}')",
            "refused",
        ),
        Attempt(
            "queue someone else's decision for second review",
            f"SELECT hd_api_queue_second_review('{c.uuid}', 1)",
            "refused",
        ),
        Attempt(
            "queue a decision through the internal function",
            f"SELECT hd_queue_second_review('{c.uuid}', 1)",
            "refused",
        ),
        Attempt(
            "a lease to the year 9999",
            "SELECT hd_api_second_review_claim('{}', 2000000000)",
            "refused",
        ),
        Attempt(
            "overturn mo's decision (a moderator)",
            f"SELECT * FROM hd_api_overturn('{c.uuid}', 'reject', NULL, 'I disagree')",
            "refused",
        ),
        Attempt(
            "resolve an escalation (a moderator)",
            f"SELECT * FROM hd_api_resolve_escalation({item}, 'reject', NULL, NULL, NULL, "
            f"'{_UUID}')",
            "refused",
        ),
        Attempt(
            "retract the item's hashes through the internal function",
            f"SELECT hd_retract_item_hashes({item}, {facts['max'].id}, 'x', '{c.uuid}')",
            "refused",
        ),
        Attempt(
            "add hashes through the internal function",
            f"SELECT hd_add_item_hashes('{c.uuid}', {item}, {facts['max'].id}, 'x')",
            "refused",
        ),
        Attempt(
            "change the server's second-review share",
            "UPDATE hd_second_review_setting SET share = 0",
            "refused",
        ),
        Attempt(
            "read which second reviews wait (no verdicts)",
            "SELECT id, item_id, status FROM second_reviews",
            "allowed (2 rows)",
        ),
    ]


def setup(server, tmp):
    """insider.setup, and what else gives a first verdict away: the list feedback mo's confirm
    recorded on its item, and a later copy (the third item) badged by a hash mo's confirm added,
    its match note naming it (both written as the owner, as ingest and decide write them)."""
    from sqlalchemy import select

    from app.storage.models import HashListEntry, HashListFeedback, Item
    from tests.drills import insider

    facts = insider.setup(server, tmp)
    c = facts["confirmed"]
    with server.owner.session() as s:
        entry = s.scalars(
            select(HashListEntry).where(HashListEntry.decision_uuid == c.uuid).limit(1)
        ).one()
        copy = s.scalars(
            select(Item).where(Item.status == "queued").order_by(Item.id).limit(1)
        ).one()
        copy.known_entry_id = entry.id
        copy.match_note = f"known match: matches hash-list entry #{entry.id} (list local); "
        copy.match_note += f"confirmed by mo on item #{c.item_id}"
        s.add(
            HashListFeedback(
                entry_id=entry.id, item_id=c.item_id, user_id=facts["mo"].id, verdict="agree"
            )
        )
        facts["copy"] = copy.id
    facts["prefix"] = server.prefix
    return facts
