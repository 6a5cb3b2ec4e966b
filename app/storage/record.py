"""The decision record: the one module that writes decisions and hash-list rows.

Appending a decision to the chain, the decision that stands for an item now, putting an item's
hashes in the hash list and retracting them, the order every queue serves items in, and what a
queue card shows. The review, escalation, second-review and overturn paths are built on these
and call only downward (docs/ARCHITECTURE.md, "A key press"). The caller holds the transaction:
a decision, the status it sets and the hash-list rows it adds or retracts commit together.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select, text
from sqlalchemy.orm import Session

from app.core.matching.hash_lists import LOCAL_LIST
from app.core.matching.signal_types import is_query_only
from app.core.model.chain import (
    GENESIS_HASH,
    chain_hash,
    decision_fields_of,
    hash_rows_digest_v2,
)
from app.core.model.decisions import DECIDING, DecisionRequest, outcome_of
from app.core.model.domain import (
    OPEN_STATUSES,
    DecisionMethod,
    ItemStatus,
    MediaKind,
    QueueItem,
    SightingInfo,
    Verdict,
)
from app.storage.chain import DECISION_CHAIN_LOCK, chain_head, server_appends
from app.storage.models import Decision, HashListEntry, Incident, Item, Sighting, SignalRow

_CHAIN_LOCK_ID = DECISION_CHAIN_LOCK  # "HASH": serialises the decision chain on PostgreSQL
_SERVER_APPEND = text(
    "SELECT (hd_append_decision(:uuid, :item, :user, :verdict, :category, :label, :note, "
    ":method, :supersedes, :parent, :entry, :distance, :digest)).id"
)


# -- the chain -------------------------------------------------------------------------------


def append_decision(
    s: Session, req: DecisionRequest, *, hashes_digest: str | None = None
) -> Decision:
    """Append one decision row to the chain (``hashes_digest``: of the rows it adds). On a
    team server the server appends it (its id, time and chain entry)."""
    if server_appends(s):
        new_id = s.execute(_SERVER_APPEND, {
            "uuid": req.uuid, "item": req.item_id, "user": req.user_id,
            "verdict": req.verdict.value, "category": req.category,
            "label": req.category_label, "note": req.note, "method": req.method.value,
            "supersedes": req.supersedes, "parent": req.parent_uuid,
            "entry": req.matched_entry_id, "distance": req.match_distance,
            "digest": hashes_digest,
        }).scalar_one()  # fmt: skip
        row = s.get(Decision, new_id)
        assert row is not None
        return row
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK_ID})
    prev = chain_head(s, "decisions") or GENESIS_HASH
    row = Decision(
        uuid=req.uuid,
        item_id=req.item_id,
        user_id=req.user_id,
        verdict=req.verdict.value,
        category=req.category,
        category_label=req.category_label,
        note=req.note,
        method=req.method.value,
        supersedes=req.supersedes,
        decided_at=req.decided_at,
        parent_uuid=req.parent_uuid,
        matched_entry_id=req.matched_entry_id,
        match_distance=req.match_distance,
        hashes_digest=hashes_digest,
        prev_hash=prev,
    )
    row.entry_hash = chain_hash(prev, decision_fields_of(row))  # chain.py names the fields
    s.add(row)
    s.flush()
    return row


def append_confirm(s: Session, req: DecisionRequest, item: Item) -> int:
    """Append a decision that confirms ``item`` (a confirm, or an overturn to confirm) and put
    the item's hashes in the local list under it. The chain entry carries the digest of those
    rows (every field that decides a match: app.core.model.chain.hash_rows_digest_v2), so
    `audit verify` can tell forged, altered and deleted rows from the record."""
    signals = _listable_signals(s, item)
    # Under an active incident: its label goes on every row (and out with the list's exports).
    label = (
        s.scalar(
            select(Incident.label).where(
                Incident.id == item.incident_id, Incident.ended_at.is_(None)
            )
        )
        if item.incident_id is not None
        else None
    )
    digest = hash_rows_digest_v2(
        (g.algorithm, g.variant, g.value, g.quality, g.frame_ts, req.category, LOCAL_LIST)
        for g in signals
    )
    append_decision(s, req, hashes_digest=digest)
    for sig in signals:
        s.add(
            HashListEntry(
                algorithm=sig.algorithm,
                value=sig.value,
                quality=sig.quality,
                frame_ts=sig.frame_ts,
                variant=sig.variant,
                category=req.category,
                list_name=LOCAL_LIST,
                decision_uuid=req.uuid,
                item_id=item.id,
                signal_id=sig.id,
                added_by=req.user_id,
                added_at=req.decided_at,
                labels=label,
            )
        )
    return len(signals)


def recorded(s: Session, uuid: str) -> bool:
    """Whether a decision with this UUID is already in the record (writes are idempotent)."""
    return s.scalar(select(Decision.id).where(Decision.uuid == uuid)) is not None


def current_decision(s: Session, item_id: int) -> Decision | None:
    """The decision that stands for the item now: its latest confirm, reject or overturn that no
    undo or overturn has taken back (second-review opinions never stand)."""
    rows = s.scalars(
        select(Decision).where(Decision.item_id == item_id).order_by(Decision.id)
    ).all()
    taken_back = {
        r.supersedes for r in rows if r.supersedes and r.verdict in (Verdict.UNDO, Verdict.OVERTURN)
    }
    standing = None
    for r in rows:
        if r.method == DecisionMethod.SECOND_REVIEW or r.uuid in taken_back:
            continue
        if r.verdict in DECIDING or r.verdict == Verdict.OVERTURN:
            standing = r
    return standing


def cluster_decisions(s: Session, parent_uuid: str) -> list[Decision]:
    """The decisions a cluster decision made for the members of its cluster."""
    return list(
        s.scalars(
            select(Decision)
            .where(
                Decision.parent_uuid == parent_uuid,
                Decision.method == DecisionMethod.CLUSTER,
            )
            .order_by(Decision.id)
        )
    )


# -- the hash list ---------------------------------------------------------------------------


def _listable_signals(s: Session, item: Item) -> list[SignalRow]:
    """The item's signals that go in the hash list (query-only variants never do)."""
    rows = s.scalars(select(SignalRow).where(SignalRow.item_id == item.id).order_by(SignalRow.id))
    return [sig for sig in rows if not is_query_only(sig.variant)]


def _retract(rows: list[HashListEntry], user_id: int, at: datetime, reason: str, by: str) -> int:
    for e in rows:
        e.retracted_at = at
        e.retracted_by = user_id
        e.retraction_reason = reason
        e.retraction_decision_uuid = by
    return len(rows)


def retract_decision_hashes(
    s: Session, decision_uuid: str, user_id: int, at: datetime, reason: str, by_uuid: str
) -> int:
    """Retract the active hashes one decision added (an undo of it)."""
    rows = s.scalars(
        select(HashListEntry).where(
            HashListEntry.decision_uuid == decision_uuid,
            HashListEntry.retracted_at.is_(None),
        )
    ).all()
    return _retract(list(rows), user_id, at, reason, by_uuid)


def retract_item_hashes(
    s: Session, item_id: int, user_id: int, at: datetime, reason: str, by_uuid: str
) -> int:
    """Retract every active hash our own decisions put in the list for this item (an overturn
    to reject)."""
    rows = s.scalars(
        select(HashListEntry).where(
            HashListEntry.item_id == item_id,
            HashListEntry.list_name == LOCAL_LIST,
            HashListEntry.retracted_at.is_(None),
        )
    ).all()
    return _retract(list(rows), user_id, at, reason, by_uuid)


# -- items and the queue ---------------------------------------------------------------------


def clear_claim(item: Item) -> None:
    item.claimed_by = None
    item.lease_expires_at = None


def lock_item(s: Session, item_id: int) -> Item | None:
    return s.scalar(select(Item).where(Item.id == item_id).with_for_update())


def queue_order(age: Any) -> tuple[Any, ...]:
    """How every queue serves items: deadline first (items without one last), then priority,
    then ``age`` (oldest first), then id."""
    return (
        case((Item.deadline.is_(None), 1), else_=0),
        Item.deadline,
        Item.priority.desc(),
        age,
        Item.id,
    )


def open_members(s: Session, rep: Item) -> list[Item]:
    """The other open items of the cluster ``rep`` represents (they wait behind it)."""
    if rep.cluster_id != rep.id:
        return []
    return list(
        s.scalars(
            select(Item)
            .where(
                Item.cluster_id == rep.id,
                Item.id != rep.id,
                Item.status.in_(OPEN_STATUSES),
            )
            .order_by(Item.id)
            .with_for_update()
        )
    )


def cluster_size(s: Session, item: Item) -> int:
    if item.cluster_id is None or item.cluster_id != item.id:
        return 1
    n = s.scalar(
        select(func.count())
        .select_from(Item)
        .where(
            Item.cluster_id == item.id,
            Item.id != item.id,
            Item.status.in_(OPEN_STATUSES),
        )
    )
    return 1 + int(n or 0)


def to_queue_item(s: Session, item: Item) -> QueueItem:
    """What a queue card shows of ``item``: plain data, safe to hand to the GUI thread."""
    sightings = s.scalars(
        select(Sighting).where(Sighting.item_id == item.id).order_by(Sighting.flagged_at)
    ).all()
    banner = _incident_banner(s, item.incident_id)
    return QueueItem(
        id=item.id,
        sha256=item.sha256,
        kind=MediaKind(item.kind),
        status=ItemStatus(item.status),
        size=item.size,
        width=item.width,
        height=item.height,
        duration=item.duration,
        preview_key=item.preview_key,
        preview_frames=item.preview_frames,
        error=item.error,
        priority=item.priority,
        deadline=item.deadline,
        cluster_id=item.cluster_id,
        cluster_size=cluster_size(s, item),
        sightings=tuple(
            SightingInfo(
                source=x.source,
                external_id=x.external_id,
                source_url=x.source_url,
                reason=x.reason,
                score=x.score,
                flagged_at=x.flagged_at,
                deadline=x.deadline,
            )
            for x in sightings
        ),
        match_note=item.match_note,
        incident=banner[0] if banner else None,
        incident_categories=banner[1] if banner else (),
    )


def _incident_banner(s: Session, incident_id: int | None) -> tuple[str, tuple[str, ...]] | None:
    """The banner of the active incident an item is under (name and label) and the
    categories it covers, or None."""
    if incident_id is None:
        return None
    row = s.execute(
        select(Incident.name, Incident.label, Incident.categories).where(
            Incident.id == incident_id, Incident.ended_at.is_(None)
        )
    ).first()
    if row is None:
        return None
    cats = json.loads(row[2] or "[]")
    return f"INCIDENT {row[0]} · {row[1]}", tuple(str(c) for c in cats if isinstance(c, str))


def outcome_of_row(d: Decision) -> Verdict:
    """:func:`app.core.model.decisions.outcome_of` for a stored decision."""
    return outcome_of(d.verdict, d.category)
