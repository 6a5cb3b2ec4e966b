"""The run rule (app.core.matching.frame_runs) on synthetic hits: query frames about a second
apart, each with the reference frames it hit (their times in the reference)."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np

from app.core.matching.frame_runs import RUN_MIN_FRAMES, RUN_MIN_SECONDS, find_runs
from app.core.matching.hash_index import HashIndex, Match
from app.core.matching.hash_lists import ListPolicy, ListRule
from app.core.matching.match_rules import MatchPolicy, find_known, find_match, index_signal
from app.core.model.domain import Algorithm, MediaKind, Signal

REF = 7


def hit(ts: float, distance: int = 4, ref: int = REF, entry: int | None = None) -> Match:
    eid = entry if entry is not None else 1000 + round(ts * 100)
    return Match(eid, ref, Algorithm.PDQ_FRAME, distance, ts)


def frames(n: int, hits: dict[int, list[Match]]) -> list[tuple[float, list[Match] | None]]:
    """``n`` query frames at 0, 1, 2 ... s; frame i hit ``hits[i]`` (none where absent)."""
    return [(float(i), hits.get(i, [])) for i in range(n)]


def test_a_run_at_normal_speed_inside_other_footage():
    # 30 s of query; its seconds 10-17 are the reference's 0-7.
    ref_times = np.arange(16, dtype=np.float64)  # the reference: 16 s sampled once a second
    found = find_runs(frames(30, {10 + k: [hit(float(k))] for k in range(8)}), lambda r: ref_times)
    (run,) = found
    assert run.ref == REF
    assert run.query_span == (10.0, 17.0) and run.ref_span == (0.0, 7.0)
    assert run.frames == 8 and abs(run.query_share - 8 / 30) < 1e-9
    assert run.ref_share == 8 / 16  # its seconds 0-7 of 16
    assert abs(run.speed - 1.0) < 1e-9


def test_a_run_sped_up_by_a_quarter():
    # The copy plays 1.25x: each query second is 1.25 s of the reference (from its 3 s on).
    found = find_runs(frames(20, {5 + k: [hit(3.0 + 1.25 * k)] for k in range(7)}))
    (run,) = found
    assert run.query_span == (5.0, 11.0) and run.ref_span == (3.0, 10.5)
    assert abs(run.speed - 1.25) < 1e-9 and run.ref_share is None


def test_a_missed_frame_or_two_inside_a_run_is_allowed_a_long_gap_breaks_it():
    hits = {k: [hit(float(k))] for k in range(10) if k not in (3, 6, 7)}
    (run,) = find_runs(frames(12, hits))
    assert run.query_span == (0.0, 9.0) and run.frames == 7
    # Every other frame only: more missed than matched inside the span is not a run.
    sparse = {k: [hit(float(k))] for k in range(0, 12, 2)}
    assert find_runs(frames(12, sparse)) == []
    # A gap of 5 s splits it into two pieces each too short.
    broken = {k: [hit(float(k))] for k in (0, 1, 2, 3, 9, 10, 11, 12)}
    assert find_runs(frames(14, broken)) == []


def test_scattered_hits_are_not_a_run():
    # Every query frame hits some reference frame, but at random places in it.
    rng = random.Random(5)
    hits = {k: [hit(rng.uniform(0, 60))] for k in range(40)}
    assert find_runs(frames(40, hits)) == []
    # Out of order (the reference played backwards) is not a run either.
    backwards = {k: [hit(20.0 - 2 * k)] for k in range(10)}
    assert find_runs(frames(10, backwards)) == []
    # A frozen query frame (every frame hits the same reference moment): speed 0.
    frozen = {k: [hit(4.0)] for k in range(10)}
    assert find_runs(frames(10, frozen)) == []


def test_a_run_too_short_does_not_count():
    short_frames = {k: [hit(float(k))] for k in range(RUN_MIN_FRAMES - 1)}
    assert find_runs(frames(20, short_frames)) == []
    # Enough frames, too little time: half-second samples over less than the minimum.
    n = RUN_MIN_FRAMES + 2
    dense_q = [(k * 0.5, [hit(k * 0.5)]) for k in range(n)]
    assert (n - 1) * 0.5 < RUN_MIN_SECONDS
    assert find_runs(dense_q) == []
    # Just enough of both: counts.
    k_min = max(RUN_MIN_FRAMES, int(RUN_MIN_SECONDS) + 1)
    (run,) = find_runs(frames(20, {k: [hit(float(k))] for k in range(k_min)}))
    assert run.seconds >= RUN_MIN_SECONDS


def test_frames_not_looked_up_count_as_misses_only():
    q = frames(10, {k: [hit(float(k))] for k in range(6)})
    q += [(10.0 + k, None) for k in range(10)]  # dark frames: below the quality floor
    (run,) = find_runs(q)
    assert run.frames == 6 and run.query_share == 6 / 20


def test_a_dense_reference_gives_many_hits_a_frame_the_run_picks_the_consistent_ones():
    # Every reference frame hashed (25 a second): a query frame hits the frames near its own
    # moment (neighbours nearly alike) and, by chance, a few far away, nearer in distance.
    rng = random.Random(9)
    hits = {}
    for k in range(8):
        t = 2.0 + k
        near = [hit(t + d / 25, distance=6 + abs(d)) for d in range(-5, 6)]
        far = [hit(rng.uniform(30, 50), distance=2)]
        hits[k + 4] = sorted(far + near, key=lambda m: m.distance)
    every_frame = np.arange(0, 60, 1 / 25)  # 60 s, every frame hashed
    (run,) = find_runs(frames(20, hits), lambda r: every_frame)
    assert run.frames == 8
    assert abs(run.ref_share - 8 / 60) < 0.01  # the same share as a sparse reference's
    assert abs(run.ref_span[0] - 2.0) <= 0.2 and abs(run.ref_span[1] - 9.0) <= 0.2
    assert run.query_span == (4.0, 11.0)


def test_hits_without_a_time_or_a_reference_are_ignored():
    no_time = {k: [Match(k, REF, Algorithm.PDQ_FRAME, 3, None)] for k in range(10)}
    no_ref = {k: [Match(k, None, Algorithm.PDQ_FRAME, 3, float(k))] for k in range(10)}
    assert find_runs(frames(10, no_time)) == [] and find_runs(frames(10, no_ref)) == []


def test_two_references_each_their_own_run_longest_first():
    hits = {k: [hit(float(k), ref=1)] for k in range(6)}
    hits.update({10 + k: [hit(float(k), ref=2)] for k in range(9)})
    runs = find_runs(frames(20, hits))
    assert [(r.ref, r.frames) for r in runs] == [(2, 9), (1, 6)]


def _hashes(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.getrandbits(256):064x}" for _ in range(n)]


def _frames(values: list[str], start: float = 0.0) -> list[Signal]:
    return [Signal(Algorithm.PDQ_FRAME, v, 100, start + k, "") for k, v in enumerate(values)]


def _flip(value: str, bits: int) -> str:
    return f"{int(value, 16) ^ ((1 << bits) - 1):064x}"


def test_find_known_badges_a_partial_copy_and_prefers_a_whole_match():
    """Through the matcher: the run rule reads the index's frame times (a confirmed video's
    entries, ref 1); the queue's clusters do not use it; a whole match on another list wins
    over a partial copy even when farther."""
    policy = MatchPolicy()
    original = _hashes(10, 1)
    index = HashIndex()
    for k, sig in enumerate(_frames(original)):
        assert index_signal(index, 100 + k, sig, 1, policy)
    # 20 s: 5 s of other footage, the original's seconds 0-7, 7 s of other footage.
    query = _frames(_hashes(5, 2) + original[:8] + _hashes(7, 3))
    km = find_known(index, query, MediaKind.VIDEO, policy)
    assert km is not None and km.evidence is not None and km.resolve
    ev = km.evidence
    assert ev.partial and ev.ref == 1 and ev.span == (5.0, 12.0) and ev.ref_span == (0.0, 7.0)
    assert ev.fraction == 8 / 20 and ev.ref_fraction == 8 / 10
    assert ev.describe() == (
        "contains known video #1 from 0:05 to 0:12 (query share 40%, reference share 80%); "
        "its 0:00 to 0:07, pdq_frame within distance 0"
    )
    assert find_match(index, query, MediaKind.VIDEO, policy) is None  # clustering: no runs
    # A partner's list (resolve) holds the whole query, 3 bits off: its match is chosen.
    rule = ListRule("partner", ListPolicy.RESOLVE)
    for k, sig in enumerate(query):
        index_signal(index.space(rule.space), 500 + k, replace(sig, value=_flip(sig.value, 3)),
                     -500, policy)  # fmt: skip
    km = find_known(index, query, MediaKind.VIDEO, policy, [rule])
    assert km is not None and km.list_name == "partner" and km.evidence is not None
    assert not km.evidence.partial and km.evidence.fraction == 1.0


def test_a_short_reference_counts_when_the_copy_holds_all_of_it_in_order():
    # A 4.3 s reference (sampled every 0.1 s, as a dense one is): the query holds all of it,
    # 4 frames over 3 s, inside 12 s of other footage: too short for the usual minimums, but
    # the whole known clip in order.
    short = np.round(np.arange(0.0, 4.3, 0.1), 3)
    hits = {4 + k: [hit(0.3 + float(k))] for k in range(4)}
    (run,) = find_runs(frames(12, hits), lambda r: short)
    assert run.query_span == (4.0, 7.0) and run.frames == 4
    assert run.ref_share is not None and run.ref_share >= 0.8
    # The same 4 frames against a 60 s reference are a few seconds of it: not a run.
    long = np.round(np.arange(0.0, 60.0, 0.1), 3)
    assert find_runs(frames(12, hits), lambda r: long) == []
    # Nor without the reference's times (no share to judge it by), nor out of order.
    assert find_runs(frames(12, hits)) == []
    shuffled = {4 + k: [hit(0.3 + float(t))] for k, t in enumerate((2, 0, 3, 1))}
    assert find_runs(frames(12, shuffled), lambda r: short) == []
