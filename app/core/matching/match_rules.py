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
* Halves (``region:*`` signals, :mod:`app.core.hashing.regions`), only when no whole-picture signal
  matched and ``use_regions`` is on: the same half of a picture within the PDQ threshold (an
  image), or of at least ``video_fraction`` of a video's frames (a video). They catch a copy
  stamped with a large logo. A half is compared with the same half only (its own index space);
  a half turned or mirrored (``dih:<code>:<half>``, query-only) with the half it lands on, so a
  mirrored and stamped copy matches too.

Lists (:mod:`app.core.matching.hash_lists`): ``local`` lives in the index's root, every other list
in
its own space, so :func:`find_known` applies each list's threshold and policy to its own
entries: a list that is ``off`` is never searched; a match on an allow list keeps the item
from being resolved without a human; among block lists, a ``resolve`` list's match wins over
a ``queue`` list's, then the nearer one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from app.core.matching.hash_index import HashIndex, best_video_matches
from app.core.matching.hash_lists import LOCAL_LIST, ListPolicy, ListRule
from app.core.matching.signal_types import (
    SIGNAL_TYPES,
    dihedral_parts,
    half_query_space,
    is_dihedral,
    is_query_only,
    is_region,
)
from app.core.model.domain import Algorithm, MediaKind, Signal

#: How many bits tighter than ``phash_threshold`` a rotated or mirrored pHash query must be.
TURNED_PHASH_TIGHTER = 2


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

    def describe(self) -> str:
        how = self.algorithm + (f" ({self.variant})" if self.variant else "")
        if self.fraction is not None:
            return f"{how}: {self.fraction:.0%} of frames within distance {self.distance}"
        return f"{how} distance {self.distance}"


def indexable(sig: Signal, policy: MatchPolicy) -> bool:
    """Whether a stored signal may match at all: not query-only, not of too low quality."""
    if is_query_only(sig.variant):
        return False  # rotated/mirrored hashes are for querying, not for the list
    return not (
        SIGNAL_TYPES[sig.algorithm].min_quality_applies
        and sig.quality is not None
        and sig.quality < policy.min_quality
    )


def signal_space(sig: Signal) -> str:
    """The index space a stored signal goes in (its half's, or "" for a whole picture)."""
    return sig.variant if is_region(sig.variant) else ""


def index_signal(index: HashIndex, entry_id: int, sig: Signal, ref: int | None, policy) -> bool:
    """Add one signal to ``index`` if it may match. Returns whether it was added."""
    if not indexable(sig, policy):
        return False
    index.space(signal_space(sig)).add(entry_id, sig.algorithm.value, sig.value, ref)
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
        own = (
            policy
            if rule.pdq_threshold is None
            else replace(policy, pdq_threshold=rule.pdq_threshold)
        )
        ev = find_match(space, signals, kind, own)
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
    resolve, ev, name = min(block, key=lambda b: (not b[0], b[1].distance))
    if allowed is not None:
        return KnownMatch(ev, name, False, allowed[0], allowed[1])
    return KnownMatch(ev, name, resolve)


def find_match(
    index: HashIndex, signals: list[Signal], kind: MediaKind, policy: MatchPolicy
) -> Evidence | None:
    if len(index) == 0:
        return None
    best: Evidence | None = None

    def consider(ev: Evidence) -> None:
        nonlocal best
        if best is None or (ev.distance, ev.fraction is None) < (
            best.distance,
            best.fraction is None,
        ):
            best = ev

    for sig in signals:
        if sig.algorithm in (Algorithm.SHA256, Algorithm.MD5):
            for m in index.search(sig.algorithm.value, sig.value, 0)[:1]:
                return Evidence(m.entry_id, m.ref, sig.algorithm.value, 0)

    frame_sets: dict[str, list[str]] = {}
    regions: list[Signal] = []
    # Every whole-picture PDQ of the item (as decoded, trimmed, each rotated and mirrored) in
    # one pass over the table: each chunk is read once for all of them.
    wanted = [
        sig.value
        for sig in signals
        if sig.algorithm is Algorithm.PDQ
        and half_query_space(sig.variant) is None
        and (sig.quality is None or sig.quality >= policy.min_quality)
    ]
    pdq_hits = iter(index.search_many("pdq", wanted, policy.pdq_threshold) if wanted else ())
    # pHash: the picture as decoded, and its rotations and mirrors held to a tighter threshold
    # (not the trimmed picture).
    plain_ph = [s.value for s in signals if s.algorithm is Algorithm.PHASH and not s.variant]
    turned_ph = [
        s.value for s in signals if s.algorithm is Algorithm.PHASH and _whole_turn(s.variant)
    ]
    video = kind is MediaKind.VIDEO
    plain_hits = iter(
        index.search_many("phash", plain_ph, policy.phash_threshold)
        if plain_ph and not video
        else ()
    )
    turned_hits = iter(
        index.search_many("phash", turned_ph, policy.turned_phash_threshold)
        if turned_ph and not video
        else ()
    )
    for sig in signals:
        trusted = sig.quality is None or sig.quality >= policy.min_quality
        if half_query_space(sig.variant) is not None:
            regions.append(sig)
        elif sig.algorithm is Algorithm.PDQ_FRAME:
            if trusted:
                frame_sets.setdefault(sig.variant, []).append(sig.value)
        elif sig.algorithm is Algorithm.PDQ and trusted:
            hits = next(pdq_hits)
            if hits:
                m = hits[0]
                consider(Evidence(m.entry_id, m.ref, "pdq", m.distance, sig.variant))
        elif sig.algorithm is Algorithm.PHASH and kind is not MediaKind.VIDEO:
            if sig.variant and not _whole_turn(sig.variant):
                continue
            hits = next(plain_hits if not sig.variant else turned_hits)
            if hits:
                m = hits[0]
                consider(Evidence(m.entry_id, m.ref, "phash", m.distance, sig.variant))

    for variant, frames in frame_sets.items():
        if is_dihedral(variant) and len(frames) < 2:
            continue
        best = _more_frames(best, _video_evidence(index, frames, variant, policy))
    if best is None and policy.use_regions and regions:
        best = _match_regions(index, regions, policy)
    return best


def _whole_turn(variant: str) -> bool:
    """A rotation or mirror of the whole picture as decoded (``dih:<name>``)."""
    return is_dihedral(variant) and dihedral_parts(variant)[1] == ""


def _video_evidence(
    index: HashIndex, frames: list[str], variant: str, policy: MatchPolicy, total: int = 0
) -> Evidence | None:
    """The best video match of one frame set by the video rule. ``total``: how many frames the
    set stands for when some were left out of ``frames`` and must count as misses (0: as many
    as given)."""
    matches = best_video_matches(
        index, frames, max_distance=policy.pdq_threshold, min_fraction=policy.video_fraction
    )
    if not matches:
        return None
    vm = max(matches, key=lambda v: (v.fraction_query, -v.min_distance))
    fraction = vm.matched_frames / total if total else vm.fraction_query
    if fraction < policy.video_fraction:
        return None
    return Evidence(None, vm.ref, "pdq_frame", vm.min_distance, variant, fraction=fraction)


def _more_frames(best: Evidence | None, ev: Evidence | None) -> Evidence | None:
    """``ev`` if it is a video match covering more of the query than ``best`` does."""
    if ev is None or ev.fraction is None:
        return best
    if best is None or best.fraction is None or ev.fraction > best.fraction:
        return ev
    return best


def _match_regions(index: HashIndex, regions: list[Signal], policy: MatchPolicy) -> Evidence | None:
    """The best half-picture match: per half, a still image's hash, or a video's frames by the
    video rule, each looked up in the space of the half it stands for
    (:func:`app.core.matching.signal_types.half_query_space`: its own, or for a half turned or
    mirrored the half it lands on). A half of low quality (flat: sky, wall) never matches, on
    either side, and counts as a miss among a video's frames."""
    frames: dict[str, list[str]] = {}
    totals: dict[str, int] = {}
    stills: dict[str, list[Signal]] = {}  # space -> the still hashes looked up in it
    best: Evidence | None = None
    for sig in regions:
        trusted = sig.quality is None or sig.quality >= policy.min_quality
        if sig.algorithm is Algorithm.PDQ_FRAME:
            totals[sig.variant] = totals.get(sig.variant, 0) + 1
            if trusted:
                frames.setdefault(sig.variant, []).append(sig.value)
        elif sig.algorithm is Algorithm.PDQ and trusted:
            stills.setdefault(str(half_query_space(sig.variant)), []).append(sig)
    for space_name, sigs in stills.items():
        space = index.space(space_name)
        if len(space) == 0:
            continue
        found = space.search_many("pdq", [s.value for s in sigs], policy.pdq_threshold)
        for sig, hits in zip(sigs, found, strict=True):
            if hits and (best is None or hits[0].distance < best.distance):
                m = hits[0]
                best = Evidence(m.entry_id, m.ref, "pdq", m.distance, sig.variant)
    for variant, values in frames.items():
        space = index.space(str(half_query_space(variant)))
        ev = _video_evidence(space, values, variant, policy, totals[variant])
        best = _more_frames(best, ev)
    return best
