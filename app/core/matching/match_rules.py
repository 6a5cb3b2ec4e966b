"""Which known content an analysed item is: the rules that turn index hits into a verdict.

Used twice at ingest: against the hash list (auto-match: known content never reaches a human
twice) and against the open queue (near-duplicate clusters: decided once). No Qt, no SQL.

Rules (docs/ARCHITECTURE.md, "Hashing and matching"):

* SHA-256 or MD5 equal: the same file.
* PDQ within ``pdq_threshold`` (31), from any PDQ signal of the query (as decoded, with bars
  trimmed, or rotated/mirrored: the ``dih:*`` query-only variants) against any PDQ or video
  frame hash in the index. Hashes of quality below ``min_quality`` (50) never match: flat or
  tiny pictures give untrustworthy hashes.
* pHash within ``phash_threshold`` (10) from the picture as decoded, and within 2 bits less
  (8) from its rotations and mirrors (``dih:<name>``, query-only); not from the trimmed
  picture; off for video.
* Video: at least ``video_fraction`` (80 %) of the query's sampled frames are within the PDQ
  threshold of frames of one reference (vPDQ's rule, taken on the query side so that a clip cut
  from a confirmed video still matches). The plain and the bar-trimmed frame sets are tried and
  the better one counts.
* Partial copies (:mod:`app.core.matching.frame_runs`), against the hash lists only, when no
  picture rule (whole or halves, below) matched: a run of at least 4 s and 5 consecutive
  frames of the plain or the trimmed frame set matching one reference's frames in order, at
  one speed between 0.5x and 2x. The evidence (:attr:`Evidence.kind` ``partial``) names both
  spans and both shares.
* Halves (``region:*`` signals, :mod:`app.core.hashing.regions`), only when no whole-picture signal
  matched and ``use_regions`` is on: the same half of a picture within the PDQ threshold (an
  image), or of at least ``video_fraction`` of a video's frames (a video). They catch a copy
  stamped with a large logo. A half is compared with the same half only (its own index space);
  a half turned or mirrored (``dih:<code>:<half>``, query-only) with the half it lands on, so a
  mirrored and stamped copy matches too.

How: each signal becomes a :class:`Query` (its type, its :class:`Variant`, the space it is
looked up in and its threshold, all from its :class:`SignalType`), each query is looked up once
(:func:`look_up`), and the rules read the list of (query, hits) pairs: exact hashes, then whole
pictures and frame sets, then halves (each step looks up only its own queries, so an exact match
costs no PDQ search).

Lists (:mod:`app.core.matching.hash_lists`): ``local`` lives in the index's root, every other list
in
its own space, so :func:`find_known` applies each list's threshold and policy to its own
entries: a list that is ``off`` is never searched; a match on an allow list keeps the item
from being resolved without a human; among block lists, a ``resolve`` list's match wins over
a ``queue`` list's, then a match of the whole over a partial copy, then the nearer one; the
nearest resolving match of another list rides along as the ``fallback`` (the flood guard may
hold the chosen entry: ingest then resolves on the fallback).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from app.core.audio.fingerprint import FRAMES_PER_SECOND
from app.core.matching.audio_match import match_sound
from app.core.matching.frame_runs import FrameRun, find_runs
from app.core.matching.hash_index import HashIndex, Match, video_matches
from app.core.matching.hash_lists import LOCAL_LIST, ListPolicy, ListRule
from app.core.matching.signal_types import SIGNAL_TYPES, SignalType, Variant, signal_type
from app.core.model.domain import Algorithm, MediaKind, Signal

#: How many bits tighter than ``phash_threshold`` a rotated or mirrored pHash query must be.
TURNED_PHASH_TIGHTER = SIGNAL_TYPES[Algorithm.PHASH].turned_tighter


@dataclass(frozen=True)
class MatchPolicy:
    pdq_threshold: int = SIGNAL_TYPES[Algorithm.PDQ].default_threshold
    phash_threshold: int = SIGNAL_TYPES[Algorithm.PHASH].default_threshold
    min_quality: int = 50
    video_fraction: float = 0.8
    auto_resolve: bool = True  # False: queue the item with a "known match" badge instead
    use_regions: bool = True  # fall back to half-picture hashes (logo-stamped copies)
    # An imported entry matching more items than this in an hour is switched to "queue"
    # (0: no flood guard).
    flood_per_hour: int = 50
    # The sound: largest bit error rate (thousandths) of 3 s aligned with a reference.
    audio_ber: int = SIGNAL_TYPES[Algorithm.AUDIO].default_threshold

    @property
    def turned_phash_threshold(self) -> int:
        """The pHash threshold of a rotated or mirrored query (``dih:<name>``): an item asks
        8 pHashes instead of 1, so the 7 turned ones are held to :data:`TURNED_PHASH_TIGHTER`
        bits less: for 64 random bits, 10 or fewer differ about 36 times as often as 8 or
        fewer, so the 7 add about a fifth to the plain query's chance of a false match instead
        of multiplying it by 8."""
        return self.phash_threshold - TURNED_PHASH_TIGHTER

    def describe(self) -> str:
        """One line for logs and the ingest summary."""
        return (
            f"PDQ <= {self.pdq_threshold}, pHash <= {self.phash_threshold}, "
            f"quality >= {self.min_quality}, video {self.video_fraction:.0%} of frames, "
            f"halves {'on' if self.use_regions else 'off'}, "
            f"sound BER <= {self.audio_ber / 1000:.3f}, "
            f"known content {'auto-resolved' if self.auto_resolve else 'queued with a badge'}"
        )


@dataclass(frozen=True)
class Evidence:
    """The best reason an item is known: which entry (row id in the index), which reference
    (item id), how (algorithm and variant of the query), how close."""

    entry_id: int | None
    ref: int | None
    algorithm: str
    distance: int
    variant: str = ""
    fraction: float | None = None  # video: share of the query's frames that matched
    span: tuple[float, float] | None = None  # sound, a run: the query's seconds that matched
    # A run of frames (a partial copy, :mod:`app.core.matching.frame_runs`): the reference's
    # seconds the run covers, and the share of the reference's frames it hit (None: unknown).
    ref_span: tuple[float, float] | None = None
    ref_fraction: float | None = None
    kind: str = ""  # "" or PARTIAL_COPY

    @property
    def partial(self) -> bool:
        return self.kind == PARTIAL_COPY

    def describe(self) -> str:
        how = self.algorithm + (f" ({self.variant})" if self.variant else "")
        if self.partial and self.span is not None:
            ref = f"#{self.ref}" if self.ref is not None and self.ref >= 0 else "(imported)"
            shares = f"query share {self.fraction or 0:.0%}"
            if self.ref_fraction is not None:
                shares += f", reference share {self.ref_fraction:.0%}"
            where = ""
            if self.ref_span is not None:
                where = f"its {clock(self.ref_span[0])} to {clock(self.ref_span[1])}, "
            return (
                f"contains known video {ref} from {clock(self.span[0])} to "
                f"{clock(self.span[1])} ({shares}); {where}{how} within distance {self.distance}"
            )
        if self.span is not None:
            return (
                f"{how}: bit error rate {self.distance / 1000:.3f} from "
                f"{self.span[0]:.1f} s to {self.span[1]:.1f} s"
            )
        if self.fraction is not None:
            return f"{how}: {self.fraction:.0%} of frames within distance {self.distance}"
        return f"{how} distance {self.distance}"


#: :attr:`Evidence.kind` of a run of frames matching part of a known video.
PARTIAL_COPY = "partial"


def clock(seconds: float) -> str:
    """Seconds as m:ss (h:mm:ss past an hour), for a span in words."""
    s = max(0, round(seconds))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def indexable(sig: Signal, policy: MatchPolicy) -> bool:
    """Whether a stored signal may match at all: not query-only, not of too low quality."""
    return signal_type(sig.algorithm).indexable(sig.variant, sig.quality, policy)


def signal_space(sig: Signal) -> str:
    """The index space a stored signal goes in (its half's, or "" for a whole picture)."""
    return Variant.parse(sig.variant).stored_space


def index_signal(index: HashIndex, entry_id: int, sig: Signal, ref: int | None, policy) -> bool:
    """Add one signal to ``index`` if it may match. Returns whether it was added."""
    if not indexable(sig, policy):
        return False
    index.space(signal_space(sig)).add(entry_id, sig.algorithm.value, sig.value, ref, sig.frame_ts)
    return True


@dataclass(frozen=True)
class KnownMatch:
    """What the hash lists say about an item: the block-list match that counts (``evidence``
    on ``list_name``; ``resolve``: its list's policy says resolve without a human), and an
    allow-list match, if any, that keeps it from being resolved."""

    evidence: Evidence | None
    list_name: str | None
    resolve: bool
    allowed: Evidence | None = None
    allow_list: str | None = None
    # The nearest match of another block list whose rule resolves, when the chosen one's list
    # resolves too: what resolves the item if the chosen entry turns out to be held by the
    # flood guard (a held entry must not hide another list's resolving match).
    fallback: Evidence | None = None
    fallback_list: str | None = None


def local_rule(policy: MatchPolicy) -> ListRule:
    """The ``local`` list's rule: the workstation's known-content setting and threshold."""
    return ListRule(LOCAL_LIST, ListPolicy.RESOLVE if policy.auto_resolve else ListPolicy.QUEUE)


def find_known(
    index: HashIndex,
    signals: list[Signal],
    kind: MediaKind,
    policy: MatchPolicy,
    lists: Iterable[ListRule] = (),
) -> KnownMatch | None:
    """Match an item against every list (``local`` in the root of ``index``, the others in
    their spaces) under each list's own rule; None when no list matches."""
    rules = [local_rule(policy), *(r for r in lists if r.name != LOCAL_LIST)]
    block: list[tuple[bool, Evidence, str]] = []
    allowed: tuple[Evidence, str] | None = None
    for rule in rules:
        if rule.policy is ListPolicy.OFF:
            continue
        space = index.space(rule.space)
        if len(space) == 0:
            continue
        ev = find_match(space, signals, kind, policy_for(rule, policy), runs=True)
        if ev is None:
            continue
        if rule.allow:
            if allowed is None or ev.distance < allowed[0].distance:
                allowed = (ev, rule.name)
        else:
            block.append((rule.policy is ListPolicy.RESOLVE, ev, rule.name))
    if not block and allowed is None:
        return None
    if not block:
        assert allowed is not None
        return KnownMatch(None, None, False, allowed[0], allowed[1])
    # a resolving list first, then a match of the whole over a partial copy, then the nearer
    block.sort(key=lambda b: (not b[0], b[1].partial, b[1].distance))
    resolve, ev, name = block[0]
    if allowed is not None:
        return KnownMatch(ev, name, False, allowed[0], allowed[1])
    other = next((b for b in block[1:] if b[0] and b[2] != name), None) if resolve else None
    if other is not None:
        return KnownMatch(ev, name, resolve, fallback=other[1], fallback_list=other[2])
    return KnownMatch(ev, name, resolve)


def policy_for(rule: ListRule, policy: MatchPolicy) -> MatchPolicy:
    """``policy`` with the list's own threshold in place of the settings it replaces (each
    type says which: :meth:`SignalType.list_override`)."""
    own: dict[str, Any] = {}
    for t in SIGNAL_TYPES.values():
        own.update(t.list_override(rule.pdq_threshold))
    return replace(policy, **own) if own else policy


@dataclass(frozen=True)
class Query:
    """One signal of the item as a query: its type, its variant (read once), the space it is
    looked up in (``""``, or the half it stands for) and the distance within which it matches
    (None: it is not looked up: its type does not search with that variant, or it is below the
    quality floor)."""

    signal: Signal
    type: SignalType
    variant: Variant
    space: str
    threshold: int | None

    @classmethod
    def of(cls, sig: Signal, kind: MediaKind, policy: MatchPolicy) -> Query:
        t = signal_type(sig.algorithm)
        v = Variant.parse(sig.variant)
        threshold = (
            t.query_threshold(policy, v, kind is MediaKind.VIDEO)
            if t.trusted(sig.quality, policy)
            else None
        )
        return cls(sig, t, v, v.query_space or "", threshold)


@dataclass(frozen=True)
class Lookup:
    """A query and what it found: entries nearest first, or None when it was not looked up."""

    query: Query
    hits: list[Match] | None


def look_up(index: HashIndex, queries: list[Query]) -> list[Lookup]:
    """Each query looked up once in its own space within its own threshold, in one
    ``search_many`` per (space, algorithm, threshold): each chunk of a table is read once for
    all of them. One :class:`Lookup` per query, in order."""
    groups: dict[tuple[str, Algorithm, int], list[int]] = {}
    for i, q in enumerate(queries):
        if q.threshold is not None:
            groups.setdefault((q.space, q.signal.algorithm, q.threshold), []).append(i)
    hits: dict[int, list[Match]] = {}
    for (space, algorithm, threshold), members in groups.items():
        values = [queries[i].signal.value for i in members]
        found = index.space(space).search_many(algorithm, values, threshold)
        hits.update(zip(members, found, strict=True))
    return [Lookup(q, hits.get(i)) for i, q in enumerate(queries)]


def find_match(
    index: HashIndex,
    signals: list[Signal],
    kind: MediaKind,
    policy: MatchPolicy,
    runs: bool = False,
) -> Evidence | None:
    """The best evidence ``index`` holds for an item, by the rules of the module docstring:
    every signal becomes a :class:`Query`, the queries are looked up (:func:`look_up`) and the
    rules read the (query, hits) pairs: exact hashes first, then whole pictures and frame sets,
    then halves, then (``runs``: the hash lists, not the queue's clusters, whose decision is
    taken once for all) a run of frames matching part of a known video, then the sound."""
    if len(index) == 0:
        return None
    queries = [Query.of(sig, kind, policy) for sig in signals]
    sound = [q for q in queries if q.type.aligned]
    queries = [q for q in queries if not q.type.aligned]
    for lk in look_up(index, [q for q in queries if not q.type.near]):
        if lk.hits:
            m = lk.hits[0]
            return Evidence(m.entry_id, m.ref, lk.query.signal.algorithm.value, 0)
    whole = look_up(index, [q for q in queries if q.type.near and q.variant.whole])
    best = _match_whole(index, whole, policy)
    if best is None and policy.use_regions:
        halves = [q for q in queries if q.type.near and not q.variant.whole]
        if halves:
            best = _match_halves(index, look_up(index, halves), policy)
    if best is None and runs:
        best = _match_runs(index, whole)
    if best is None and sound:
        best = _match_sound(index, sound)
    return best


def _match_sound(index: HashIndex, queries: list[Query]) -> Evidence | None:
    """The sound's match (:mod:`app.core.matching.audio_match`): the item's blocks, by
    variant, aligned with the references' by bit error rate. Tried when no picture matched."""
    by_variant: dict[str, list[str]] = {}
    thresholds = set()
    for q in queries:
        if q.threshold is not None:
            by_variant.setdefault(q.signal.variant, []).append(q.signal.value)
            thresholds.add(q.threshold)
    if not by_variant:
        return None
    algorithm = queries[0].signal.algorithm.value
    m = match_sound(index, algorithm, by_variant, max(thresholds))
    if m is None:
        return None
    rate = sound_rate(m.variant)
    span = (m.span[0] / rate, m.span[1] / rate)
    return Evidence(m.entry_id, m.ref, algorithm, m.ber, m.variant, span=span)


def sound_rate(variant: str) -> float:
    """Sub-fingerprints a second of the query's own sound, for a sound variant (the speed
    variants count in the original's)."""
    v = Variant.parse(variant)
    return FRAMES_PER_SECOND * (v.speed / 100 if v.speed else 1.0)


def _better(best: Evidence | None, ev: Evidence) -> Evidence:
    """The nearer of two (a still's match before a video's at the same distance; the first
    found on a tie)."""
    if best is None or (ev.distance, ev.fraction is None) < (best.distance, best.fraction is None):
        return ev
    return best


def _match_whole(index: HashIndex, lookups: list[Lookup], policy: MatchPolicy) -> Evidence | None:
    """Whole pictures: the nearest still hit; then each variant's frame set by the video rule
    (a turned set of fewer than 2 frames is left out), the one covering most of the query."""
    best: Evidence | None = None
    frame_sets: dict[str, list[Lookup]] = {}
    for lk in lookups:
        q = lk.query
        if q.type.video_frames:
            if lk.hits is not None:
                frame_sets.setdefault(q.signal.variant, []).append(lk)
        elif lk.hits:
            m = lk.hits[0]
            ev = Evidence(m.entry_id, m.ref, q.signal.algorithm.value, m.distance, q.signal.variant)
            best = _better(best, ev)
    for variant, frames in frame_sets.items():
        if frames[0].query.variant.turn is not None and len(frames) < 2:
            continue
        best = _more_frames(best, _video_evidence(index, frames, variant, policy))
    return best


def _video_evidence(
    index: HashIndex, frames: list[Lookup], variant: str, policy: MatchPolicy, total: int = 0
) -> Evidence | None:
    """The best video match of one frame set by the video rule. ``total``: how many frames the
    set stands for when some were not looked up and must count as misses (0: as many as
    given)."""
    matches = video_matches(
        index, [lk.hits or [] for lk in frames], min_fraction=policy.video_fraction
    )
    if not matches:
        return None
    vm = max(matches, key=lambda v: (v.fraction_query, -v.min_distance))
    fraction = vm.matched_frames / total if total else vm.fraction_query
    if fraction < policy.video_fraction:
        return None
    algorithm = frames[0].query.signal.algorithm.value
    return Evidence(None, vm.ref, algorithm, vm.min_distance, variant, fraction=fraction)


def _match_runs(index: HashIndex, lookups: list[Lookup]) -> Evidence | None:
    """A partial copy (:mod:`app.core.matching.frame_runs`): the longest run of frames of the
    plain or the trimmed frame set (not a turned one: 16 frames of a video) matching one
    reference in order."""
    frame_sets: dict[str, list[Lookup]] = {}
    for lk in lookups:
        q = lk.query
        if q.type.video_frames and q.variant.turn is None:
            frame_sets.setdefault(q.signal.variant, []).append(lk)
    best: tuple[FrameRun, str, str] | None = None
    for variant, frames in frame_sets.items():
        found = find_runs([(lk.query.signal.frame_ts, lk.hits) for lk in frames], index.frame_times)
        if found and (
            best is None
            or (found[0].frames, -found[0].min_distance) > (best[0].frames, -best[0].min_distance)
        ):
            best = (found[0], variant, frames[0].query.signal.algorithm.value)
    if best is None:
        return None
    run, variant, algorithm = best
    return Evidence(
        run.entry_id,
        run.ref,
        algorithm,
        run.min_distance,
        variant,
        fraction=run.query_share,
        span=run.query_span,
        ref_span=run.ref_span,
        ref_fraction=run.ref_share,
        kind=PARTIAL_COPY,
    )


def _more_frames(best: Evidence | None, ev: Evidence | None) -> Evidence | None:
    """``ev`` if it is a video match covering more of the query than ``best`` does."""
    if ev is None or ev.fraction is None:
        return best
    if best is None or best.fraction is None or ev.fraction > best.fraction:
        return ev
    return best


def _match_halves(index: HashIndex, lookups: list[Lookup], policy: MatchPolicy) -> Evidence | None:
    """The best half-picture match: per half, a still image's hash, or a video's frames by the
    video rule, each looked up in the space of the half it stands for
    (:attr:`Variant.query_space`: its own, or for a half turned or mirrored the half it lands
    on). A half of low quality (flat: sky, wall) never matches, on either side, and counts as a
    miss among a video's frames. Stills are read space by space (in the order the spaces first
    come), then the frame sets."""
    stills: dict[str, list[Lookup]] = {}
    frames: dict[str, list[Lookup]] = {}
    totals: dict[str, int] = {}
    for lk in lookups:
        q = lk.query
        if q.type.video_frames:
            totals[q.signal.variant] = totals.get(q.signal.variant, 0) + 1
            if lk.hits is not None:
                frames.setdefault(q.signal.variant, []).append(lk)
        elif lk.hits is not None:
            stills.setdefault(q.space, []).append(lk)
    best: Evidence | None = None
    for space_lookups in stills.values():
        for lk in space_lookups:
            if lk.hits and (best is None or lk.hits[0].distance < best.distance):
                m, sig = lk.hits[0], lk.query.signal
                best = Evidence(m.entry_id, m.ref, sig.algorithm.value, m.distance, sig.variant)
    for variant, values in frames.items():
        space = index.space(values[0].query.space)
        ev = _video_evidence(space, values, variant, policy, totals[variant])
        best = _more_frames(best, ev)
    return best
