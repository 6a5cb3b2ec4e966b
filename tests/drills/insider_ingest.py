"""The insider drill's ingest rows (issue 21): an admin (the role that may ingest) and a
moderator with psql on their own logins try to write items, signals and sightings around the
server's write API (app/storage/sql/api_ingest.sql), or to make it record what the files do not
say: an auto-match naming an entry that matches none of the item's hashes, a cluster with an
item that is no near-duplicate, a time from the future, values Hashdesk never writes. Each is
refused and leaves the record as it was (:func:`fingerprint`). Run on the person's own
connection:

    facts = insider.setup(server, tmp); prepare(server, facts)
    with insider.psql(server, "root") as conn: insider.run(conn, attempts(facts))
    with insider.psql(server, "mo") as conn: insider.run(conn, moderator_attempts(facts))
"""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import text

from tests.drills.insider import TABLES, Attempt

INGEST_TABLES = (*TABLES, "sightings")


def fingerprint(server) -> str:
    """A digest of every row of the record's tables and the sightings (read as the owner)."""
    h = hashlib.sha256()
    with server.owner.engine.connect() as conn:
        for table in INGEST_TABLES:
            for row in conn.execute(text(f"SELECT * FROM {table} ORDER BY id")):
                h.update(repr(tuple(row)).encode())
    return h.hexdigest()


def prepare(server, facts) -> None:
    """What the rows name: ``entry`` (an active local PDQ entry of mo's confirm, and its value),
    ``open_item`` (an item still in the queue) and ``far_pdq`` (a PDQ far from every one of the
    confirmed item's hashes: each bit of the entry's flipped)."""
    with server.owner.engine.connect() as conn:
        entry, value = conn.execute(
            text(
                "SELECT id, value FROM hash_list WHERE algorithm = 'pdq' AND variant = '' "
                "AND retracted_at IS NULL ORDER BY id LIMIT 1"
            )
        ).one()
        facts["open_item"] = conn.execute(
            text("SELECT id FROM items WHERE status = 'queued' ORDER BY id LIMIT 1")
        ).scalar_one()
    facts["entry"], facts["entry_value"] = entry, value
    facts["far_pdq"] = f"{int(value, 16) ^ ((1 << 256) - 1):064x}"


def batch(*items: dict, policy: dict | None = None) -> dict:
    return {
        "policy": policy or {"pdq_threshold": 31, "phash_threshold": 10, "flood_per_hour": 50},
        "items": list(items),
    }


def item(n: int, **over) -> dict:
    """A new file's record, valid as it is (``over`` replaces what an attempt forges)."""
    sha = hashlib.sha256(f"insider ingest {n}".encode()).hexdigest()
    out = {
        "sha256": sha,
        "md5": hashlib.md5(sha.encode()).hexdigest(),
        "kind": "image",
        "mime": "image/jpeg",
        "size": 1234,
        "width": 64,
        "height": 48,
        "duration": None,
        "content_key": sha,
        "preview_key": None,
        "preview_frames": 1,
        "error": None,
        "signals": [["md5", hashlib.md5(sha.encode()).hexdigest(), None, None, ""]],
        "sighting": {
            "source": "psql",
            "external_id": None,
            "source_url": None,
            "original_name": "x.jpg",
            "reason": None,
            "score": None,
            "flagged_at": "2026-01-01T00:00:00",
            "deadline": None,
        },
    }
    out.update(over)
    return out


def _call(b: dict) -> str:
    return f"SELECT * FROM hd_api_record_items($j${json.dumps(b)}$j$::jsonb)"


def _sighting(**over) -> dict:
    s = item(0)["sighting"]
    s.update(over)
    return s


def attempts(facts) -> list[Attempt]:
    """The admin's (root) rows."""
    entry, far, open_item = facts["entry"], facts["far_pdq"], facts["open_item"]
    sha = "ab" * 32
    known = {"entry": entry, "distance": 3, "resolve": True, "note": "matches"}
    return [
        Attempt(
            "INSERT an item by hand",
            "INSERT INTO items (sha256, md5, kind, size, status, priority, preview_frames, "
            f"created_at, updated_at) VALUES ('{sha}', '', 'image', 1, 'queued', 0, 1, "
            "'2999-01-01', now())",
            "refused",
        ),
        Attempt(
            "INSERT a signal into an existing item",
            "INSERT INTO signals (item_id, algorithm, value, variant) VALUES "
            f"({open_item}, 'pdq', '{facts['entry_value']}', '')",
            "refused",
        ),
        Attempt(
            "INSERT a sighting (a removal order's deadline)",
            "INSERT INTO sightings (item_id, source, flagged_at, deadline, created_at) VALUES "
            f"({open_item}, 'x', now(), now(), now())",
            "refused",
        ),
        Attempt(
            "UPDATE an item to auto_matched",
            f"UPDATE items SET status = 'auto_matched' WHERE id = {open_item}",
            "refused",
        ),
        Attempt(
            "UPDATE an item into another's cluster",
            f"UPDATE items SET cluster_id = {facts['confirmed'].item_id} WHERE id = {open_item}",
            "refused",
        ),
        Attempt(
            "UPDATE an item's deadline, priority, created_at",
            "UPDATE items SET deadline = now(), priority = 9, created_at = '2999-01-01' "
            f"WHERE id = {open_item}",
            "refused",
        ),
        Attempt(
            "DELETE signals, sightings, items",
            "DELETE FROM signals; DELETE FROM sightings; DELETE FROM items",
            "refused",
        ),
        Attempt(
            "set the flood guard on an entry by hand",
            f"UPDATE hash_list SET flood_guarded_at = now(), changed_at = now() WHERE id = {entry}",
            "refused",
        ),
        Attempt(
            "append an auto-match decision directly (hd_append_decision)",
            "SELECT hd_append_decision('00000000-0000-4000-8000-00000000f00d', "
            f"{open_item}, NULL, 'confirm', NULL, NULL, 'x', 'auto_match', NULL, NULL, {entry}, "
            "0, NULL)",
            "refused",
        ),
        Attempt(
            "a forged auto-match: an entry none of the item's hashes is near",
            _call(batch(item(1, signals=[["pdq", far, 100, None, ""]], known=known))),
            "refused",
        ),
        Attempt(
            "a forged auto-match: an entry matched by a hash of another algorithm",
            _call(
                batch(
                    item(
                        2,
                        signals=[["phash", facts["entry_value"][:16], None, None, ""]],
                        known=known,
                    )
                )
            ),
            "refused",
        ),
        Attempt(
            "a forged auto-match: a distance beyond the threshold",
            _call(
                batch(
                    item(
                        3,
                        signals=[["pdq", facts["entry_value"], 100, None, ""]],
                        known=dict(known, distance=200),
                    )
                )
            ),
            "refused",
        ),
        Attempt(
            "a forged auto-match with a threshold of 256 (the policy the client sends)",
            _call(
                batch(
                    item(4, signals=[["pdq", far, 100, None, ""]], known=known),
                    policy={"pdq_threshold": 256, "phash_threshold": 10, "flood_per_hour": 50},
                )
            ),
            "refused",
        ),
        Attempt(
            "a forged cluster: an open item that is no near-duplicate",
            _call(batch(item(5, signals=[["pdq", far, 100, None, ""]], cluster=open_item))),
            "refused",
        ),
        Attempt(
            "a cluster naming no item",
            _call(batch(item(6, cluster=4 * 10**18))),
            "refused",
        ),
        Attempt(
            "a cluster naming a later position of the batch",
            _call(batch(item(7, cluster_in_batch=3))),
            "refused",
        ),
        Attempt("a SHA-256 that is not one", _call(batch(item(8, sha256="x" * 64))), "refused"),
        Attempt(
            "an algorithm Hashdesk does not know",
            _call(batch(item(9, signals=[["sha1", "ab" * 20, None, None, ""]]))),
            "refused",
        ),
        Attempt(
            "a PDQ of the wrong length",
            _call(batch(item(10, signals=[["pdq", "ab" * 16, 100, None, ""]]))),
            "refused",
        ),
        Attempt(
            "a quality out of range",
            _call(batch(item(11, signals=[["pdq", far, 1000, None, ""]]))),
            "refused",
        ),
        Attempt("a media kind Hashdesk does not know", _call(batch(item(12, kind="x"))), "refused"),
        Attempt("a negative size", _call(batch(item(13, size=-1))), "refused"),
        Attempt(
            "a report received in the future",
            _call(batch(item(14, sighting=_sighting(flagged_at="2999-01-01T00:00:00")))),
            "refused",
        ),
        Attempt(
            "a deadline before the report was received",
            _call(batch(item(15, sighting=_sighting(deadline="2025-01-01T00:00:00")))),
            "refused",
        ),
        Attempt(
            "a valid file after a bad one (the whole call refused)",
            _call(batch(item(16), item(17, size=-5))),
            "refused",
        ),
    ]


def moderator_attempts(facts) -> list[Attempt]:
    """A moderator's (mo) rows: no ingest at all."""
    return [
        Attempt("record a file (no ingest permission)", _call(batch(item(20))), "refused"),
        Attempt(
            "INSERT an item by hand",
            "INSERT INTO items (sha256, md5, kind, size, status, priority, preview_frames, "
            f"created_at, updated_at) VALUES ('{'cd' * 32}', '', 'image', 1, 'queued', 0, 1, "
            "now(), now())",
            "refused",
        ),
        Attempt(
            "INSERT a signal",
            "INSERT INTO signals (item_id, algorithm, value, variant) VALUES "
            f"({facts['open_item']}, 'md5', '{'0' * 32}', '')",
            "refused",
        ),
    ]
