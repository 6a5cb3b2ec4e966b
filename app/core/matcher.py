"""Which known content an analysed item is: the rules that turn index hits into a verdict.

Used twice at ingest: against the hash list (auto-match: known content never reaches a human
twice) and against the open queue (near-duplicate clusters: decided once). No Qt, no SQL.

Rules (DESIGN.md, "Hashing and matching"):

* SHA-256 or MD5 equal: the same file.
* PDQ within ``pdq_threshold`` (31), from any PDQ signal of the query (as decoded, with bars
  trimmed, or rotated/mirrored: the ``dih:*`` query-only variants) against any PDQ or video
  frame hash in the index. Hashes of quality below ``min_quality`` (50) never match: flat or
  tiny pictures give untrustworthy hashes.
* pHash within ``phash_threshold`` (10), plain variant only; off for video.
* Video: at least ``video_fraction`` (80 %) of the query's sampled frames are within the PDQ
  threshold of frames of one reference (vPDQ's rule, taken on the query side so that a clip cut
  from a confirmed video still matches). The plain and the bar-trimmed frame sets are tried and
  the better one counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.matching import HashIndex, best_video_matches
from app.core.model import Algorithm, MediaKind, Signal


@dataclass(frozen=True)
class MatchPolicy:
    pdq_threshold: int = 31
    phash_threshold: int = 10
    min_quality: int = 50
    video_fraction: float = 0.8
    auto_resolve: bool = True  # False: queue the item with a "known match" badge instead


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


def index_signal(index: HashIndex, entry_id: int, sig: Signal, ref: int | None, policy) -> bool:
    """Add one signal to ``index`` if it may match. Returns whether it was added."""
    if sig.variant.startswith("dih:"):
        return False  # rotated/mirrored hashes are for querying, not for the list
    if (
        sig.algorithm in (Algorithm.PDQ, Algorithm.PDQ_FRAME)
        and sig.quality is not None
        and sig.quality < policy.min_quality
    ):
        return False
    index.add(entry_id, sig.algorithm.value, sig.value, ref)
    return True


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
    for sig in signals:
        trusted = sig.quality is None or sig.quality >= policy.min_quality
        if sig.algorithm is Algorithm.PDQ_FRAME:
            if trusted:
                frame_sets.setdefault(sig.variant, []).append(sig.value)
        elif sig.algorithm is Algorithm.PDQ and trusted:
            hits = index.search("pdq", sig.value, policy.pdq_threshold)
            if hits:
                m = hits[0]
                consider(Evidence(m.entry_id, m.ref, "pdq", m.distance, sig.variant))
        elif sig.algorithm is Algorithm.PHASH and not sig.variant and kind is not MediaKind.VIDEO:
            hits = index.search("phash", sig.value, policy.phash_threshold)
            if hits:
                m = hits[0]
                consider(Evidence(m.entry_id, m.ref, "phash", m.distance, sig.variant))

    for variant, frames in frame_sets.items():
        if variant.startswith("dih:") and len(frames) < 2:
            continue
        matches = best_video_matches(
            index, frames, max_distance=policy.pdq_threshold, min_fraction=policy.video_fraction
        )
        if matches:
            vm = max(matches, key=lambda v: (v.fraction_query, -v.min_distance))
            ev = Evidence(
                None, vm.ref, "pdq_frame", vm.min_distance, variant, fraction=vm.fraction_query
            )
            if best is None or best.fraction is None or vm.fraction_query > best.fraction:
                best = ev
    return best
