"""Recording ingest results: content and preview into the store, the item with its signals and
sighting into the database. Exact copies (same SHA-256) add a sighting to the existing item."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

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
)
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
from app.storage.models import HashListEntry, Item, Sighting, SignalRow
from app.storage.record import append_decision

FLOOD_WINDOW = timedelta(hours=1)


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
        )
        for sig_id, algo, value, quality, variant, item_id, cluster_id in rows:
            sig = Signal(Algorithm(algo), value, quality, variant=variant or "")
            index_signal(index, sig_id, sig, cluster_id or item_id, policy)
    return index


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
        # The representative each new near-duplicate joined, in order (for the summary).
        self.joined: list[int] = []

    def _indexes(self) -> tuple[HashIndex, HashIndex]:
        if not self._watcher.ensure_loaded():
            self._watcher.refresh()  # a watermark query; reloads only what changed
        if self._queue_index is None:
            self._queue_index = load_queue_index(self.db, self.policy)
        return self._watcher.index, self._queue_index

    def record(self, path: Path, analysis: MediaAnalysis, sighting: SightingInfo) -> IngestOutcome:
        """Store one analysed file: a new item (queued or auto-matched) or a copy."""
        sighting = with_source_deadline(sighting, self.source_deadlines)
        content_key = None
        try:
            content_key = self.store.put_file(path, analysis.sha256)
        except OSError:
            # The file vanished or is unreadable since analysis; the item still records
            # what we know, without content.
            content_key = None
        preview_key = self.store.put_bytes(analysis.preview) if analysis.preview else None
        known: KnownMatch | None = None
        cluster = facts = allow_facts = None
        if self.match:
            hash_index, queue_index = self._indexes()
            assert self._watcher is not None
            known = find_known(
                hash_index, analysis.signals, analysis.kind, self.policy, self._watcher.lists
            )
            if known is not None and known.evidence is not None:
                facts = entry_for(self.db, known.evidence.entry_id, known.evidence.ref)
            if known is not None and known.allowed is not None:
                allow_facts = entry_for(self.db, known.allowed.entry_id, known.allowed.ref)
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
                    (facts, allow_facts),
                    cluster,
                )
            except IntegrityError:
                # Another workstation inserted the same SHA-256 first: record a copy instead.
                continue
        raise RuntimeError(f"could not record {path}")

    def _record_row(
        self,
        path: Path,
        a: MediaAnalysis,
        sighting: SightingInfo,
        content_key: str | None,
        preview_key: str | None,
        known: KnownMatch | None = None,
        facts: tuple[EntryFacts | None, EntryFacts | None] = (None, None),
        cluster: Evidence | None = None,
    ) -> IngestOutcome:
        new_signals: list[tuple[int, Signal]] = []
        joined: int | None = None
        with self.db.session() as s:
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
            elif sighting.deadline and (item.deadline is None or sighting.deadline < item.deadline):
                item.deadline = sighting.deadline
            s.add(
                Sighting(
                    item_id=item.id,
                    source=sighting.source,
                    external_id=sighting.external_id,
                    source_url=sighting.source_url,
                    original_name=path.name,
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
                index_signal(self._queue_index, sig_id, sig, ref, self.policy)
        return outcome

    def _known(
        self,
        s,
        item: Item,
        km: KnownMatch,
        facts: EntryFacts | None,
        allow_facts: EntryFacts | None,
    ) -> IngestOutcome:
        """A new item matched a block list: resolve it, or badge it, per the list's policy
        (queued whatever the policy when an allow list matches too, or the flood guard has
        switched the entry)."""
        ev = km.evidence
        assert ev is not None
        note = match_note(ev, facts)
        resolve = km.resolve
        if facts is not None:
            item.known_entry_id = facts.id
            if facts.list_name != LOCAL_LIST:
                resolve = resolve and not self._flood_guard(s, item, facts)
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

    def _flood_guard(self, s, item: Item, facts: EntryFacts) -> bool:
        """Whether the entry is (now) held to "queue": it already was, or this item makes
        more than ``flood_per_hour`` matches within the hour (then switched, and the leads
        told through the audit record)."""
        if facts.flood_guarded:
            return True
        limit = self.policy.flood_per_hour
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
            actor_id=self.actor.id if self.actor else None,
            actor_name=self.actor.username if self.actor else None,
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
    """Analyse and record every job; one bad file never stops the run."""
    summary = IngestSummary()
    joined_before = len(recorder.joined)
    for done, (job, analysis) in enumerate(analyze_jobs(jobs, workers=workers), 1):
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
        else:
            outcome = recorder.record(job.path, analysis, job.sighting)
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
        if progress:
            progress(done, len(jobs))
    joined = recorder.joined[joined_before:]
    summary.clustered, summary.clusters = len(joined), len(set(joined))
    return summary
