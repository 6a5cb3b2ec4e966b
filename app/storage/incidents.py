"""Incidents (issue 23; docs/ARCHITECTURE.md, "Incidents and re-scan"): declared by a lead with a
name, a label (a CIP reference, say), seed hashes and/or seed items, the sources and categories
it covers; concluded later. While one is active its items (items.incident_id) carry its banner,
come first in the review queue (app.storage.queues.ReviewQueue), the people a lead moved onto it
claim only from it, and every confirm of one puts the incident's label on its hash-list rows
(app.storage.record.append_confirm; hd_add_item_hashes on the team server).

On a team server every write here is one call of app/storage/sql/api_incidents.sql (the server
checks the role, takes the time, writes the audit event); on SQLite and plain PostgreSQL the
service does the same work in Python with ``permissions.authorize``.
"""

from __future__ import annotations

import builtins
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from app.core.errors import first_line
from app.core.matching.hash_index import HashIndex
from app.core.matching.match_rules import MatchPolicy, index_signal
from app.core.matching.signal_types import SIGNAL_TYPES, is_query_only
from app.core.model.domain import Algorithm, Signal, UserInfo, utcnow
from app.core.model.incidents import (
    DEFAULT_DELTA_MINUTES,
    IncidentError,
    IncidentInfo,
    PossibleMiss,
    SeedHash,
    check_delta,
    check_label,
    check_name,
    check_words,
)
from app.core.model.roles import Permission
from app.storage.audit import AuditKind, append_event
from app.storage.db import Database
from app.storage.models import (
    Incident,
    IncidentAssignment,
    IncidentHash,
    Item,
    RescanMiss,
    SignalRow,
    User,
)
from app.storage.permissions import authorize
from app.storage.server_api import call, on_server

_DECLARE = text(
    "SELECT hd_api_incident_declare(:name, :label, CAST(:sources AS jsonb), "
    "CAST(:categories AS jsonb), CAST(:seeds AS jsonb), CAST(:items AS jsonb), :minutes, "
    "CAST(:formats AS jsonb))"
)
_CONCLUDE = text("SELECT hd_api_incident_conclude(:name)")
_CLEAR_MISS = text("SELECT hd_api_rescan_miss_clear(:id, :note)")
_ASSIGN = text("SELECT hd_api_incident_assign(:name, CAST(:users AS jsonb), :remove)")


def parse_seed_hash(value: str) -> SeedHash:
    """``ALG:HEX`` as a lead types it: a hash type Hashdesk knows, its length, in hex."""
    alg_text, sep, hex_value = (value or "").strip().partition(":")
    try:
        alg = Algorithm(alg_text.strip().lower())
    except ValueError:
        names = ", ".join(a.value for a in Algorithm)
        raise IncidentError(
            f"seed hash {value!r}: {alg_text!r} is not a hash type (one of {names})"
        ) from None
    hex_value = hex_value.strip().lower()
    hex_len = SIGNAL_TYPES[alg].hex_len
    if not sep or len(hex_value) != hex_len or not re.fullmatch(r"[0-9a-f]+", hex_value):
        raise IncidentError(
            f"seed hash {value!r}: a {alg.value} hash is {hex_len} hex digits after '{alg.value}:'"
        )
    return SeedHash(alg, hex_value)


def _api(s: Session, statement: Any, params: dict[str, Any]) -> list[Any]:
    """One call of the server's incident API: a value it refuses (SQLSTATE 22023) is an
    IncidentError with the server's words."""
    try:
        return call(s, statement, params)
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == "22023":
            raise IncidentError(first_line(str(exc.orig)).removeprefix("hashdesk: ")) from None
        raise


def _taken(s: Session, name: str) -> IncidentError:
    row = s.scalar(select(Incident).where(Incident.name == name))
    if row is None:
        return IncidentError(f"incident {name!r} was declared by someone else at the same time")
    who = s.get(User, row.declared_by) if row.declared_by else None
    state = "active" if row.ended_at is None else f"concluded {row.ended_at:%Y-%m-%d %H:%M}"
    return IncidentError(
        f"incident {name!r} already exists: declared by {who.username if who else 'the system'} "
        f"at {row.started_at:%Y-%m-%d %H:%M:%S} UTC ({state}); choose another name"
    )


def _json_list(value: str | None) -> tuple[Any, ...]:
    try:
        out = json.loads(value or "[]")
    except ValueError:
        return ()
    return tuple(out) if isinstance(out, list) else ()


def incident_info(s: Session, row: Incident) -> IncidentInfo:
    names = dict(s.execute(select(User.id, User.username)).all())
    seeds = s.execute(
        select(IncidentHash.algorithm, IncidentHash.value)
        .where(IncidentHash.incident_id == row.id, IncidentHash.item_id.is_(None))
        .order_by(IncidentHash.id)
    ).all()
    assigned = s.scalars(
        select(IncidentAssignment.user_id).where(IncidentAssignment.incident_id == row.id)
    ).all()
    return IncidentInfo(
        id=row.id,
        name=row.name,
        label=row.label,
        started_at=row.started_at,
        ended_at=row.ended_at,
        declared_by=names.get(row.declared_by) if row.declared_by else None,
        concluded_by=names.get(row.concluded_by) if row.concluded_by else None,
        sources=tuple(str(x) for x in _json_list(row.sources)),
        categories=tuple(str(x) for x in _json_list(row.categories)),
        seed_hashes=tuple(f"{a}:{v}" for a, v in seeds),
        seed_items=tuple(int(x) for x in _json_list(row.seed_items)),
        delta_minutes=row.delta_minutes,
        delta_formats=tuple(str(x) for x in _json_list(row.delta_formats)),
        assigned=tuple(sorted(names.get(u, f"#{u}") for u in assigned)),
    )


def active_incident_ids(s: Session) -> list[int]:
    return list(s.scalars(select(Incident.id).where(Incident.ended_at.is_(None))))


def active_label(s: Session, incident_id: int | None) -> str | None:
    """The label of ``incident_id`` if it is active (what a confirm puts on its rows)."""
    if incident_id is None:
        return None
    return s.scalar(
        select(Incident.label).where(Incident.id == incident_id, Incident.ended_at.is_(None))
    )


def assigned_incident(s: Session, user_id: int) -> int | None:
    """The active incident ``user_id`` was moved onto (the latest, if several), or None."""
    return s.scalar(
        select(IncidentAssignment.incident_id)
        .join(Incident, Incident.id == IncidentAssignment.incident_id)
        .where(IncidentAssignment.user_id == user_id, Incident.ended_at.is_(None))
        .order_by(IncidentAssignment.assigned_at.desc())
        .limit(1)
    )


def cluster_closure(s: Session, item_ids: Iterable[int]) -> set[int]:
    """``item_ids`` with every other member of their clusters."""
    ids = set(item_ids)
    if not ids:
        return ids
    clusters = set(
        s.scalars(select(Item.cluster_id).where(Item.id.in_(ids), Item.cluster_id.is_not(None)))
    )
    if clusters:
        ids |= set(s.scalars(select(Item.id).where(Item.cluster_id.in_(clusters))))
    return ids


def tag_items(s: Session, incident_id: int, item_ids: Iterable[int]) -> int:
    """Put items (and their clusters) under ``incident_id`` where they are under none yet
    (SQLite / plain PostgreSQL; the server does it in its own functions). How many moved."""
    ids = cluster_closure(s, item_ids)
    if not ids:
        return 0
    result = s.execute(
        update(Item)
        .where(Item.id.in_(ids), Item.incident_id.is_(None))
        .values(incident_id=incident_id)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def incident_hash_index(s: Session, policy: MatchPolicy) -> HashIndex:
    """The hashes of the active incidents (seed hashes, seed items'), keyed by their row id,
    ref = the incident: what ingest matches a new item against to put it under one."""
    index = HashIndex()
    rows = s.execute(
        select(IncidentHash.id, IncidentHash.algorithm, IncidentHash.value, IncidentHash.variant,
               IncidentHash.incident_id)
        .join(Incident, Incident.id == IncidentHash.incident_id)
        .where(Incident.ended_at.is_(None))
    )  # fmt: skip
    for hid, alg, value, variant, incident in rows:
        index_signal(index, hid, Signal(Algorithm(alg), value, None, variant=variant or ""),
                     incident, policy)  # fmt: skip
    return index


def covers(row: Incident, source: str | None) -> bool:
    """Whether an incident covers a sighting's source (no sources named: every one)."""
    sources = _json_list(row.sources)
    return not sources or source in sources


def incident_for_new_item(
    s: Session,
    source: str | None,
    seed_incident: int | None,
    entry_item: int | None,
    entry_labels: str,
    rep: int | None,
) -> int | None:
    """The active incident a new item goes under, if any: the one whose seed hashes it
    matched (``seed_incident``), the one of the item whose confirmed hash it matched
    (``entry_item``) or whose label the matched entry carries, the one its cluster's
    representative (``rep``) is under. Only an incident covering the sighting's source."""
    active = {r.id: r for r in s.scalars(select(Incident).where(Incident.ended_at.is_(None)))}
    if not active:
        return None
    wanted: list[int | None] = [seed_incident]
    if entry_item is not None:
        wanted.append(s.scalar(select(Item.incident_id).where(Item.id == entry_item)))
    labels = set(entry_labels.split())
    wanted += [i for i, r in active.items() if r.label in labels]
    if rep is not None:
        wanted.append(s.scalar(select(Item.incident_id).where(Item.id == rep)))
    for inc in wanted:
        if inc is not None and inc in active and covers(active[inc], source):
            return inc
    return None


class IncidentService:
    """Declare, conclude, list and read incidents; move people onto one."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reads ---------------------------------------------------------------------------

    def list(self, *, include_concluded: bool = True) -> builtins.list[IncidentInfo]:
        with self.db.session() as s:
            q = select(Incident).order_by(Incident.started_at.desc(), Incident.id.desc())
            if not include_concluded:
                q = q.where(Incident.ended_at.is_(None))
            return [incident_info(s, r) for r in s.scalars(q)]

    def get(self, name: str) -> IncidentInfo:
        with self.db.session() as s:
            row = s.scalar(select(Incident).where(Incident.name == (name or "").strip()))
            if row is None:
                raise IncidentError(f"there is no incident {name!r} (`hashdesk incident list`)")
            return incident_info(s, row)

    def by_id(self, incident_id: int) -> IncidentInfo | None:
        with self.db.session() as s:
            row = s.get(Incident, incident_id)
            return None if row is None else incident_info(s, row)

    def active(self) -> builtins.list[IncidentInfo]:
        return self.list(include_concluded=False)

    # -- writes --------------------------------------------------------------------------

    def declare(
        self,
        name: str,
        label: str,
        *,
        actor: UserInfo,
        seed_items: Sequence[int] = (),
        seed_hashes: Sequence[str | SeedHash] = (),
        sources: Sequence[str] = (),
        categories: Sequence[str] = (),
        delta_minutes: int = DEFAULT_DELTA_MINUTES,
        delta_formats: Sequence[str] = (),
    ) -> IncidentInfo:
        """Declare an incident (audited). Its seed items and their clusters are under it at
        once; the items matching its seed hashes (or its seed items' hashes) are found by the
        re-scan that follows (app.storage.rescan.Rescanner.after_declare). Two leads declaring
        the same name at once: one wins, the other gets an IncidentError naming who has it."""
        name = check_name(name)
        label = check_label(label)
        seeds = [h if isinstance(h, SeedHash) else parse_seed_hash(h) for h in seed_hashes]
        items = list(dict.fromkeys(int(i) for i in seed_items))
        srcs = check_words("source", list(sources))
        cats = check_words("category", list(categories))
        minutes, formats = check_delta(delta_minutes, list(delta_formats))
        try:
            with self.db.session() as s:
                user = authorize(s, actor, Permission.MANAGE_INCIDENTS)
                if on_server(s):
                    _api(
                        s,
                        _DECLARE,
                        {
                            "name": name,
                            "label": label,
                            "sources": json.dumps(list(srcs)),
                            "categories": json.dumps(list(cats)),
                            "seeds": json.dumps([[h.algorithm.value, h.value] for h in seeds]),
                            "items": json.dumps(items),
                            "minutes": minutes,
                            "formats": json.dumps(list(formats)),
                        },
                    )
                else:
                    self._declare_here(
                        s, user, name, label, seeds, items, srcs, cats, minutes, formats
                    )
        except IntegrityError:
            with self.db.session() as s:
                raise _taken(s, name) from None
        return self.get(name)

    def _declare_here(
        self,
        s: Session,
        user: User,
        name: str,
        label: str,
        seeds: builtins.list[SeedHash],
        items: builtins.list[int],
        srcs: tuple[str, ...],
        cats: tuple[str, ...],
        minutes: int,
        formats: tuple[str, ...],
    ) -> None:
        if s.scalar(select(Incident.id).where(Incident.name == name)) is not None:
            raise _taken(s, name)
        found = set(s.scalars(select(Item.id).where(Item.id.in_(items)))) if items else set()
        missing = [i for i in items if i not in found]
        if missing:
            raise IncidentError(f"seed item {missing[0]} does not exist")
        now = utcnow()
        row = Incident(
            name=name,
            label=label,
            started_at=now,
            declared_by=user.id,
            sources=json.dumps(list(srcs)),
            categories=json.dumps(list(cats)),
            seed_items=json.dumps(items),
            delta_minutes=minutes,
            delta_formats=json.dumps(list(formats)),
        )
        s.add(row)
        s.flush()  # a name taken meanwhile (plain PostgreSQL): IntegrityError, told as such
        for h in seeds:
            s.add(IncidentHash(incident_id=row.id, algorithm=h.algorithm.value, value=h.value))
        if items:
            for sig in s.scalars(
                select(SignalRow).where(SignalRow.item_id.in_(items)).order_by(SignalRow.id)
            ):
                if not is_query_only(sig.variant):
                    s.add(
                        IncidentHash(
                            incident_id=row.id,
                            algorithm=sig.algorithm,
                            value=sig.value,
                            variant=sig.variant or "",
                            item_id=sig.item_id,
                        )
                    )
        tagged = tag_items(s, row.id, items)
        append_event(
            s,
            AuditKind.INCIDENT_DECLARED,
            actor_id=user.id,
            actor_name=user.username,
            subject=name,
            detail={
                "label": label,
                "sources": list(srcs),
                "categories": list(cats),
                "seed_hashes": [h.text() for h in seeds],
                "seed_items": items,
                "items_tagged": tagged,
                "delta_minutes": minutes,
                "delta_formats": list(formats),
            },
            occurred_at=now,
        )

    def conclude(self, name: str, *, actor: UserInfo) -> IncidentInfo:
        """End an active incident (audited): its banner and queue go, its items keep it."""
        name = (name or "").strip()
        with self.db.session() as s:
            user = authorize(s, actor, Permission.MANAGE_INCIDENTS)
            if on_server(s):
                _api(s, _CONCLUDE, {"name": name})
            else:
                row = s.scalar(select(Incident).where(Incident.name == name).with_for_update())
                if row is None:
                    raise IncidentError(f"there is no incident {name!r} (`hashdesk incident list`)")
                if row.ended_at is not None:
                    raise IncidentError(
                        f"incident {name!r} was already concluded at "
                        f"{row.ended_at:%Y-%m-%d %H:%M:%S} UTC"
                    )
                now = utcnow()
                n = s.scalar(
                    select(func.count()).select_from(Item).where(Item.incident_id == row.id)
                )
                append_event(
                    s,
                    AuditKind.INCIDENT_CONCLUDED,
                    actor_id=user.id,
                    actor_name=user.username,
                    subject=name,
                    detail={"label": row.label, "items": int(n or 0)},
                    occurred_at=now,
                )
                row.ended_at = now
                row.concluded_by = user.id
        return self.get(name)

    def assign(
        self, name: str, usernames: Sequence[str], *, actor: UserInfo, remove: bool = False
    ) -> IncidentInfo:
        """Move people onto an active incident (their claims come from its queue), or off it
        (``remove``). Audited."""
        name = (name or "").strip()
        people = [u.strip() for u in usernames if u and u.strip()]
        if not people:
            raise IncidentError("name at least one person to move")
        with self.db.session() as s:
            user = authorize(s, actor, Permission.MANAGE_INCIDENTS)
            if on_server(s):
                _api(s, _ASSIGN, {"name": name, "users": json.dumps(people), "remove": remove})
            else:
                self._assign_here(s, user, name, people, remove)
        return self.get(name)

    def _assign_here(
        self, s: Session, user: User, name: str, people: builtins.list[str], remove: bool
    ) -> None:
        row = s.scalar(select(Incident).where(Incident.name == name))
        if row is None:
            raise IncidentError(f"there is no incident {name!r} (`hashdesk incident list`)")
        if row.ended_at is not None:
            raise IncidentError(f"incident {name!r} is concluded: nobody can be moved onto it")
        ids: builtins.list[int] = []
        for u in people:
            uid = s.scalar(select(User.id).where(User.username == u, User.active))
            if uid is None:
                raise IncidentError(f"there is no active account {u!r}")
            ids.append(uid)
        now = utcnow()
        append_event(
            s,
            AuditKind.INCIDENT_ASSIGNED,
            actor_id=user.id,
            actor_name=user.username,
            subject=name,
            detail={"people": people, "remove": remove},
            occurred_at=now,
        )
        for uid in ids:
            here = s.get(IncidentAssignment, (row.id, uid))
            if remove and here is not None:
                s.delete(here)
            elif not remove and here is None:
                s.add(
                    IncidentAssignment(
                        incident_id=row.id, user_id=uid, assigned_by=user.id, assigned_at=now
                    )
                )

    def possible_misses(self, *, actor: UserInfo | None = None) -> builtins.list[PossibleMiss]:
        """Rejected items a re-scan found matching a confirmed hash, not cleared yet, the
        oldest first (the lead workspace's Incidents tab; ``actor``: checked to be a lead)."""
        with self.db.session() as s:
            if actor is not None:
                authorize(s, actor, Permission.MANAGE_INCIDENTS)
            rows = s.execute(
                select(
                    RescanMiss.id, RescanMiss.item_id, RescanMiss.entry_id, RescanMiss.note,
                    RescanMiss.flagged_at,
                )
                .where(RescanMiss.cleared_at.is_(None))
                .order_by(RescanMiss.flagged_at, RescanMiss.id)
            ).all()  # fmt: skip
        return [PossibleMiss(*r) for r in rows]

    def clear_miss(self, miss_id: int, note: str, *, actor: UserInfo) -> PossibleMiss:
        """A lead has looked at a possible miss (re-opened the item, or judged the reject
        right): it leaves the list, with who, when and the lead's note on the audit record
        (``miss_cleared``). The miss as it was."""
        note = (note or "").strip()
        if not note:
            raise IncidentError("clearing a possible miss needs a note: what was done with it")
        if len(note) > 2000:
            raise IncidentError(f"the note is {len(note)} characters: at most 2000")
        with self.db.session() as s:
            user = authorize(s, actor, Permission.MANAGE_INCIDENTS)
            row = s.get(RescanMiss, miss_id)
            if row is None:
                raise IncidentError(
                    f"there is no possible miss #{miss_id} (`hashdesk incident misses`)"
                )
            miss = PossibleMiss(row.id, row.item_id, row.entry_id, row.note, row.flagged_at)
            if on_server(s):
                _api(s, _CLEAR_MISS, {"id": miss_id, "note": note})
                return miss
            if row.cleared_at is not None:
                who = s.scalar(select(User.username).where(User.id == row.cleared_by))
                raise IncidentError(
                    f"possible miss #{miss_id} was already cleared by {who or 'someone'} at "
                    f"{row.cleared_at:%Y-%m-%d %H:%M:%S} UTC"
                )
            now = utcnow()
            append_event(
                s,
                AuditKind.MISS_CLEARED,
                actor_id=user.id,
                actor_name=user.username,
                subject=f"item:{row.item_id}",
                detail={"miss": row.id, "item": row.item_id, "entry": row.entry_id, "note": note},
                occurred_at=now,
            )
            row.cleared_at = now
            row.cleared_by = user.id
            return miss

    def item_incident(self, item_id: int) -> IncidentInfo | None:
        """The active incident an item is under (the review window's banner), or None."""
        with self.db.session() as s:
            row = s.scalar(
                select(Incident)
                .join(Item, Item.incident_id == Incident.id)
                .where(Item.id == item_id, Incident.ended_at.is_(None))
            )
            return None if row is None else incident_info(s, row)


__all__ = [
    "IncidentService",
    "active_incident_ids",
    "active_label",
    "assigned_incident",
    "cluster_closure",
    "incident_info",
    "parse_seed_hash",
    "tag_items",
]
