"""Re-scan on every new hash (issue 23; docs/ARCHITECTURE.md, "Incidents and re-scan").

When hashes arrive (a confirm lands, a partner's list is imported, an incident is declared with
seed hashes), the items still open and those ingested in the last ``days`` days are matched
again at once against the NEW hashes only, from their stored signals (no media is read again):

1. the new hashes go into a small :class:`HashIndex` of their own, built by the same code that
   builds the workstation's whole index (``hash_list_index.add_hash_list_rows`` with ``ids``);
2. the candidates' stored signals (read in one grouped pass, the database joining each hash
   type's ids and hashes into one string) become a scan-only :class:`HashIndex` of their own,
   and each new hash is one query of it at the loosest threshold any list allows: a superset of
   the items that can match, found without a Python object per signal;
3. each of those items is matched by ``match_rules.find_known`` (or ``find_match`` for an
   incident's seed hashes), the very rules ingest applies, and handled as ingest handles a
   known match (``ingest_recorder.apply_known``): an open item resolves or gets the badge by
   the list's policy; an item held by someone right now gets the badge; a rejected item is
   flagged for the leads as a possible miss (rescan_misses); anything else decided stays as it
   is and is counted. An item matching a hash that belongs to an active incident goes under it.

What one re-scan did is one ``rescans`` row (the deltas and the debrief count "resolved by
re-scan" from them). On a team server the workstation matches and the server records: one call
of ``hd_api_rescan_apply`` (api_incidents.sql), which checks each match (the entry is active and
one of the item's own hashes is within the threshold of it, as ``hd_api_record_items`` checks
ingest's), decides by the item's status as it is now, writes the auto-match decisions, the
misses and the ``rescans`` row in the caller's name (whoever confirmed: a moderator may).

Who runs it: the workstation whose confirm landed, on its serial writer after the decision is
committed (``journal.JournalSync``), never on the GUI thread; the CLI after `lists import` and
`incident declare`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session

from app.core.matching.hash_index import HashIndex, hex_block_to_words
from app.core.matching.hash_lists import ListRule
from app.core.matching.match_rules import (
    KnownMatch,
    MatchPolicy,
    find_known,
    find_match,
    index_signal,
    policy_for,
)
from app.core.matching.signal_types import SIGNAL_TYPES
from app.core.model.decisions import DecisionRequest
from app.core.model.domain import (
    IN_QUEUE_STATUSES,
    OPEN_STATUSES,
    Algorithm,
    DecisionMethod,
    ItemStatus,
    MediaKind,
    Signal,
    UserInfo,
    Verdict,
    utcnow,
)
from app.core.model.incidents import DEFAULT_RESCAN_DAYS, RescanReport
from app.storage.db import Database
from app.storage.hash_list_index import (
    EntryFacts,
    add_hash_list_rows,
    entry_for,
    joined_column,
    joined_ints,
    load_list_rules,
)
from app.storage.incidents import tag_items
from app.storage.ingest_recorder import apply_known, match_note, set_match_span, span_payload
from app.storage.models import (
    Decision,
    HashListEntry,
    Incident,
    IncidentHash,
    Item,
    Rescan,
    RescanMiss,
    SignalRow,
)
from app.storage.record import append_decision, current_decision, open_members, outcome_of_row
from app.storage.server_api import call, on_server

log = logging.getLogger(__name__)

_APPLY = text("SELECT * FROM hd_api_rescan_apply(CAST(:batch AS jsonb))")
#: Items whose signals are read per query (bound parameters, within every driver's limit).
_ITEMS_BATCH = 1000


@dataclass
class _Found:
    """One item the re-scan matched, and with what."""

    item_id: int
    status: ItemStatus
    known: KnownMatch | None = None
    facts: EntryFacts | None = None
    allow_facts: EntryFacts | None = None
    incident: int | None = None


@dataclass
class _Candidates:
    ids: list[int] = field(default_factory=list)
    kind: dict[int, MediaKind] = field(default_factory=dict)
    status: dict[int, ItemStatus] = field(default_factory=dict)


def _flat_thresholds(policy: MatchPolicy, lists: Sequence[ListRule]) -> dict[Algorithm, int]:
    """The loosest threshold any list's rule allows, per hash type (the pre-filter's): no query
    of any variant matches further than its type's threshold under its list's rule."""
    out: dict[Algorithm, int] = {}
    for p in [policy, *(policy_for(rule, policy) for rule in lists)]:
        for alg, t in SIGNAL_TYPES.items():
            out[alg] = max(out.get(alg, 0), t.threshold(p))
    return out


class Rescanner:
    """Runs re-scans for one workstation (``actor``: whoever's confirm or import set it off;
    on a team server the server records in that person's name)."""

    def __init__(
        self,
        db: Database,
        policy: MatchPolicy | None = None,
        *,
        actor: UserInfo | None = None,
        days: int = DEFAULT_RESCAN_DAYS,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.db = db
        self.policy = policy or MatchPolicy()
        self.actor = actor
        self.days = days
        self._clock = clock
        #: Filled by the last run: how many hashes the small index held (what was searched).
        self.last_index_size = 0

    # -- triggers ------------------------------------------------------------------------

    def high_water(self) -> int:
        """The highest hash-list row id now (give it to :meth:`after_import`)."""
        return high_water(self.db)

    def after_confirm(self, decision_uuid: str) -> RescanReport:
        """The hashes a confirm (and the cluster decided with it) put in the local list."""
        with self.db.session() as s:
            ids = list(
                s.scalars(
                    select(HashListEntry.id).where(
                        or_(
                            HashListEntry.decision_uuid == decision_uuid,
                            HashListEntry.decision_uuid.in_(
                                select(Decision.uuid).where(Decision.parent_uuid == decision_uuid)
                            ),
                        ),
                        HashListEntry.retracted_at.is_(None),
                    )
                )
            )
        return self.after_entries(ids, f"confirm:{decision_uuid}")

    def after_import(self, list_name: str, after_id: int) -> RescanReport:
        """The entries an import added to ``list_name`` (ids above ``after_id``)."""
        with self.db.session() as s:
            ids = list(
                s.scalars(
                    select(HashListEntry.id).where(
                        HashListEntry.list_name == list_name, HashListEntry.id > after_id
                    )
                )
            )
        return self.after_entries(ids, f"import:{list_name}")

    def after_entries(self, entry_ids: Sequence[int], trigger: str) -> RescanReport:
        """Re-scan against the hash-list entries ``entry_ids`` (new ones) only."""
        t0 = self._clock()
        started = utcnow()
        index = HashIndex()
        with self.db.session() as s:
            n = add_hash_list_rows(s, index, self.policy, ids=list(entry_ids)) if entry_ids else 0
            lists = load_list_rules(s)
            flat = _flat_index(s, entry_ids)
            own = _own_items(s, entry_ids)
        self.last_index_size = len(index)
        if n == 0:
            return RescanReport(trigger, 0, 0, seconds=self._clock() - t0)
        cands, hits = self._prefilter(flat, lists)
        found: list[_Found] = []
        for item_id, signals in self._signals_of(hits - own):
            kind = cands.kind[item_id]
            km = find_known(index, signals, kind, self.policy, lists)
            if km is None or km.evidence is None:
                continue
            facts = entry_for(self.db, km.evidence.entry_id, km.evidence.ref)
            allow = (
                entry_for(self.db, km.allowed.entry_id, km.allowed.ref)
                if km.allowed is not None
                else None
            )
            found.append(_Found(item_id, cands.status[item_id], km, facts, allow))
        return self._record(trigger, started, t0, n, len(cands.ids), found, None)

    def after_declare(self, incident_id: int) -> RescanReport:
        """An incident's seed hashes (and its seed items'): the items matching them go under
        it; nothing is resolved (a seed hash is not a confirm)."""
        t0 = self._clock()
        started = utcnow()
        index = HashIndex()
        pairs: list[tuple[str, str]] = []
        with self.db.session() as s:
            rows = s.execute(
                select(
                    IncidentHash.id, IncidentHash.algorithm, IncidentHash.value,
                    IncidentHash.variant,
                ).where(IncidentHash.incident_id == incident_id)
            ).all()  # fmt: skip
            lists = load_list_rules(s)
        for hid, alg, value, variant in rows:
            sig = Signal(Algorithm(alg), value, None, variant=variant or "")
            if index_signal(index, hid, sig, incident_id, self.policy):
                pairs.append((alg, value))
        flat = _NewHashes(pairs)
        self.last_index_size = len(index)
        if len(index) == 0:
            return RescanReport(f"declare:{incident_id}", 0, 0, seconds=self._clock() - t0)
        cands, hits = self._prefilter(flat, lists)
        found = []
        for item_id, signals in self._signals_of(hits):
            ev = find_match(index, signals, cands.kind[item_id], self.policy)
            if ev is not None:
                found.append(_Found(item_id, cands.status[item_id], incident=incident_id))
        return self._record(
            f"declare:{incident_id}", started, t0, len(index), len(cands.ids), found, incident_id
        )

    # -- the search ----------------------------------------------------------------------

    def _candidates(self, s: Session) -> _Candidates:
        """The items a re-scan looks at (the open queue, and everything ingested in the last
        ``days`` days): their ids, in one aggregate."""
        since = utcnow() - timedelta(days=self.days)
        in_queue = [ItemStatus(x).value for x in IN_QUEUE_STATUSES]
        joined = s.scalar(
            select(joined_column(s, Item.id, ",")).where(
                or_(Item.status.in_(in_queue), Item.created_at >= since)
            )
        )
        return _Candidates(ids=joined_ints(joined).tolist())

    def _facts(self, cands: _Candidates, hits: set[int]) -> None:
        """The kind and status of the items that may match (read for those only)."""
        todo = sorted(hits)
        with self.db.session() as s:
            for i in range(0, len(todo), _ITEMS_BATCH):
                for item_id, kind, status in s.execute(
                    select(Item.id, Item.kind, Item.status).where(
                        Item.id.in_(todo[i : i + _ITEMS_BATCH])
                    )
                ):
                    cands.kind[item_id] = MediaKind(kind)
                    cands.status[item_id] = ItemStatus(status)

    def _prefilter(self, new: _NewHashes, lists: Sequence[ListRule]) -> tuple[_Candidates, set]:
        """The candidates, and those of them with a stored signal within the loosest threshold
        of a new hash. The right way round for a few new hashes and many stored signals: the
        candidates' signals become a :class:`HashIndex` (bulk, ``add_words``: no Python object
        per signal) and each new hash is one query of it (``search_many``, one pass over each
        table); exact hashes are a set lookup."""
        limits = _flat_thresholds(self.policy, lists)
        queries = new.entries()
        with self.db.session() as s:
            cands = self._candidates(s)
            if not cands.ids or not queries:
                return cands, set()
            wanted = sorted({alg for alg, _ in queries} | _same_tables({a for a, _ in queries}))
            in_queue = [ItemStatus(x).value for x in IN_QUEUE_STATUSES]
            since = utcnow() - timedelta(days=self.days)
            # Per hash type, the database joins the item ids and the hashes into one string
            # each (as the hash list's bulk load reads them): no Python object per signal, and
            # one pass over the candidates for every type.
            per_alg = {
                alg: (ids_text, values_text)
                for alg, ids_text, values_text in s.execute(
                    select(
                        SignalRow.algorithm,
                        joined_column(s, SignalRow.item_id, ","),
                        joined_column(s, SignalRow.value, ","),
                    )
                    .join(Item, Item.id == SignalRow.item_id)
                    .where(
                        or_(Item.status.in_(in_queue), Item.created_at >= since),
                        SignalRow.algorithm.in_([a for a in wanted if a in _ALGORITHMS]),
                    )
                    .group_by(SignalRow.algorithm)
                )
            }
        stored = HashIndex(mih_min_rows=1 << 62)  # scanned: built for one search
        hits: set[int] = set()
        exact: dict[str, set[str]] = {}
        for alg, value in queries:
            if not SIGNAL_TYPES[Algorithm(alg)].near:
                exact.setdefault(alg, set()).add(value)
        row = 0
        for alg, (ids_text, values_text) in per_alg.items():
            ids = joined_ints(ids_text)
            if ids.size == 0:
                continue
            t = SIGNAL_TYPES[Algorithm(alg)]
            if not t.near:
                want = exact.get(alg, set())
                values = (values_text or "").split(",")
                hits.update(int(i) for i, v in zip(ids, values, strict=True) if v in want)
                continue
            n = int(ids.size)
            stored.add_words(
                alg,
                np.arange(row, row + n, dtype=np.int64),
                hex_block_to_words(values_text.replace(",", ""), n, t.bits),
                ids,
            )
            row += n
        for alg, value in queries:
            t = SIGNAL_TYPES[Algorithm(alg)]
            if t.near:
                for m in stored.search(alg, value, limits.get(Algorithm(alg), 0)):
                    if m.ref is not None:
                        hits.add(m.ref)
        hits &= set(cands.ids)
        self._facts(cands, hits)
        return cands, hits

    def _signals_of(self, item_ids: Iterable[int]) -> Iterable[tuple[int, list[Signal]]]:
        todo = sorted(item_ids)
        for i in range(0, len(todo), _ITEMS_BATCH):
            chunk = todo[i : i + _ITEMS_BATCH]
            out: dict[int, list[Signal]] = {j: [] for j in chunk}
            with self.db.session() as s:
                for item_id, alg, value, quality, frame_ts, variant in s.execute(
                    select(
                        SignalRow.item_id, SignalRow.algorithm, SignalRow.value,
                        SignalRow.quality, SignalRow.frame_ts, SignalRow.variant,
                    )
                    .where(SignalRow.item_id.in_(chunk))
                    .order_by(SignalRow.id)
                ):  # fmt: skip
                    out[item_id].append(
                        Signal(Algorithm(alg), value, quality, frame_ts, variant or "")
                    )
            yield from out.items()

    # -- the record ----------------------------------------------------------------------

    def _record(
        self,
        trigger: str,
        started,
        t0: float,
        searched: int,
        scanned: int,
        found: list[_Found],
        declared: int | None,
    ) -> RescanReport:
        with self.db.session() as s:
            if on_server(s):
                report = self._record_on_server(s, trigger, searched, scanned, found, declared)
            else:
                report = self._record_here(s, trigger, started, searched, scanned, found, declared)
        report.seconds = self._clock() - t0
        log.info("%s", report.line())
        return report

    def _record_here(
        self,
        s: Session,
        trigger: str,
        started,
        searched: int,
        scanned: int,
        found: list[_Found],
        declared: int | None,
    ) -> RescanReport:
        r = RescanReport(trigger, searched, scanned, matched=len(found))
        misses: list[tuple[int, int | None, str]] = []
        first_incident: int | None = None
        active = {
            i.id: i.label for i in s.scalars(select(Incident).where(Incident.ended_at.is_(None)))
        }
        for f in found:
            item = s.get(Item, f.item_id, with_for_update=True)
            if item is None:
                continue
            incident = f.incident if f.incident is not None else _entry_incident(s, f, active)
            if incident is not None and incident in active:
                r.tagged += tag_items(s, incident, [item.id])
                first_incident = first_incident or incident
            if declared is not None or f.known is None:
                continue
            status = ItemStatus(item.status)
            km = f.known
            assert km.evidence is not None
            if status in OPEN_STATUSES:
                if item.known_entry_id is not None and item.match_note:
                    continue  # badged already by an earlier match: nothing new to say
                apply_known(s, item, km, f.facts, f.allow_facts, self.policy, self.actor)
                if item.status == ItemStatus.AUTO_MATCHED:
                    r.resolved += 1 + _resolve_members(s, item)
                else:
                    r.badged += 1
            elif status is ItemStatus.CLAIMED:
                if item.known_entry_id is None:
                    item.match_note = f"known match: {match_note(km.evidence, f.facts)}"
                    item.known_entry_id = f.facts.id if f.facts else None
                    set_match_span(item, km.evidence)
                    r.badged += 1
            elif status is ItemStatus.DECIDED and _rejected(s, item.id):
                entry = f.facts.id if f.facts else None
                if not _flagged(s, item.id, entry):
                    misses.append((item.id, entry, match_note(km.evidence, f.facts)))
            else:
                r.counted_decided += 1
        r.flagged_misses = len(misses)
        now = utcnow()
        row = Rescan(
            # the incident the new hashes belong to; else the only one active, if one is
            incident_id=declared
            or first_incident
            or (next(iter(active)) if len(active) == 1 else None),
            trigger=trigger[:64],
            started_at=started,
            finished_at=now,
            searched_hashes=searched,
            items_scanned=scanned,
            matched=r.matched,
            resolved=r.resolved,
            badged=r.badged,
            tagged=r.tagged,
            flagged_misses=r.flagged_misses,
            counted_decided=r.counted_decided,
            run_by=self.actor.id if self.actor else None,
        )
        s.add(row)
        s.flush()
        for item_id, entry, note in misses:
            s.add(
                RescanMiss(
                    rescan_id=row.id, item_id=item_id, entry_id=entry, note=note, flagged_at=now
                )
            )
        r.rescan_id = row.id
        return r

    def _record_on_server(
        self,
        s: Session,
        trigger: str,
        searched: int,
        scanned: int,
        found: list[_Found],
        declared: int | None,
    ) -> RescanReport:
        matches = []
        for f in found:
            m: dict = {"item": f.item_id}
            if f.known is not None and f.known.evidence is not None and f.facts is not None:
                ev = f.known.evidence
                m.update(
                    entry=f.facts.id,
                    distance=ev.distance,
                    resolve=f.known.resolve,
                    note=match_note(ev, f.facts),
                )
                span = span_payload(ev)
                if span is not None:
                    m["span"] = span
            matches.append(m)
        batch = {
            "trigger": trigger[:64],
            "declared": declared,
            "searched": searched,
            "scanned": scanned,
            "policy": {
                "pdq_threshold": self.policy.pdq_threshold,
                "phash_threshold": self.policy.phash_threshold,
            },
            "matches": matches,
        }
        row = call(s, _APPLY, {"batch": json.dumps(batch)})[0]
        return RescanReport(
            trigger,
            searched,
            scanned,
            matched=len(found),
            resolved=row.resolved,
            badged=row.badged,
            tagged=row.tagged,
            flagged_misses=row.flagged_misses,
            counted_decided=row.counted_decided,
            rescan_id=row.rescan_id,
        )


class _NewHashes:
    """The new hashes as the pre-filter's queries: (algorithm, value) pairs, whatever their
    list or half."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._pairs = sorted(set(pairs))

    def entries(self) -> list[tuple[str, str]]:
        return self._pairs


def _flat_index(s: Session, entry_ids: Sequence[int]) -> _NewHashes:
    """The new entries' (algorithm, value) pairs (the pre-filter's queries)."""
    pairs: list[tuple[str, str]] = []
    ids = sorted(set(entry_ids))
    for i in range(0, len(ids), _ITEMS_BATCH):
        pairs += [
            (alg, value)
            for alg, value in s.execute(
                select(HashListEntry.algorithm, HashListEntry.value).where(
                    HashListEntry.id.in_(ids[i : i + _ITEMS_BATCH])
                )
            )
        ]
    return _NewHashes(pairs)


def _same_tables(algorithms: set[str]) -> set[str]:
    """Every hash type stored in the same index table as one of ``algorithms`` (a PDQ matches
    a video frame's PDQ)."""
    tables = {SIGNAL_TYPES[Algorithm(a)].index_table for a in algorithms if a in _ALGORITHMS}
    return {a.value for a, t in SIGNAL_TYPES.items() if t.index_table in tables}


_ALGORITHMS = {a.value for a in Algorithm}


def _own_items(s: Session, entry_ids: Sequence[int]) -> set[int]:
    """The items the new entries were confirmed from (not matched against their own hashes)."""
    ids = sorted(set(entry_ids))
    out: set[int] = set()
    for i in range(0, len(ids), _ITEMS_BATCH):
        out.update(
            x
            for x in s.scalars(
                select(HashListEntry.item_id).where(HashListEntry.id.in_(ids[i : i + _ITEMS_BATCH]))
            )
            if x is not None
        )
    return out


def _entry_incident(s: Session, f: _Found, active: dict[int, str]) -> int | None:
    """The active incident a matched entry belongs to: its item's, or the one whose label it
    carries."""
    if f.facts is None or not active:
        return None
    if f.facts.item_id is not None:
        inc = s.scalar(select(Item.incident_id).where(Item.id == f.facts.item_id))
        if inc in active:
            return inc
    labels = set(f.facts.labels.split())
    for inc_id, label in active.items():
        if label in labels:
            return inc_id
    return None


def _rejected(s: Session, item_id: int) -> bool:
    d = current_decision(s, item_id)
    return d is not None and outcome_of_row(d) is Verdict.REJECT


def _flagged(s: Session, item_id: int, entry: int | None) -> bool:
    q = select(func.count()).select_from(RescanMiss).where(RescanMiss.item_id == item_id)
    if entry is not None:
        q = q.where(RescanMiss.entry_id == entry)
    return bool(s.scalar(q))


def _resolve_members(s: Session, rep: Item) -> int:
    """The open members of a cluster whose representative a re-scan resolved: decided with it,
    as a confirm decides them (an auto-match naming the representative's entry and decision)."""
    parent = current_decision(s, rep.id)
    if parent is None:
        return 0
    n = 0
    for m in open_members(s, rep):
        append_decision(
            s,
            DecisionRequest(
                item_id=m.id,
                user_id=None,
                verdict=Verdict.CONFIRM,
                category=parent.category,
                note=f"decided with its cluster's representative #{rep.id} (re-scan)",
                # an auto-match (it adds no hashes, as ingest's do), under the representative's
                method=DecisionMethod.AUTO_MATCH,
                parent_uuid=parent.uuid,
                matched_entry_id=parent.matched_entry_id,
                match_distance=parent.match_distance,
            ),
        )
        m.status = ItemStatus.AUTO_MATCHED
        m.match_note = rep.match_note
        m.incident_id = m.incident_id or rep.incident_id
        n += 1
    return n


def high_water(db: Database) -> int:
    """The highest hash-list row id now (an import's new rows are above it)."""
    with db.session() as s:
        return int(s.scalar(select(func.max(HashListEntry.id))) or 0)
