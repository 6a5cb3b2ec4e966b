"""Loading what is already known into memory for ingest: the hash list (for auto-match) and
the open queue (for near-duplicate clusters)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.core.domain import Algorithm, ItemStatus, Signal
from app.core.hash_index import HashIndex
from app.core.match_rules import MatchPolicy, index_signal
from app.storage.db import Database
from app.storage.models import HashListEntry, Item, SignalRow, User

OPEN_OR_CLAIMED = (ItemStatus.QUEUED.value, ItemStatus.UNREADABLE.value, ItemStatus.CLAIMED.value)


@dataclass(frozen=True)
class EntryFacts:
    id: int
    algorithm: str
    category: str | None
    list_name: str
    item_id: int | None
    decision_uuid: str | None
    added_by: str | None


def add_hash_list_rows(s: Session, index: HashIndex, policy: MatchPolicy, *where) -> int:
    """Index the active hash-list entries (keyed by row id, ref = their item) that satisfy
    ``where`` and are not in ``index`` yet. Returns how many were indexed (low-quality PDQ and
    query-only variants are not)."""
    rows = s.execute(
        select(
            HashListEntry.id,
            HashListEntry.algorithm,
            HashListEntry.value,
            HashListEntry.quality,
            HashListEntry.variant,
            HashListEntry.item_id,
        ).where(*where, HashListEntry.retracted_at.is_(None))
    )
    n = 0
    for row_id, algo, value, quality, variant, item_id in rows:
        if row_id in index:
            continue
        sig = Signal(Algorithm(algo), value, quality, variant=variant or "")
        n += index_signal(index, row_id, sig, item_id, policy)
    return n


def load_hash_index(db: Database, policy: MatchPolicy) -> HashIndex:
    """Every active (not retracted) hash-list entry, keyed by row id, ref = its item."""
    index = HashIndex()
    with db.session() as s:
        add_hash_list_rows(s, index, policy)
    return index


def load_queue_index(db: Database, policy: MatchPolicy) -> HashIndex:
    """Signals of open items, keyed by signal id, ref = the item's cluster representative."""
    index = HashIndex()
    with db.session() as s:
        rows = s.execute(
            select(
                SignalRow.id,
                SignalRow.algorithm,
                SignalRow.value,
                SignalRow.quality,
                SignalRow.variant,
                Item.id,
                Item.cluster_id,
            )
            .join(Item, Item.id == SignalRow.item_id)
            .where(Item.status.in_(OPEN_OR_CLAIMED))
            .where(or_(Item.cluster_id.is_(None), Item.cluster_id == Item.id))
        )
        for sig_id, algo, value, quality, variant, item_id, cluster_id in rows:
            sig = Signal(Algorithm(algo), value, quality, variant=variant or "")
            index_signal(index, sig_id, sig, cluster_id or item_id, policy)
    return index


def entry_for(db: Database, entry_id: int | None, item_id: int | None) -> EntryFacts | None:
    """The hash-list entry behind a match: the named one, or any active one of the item."""
    with db.session() as s:
        q = select(HashListEntry, User.username).outerjoin(User, User.id == HashListEntry.added_by)
        if entry_id is not None:
            q = q.where(HashListEntry.id == entry_id)
        elif item_id is not None:
            q = q.where(
                HashListEntry.item_id == item_id, HashListEntry.retracted_at.is_(None)
            ).order_by(HashListEntry.id)
        else:
            return None
        row = s.execute(q.limit(1)).first()
        if row is None:
            return None
        e, username = row
        return EntryFacts(
            e.id, e.algorithm, e.category, e.list_name, e.item_id, e.decision_uuid, username
        )
