"""Recording ingest results: content and preview into the store, the item with its signals and
sighting into the database. Exact copies (same SHA-256) add a sighting to the existing item.

On a team server (PostgreSQL with the server program: app.storage.server_api) the workstation
matches, and the server records: one call of ``hd_api_record_items`` (app/storage/sql/
api_ingest.sql) per batch of :data:`SERVER_BATCH` files, which sets every id, time and actor,
checks every value and what it can of the matches, and runs the flood guard and writes the
auto-match decisions itself. Elsewhere (SQLite, PostgreSQL without the program) the same work is
done here, file by file, with the same checks (:func:`check_file`)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, or_, select, text
from sqlalchemy.exc import IntegrityError

from app.core.errors import Refusal
from app.core.ingest.contentstore import ContentStore
from app.core.ingest.jobs import IngestJob, IngestSummary, analyze_jobs, presence
from app.core.matching.hash_index import HashIndex
from app.core.matching.hash_lists import LOCAL_LIST
from app.core.matching.match_rules import (
    Evidence,
    KnownMatch,
    MatchPolicy,
    find_known,
    find_match,
    index_signal,
    indexable,
    signal_space,
)
from app.core.matching.signal_types import SIGNAL_TYPES
from app.core.model.deadlines import DEFAULT_SOURCE_DEADLINES, with_source_deadline
from app.core.model.decisions import DecisionRequest
from app.core.model.domain import (
    IN_QUEUE_STATUSES,
    Algorithm,
    DecisionMethod,
    IngestOutcome,
    ItemStatus,
    MediaAnalysis,
    MediaKind,
    SightingInfo,
    Signal,
    UserInfo,
    Verdict,
    utcnow,
)
from app.storage.audit import AuditKind, append_event
from app.storage.db import Database
from app.storage.hash_list_index import EntryFacts, entry_for
from app.storage.hash_list_watcher import HashListWatcher
from app.storage.incidents import incident_for_new_item, incident_hash_index
from app.storage.models import HashListEntry, Item, Sighting, SignalRow
from app.storage.record import append_decision
from app.storage.server_api import call
from app.storage.server_security import enforced

FLOOD_WINDOW = timedelta(hours=1)
#: Files per call of the team server's write API (hd_api_record_items).
SERVER_BATCH = 100
#: How far ahead of the clock a report's time may be (another machine's clock): the server's
#: own allowance (api_ingest.sql).
REPORT_SKEW = timedelta(minutes=1)
#: Queue-index ids and refs of a batch's files before the server has given them theirs: above
#: every real id, in the order the files come, as the real ones will be.
_PENDING = 1 << 61
_HEX = re.compile(r"[0-9a-f]+")
_VARIANT = re.compile(r"[a-z0-9:_-]*")


class InvalidFile(Refusal, ValueError):
    """A file's record has a value Hashdesk does not write (the server refuses it too)."""


def check_file(a: MediaAnalysis, sighting: SightingInfo, now: datetime) -> str | None:
    """What the server would refuse in a file's record (api_ingest.sql checks the same), or
    None. ``sighting``: with its source's deadline already (with_source_deadline)."""
    if not _HEX.fullmatch(a.sha256 or "") or len(a.sha256) != 64:
        return f"SHA-256 {a.sha256!r} is not valid"
    if a.md5 and (not _HEX.fullmatch(a.md5) or len(a.md5) != 32):  # "": content not read
        return f"MD5 {a.md5!r} is not valid"
    if a.size < 0 or (a.width or 0) < 0 or (a.height or 0) < 0:
        return f"size {a.size} ({a.width}x{a.height}) is not valid"
    if a.duration is not None and not a.duration >= 0:
        return f"duration {a.duration!r} is not valid"
    if a.mime is not None and len(a.mime) > 64:
        return f"MIME type {a.mime[:80]!r} is not valid"
    for sig in a.signals:
        t = SIGNAL_TYPES.get(sig.algorithm)
        if (
            t is None
            or len(sig.value) != t.hex_len
            or not _HEX.fullmatch(sig.value)
            or (sig.quality is not None and not 0 <= sig.quality <= 100)
            or (sig.frame_ts is not None and not sig.frame_ts >= 0)
            or len(sig.variant or "") > 16
            or not _VARIANT.fullmatch(sig.variant or "")
        ):
            return f"signal {sig.algorithm}:{sig.variant}:{sig.value[:70]} is not valid"
    if not sighting.source or len(sighting.source) > 128:
        return f"sighting source {sighting.source!r} is not valid"
    if sighting.external_id is not None and len(sighting.external_id) > 256:
        return "external id longer than 256 characters"
    if sighting.score is not None and sighting.score != sighting.score:
        return "score is not a number"
    if sighting.flagged_at > now + REPORT_SKEW:
        return f"time the report was received {sighting.flagged_at.isoformat()} is in the future"
    if sighting.deadline is not None and sighting.deadline < sighting.flagged_at:
        return (
            f"deadline {sighting.deadline.isoformat()} is before the report was received "
            f"({sighting.flagged_at.isoformat()})"
        )
    return None


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
            .where(Item.status.in_(IN_QUEUE_STATUSES))
            .where(or_(Item.cluster_id.is_(None), Item.cluster_id == Item.id))
            # In id order, each add is an append to a sorted table: the whole load is linear.
            # Out of order, every add searched the table for the id first (quadratic: 97 % of
            # a worker's job with a thousand items open, profiled in the intake drill).
            .order_by(SignalRow.id)
        )
        for sig_id, algo, value, quality, variant, item_id, cluster_id in rows:
            sig = Signal(Algorithm(algo), value, quality, variant=variant or "")
            if _clusters(sig):
                index_signal(index, sig_id, sig, cluster_id or item_id, policy)
    return index


def _clusters(sig: Signal) -> bool:
    """Whether a signal joins near-duplicates in the open queue (not the sound's blocks:
    :attr:`SignalType.clusters`)."""
    return SIGNAL_TYPES[sig.algorithm].clusters


class IngestRecorder:
    """Records analysed files. With matching on (the default), a new item is first matched
    against the hash lists (known content: auto-matched, or badged, per the list's policy; an
    allow-list match keeps it for a human), then against the open queue (near-duplicates join
    the cluster of the item they match). The flood guard switches an imported entry that
    matches too many items in an hour to "queue" and tells the leads (an audit event)."""

    def __init__(
        self,
        db: Database,
        store: ContentStore,
        policy: MatchPolicy | None = None,
        match: bool = True,
        source_deadlines: Mapping[str, timedelta] | None = None,
        actor: UserInfo | None = None,
        *,
        watcher: HashListWatcher,
    ) -> None:
        self.db = db
        # Who ingests (a team server checks events are in their own name); None: the system.
        self.actor = actor
        # A sighting without a deadline gets its source's default (Settings.source_deadlines;
        # without settings, the built-in ones: removal orders within one hour).
        self.source_deadlines = dict(
            DEFAULT_SOURCE_DEADLINES if source_deadlines is None else source_deadlines
        )
        self.store = store
        self.policy = policy or MatchPolicy()
        self.match = match
        # The hash list, kept current by a watcher (a confirm or a retraction made on another
        # workstation during a long ingest counts from the next file on): the process's own
        # (AppContext's, loaded once for every ingest and window), received, never built here.
        self._watcher = watcher
        self._queue_index: HashIndex | None = None
        self._incidents: HashIndex | None = None
        # Pending queue-index ids and refs handed out (team server: see _record_on_server).
        self._pending = _PENDING
        # The representative each new near-duplicate joined, in order (for the summary).
        self.joined: list[int] = []

    def _indexes(self) -> tuple[HashIndex, HashIndex]:
        if not self._watcher.ensure_loaded():
            self._watcher.refresh()  # a watermark query; reloads only what changed
        if self._queue_index is None:
            self._queue_index = load_queue_index(self.db, self.policy)
        return self._watcher.index, self._queue_index

    def _incident_index(self) -> HashIndex:
        """The active incidents' hashes (read once per recorder: an incident declared during
        a long ingest reaches the items recorded before it through its re-scan)."""
        if self._incidents is None:
            with self.db.session() as s:
                self._incidents = incident_hash_index(s, self.policy)
        return self._incidents

    def record(self, path: Path, analysis: MediaAnalysis, sighting: SightingInfo) -> IngestOutcome:
        """Store one analysed file: a new item (queued or auto-matched) or a copy."""
        return self.record_many([(path, analysis, sighting)])[0]

    def record_many(
        self, files: Sequence[tuple[Path, MediaAnalysis, SightingInfo]]
    ) -> list[IngestOutcome]:
        """Store analysed files, in order (one outcome each). InvalidFile, before anything is
        recorded, when a file's record has a value the server would refuse (check_file)."""
        now = utcnow()
        files = [(p, a, with_source_deadline(s, self.source_deadlines)) for p, a, s in files]
        for path, a, s in files:
            problem = check_file(a, s, now)
            if problem is not None:
                raise InvalidFile(f"{path}: {problem}")
        if not enforced(self.db.engine):
            return [self._record_here(*f) for f in files]
        out: list[IngestOutcome] = []
        for i in range(0, len(files), SERVER_BATCH):
            out += self._record_on_server(files[i : i + SERVER_BATCH])
        return out

    def batch_size(self) -> int:
        """How many files :func:`ingest_jobs` hands :meth:`record_many` at once: a batch on a
        team server (one call each), one at a time elsewhere (the same cost either way)."""
        return SERVER_BATCH if enforced(self.db.engine) else 1

    def problem(self, analysis: MediaAnalysis, sighting: SightingInfo) -> str | None:
        """Why the record would not take this file (check_file), or None."""
        sighting = with_source_deadline(sighting, self.source_deadlines)
        return check_file(analysis, sighting, utcnow())

    def _pending_id(self) -> int:
        self._pending += 1
        return self._pending

    def _store(self, path: Path, analysis: MediaAnalysis) -> tuple[str | None, str | None]:
        """The file and its preview into the content store: their keys."""
        content_key = None
        try:
            content_key = self.store.put_file(path, analysis.sha256)
        except OSError:
            # The file vanished or is unreadable since analysis; the item still records
            # what we know, without content.
            content_key = None
        preview_key = self.store.put_bytes(analysis.preview) if analysis.preview else None
        return content_key, preview_key

    def _record_here(
        self, path: Path, analysis: MediaAnalysis, sighting: SightingInfo
    ) -> IngestOutcome:
        """One file, recorded by this process (SQLite; PostgreSQL without the server program)."""
        content_key, preview_key = self._store(path, analysis)
        known: KnownMatch | None = None
        cluster = facts = allow_facts = fallback_facts = None
        seed_incident: int | None = None
        if self.match:
            hash_index, queue_index = self._indexes()
            seed = find_match(self._incident_index(), analysis.signals, analysis.kind, self.policy)
            seed_incident = seed.ref if seed is not None else None
            assert self._watcher is not None
            known = find_known(
                hash_index, analysis.signals, analysis.kind, self.policy, self._watcher.lists
            )
            if known is not None and known.evidence is not None:
                facts = entry_for(self.db, known.evidence.entry_id, known.evidence.ref)
            if known is not None and known.allowed is not None:
                allow_facts = entry_for(self.db, known.allowed.entry_id, known.allowed.ref)
            if known is not None and known.fallback is not None:
                fallback_facts = entry_for(self.db, known.fallback.entry_id, known.fallback.ref)
            if known is None or known.evidence is None:
                cluster = find_match(queue_index, analysis.signals, analysis.kind, self.policy)
        for _attempt in range(2):
            try:
                return self._record_row(
                    path,
                    analysis,
                    sighting,
                    content_key,
                    preview_key,
                    known,
                    (facts, allow_facts, fallback_facts),
                    cluster,
                    seed_incident,
                )
            except IntegrityError:
                # Another workstation (or job) inserted the same SHA-256 first, or recorded
                # this very arrival: the next attempt records a copy, or finds it recorded.
                continue
        raise RuntimeError(f"could not record {path}")

    def _record_on_server(
        self, files: Sequence[tuple[Path, MediaAnalysis, SightingInfo]]
    ) -> list[IngestOutcome]:
        """One call of the team server's write API for a batch of files. Each file is matched
        here as :meth:`_record_here` matches it; a file the batch leaves open on its own goes in
        the queue index at once under a pending id (a later file of the batch may join its
        cluster: the server is told which position), replaced by the server's ids after."""
        queue_index: HashIndex | None = None
        hash_index: HashIndex | None = None
        if self.match:
            hash_index, queue_index = self._indexes()
        with self.db.session() as s:
            recorded = set(
                s.scalars(
                    select(Item.sha256).where(Item.sha256.in_({a.sha256 for _, a, _ in files}))
                )
            )
        items: list[dict] = []
        pending_refs: dict[int, int] = {}  # pending ref -> position in the batch
        pending_ids: list[int] = []
        for pos, (path, a, sighting) in enumerate(files):
            content_key, preview_key = self._store(path, a)
            copy = a.sha256 in recorded
            recorded.add(a.sha256)
            item = _item_payload(path, a, sighting, content_key, preview_key)
            items.append(item)
            if copy or queue_index is None or hash_index is None:
                continue
            assert self._watcher is not None
            known = find_known(hash_index, a.signals, a.kind, self.policy, self._watcher.lists)
            facts = allow_facts = None
            if known is not None and known.evidence is not None:
                facts = entry_for(self.db, known.evidence.entry_id, known.evidence.ref)
            if known is not None and known.allowed is not None:
                allow_facts = entry_for(self.db, known.allowed.entry_id, known.allowed.ref)
                item["allow_note"] = _allow_note(known, allow_facts)
            open_alone = True
            if known is not None and known.evidence is not None and facts is not None:
                ev = known.evidence
                item["known"] = {
                    "entry": facts.id,
                    "distance": ev.distance,
                    "resolve": known.resolve,
                    # the server adds the flood guard's words, as it finds the entry
                    "note": match_note(ev, replace(facts, flood_guarded=False)),
                }
                span = span_payload(ev)
                if span is not None:
                    item["known"]["span"] = span
                fb = known.fallback
                fb_facts = entry_for(self.db, fb.entry_id, fb.ref) if fb is not None else None
                if fb is not None and fb_facts is not None:
                    # resolves the item if the server finds the entry above held
                    item["known"]["fallback"] = {
                        "entry": fb_facts.id,
                        "distance": fb.distance,
                        "note": match_note(fb, replace(fb_facts, flood_guarded=False)),
                    }
                open_alone = not known.resolve
            else:
                cluster = find_match(queue_index, a.signals, a.kind, self.policy)
                if cluster is not None and cluster.ref is not None:
                    if cluster.ref in pending_refs:
                        item["cluster_in_batch"] = pending_refs[cluster.ref]
                    else:
                        item["cluster"] = cluster.ref
                    open_alone = False
            if open_alone:
                ref = self._pending_id()
                pending_refs[ref] = pos
                rows = [(self._pending_id(), sig, ref) for sig in a.signals]
                pending_ids += _index_many(queue_index, rows, self.policy)
        batch = {
            "policy": {
                "pdq_threshold": self.policy.pdq_threshold,
                "phash_threshold": self.policy.phash_threshold,
                "flood_per_hour": max(0, self.policy.flood_per_hour),
            },
            "items": items,
        }
        try:
            with self.db.session() as s:
                result = call(
                    s,
                    text("SELECT * FROM hd_api_record_items(CAST(:batch AS jsonb))"),
                    {"batch": json.dumps(batch)},
                )
        finally:
            if queue_index is not None and pending_ids:
                queue_index.remove_many(pending_ids)
        out = []
        opened: list[tuple[int, Signal, int]] = []
        for row, (_, a, _) in zip(result, files, strict=True):
            outcome = IngestOutcome(row.outcome)
            out.append(outcome)
            if row.joined is not None:
                self.joined.append(int(row.joined))
            if outcome is IngestOutcome.NEW and row.open_alone:
                opened += [
                    (i, sig, row.ref) for i, sig in zip(row.signal_ids, a.signals, strict=True)
                ]
        if queue_index is not None:
            _index_many(queue_index, opened, self.policy)
        return out

    def _record_row(
        self,
        path: Path,
        a: MediaAnalysis,
        sighting: SightingInfo,
        content_key: str | None,
        preview_key: str | None,
        known: KnownMatch | None = None,
        facts: tuple[EntryFacts | None, ...] = (None, None, None),
        cluster: Evidence | None = None,
        seed_incident: int | None = None,
    ) -> IngestOutcome:
        new_signals: list[tuple[int, Signal]] = []
        joined: int | None = None
        with self.db.session() as s:
            if sighting.receipt_id is not None and s.scalar(
                select(Sighting.id).where(Sighting.receipt_id == sighting.receipt_id)
            ):
                # This arrival is already recorded (a job of the same content, run at once
                # elsewhere, took it first): nothing to add.
                return IngestOutcome.COPY
            item = s.scalar(select(Item).where(Item.sha256 == a.sha256))
            outcome = IngestOutcome.COPY
            if item is None:
                outcome = IngestOutcome.NEW
                unreadable = a.kind is MediaKind.UNREADABLE
                item = Item(
                    sha256=a.sha256,
                    md5=a.md5,
                    kind=a.kind,
                    mime=a.mime,
                    size=a.size,
                    width=a.width,
                    height=a.height,
                    duration=a.duration,
                    content_key=content_key,
                    preview_key=preview_key,
                    preview_frames=a.preview_frames,
                    status=ItemStatus.UNREADABLE if unreadable else ItemStatus.QUEUED,
                    priority=0,
                    deadline=sighting.deadline,
                    error=a.error,
                )
                s.add(item)
                s.flush()
                rows = [
                    SignalRow(
                        item_id=item.id,
                        algorithm=sig.algorithm.value,
                        value=sig.value,
                        quality=sig.quality,
                        frame_ts=sig.frame_ts,
                        variant=sig.variant,
                    )
                    for sig in a.signals
                ]
                s.add_all(rows)
                s.flush()
                new_signals = [(r.id, sig) for r, sig in zip(rows, a.signals, strict=True)]
                if known is not None and known.evidence is not None:
                    outcome = self._known(s, item, known, *facts)
                elif known is not None and known.allowed is not None:
                    item.match_note = _allow_note(known, facts[1])
                if outcome is IngestOutcome.NEW and cluster is not None and cluster.ref is not None:
                    rep = s.get(Item, cluster.ref)
                    if rep is not None and rep.status in IN_QUEUE_STATUSES:
                        rep.cluster_id = rep.id
                        item.cluster_id = rep.id
                        joined = rep.id
                entry = facts[0]
                item.incident_id = incident_for_new_item(
                    s,
                    sighting.source,
                    seed_incident,
                    entry.item_id if entry is not None else None,
                    entry.labels if entry is not None else "",
                    joined,
                )
            elif sighting.deadline and (item.deadline is None or sighting.deadline < item.deadline):
                item.deadline = sighting.deadline
            s.add(
                Sighting(
                    item_id=item.id,
                    source=sighting.source,
                    external_id=sighting.external_id,
                    source_url=sighting.source_url,
                    original_name=sighting.original_name or path.name,
                    receipt_id=sighting.receipt_id,
                    reason=sighting.reason,
                    score=sighting.score,
                    flagged_at=sighting.flagged_at,
                    deadline=sighting.deadline,
                )
            )
            ref = item.cluster_id or item.id
            open_now = item.status in IN_QUEUE_STATUSES and item.cluster_id in (None, item.id)
        if joined is not None:
            self.joined.append(joined)
        if (
            self.match
            and outcome is IngestOutcome.NEW
            and open_now
            and self._queue_index is not None
        ):
            for sig_id, sig in new_signals:
                if _clusters(sig):
                    index_signal(self._queue_index, sig_id, sig, ref, self.policy)
        return outcome

    def _known(
        self,
        s,
        item: Item,
        km: KnownMatch,
        facts: EntryFacts | None,
        allow_facts: EntryFacts | None,
        fallback_facts: EntryFacts | None = None,
    ) -> IngestOutcome:
        return apply_known(s, item, km, facts, allow_facts, self.policy, self.actor, fallback_facts)


def apply_known(
    s,
    item: Item,
    km: KnownMatch,
    facts: EntryFacts | None,
    allow_facts: EntryFacts | None,
    policy: MatchPolicy,
    actor: UserInfo | None,
    fallback_facts: EntryFacts | None = None,
) -> IngestOutcome:
    """An item matched a block list: resolve it, or badge it, per the list's policy (queued
    whatever the policy when an allow list matches too, or the flood guard has switched the
    entry). Ingest's rule for a new item, and the re-scan's for an open one
    (app.storage.rescan).

    A held entry does not hide another list's resolving match (``km.fallback``, its entry
    ``fallback_facts``): the item stays on the held entry's count (``known_entry_id``: the
    flood guard counts it) and resolves on the fallback, unless that entry is held too."""
    ev = km.evidence
    assert ev is not None
    note = match_note(ev, facts)
    resolve = km.resolve
    set_match_span(item, ev)
    held = False
    if facts is not None:
        item.known_entry_id = facts.id
        if facts.list_name != LOCAL_LIST and resolve:
            held = _flood_guard(s, item, facts, policy, actor)
            resolve = not held
    if held and km.allowed is None and km.fallback is not None and fallback_facts is not None:
        assert facts is not None
        if fallback_facts.list_name == LOCAL_LIST or not _is_held(s, fallback_facts):
            if not facts.flood_guarded:  # switched by this item: say so, as the server does
                note += " (flood guard: queued for verification)"
            note += "; resolved on " + match_note(km.fallback, fallback_facts)
            ev, facts, resolve = km.fallback, fallback_facts, True
    if km.allowed is not None:
        note += "; " + _allow_note(km, allow_facts) + ": not resolved automatically"
    if not resolve:
        item.match_note = f"known match: {note}"
        return IngestOutcome.NEW
    item.status = ItemStatus.AUTO_MATCHED
    item.match_note = note
    append_decision(
        s,
        DecisionRequest(
            item_id=item.id,
            user_id=None,
            verdict=Verdict.CONFIRM,
            category=facts.category if facts else None,
            note=note,
            method=DecisionMethod.AUTO_MATCH,
            matched_entry_id=facts.id if facts else None,
            match_distance=ev.distance,
        ),
    )
    return IngestOutcome.AUTO_MATCHED


def _is_held(s, facts: EntryFacts) -> bool:
    """Whether an imported entry is held by the flood guard now."""
    if facts.flood_guarded:
        return True
    at = s.scalar(select(HashListEntry.flood_guarded_at).where(HashListEntry.id == facts.id))
    return at is not None


def _flood_guard(
    s, item: Item, facts: EntryFacts, policy: MatchPolicy, actor: UserInfo | None
) -> bool:
    """Whether the entry is (now) held to "queue": it already was, or this item makes
    more than ``flood_per_hour`` matches within the hour (then switched, and the leads
    told through the audit record)."""
    if facts.flood_guarded:
        return True
    limit = policy.flood_per_hour
    if limit <= 0:
        return False
    s.flush()
    now = utcnow()
    n = s.scalar(
        select(func.count())
        .select_from(Item)
        .where(Item.known_entry_id == facts.id, Item.created_at >= now - FLOOD_WINDOW)
    )
    if int(n or 0) <= limit:
        return False
    entry = s.get(HashListEntry, facts.id, with_for_update=True)
    if entry is None or entry.flood_guarded_at is not None:
        return True
    append_event(
        s,
        AuditKind.FLOOD_GUARD,
        actor_id=actor.id if actor else None,
        actor_name=actor.username if actor else None,
        subject=f"entry:{facts.id}"[:255],
        detail={
            "entry": facts.id,
            "list": facts.list_name,
            "matches_in_hour": int(n or 0),
            "limit": limit,
            "item": item.id,
        },
        occurred_at=now,
    )
    entry.flood_guarded_at = now  # after the event: a team server checks it is there
    entry.changed_at = now
    return True


def _index_many(
    index: HashIndex, rows: Sequence[tuple[int, Signal, int]], policy: MatchPolicy
) -> list[int]:
    """:func:`index_signal` for many ``(entry id, signal, ref)`` rows, one ``add_many`` per
    space. The ids indexed."""
    spaces: dict[str, list[tuple[int, str, str, int | None, float | None]]] = {}
    added = []
    for entry_id, sig, ref in rows:
        if indexable(sig, policy) and _clusters(sig):
            spaces.setdefault(signal_space(sig), []).append(
                (entry_id, sig.algorithm.value, sig.value, ref, sig.frame_ts)
            )
            added.append(entry_id)
    for space, batch in spaces.items():
        index.space(space).add_many(batch)
    return added


def _item_payload(
    path: Path,
    a: MediaAnalysis,
    sighting: SightingInfo,
    content_key: str | None,
    preview_key: str | None,
) -> dict:
    """One file as hd_api_record_items takes it (api_ingest.sql)."""
    return {
        "sha256": a.sha256,
        "md5": a.md5,
        "kind": a.kind.value,
        "mime": a.mime,
        "size": a.size,
        "width": a.width,
        "height": a.height,
        "duration": a.duration,
        "content_key": content_key,
        "preview_key": preview_key,
        "preview_frames": a.preview_frames,
        "error": a.error,
        "signals": [
            [sig.algorithm.value, sig.value, sig.quality, sig.frame_ts, sig.variant or ""]
            for sig in a.signals
        ],
        "sighting": {
            "source": sighting.source,
            "external_id": sighting.external_id,
            "source_url": sighting.source_url,
            "original_name": sighting.original_name or path.name,
            "receipt_id": sighting.receipt_id,
            "reason": sighting.reason,
            "score": sighting.score,
            "flagged_at": sighting.flagged_at.isoformat(),
            "deadline": sighting.deadline.isoformat() if sighting.deadline else None,
        },
    }


#: The item's columns of a partial copy's match (migration 0019), in :func:`span_payload`'s order.
SPAN_COLUMNS = (
    "match_start",
    "match_end",
    "match_ref_start",
    "match_ref_end",
    "match_query_share",
    "match_ref_share",
)


def span_payload(ev: Evidence | None) -> dict | None:
    """A partial copy's spans and shares as the item records them (and the server's write API
    takes them, ``known.span``); None for any other match."""
    if ev is None or not ev.partial or ev.span is None:
        return None
    ref = ev.ref_span or (None, None)
    return {
        "query": [ev.span[0], ev.span[1]],
        "ref": [ref[0], ref[1]],
        "query_share": ev.fraction,
        "ref_share": ev.ref_fraction,
    }


def set_match_span(item: Item, ev: Evidence | None) -> None:
    """The item's partial-copy columns from the match it is badged or resolved with (cleared
    for a match of another kind)."""
    p = span_payload(ev)
    values = (*p["query"], *p["ref"], p["query_share"], p["ref_share"]) if p else (None,) * 6
    for name, value in zip(SPAN_COLUMNS, values, strict=True):
        setattr(item, name, value)


def match_note(ev: Evidence, facts: EntryFacts | None) -> str:
    """What a known match says on the badge and in the auto-match decision: the entry and its
    list, the entry's labels, how and how close; for our own list who confirmed which item."""
    if facts is None:
        return f"matches the hash list, {ev.describe()}"
    labels = f", labels {facts.labels}" if facts.labels else ""
    note = f"matches hash-list entry #{facts.id} (list {facts.list_name}{labels}), {ev.describe()}"
    if facts.list_name == LOCAL_LIST:
        who = f"confirmed by {facts.added_by}" if facts.added_by else "confirmed"
        note += f"; {who} on item #{ev.ref}"
    else:
        note += "; imported"
    if facts.category:
        note += f", category {facts.category}"
    if facts.flood_guarded:
        note += " (flood guard: queued for verification)"
    return note


def _allow_note(km: KnownMatch, facts: EntryFacts | None) -> str:
    ev = km.allowed
    assert ev is not None
    where = f"entry #{facts.id}" if facts else "an entry"
    labels = f", labels {facts.labels}" if facts and facts.labels else ""
    return f"allow list {km.allow_list} matches ({where}{labels}, {ev.describe()})"


def ingest_jobs(
    recorder: IngestRecorder,
    jobs: list[IngestJob],
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> IngestSummary:
    """Analyse and record every job; one bad file never stops the run. On a team server the
    files are recorded in batches (IngestRecorder.batch_size): progress counts a file once it
    is recorded (or reported)."""
    summary = IngestSummary()
    joined_before = len(recorder.joined)
    size = recorder.batch_size()
    pending: list[tuple[IngestJob, MediaAnalysis]] = []
    done = 0

    def tick(n: int = 1) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, len(jobs))

    def flush() -> None:
        if not pending:
            return
        outcomes = recorder.record_many([(j.path, a, j.sighting) for j, a in pending])
        for (job, analysis), outcome in zip(pending, outcomes, strict=True):
            _count(summary, job, analysis, outcome)
        n = len(pending)
        pending.clear()
        tick(n)

    for job, analysis in analyze_jobs(jobs, workers=workers):
        absent = presence(job.path)
        if absent == "missing":
            summary.missing.append(str(job.path))
            summary.count(IngestOutcome.MISSING)
        elif absent is not None or not analysis.sha256:
            # Not a file that can be read at all (a pipe, a broken link, a name too long):
            # nothing to store, so it is reported and skipped.
            why = absent or analysis.error or "cannot read file"
            summary.skipped.append((str(job.path), why))
            summary.count(IngestOutcome.SKIPPED)
        elif (refused := recorder.problem(analysis, job.sighting)) is not None:
            # A value the record does not take (a report's time in the future, a deadline
            # before it): reported and skipped, here as on the server.
            summary.skipped.append((str(job.path), refused))
            summary.count(IngestOutcome.SKIPPED)
        else:
            pending.append((job, analysis))
            if len(pending) >= size:
                flush()
            continue
        if not pending:
            tick()
        else:  # reported in file order, once the files before it are recorded
            flush()
            tick()
    flush()
    joined = recorder.joined[joined_before:]
    summary.clustered, summary.clusters = len(joined), len(set(joined))
    return summary


def _count(
    summary: IngestSummary, job: IngestJob, analysis: MediaAnalysis, outcome: IngestOutcome
) -> None:
    if outcome is IngestOutcome.NEW:
        summary.new += 1
    elif outcome is IngestOutcome.AUTO_MATCHED:
        summary.new += 1
        summary.auto_matched += 1
    else:
        summary.copies += 1
    if outcome is IngestOutcome.COPY:
        summary.count(IngestOutcome.COPY)  # a copy of a known item, readable or not
    elif analysis.error:
        summary.count(IngestOutcome.UNREADABLE)  # a new item, queued with the reason
    else:
        summary.count(IngestOutcome.NEW)
    if analysis.error and outcome is not IngestOutcome.COPY:
        summary.unreadable.append((str(job.path), analysis.error))
