"""Partial copies: a run of consecutive query frames that match one reference's frames in order.

A compilation that holds a few seconds of a confirmed video does not match it by the video rule
(80 % of the query's frames), yet those seconds are evidence of their own. The run rule, within
one frame set of the query (one variant), no Qt, no SQL:

* Each query frame (sampled about once a second, with its time) that hit frames of a reference
  whose times are known (:attr:`Match.ts`) is a set of points (query time, reference time). A
  densely hashed reference (every frame) gives several points a query frame: they are bucketed
  by :data:`REF_BUCKET_SECONDS` of reference time, the nearest hash of each bucket kept, at most
  :data:`MAX_POINTS_PER_FRAME` buckets (the nearest first); the chain picks the one consistent
  with the run.
* A run is a chain of points, one per query frame, query times increasing, each step at most
  :data:`MAX_GAP_SECONDS` of query time (a missed frame or two inside the run), its reference
  time advancing at a rate between :data:`MIN_SPEED` and :data:`MAX_SPEED` give or take
  :data:`TOLERANCE_SECONDS`; the whole run at one speed (first to last point) within those
  bounds, every point within :data:`TOLERANCE_SECONDS` of that line, and at least
  :data:`MIN_DENSITY` of the query's frames within its span in it.
* It counts when it spans at least :data:`RUN_MIN_SECONDS` of the query and holds at least
  :data:`RUN_MIN_FRAMES` matched frames; or, for a reference too short for that (a clip of a
  few seconds), when it covers at least :data:`WHOLE_REF_SHARE` of the reference, in order,
  with at least :data:`SHORT_MIN_FRAMES` frames over :data:`SHORT_MIN_SECONDS`: the whole
  known clip inside the copy.

Query frames that were not looked up (below the quality floor: dark or flat) never count, and
a reference frame below it is not in the index. The measurement behind the minimums is in
docs/PERFORMANCE.md, "Partial copies".
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from app.core.matching.hash_index import Match

#: A run spans at least this many seconds of the query ...
RUN_MIN_SECONDS = 4.0
#: ... and holds at least this many matched query frames.
RUN_MIN_FRAMES = 5
#: A short reference's run (its whole length, in order) spans at least this many seconds ...
SHORT_MIN_SECONDS = 3.0
#: ... holds at least this many matched frames ...
SHORT_MIN_FRAMES = 4
#: ... and covers at least this share of the reference's frames.
WHOLE_REF_SHARE = 0.8
#: Largest step of query time between two frames of a run (about two missed samples).
MAX_GAP_SECONDS = 3.0
#: The reference's seconds per query second, both ways (a copy slowed down or sped up).
MIN_SPEED, MAX_SPEED = 0.5, 2.0
#: How far off its line (seconds of reference time) a point of a run may be: the two videos'
#: samples fall at different moments, and a still scene matches a span of reference frames.
TOLERANCE_SECONDS = 0.75
#: The share of the query's frames within a run's span that must be in it (a missed frame or
#: two: 5 of 7 is enough, 5 of 9 is not).
MIN_DENSITY = 0.7
#: A dense reference's hits to one query frame, bucketed by this much reference time.
REF_BUCKET_SECONDS = 0.5
#: Buckets kept a query frame and reference (the nearest hashes first).
MAX_POINTS_PER_FRAME = 24


@dataclass(frozen=True)
class FrameRun:
    """A run of query frames matching one reference in order. ``query_span`` and ``ref_span``
    in seconds (first and last matched frame); ``query_share``: the run's frames over the
    query's frames (all of them, those not looked up included); ``ref_share``: the reference's
    frames the run covers over all of its frames in the index (by their times, so a sparse and
    a dense reference give the same share: :func:`reference_share`; None when the index knows
    no times of it). ``entry_id``: the nearest hit's entry."""

    ref: int
    entry_id: int
    query_span: tuple[float, float]
    ref_span: tuple[float, float]
    frames: int
    query_share: float
    ref_share: float | None
    speed: float
    min_distance: int

    @property
    def seconds(self) -> float:
        return self.query_span[1] - self.query_span[0]


@dataclass(frozen=True)
class _Point:
    qt: float
    rt: float
    distance: int
    entry_id: int


def find_runs(
    frames: Sequence[tuple[float | None, Sequence[Match] | None]],
    ref_times: Callable[[int], np.ndarray] | None = None,
    min_seconds: float = RUN_MIN_SECONDS,
    min_frames: int = RUN_MIN_FRAMES,
) -> list[FrameRun]:
    """The best run of each reference among one frame set's query frames: ``frames`` is one
    ``(query time, hits)`` pair a query frame (hits None: not looked up, a miss), in any order;
    ``ref_times``: a reference's distinct frame times in the index
    (:meth:`HashIndex.frame_times`, for the reference share). Runs that meet the minimums,
    longest first (then nearest)."""
    total = len(frames)
    if total == 0:
        return []
    points: dict[int, dict[float, list[_Point]]] = {}  # ref -> query time -> points
    all_times = sorted(qt for qt, _ in frames if qt is not None)
    step = _sampling_step(all_times)
    for qt, hits in frames:
        if qt is None or not hits:
            continue
        by_ref: dict[int, dict[int, Match]] = {}  # ref -> bucket -> nearest hit
        for m in hits:  # nearest first
            if m.ref is None or m.ts is None:
                continue
            buckets = by_ref.setdefault(m.ref, {})
            b = int(m.ts // REF_BUCKET_SECONDS)
            if b not in buckets and len(buckets) < MAX_POINTS_PER_FRAME:
                buckets[b] = m
        for ref, buckets in by_ref.items():
            pts = [_Point(qt, float(m.ts or 0.0), m.distance, m.entry_id) for m in buckets.values()]
            points.setdefault(ref, {})[qt] = pts
    out = []
    short_frames = min(min_frames, SHORT_MIN_FRAMES)
    for ref, per_frame in points.items():
        if len(per_frame) < short_frames:
            continue
        chain = _longest_chain(per_frame)
        run = None
        if len(per_frame) >= min_frames:
            run = _as_run(ref, chain, all_times, total, min_seconds, min_frames)
        if run is None and ref_times is not None:
            # A reference too short for the minimums: its whole length, in order.
            short_seconds = min(min_seconds, SHORT_MIN_SECONDS)
            run = _as_run(ref, chain, all_times, total, short_seconds, short_frames)
            if run is not None:
                share = reference_share(run, ref_times(ref), step)
                if share is None or share < WHOLE_REF_SHARE:
                    run = None
        if run is None:
            continue
        if ref_times is not None:
            share = reference_share(run, ref_times(ref), step)
            run = replace(run, ref_share=share)
        out.append(run)
    out.sort(key=lambda r: (-r.frames, -r.seconds, r.min_distance, r.ref))
    return out


def _sampling_step(times: list[float]) -> float:
    """The query's sampling step: the median gap between its frames (1 s when unknown)."""
    ts = np.unique(np.asarray(times, np.float64))
    return float(np.median(np.diff(ts))) if ts.size > 1 else 1.0


def reference_share(run: FrameRun, times: np.ndarray, step: float) -> float | None:
    """The share of a reference's frames (its distinct frame ``times`` in the index) that the
    run covers: those within its reference span widened by half the query's sampling ``step``
    (in the reference's time: times the speed) each side, the moments its first and last
    frames stand for. About the same for a reference sampled once a second and for one with
    every frame hashed; None when no time of it is known."""
    if times.size == 0:
        return None
    half = step * run.speed / 2
    lo, hi = run.ref_span[0] - half, run.ref_span[1] + half
    inside = int(np.count_nonzero((times >= lo) & (times < hi)))
    return min(1.0, inside / times.size)


def _step_ok(a: _Point, b: _Point) -> bool:
    """Whether ``b`` may follow ``a`` in a run."""
    dq = b.qt - a.qt
    if dq <= 0 or dq > MAX_GAP_SECONDS:
        return False
    dr = b.rt - a.rt
    return MIN_SPEED * dq - TOLERANCE_SECONDS <= dr <= MAX_SPEED * dq + TOLERANCE_SECONDS


def _longest_chain(per_frame: dict[float, list[_Point]]) -> list[_Point]:
    """The longest chain of points, one a query frame, each step allowed by :func:`_step_ok`
    (ties: the smaller summed distance). Dynamic programming over the query frames in time
    order; a step reaches back at most :data:`MAX_GAP_SECONDS`."""
    times = sorted(per_frame)
    layers = [per_frame[t] for t in times]
    # Per point: (length, -summed distance) of the best chain ending there, and its predecessor.
    best: list[list[tuple[int, int]]] = []
    back: list[list[tuple[int, int] | None]] = []
    for i, layer in enumerate(layers):
        scores, prevs = [], []
        for p in layer:
            score, prev = (1, -p.distance), None
            j = i - 1
            while j >= 0 and p.qt - times[j] <= MAX_GAP_SECONDS:
                for k, q in enumerate(layers[j]):
                    if _step_ok(q, p):
                        length, dist = best[j][k]
                        cand = (length + 1, dist - p.distance)
                        if cand > score:
                            score, prev = cand, (j, k)
                j -= 1
            scores.append(score)
            prevs.append(prev)
        best.append(scores)
        back.append(prevs)
    end = max(
        ((i, k) for i in range(len(layers)) for k in range(len(layers[i]))),
        key=lambda ik: best[ik[0]][ik[1]],
    )
    chain = []
    at: tuple[int, int] | None = end
    while at is not None:
        chain.append(layers[at[0]][at[1]])
        at = back[at[0]][at[1]]
    chain.reverse()
    return chain


def _as_run(
    ref: int,
    chain: list[_Point],
    times: list[float],
    total: int,
    min_seconds: float,
    min_frames: int,
) -> FrameRun | None:
    """The chain as a run, if it meets the minimums, keeps one speed (the line from its first
    point to its last, every point within :data:`TOLERANCE_SECONDS` of it) and holds
    :data:`MIN_DENSITY` of the query's frames (``times``, sorted) within its span; else its
    longest stretch that does, trimmed from the ends."""
    lo, hi = 0, len(chain) - 1
    while hi - lo + 1 >= min_frames:
        first, last = chain[lo], chain[hi]
        dq = last.qt - first.qt
        if dq < min_seconds:
            return None
        speed = (last.rt - first.rt) / dq
        worst, off = -1, 0.0
        for i in range(lo, hi + 1):
            p = chain[i]
            d = abs(p.rt - (first.rt + speed * (p.qt - first.qt)))
            if d > off:
                worst, off = i, d
        within = bisect.bisect_right(times, last.qt) - bisect.bisect_left(times, first.qt)
        dense = hi - lo + 1 >= MIN_DENSITY * within
        if MIN_SPEED <= speed <= MAX_SPEED and off <= TOLERANCE_SECONDS and dense:
            pts = chain[lo : hi + 1]
            nearest = min(pts, key=lambda p: (p.distance, p.entry_id))
            return FrameRun(
                ref,
                nearest.entry_id,
                (first.qt, last.qt),
                (first.rt, last.rt),
                len(pts),
                len(pts) / total,
                None,
                speed,
                nearest.distance,
            )
        # Drop the end nearer the worst point (or the end that breaks the speed).
        if worst >= 0 and worst - lo < hi - worst:
            lo += 1
        else:
            hi -= 1
    return None
