"""A synthetic decision record for benchmarks: users, items with a sighting each, and N
decisions spread over 90 days, bulk-inserted (executemany on SQLite, COPY on PostgreSQL).

The decisions carry a valid hash chain continuing the database's own, so `hashdesk audit verify`
still holds on a benchmark database. Nothing here is used by the application itself.
"""

from __future__ import annotations

import hashlib
import random
import uuid as uuidlib
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import func, insert, select, text

from app.core.model.chain import GENESIS_HASH, chain_hash, decision_fields_of
from app.core.model.domain import utcnow
from app.core.model.security import hash_password
from app.storage.db import Database
from app.storage.models import Decision, Item, Sighting, User

SOURCES = ("user_report", "classifier", "removal_order", "partner_feed")
CATEGORIES = (
    ("imminent_threat", "Imminent credible threat"),
    ("graphic_violence", "Graphic violence against defenceless people"),
    ("glorification", "Glorification of terrorist acts"),
    ("radicalisation", "Radicalisation, recruitment or instruction"),
    ("attack_recording", "Livestreamed or recorded attack (CIP)"),
    ("manifesto", "Attacker manifesto"),
    ("branded", "Branded terrorist publication"),
)
NOTE_WORDS = ("satire", "news report", "flag only", "reupload", "logo", "training video", "meme")
VERDICTS = (("confirm", 35), ("reject", 50), ("skip", 8), ("escalate", 5), ("undo", 2))
METHODS = (("manual", 80), ("cluster", 12), ("auto_match", 6), ("second_review", 2))
DAYS = 90


def _weighted(rng: random.Random, table) -> Iterator[str]:
    names = [n for n, _ in table]
    weights = [w for _, w in table]
    while True:
        yield from rng.choices(names, weights, k=4096)


def ensure_users(db: Database, moderators: int = 20) -> dict[str, int]:
    pw = hash_password("benchmark-password")
    with db.session() as s:
        have = dict(s.execute(select(User.username, User.id)).all())
        for i in range(moderators):
            name = f"mod{i:02d}"
            if name not in have:
                s.add(User(username=name, display_name=name, role="moderator", password_hash=pw))
        if "benchlead" not in have:
            s.add(User(username="benchlead", display_name="Bench Lead", role="lead",
                       password_hash=pw))  # fmt: skip
        s.flush()
        return dict(s.execute(select(User.username, User.id)).all())


def _copy_or_insert(db: Database, table, rows: list[dict]) -> None:
    if not rows:
        return
    if db.dialect == "postgresql":
        cols = list(rows[0])
        raw = db.engine.raw_connection()
        try:
            cur = raw.cursor()
            with cur.copy(f"COPY {table.name} ({', '.join(cols)}) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row([r[c] for c in cols])
            raw.commit()
        finally:
            raw.close()
        return
    with db.engine.begin() as conn:
        conn.execute(insert(table), rows)


def generate(
    db: Database,
    decisions: int = 1_000_000,
    items: int = 200_000,
    seed: int = 5,
    progress: Callable[[str], None] | None = None,
) -> int:
    """Add ``decisions`` decisions (and ``items`` items to hang them on). Returns the count of
    decisions in the database afterwards."""
    say = progress or (lambda _m: None)
    rng = random.Random(seed)
    users = ensure_users(db)
    mods = [uid for name, uid in users.items() if name.startswith("mod")]
    now = utcnow().replace(microsecond=0)
    start = now - timedelta(days=DAYS)
    with db.session() as s:
        first_item = int(s.scalar(select(func.coalesce(func.max(Item.id), 0))) or 0) + 1
    say(f"inserting {items:,} items and sightings")
    batch = 50_000
    for lo in range(0, items, batch):
        item_rows, sighting_rows = [], []
        for k in range(lo, min(items, lo + batch)):
            iid = first_item + k
            created = start + timedelta(seconds=rng.random() * DAYS * 86400)
            source = SOURCES[k % len(SOURCES)]
            seedb = f"bench-{seed}-{iid}".encode()
            deadline = created + timedelta(hours=1) if source == "removal_order" else None
            item_rows.append(
                {
                    "id": iid,
                    "sha256": hashlib.sha256(seedb).hexdigest(),
                    "md5": hashlib.md5(seedb).hexdigest(),
                    "kind": "image",
                    "mime": "image/jpeg",
                    "size": 50_000 + k % 1000,
                    "width": 640,
                    "height": 480,
                    "duration": None,
                    "content_key": None,
                    "preview_key": None,
                    "preview_frames": 1,
                    "status": "decided",
                    "claimed_by": None,
                    "lease_expires_at": None,
                    "priority": 0,
                    "deadline": deadline,
                    "cluster_id": None,
                    "error": None,
                    "match_note": None,
                    "created_at": created,
                    "updated_at": created,
                }
            )
            sighting_rows.append(
                {
                    "item_id": iid,
                    "source": source,
                    "external_id": f"EXT-{iid}",
                    "source_url": None,
                    "original_name": None,
                    "reason": "benchmark",
                    "score": None,
                    "flagged_at": created,
                    "deadline": deadline,
                    "created_at": created,
                }
            )
        _copy_or_insert(db, Item.__table__, item_rows)
        _copy_or_insert(db, Sighting.__table__, sighting_rows)
    with db.session() as s:
        prev = s.scalar(select(Decision.entry_hash).order_by(Decision.id.desc()).limit(1))
        first_decision = int(s.scalar(select(func.coalesce(func.max(Decision.id), 0))) or 0) + 1
    prev = prev or GENESIS_HASH
    verdicts, methods = _weighted(rng, VERDICTS), _weighted(rng, METHODS)
    step = DAYS * 86400 / decisions
    say(f"inserting {decisions:,} decisions (hash-chained)")
    for lo in range(0, decisions, batch):
        rows = []
        for k in range(lo, min(decisions, lo + batch)):
            verdict, method = next(verdicts), next(methods)
            if method == "auto_match" and verdict != "confirm":
                verdict = "confirm"
            cat = CATEGORIES[k % len(CATEGORIES)] if verdict == "confirm" else (None, None)
            user = None if method == "auto_match" else mods[rng.randrange(len(mods))]
            note = rng.choice(NOTE_WORDS) if rng.random() < 0.1 else None
            at: datetime = start + timedelta(seconds=k * step + rng.random() * step)
            uuid = str(uuidlib.UUID(int=rng.getrandbits(128), version=4))
            item_id = first_item + rng.randrange(items)
            rows.append(
                {
                    "id": first_decision + k,
                    "uuid": uuid,
                    "item_id": item_id,
                    "user_id": user,
                    "verdict": verdict,
                    "category": cat[0],
                    "category_label": cat[1],
                    "note": note,
                    "method": method,
                    "supersedes": None,
                    "parent_uuid": None,
                    "matched_entry_id": None,
                    "match_distance": None,
                    "decided_at": at,
                    "recorded_at": at,
                    "hashes_digest": None,
                    "prev_hash": prev,
                }
            )
            # chain.py names the fields the hash covers; read them off the row as stored
            prev = chain_hash(prev, decision_fields_of(SimpleNamespace(**rows[-1])))
            rows[-1]["entry_hash"] = prev
        _copy_or_insert(db, Decision.__table__, rows)
        say(f"  {min(decisions, lo + batch):,} decisions")
    if db.dialect == "postgresql":
        with db.engine.begin() as conn:
            for t in ("items", "sightings", "decisions", "users"):
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT max(id) FROM {t}))"
                )
            conn.exec_driver_sql("ANALYZE")
    else:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(Decision)) or 0)


def fill_hash_list(
    db: Database,
    entries: int,
    list_name: str = "bench",
    batch: int = 1_000_000,
    progress: Callable[[str], None] | None = None,
) -> int:
    """Bring the active PDQ entries of the imported list ``list_name`` (policy ``resolve``) up
    to ``entries`` random hashes, generated by the database itself (``randomblob`` on SQLite,
    ``md5(random())`` on PostgreSQL: nothing crosses the connection). Returns how many entries
    the list holds."""
    from app.storage.models import HashList, HashListEntry

    with db.session() as s:
        if s.scalar(select(HashList.id).where(HashList.name == list_name)) is None:
            s.add(HashList(name=list_name, source="benchmark", policy="resolve"))
        have = int(
            s.scalar(
                select(func.count())
                .select_from(HashListEntry)
                .where(HashListEntry.list_name == list_name)
            )
            or 0
        )
    if db.dialect == "postgresql":
        value = "md5(random()::text) || md5(random()::text)"
        source = "generate_series(1, :n)"
        head = ""
    else:
        value = "lower(hex(randomblob(32)))"
        source = "c"
        head = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < :n) "
    sql = text(
        f"{head}INSERT INTO hash_list (algorithm, value, variant, list_name, external_id, "
        f"added_at) SELECT 'pdq', {value}, '', :name, NULL, :now FROM {source}"
    )
    while have < entries:
        n = min(batch, entries - have)
        with db.session() as s:
            s.execute(sql, {"n": n, "name": list_name, "now": utcnow()})
        have += n
        if progress is not None:
            progress(f"hash list {list_name!r}: {have:,} of {entries:,} entries")
    return have
