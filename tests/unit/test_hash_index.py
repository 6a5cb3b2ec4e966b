"""HashIndex, video matching and the benchmark helper (no timing assertions)."""

from __future__ import annotations

import hashlib
import random
import threading

import numpy as np
import pytest

from app.core.matching import hash_index as matching
from app.core.matching.hash_index import (
    HashIndex,
    Match,
    _hamming_hex,
    best_video_matches,
    hex_to_words,
    video_match_fraction,
)
from app.core.model.domain import Algorithm
from app.tools.bench_index import bench_match, bench_multi_index


def rand_hex(rng: random.Random, bits: int = 256) -> str:
    return format(rng.getrandbits(bits), f"0{bits // 4}x")


def flip(value_hex: str, n_bits: int, rng: random.Random, bits: int = 256) -> str:
    """``value_hex`` with exactly ``n_bits`` distinct bits flipped."""
    v = int(value_hex, 16)
    for b in rng.sample(range(bits), n_bits):
        v ^= 1 << b
    return format(v, f"0{bits // 4}x")


def filled_index(rng: random.Random, n: int = 3000, start_id: int = 1) -> HashIndex:
    index = HashIndex()
    index.add_many((start_id + i, "pdq", rand_hex(rng), 10_000 + start_id + i) for i in range(n))
    return index


def ids(matches: list[Match]) -> list[int]:
    return [m.entry_id for m in matches]


@pytest.fixture
def rng() -> random.Random:
    return random.Random(1234)


# --- PDQ thresholds ----------------------------------------------------------------------


def test_planted_neighbours_at_threshold(rng: random.Random) -> None:
    index = filled_index(rng)
    q = rand_hex(rng)
    planted = {0: 900_000, 5: 900_005, 31: 900_031, 32: 900_032, 64: 900_064}
    for dist, entry_id in planted.items():
        value = flip(q, dist, rng)
        assert _hamming_hex(q, value) == dist
        index.add(entry_id, "pdq", value, ref=entry_id + 1)

    matches = index.search("pdq", q, 31)
    assert [(m.entry_id, m.distance) for m in matches] == [
        (900_000, 0),
        (900_005, 5),
        (900_031, 31),
    ]
    assert matches[0] == Match(900_000, 900_001, Algorithm.PDQ, 0)
    assert ids(index.search("pdq", q, 32)) == [900_000, 900_005, 900_031, 900_032]
    assert ids(index.search("pdq", q, 0)) == [900_000]
    assert index.search("pdq", q, -1) == []


def test_search_agrees_with_brute_force(rng: random.Random) -> None:
    index = HashIndex()
    base = rand_hex(rng)
    # A clustered table so that loose thresholds return many rows (exercises both paths of
    # the prefilter: gathering candidates and finishing whole chunks).
    values = [flip(base, rng.randrange(0, 120), rng) for _ in range(2000)]
    index.add_many((i, "pdq", v, None) for i, v in enumerate(values))
    for threshold in (0, 10, 31, 60, 90, 255, 256, 1000):
        q = flip(base, rng.randrange(0, 40), rng)
        expected = sorted(
            (d, i) for i, v in enumerate(values) if (d := _hamming_hex(q, v)) <= threshold
        )
        got = [(m.distance, m.entry_id) for m in index.search("pdq", q, threshold)]
        assert got == expected, threshold


def test_uppercase_query_and_entry(rng: random.Random) -> None:
    index = HashIndex()
    value = rand_hex(rng)
    index.add(1, "pdq", value.upper())
    assert ids(index.search("pdq", value, 0)) == [1]
    assert ids(index.search("pdq", value.upper(), 0)) == [1]


def test_hex_to_words_is_big_endian() -> None:
    value = "0123456789abcdef" + "f" * 16 + "0" * 31 + "1"
    words = hex_to_words(value, 256)
    assert words.tolist() == [0x0123456789ABCDEF, 2**64 - 1, 0, 1]


# --- tables ------------------------------------------------------------------------------


def test_phash_table_separate_from_pdq(rng: random.Random) -> None:
    index = HashIndex()
    pdq = rand_hex(rng)
    phash = pdq[:16]
    index.add(1, "pdq", pdq, ref=1)
    index.add(2, "phash", phash, ref=2)
    assert ids(index.search("phash", phash, 10)) == [2]
    assert ids(index.search("pdq", pdq, 31)) == [1]
    assert index.search("phash", phash, 10)[0].algorithm is Algorithm.PHASH
    # A 64-bit value is not a PDQ query and vice versa.
    with pytest.raises(ValueError):
        index.search("pdq", phash, 31)
    with pytest.raises(ValueError):
        index.search("phash", pdq, 10)


def test_phash_distances(rng: random.Random) -> None:
    index = HashIndex()
    q = rand_hex(rng, 64)
    for d in (0, 3, 10, 11):
        index.add(100 + d, "phash", flip(q, d, rng, 64), ref=d)
    noise = {1000 + i: rand_hex(rng, 64) for i in range(500)}
    index.add_many((i, "phash", v, None) for i, v in noise.items())
    got = [(m.entry_id, m.distance) for m in index.search("phash", q, 10)]
    assert [g for g in got if g[0] < 1000] == [(100, 0), (103, 3), (110, 10)]
    # Random 64-bit neighbours within 10 bits are rare but possible: they must be real.
    assert all(_hamming_hex(q, noise[i]) == d for i, d in got if i >= 1000)


def test_pdq_and_pdq_frame_cross_match(rng: random.Random) -> None:
    index = filled_index(rng, 200)
    still = rand_hex(rng)
    frame = rand_hex(rng)
    index.add(500, "pdq", still, ref=50)
    index.add(600, "pdq_frame", frame, ref=60)

    by_frame = index.search("pdq_frame", flip(still, 4, rng), 31)
    assert [(m.entry_id, m.algorithm, m.distance) for m in by_frame] == [(500, Algorithm.PDQ, 4)]
    by_still = index.search(Algorithm.PDQ, flip(frame, 7, rng), 31)
    assert [(m.entry_id, m.ref, m.algorithm) for m in by_still] == [(600, 60, Algorithm.PDQ_FRAME)]


def test_exact_md5_sha256() -> None:
    index = HashIndex()
    md5 = hashlib.md5(b"a").hexdigest()
    sha = hashlib.sha256(b"a").hexdigest()
    index.add(1, "md5", md5, ref=7)
    index.add(2, "sha256", sha, ref=7)
    index.add(3, "sha256", sha.upper(), ref=8)  # same value, another list row
    assert index.search("md5", md5, 0) == [Match(1, 7, Algorithm.MD5, 0)]
    assert index.search("sha256", sha.upper(), 31) == [
        Match(2, 7, Algorithm.SHA256, 0),
        Match(3, 8, Algorithm.SHA256, 0),
    ]
    # One bit away is no match for an exact algorithm; md5 and sha256 are separate tables.
    near = format(int(md5, 16) ^ 1, "032x")
    assert index.search("md5", near, 31) == []
    assert index.search("sha256", sha[:32] + "0" * 32, 0) == []
    with pytest.raises(ValueError):
        index.search("sha256", md5, 0)
    with pytest.raises(ValueError):
        index.add(4, "md5", "z" * 32)
    assert len(index) == 3


def test_invalid_input_adds_nothing(rng: random.Random) -> None:
    index = HashIndex()
    good = (1, "pdq", rand_hex(rng), None)
    for bad in (
        (2, "pdq", "xyz", None),
        (2, "pdq", "g" * 64, None),
        (2, "pdq", " " * 2 + "0" * 62, None),
        (2, "nope", "0" * 64, None),
        (2, "phash", "0" * 64, None),
    ):
        with pytest.raises(ValueError):
            index.add_many([good, bad])
        assert len(index) == 0


# --- retraction --------------------------------------------------------------------------


def test_remove_retracts_every_table(rng: random.Random) -> None:
    index = filled_index(rng, 100)
    pdq, frame, ph = rand_hex(rng), rand_hex(rng), rand_hex(rng, 64)
    md5 = hashlib.md5(b"x").hexdigest()
    index.add(1001, "pdq", pdq, ref=1)
    index.add(1002, "pdq_frame", frame, ref=2)
    index.add(1003, "phash", ph, ref=3)
    index.add(1004, "md5", md5, ref=4)
    n = len(index)
    for entry_id in (1001, 1002, 1003, 1004):
        index.remove(entry_id)
    index.remove(1001)  # twice, and an unknown id: no error
    index.remove(999_999)
    assert len(index) == n - 4
    assert index.search("pdq", pdq, 31) == []
    assert index.search("pdq", frame, 31) == []
    assert index.search("phash", ph, 10) == []
    assert index.search("md5", md5, 0) == []
    assert index.frame_count(2) == 0


def test_remove_survives_compaction(rng: random.Random) -> None:
    index = HashIndex(compact_min_dead=8)
    values = {i: rand_hex(rng) for i in range(1, 201)}
    index.add_many((i, "pdq", v, i * 10) for i, v in values.items())
    removed = set(range(1, 201, 3))
    for i in sorted(removed):
        index.remove(i)  # 67 of 200 removed: compaction runs at least once on the way
    assert index._bits["b256"].dead < len(removed)
    assert len(index) == 200 - len(removed)
    for i, v in values.items():
        got = index.search("pdq", v, 0)
        if i in removed:
            assert got == []
        else:
            assert got == [Match(i, i * 10, Algorithm.PDQ, 0)]
    # Removing an id whose row moved during compaction still works.
    index.remove(200)
    assert index.search("pdq", values[200], 0) == []
    index.compact()
    assert index._bits["b256"].dead == 0
    assert index.search("pdq", values[198], 0) == [Match(198, 1980, Algorithm.PDQ, 0)]


def test_tombstones_survive_growth(rng: random.Random) -> None:
    index = HashIndex()  # default compaction threshold: growth copies the tombstones
    values = [rand_hex(rng) for _ in range(3000)]
    index.add(0, "pdq", values[0])
    index.remove(0)
    for i, v in enumerate(values[1:], start=1):
        index.add(i, "pdq", v)  # grows 1024 -> 2048 -> 4096
    assert index.search("pdq", values[0], 31) == []
    assert ids(index.search("pdq", values[2999], 0)) == [2999]
    assert len(index) == 2999


def test_add_after_remove_and_replace(rng: random.Random) -> None:
    index = HashIndex(compact_min_dead=1)
    a, b = rand_hex(rng), rand_hex(rng)
    index.add(1, "pdq", a, ref=1)
    index.remove(1)
    assert index.search("pdq", a, 0) == []
    index.add(1, "pdq", a, ref=2)  # re-confirmed
    assert index.search("pdq", a, 0) == [Match(1, 2, Algorithm.PDQ, 0)]
    index.add(1, "phash", b[:16], ref=3)  # same entry id again: replaces, even across tables
    assert index.search("pdq", a, 0) == []
    assert ids(index.search("phash", b[:16], 0)) == [1]
    assert len(index) == 1


# --- bulk and vectorised paths -----------------------------------------------------------


def test_add_many_equals_repeated_add(rng: random.Random) -> None:
    rows = []
    for i in range(1, 400):
        alg = rng.choice(["pdq", "pdq_frame", "phash", "md5", "sha256"])
        bits = {"pdq": 256, "pdq_frame": 256, "phash": 64, "md5": 128, "sha256": 256}[alg]
        rows.append((i, alg, rand_hex(rng, bits), rng.choice([None, i % 17])))
    rows.append((5, "pdq", rand_hex(rng), 99))  # a repeated id: the last row wins
    bulk, single = HashIndex(), HashIndex()
    bulk.add_many(iter(rows))
    for row in rows:
        single.add(*row)
    assert len(bulk) == len(single) == 399
    for _, alg, value, _ in rows:
        for threshold in (0, 40):
            assert bulk.search(alg, value, threshold) == single.search(alg, value, threshold)
    assert ids(bulk.search("pdq", rows[-1][2], 0)) == [5]


def test_add_grows_past_initial_capacity(rng: random.Random) -> None:
    index = HashIndex()
    values = [rand_hex(rng) for _ in range(5000)]
    for i, v in enumerate(values):
        index.add(i, "pdq_frame", v, ref=i // 10)
    assert index._bits["b256"].cols.shape[1] >= 5000
    for i in (0, 1023, 1024, 4999):
        assert ids(index.search("pdq", values[i], 0)) == [i]
    assert index.frame_count(3) == 10


def test_search_many_equals_looping_search(rng: random.Random) -> None:
    index = filled_index(rng, 3000)
    base = index._bits["b256"]
    stored = [
        format(int("".join(f"{w:016x}" for w in base.cols[:, r].tolist()), 16), "064x")
        for r in range(0, 3000, 97)
    ]
    queries = [flip(v, rng.randrange(0, 40), rng) for v in stored] + [rand_hex(rng)]
    queries += queries[:3]  # duplicates are searched once but answered per position
    for threshold in (31, 50):
        many = index.search_many("pdq_frame", queries, threshold)
        assert many == [index.search("pdq_frame", q, threshold) for q in queries]
    assert index.search_many("pdq", [], 31) == []
    md5s = [hashlib.md5(bytes([i])).hexdigest() for i in range(3)]
    index.add(77_777, "md5", md5s[1])
    assert [ids(m) for m in index.search_many("md5", md5s, 0)] == [[], [77_777], []]


def test_lookup_table_fallback(monkeypatch: pytest.MonkeyPatch, rng: random.Random) -> None:
    index = filled_index(rng, 500)
    q = rand_hex(rng)
    index.add(9000, "pdq", flip(q, 20, rng))
    expected = index.search("pdq", q, 31)
    monkeypatch.setattr(matching, "_HAS_BITWISE_COUNT", False)
    assert index.search("pdq", q, 31) == expected
    x = np.array([0, 1, 2**64 - 1, 0xF0F0], dtype=np.uint64)
    assert matching._popcount(x).tolist() == [0, 1, 64, 8]


# --- video -------------------------------------------------------------------------------


def test_video_match_fraction(rng: random.Random) -> None:
    target = [rand_hex(rng) for _ in range(10)]
    query = [flip(target[i], 10, rng) for i in range(6)]  # 6 near frames
    query += [flip(target[0], 40, rng)]  # too far
    query += [rand_hex(rng) for _ in range(3)]  # unrelated
    assert video_match_fraction(query, target, 31) == pytest.approx(6 / 10)
    assert video_match_fraction(query, target, 40) == pytest.approx(7 / 10)
    assert video_match_fraction(target, query, 31) == pytest.approx(6 / 10)
    assert video_match_fraction(target, target, 0) == 1.0
    assert video_match_fraction([], target, 31) == 0.0
    assert video_match_fraction(query, [], 31) == 0.0
    # Larger than one comparison block.
    many = [rand_hex(rng) for _ in range(1500)]
    assert video_match_fraction(many, many[:800], 0) == pytest.approx(800 / 1500)


def test_best_video_matches(rng: random.Random) -> None:
    index = filled_index(rng, 300, start_id=10_000)
    confirmed = [rand_hex(rng) for _ in range(20)]  # a confirmed 20-frame video, ref 1
    index.add_many((100 + i, "pdq_frame", v, 1) for i, v in enumerate(confirmed))
    still = rand_hex(rng)  # a confirmed still image, ref 2
    index.add(200, "pdq", still, ref=2)
    assert index.frame_count(1) == 20 and index.frame_count(2) == 0

    # A 10-frame clip of the confirmed video, re-encoded: 9 of its frames are near.
    clip = [flip(v, 8, rng) for v in confirmed[5:14]] + [rand_hex(rng)]
    got = best_video_matches(index, clip, 31, 0.8)
    assert [(m.ref, m.fraction_query, m.fraction_target, m.matched_frames) for m in got] == [
        (1, 0.9, 9 / 20, 9)
    ]
    assert got[0].min_distance == 8
    # The stricter two-sided rule rejects the clip.
    assert best_video_matches(index, clip, 31, 0.8, min_target_fraction=0.8) == []
    # A compilation containing the clip plus 30 other frames is not a whole-video match.
    assert best_video_matches(index, clip + [rand_hex(rng) for _ in range(30)], 31, 0.8) == []
    # A video that is mostly the confirmed still image matches it; target coverage unknown.
    slideshow = [flip(still, 3, rng) for _ in range(4)] + [rand_hex(rng)]
    got = best_video_matches(index, slideshow, 31, 0.8)
    assert [(m.ref, m.fraction_query, m.fraction_target) for m in got] == [(2, 0.8, None)]
    # Retraction removes the video from the results.
    index.remove_many(range(100, 120))
    assert best_video_matches(index, clip, 31, 0.8) == []
    assert best_video_matches(index, [], 31, 0.8) == []


# --- threads -----------------------------------------------------------------------------


def test_search_while_adding_and_removing(rng: random.Random) -> None:
    index = HashIndex(compact_min_dead=64)
    fixed = [rand_hex(rng) for _ in range(50)]
    index.add_many((i, "pdq", v, i) for i, v in enumerate(fixed))
    extra = [rand_hex(rng) for _ in range(6000)]
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer() -> None:
        try:
            for j, v in enumerate(extra):
                index.add(1000 + j, "pdq", v, ref=None)
                if j % 3 == 0:
                    index.remove(1000 + j)  # drives growth and compaction concurrently
            index.add_many((100_000 + j, "pdq_frame", v, None) for j, v in enumerate(extra[:500]))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)
        finally:
            stop.set()

    t = threading.Thread(target=writer)
    t.start()
    checks = 0
    while not stop.is_set() or checks < 20:
        i = checks % len(fixed)
        got = index.search("pdq", fixed[i], 0)
        assert [(m.entry_id, m.ref, m.distance) for m in got] == [(i, i, 0)]
        many = index.search_many("pdq", fixed[:5], 0)
        assert [ids(m) for m in many] == [[k] for k in range(5)]
        checks += 1
    t.join()
    assert errors == []
    assert len(index) == 50 + 4000 + 500
    for j in (1, 2, 4, 5999):
        want = [1000 + j] if j % 3 else []
        if j < 500:
            want.append(100_000 + j)
        assert ids(index.search("pdq", extra[j], 0)) == want


# --- benchmark helper --------------------------------------------------------------------


def test_bench_match_small() -> None:
    result = bench_match(2000, queries=5, seed=3)
    assert result["planted_found"] is True
    assert result["n_hashes"] == 2000 + 5 * 4
    for key in ("load_s", "median_ms", "p95_ms", "baseline_python_ms", "search_many_ms"):
        assert result[key] >= 0


def test_mixed_order_mutations_agree_with_a_model(rng: random.Random) -> None:
    """Bulk loads in id order, adds out of order, replacements, removals and compactions, in
    random turns: membership, length, frame counts and every search equal a plain dict's."""
    index = HashIndex(compact_min_dead=8)
    model: dict[int, tuple[str, str, int | None]] = {}
    next_id = 1
    for _ in range(60):
        step = rng.random()
        if step < 0.3:  # a bulk load of new ids, in order, from arrays
            n = rng.randint(1, 40)
            new = list(range(next_id, next_id + n))
            next_id += n
            values = [rand_hex(rng) for _ in new]
            refs = [rng.choice([None, rng.randint(1, 5)]) for _ in new]
            words = np.stack([hex_to_words(v, 256) for v in values], axis=1)
            ref_arr = np.array([matching.NO_REF if r is None else r for r in refs], np.int64)
            alg = rng.choice(["pdq", "pdq_frame"])
            index.add_words(alg, np.array(new, np.int64), words, ref_arr)
            for i, v, r in zip(new, values, refs, strict=True):
                model[i] = (alg, v, r)
        elif step < 0.55:  # rows out of order, some replacing present ones
            rows = []
            for _ in range(rng.randint(1, 10)):
                i = rng.randint(1, next_id + 5)
                next_id = max(next_id, i + 1)
                rows.append((i, "pdq", rand_hex(rng), rng.randint(1, 5)))
            index.add_many(rows)
            for i, alg, v, r in rows:
                model[i] = (alg, v, r)
        elif step < 0.85 and model:
            gone = rng.sample(sorted(model), min(len(model), rng.randint(1, 15)))
            index.remove_many([*gone, next_id + 100])
            for i in gone:
                del model[i]
        else:
            index.compact()
        assert len(index) == len(model)
        probe = np.arange(0, next_id + 3, dtype=np.int64)
        assert index.contains_many(probe).tolist() == [int(i) in model for i in probe]
        assert all((i in index) == (i in model) for i in range(next_id + 3))
        frames: dict[int, int] = {}
        for alg, _v, r in model.values():
            if alg == "pdq_frame" and r is not None:
                frames[r] = frames.get(r, 0) + 1
        assert all(index.frame_count(r) == frames.get(r, 0) for r in range(1, 6))
        if model:
            q = rng.choice(list(model.values()))[1]
            got = sorted((m.entry_id, m.distance, m.ref) for m in index.search("pdq", q, 40))
            want = sorted(
                (i, _hamming_hex(q, v), r)
                for i, (_a, v, r) in model.items()
                if _hamming_hex(q, v) <= 40
            )
            assert got == want


def test_add_words_checks_its_arrays() -> None:
    index = HashIndex()
    words = np.zeros((4, 2), np.uint64)
    with pytest.raises(ValueError):
        index.add_words("pdq", np.array([1, 2]), words[:, :1], np.zeros(2, np.int64))
    with pytest.raises(ValueError):
        index.add_words("md5", np.array([1, 2]), words, np.zeros(2, np.int64))
    with pytest.raises(ValueError):
        index.add_words("pdq", np.array([2, 2]), words, np.zeros(2, np.int64))
    assert len(index) == 0
    index.add_words("pdq", np.array([2, 1]), words, np.array([matching.NO_REF, 7]))
    assert [m.ref for m in index.search("pdq", "0" * 64, 0)] == [7, None]


# --- multi-index hashing: the same results as the brute force ------------------------------


def _words_to_hex(words: np.ndarray) -> list[str]:
    return [
        "".join(format(int(words[k, i]), "016x") for k in range(4)) for i in range(words.shape[1])
    ]


def _brute(words: np.ndarray, ids_: np.ndarray, query: np.ndarray, t: int) -> list[tuple]:
    """Every (distance, id) within ``t`` of ``query``, by comparing all of them."""
    d = sum(np.bitwise_count(words[k] ^ query[k]).astype(np.int64) for k in range(4))
    return sorted((int(d[r]), int(ids_[r])) for r in np.flatnonzero(d <= t))


def _flip_words(words: np.ndarray, counts: np.ndarray, gen: np.random.Generator) -> np.ndarray:
    """A copy of ``words`` with ``counts[i]`` distinct bits of column i flipped."""
    out = words.copy()
    for i, c in enumerate(counts.tolist()):
        for b in gen.choice(256, size=c, replace=False).tolist():
            out[b // 64, i] ^= np.uint64(1) << np.uint64(b % 64)
    return out


def _random_words(gen: np.random.Generator, n: int) -> np.ndarray:
    return gen.integers(0, 2**64, size=(4, n), dtype=np.uint64)


def _clustered_words(gen: np.random.Generator, centres: int, per: int) -> np.ndarray:
    """``centres`` random hashes, each with ``per`` near-duplicates (0-12 bits away): the
    halves, frames and re-encodes of confirmed pictures, which crowd some buckets."""
    base = np.repeat(_random_words(gen, centres), per, axis=1)
    return _flip_words(base, gen.integers(0, 13, size=base.shape[1]), gen)


def _assert_exact(index: HashIndex, words, ids_, queries, thresholds, alg="pdq") -> None:
    qhex = _words_to_hex(queries)
    for t in thresholds:
        got = index.search_many(alg, qhex, t)
        for i in range(queries.shape[1]):
            want = _brute(words, ids_, queries[:, i], t)
            assert [(m.distance, m.entry_id) for m in got[i]] == want, (t, i)


THRESHOLDS = [0, 3, 8, 15, 16, 24, 31, 32, 40, 47, 48, 60]


@pytest.mark.parametrize("kind", ["random", "clustered"])
def test_multi_index_finds_exactly_what_the_scan_finds(kind: str) -> None:
    gen = np.random.default_rng(7 if kind == "random" else 8)
    words = _random_words(gen, 6000) if kind == "random" else _clustered_words(gen, 150, 40)
    n = words.shape[1]
    ids_ = np.arange(1, n + 1, dtype=np.int64) * 3
    index = HashIndex(mih_min_rows=1000)
    index.add_words("pdq", ids_, words, ids_ + 1)
    index.prepare()
    assert index._bits["b256"].mih is not None  # the searches below go through it
    # Queries near entries (0-60 bits away: around every threshold) and unrelated ones.
    near = _flip_words(words[:, gen.choice(n, 40)], gen.integers(0, 61, size=40), gen)
    queries = np.concatenate([near, _random_words(gen, 5)], axis=1)
    _assert_exact(index, words, ids_, queries, THRESHOLDS)


def test_multi_index_with_rows_added_retracted_and_compacted_since() -> None:
    gen = np.random.default_rng(9)
    words = _clustered_words(gen, 100, 30)
    n = words.shape[1]
    ids_ = np.arange(1, n + 1, dtype=np.int64)
    index = HashIndex(compact_min_dead=500, mih_min_rows=1000)
    index.add_words("pdq", ids_, words, ids_)
    index.prepare()
    built = index._bits["b256"].mih
    assert built is not None and built.n == n
    # Rows past it (scanned), one entry replaced, some retracted (tombstones it still holds).
    more = _flip_words(words[:, :200], gen.integers(0, 20, size=200), gen)
    more_ids = np.arange(n + 1, n + 201, dtype=np.int64)
    index.add_words("pdq", more_ids, more, more_ids)
    index.add(int(ids_[5]), "pdq", _words_to_hex(words[:, 6:7])[0], None)  # now 6's hash
    gone = gen.choice(ids_[10:], 300, replace=False)
    index.remove_many(gone.tolist())
    assert index._bits["b256"].mih is built
    all_words = np.concatenate([words, more], axis=1)
    all_ids = np.concatenate([ids_, more_ids])
    all_words[:, 5] = words[:, 6]
    live = ~np.isin(all_ids, gone)
    queries = _flip_words(all_words[:, gen.choice(n, 30)], gen.integers(0, 35, size=30), gen)
    _assert_exact(index, all_words[:, live], all_ids[live], queries, [0, 10, 31, 40])
    # Compaction moves rows: the multi-index goes, the scan answers, a new one is built.
    index.compact()
    assert index._bits["b256"].mih is None
    _assert_exact(index, all_words[:, live], all_ids[live], queries, [31])
    index.prepare()
    assert index._bits["b256"].mih is not None
    _assert_exact(index, all_words[:, live], all_ids[live], queries, [0, 31, 47])


def test_crowded_buckets_fall_back_to_the_scan_and_stay_exact() -> None:
    gen = np.random.default_rng(10)
    # Half the table one picture and its near-duplicates: every probe of it is crowded.
    words = np.concatenate([_clustered_words(gen, 1, 2000), _random_words(gen, 2000)], axis=1)
    ids_ = np.arange(1, words.shape[1] + 1, dtype=np.int64)
    index = HashIndex(mih_min_rows=1000)
    index.add_words("pdq_frame", ids_, words, ids_)
    index.prepare()
    mih = index._bits["b256"].mih
    assert mih is not None
    queries = np.concatenate([words[:, :3], words[:, -3:]], axis=1)
    _, scanned = mih.search(index._bits["b256"].cols, queries, 31, matching._block_radii(31))
    assert scanned == [0, 1, 2]  # the crowded picture's queries, not the others
    _assert_exact(index, words, ids_, queries, [5, 31], alg="pdq_frame")


def test_block_radii_cover_every_threshold_by_pigeonhole() -> None:
    for t in range(0, 48):
        radii = matching._block_radii(t)
        assert radii is not None and sum(r + 1 for r in radii) >= t + 1
    assert matching._block_radii(48) is None  # radius 3 would be too many probes: scan


def test_searches_build_the_multi_index_themselves_once_it_pays() -> None:
    gen = np.random.default_rng(11)
    words = _random_words(gen, 3000)
    ids_ = np.arange(1, 3001, dtype=np.int64)
    index = HashIndex(mih_min_rows=1000)
    index.add_words("pdq", ids_, words, ids_)
    queries = _words_to_hex(_flip_words(words[:, :8], np.full(8, 9), gen))
    index.search_many("pdq", queries, 31)
    assert index._bits["b256"].mih is None  # 8 scans: not yet
    for _ in range(matching.AUTO_BUILD_SCANS // 8):
        got = index.search_many("pdq", queries, 31)
    assert index._bits["b256"].mih is not None
    assert [ids(g)[:1] for g in got] == [[i] for i in range(1, 9)]


def test_small_tables_get_no_multi_index() -> None:
    index = HashIndex()
    gen = np.random.default_rng(12)
    index.add_words("pdq", np.arange(1, 5001), _random_words(gen, 5000), np.arange(5000))
    index.prepare()
    assert index._bits["b256"].mih is None


# --- dump and restore (the hash list's snapshot) ---------------------------------------------


def _mixed_index(rng: random.Random) -> HashIndex:
    index = filled_index(rng, 400)
    index.add_many([(5000 + i, "md5", format(rng.getrandbits(128), "032x"), 7) for i in range(3)])
    index.add(5010, "phash", rand_hex(rng, 64), None)
    frames = index.space("list:x").space("region:bottom")
    frames.add_many([(6000 + i, "pdq_frame", rand_hex(rng), -6000) for i in range(5)])
    index.space("list:x").add(6100, "sha256", "ab" * 32, None)
    index.remove_many([3, 5000, 6002])  # tombstones are not dumped
    return index


def test_dump_and_restore_give_the_same_index(rng: random.Random) -> None:
    index = _mixed_index(rng)
    copy = HashIndex()
    copy.restore(index.dump())
    assert len(copy) == len(index) == 400 - 1 + 2 + 1 + 4 + 1
    frames = ("list:x", "region:bottom")
    assert copy.space(frames[0]).space(frames[1]).frame_count(-6000) == 4
    for _ in range(20):
        q = rand_hex(rng)
        assert copy.search("pdq", q, 110) == index.search("pdq", q, 110)
    sub = copy.space(frames[0]).space(frames[1])
    assert sorted(ids(sub.search("pdq", rand_hex(rng), 256))) == [6000, 6001, 6003, 6004]
    assert ids(copy.space("list:x").search("sha256", "ab" * 32, 0)) == [6100]
    assert 3 not in copy and 5000 not in copy and 6002 not in copy and 6003 in copy
    # Still a working index: retract, add, compact.
    copy.remove(4)
    copy.add(9000, "pdq", "00" * 32, 1)
    copy.compact()
    assert 4 not in copy and ids(copy.search("pdq", "00" * 32, 0)) == [9000]


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.pop("0.b256.refs"),
        lambda d: d.__setitem__("0.b256.ids", d["0.b256.ids"][::-1].copy()),
        lambda d: d.__setitem__("0.b256.algs", np.full_like(d["0.b256.algs"], 9)),
        lambda d: d.__setitem__("0.b256.cols", d["0.b256.cols"][:3]),
        lambda d: d.__setitem__("0.b256.cols", d["0.b256.cols"].astype(np.int64)),
        lambda d: d.__setitem__("0.md5.values", np.array([b"zz" * 16] * 2)),
        lambda d: d.__setitem__("layout", d["layout"][::-1].copy()),
        lambda d: d.__setitem__("spaces", np.array(["[]", "[]", "not json"])),
        lambda d: d.__setitem__("1.b256.ids", d["0.b256.ids"][:5].copy()),  # ids twice
    ],
)
def test_restore_refuses_arrays_dump_did_not_write(rng: random.Random, damage) -> None:
    arrays = _mixed_index(rng).dump()
    damage(arrays)
    index = HashIndex()
    with pytest.raises(ValueError):
        index.restore(arrays)
    assert len(index) == 0  # nothing half-restored


def test_restore_needs_an_empty_index(rng: random.Random) -> None:
    index = _mixed_index(rng)
    with pytest.raises(ValueError):
        index.restore(index.dump())


def test_bench_multi_index_compares_like_with_like() -> None:
    out = bench_multi_index(70_000, queries=8, repeats=1)
    for kind in ("random", "clustered"):
        assert out[kind]["same_matches"]
        assert out[kind]["matches"] >= 4  # the queries planted near entries found them
        assert out[kind]["candidates_per_query"] > 0


def test_a_frame_hit_knows_its_time_in_its_video():
    """Each entry keeps the time of its frame (the run rule reads it): through add, add_many,
    add_words, a compaction and a dump read back; None where no time was given."""
    index = HashIndex(compact_min_dead=1)
    a, b, c, d = (f"{0x1F << (i * 40):064x}" for i in range(4))
    index.add(1, "pdq_frame", a, 7, ts=1.5)
    index.add_many([(2, "pdq_frame", b, 7, 2.5), (3, "pdq", c, 8)])
    index.add_words("pdq_frame", np.array([4]), hex_to_words(d, 256)[:, None], np.array([7]),
                    np.array([3.5], np.float32))  # fmt: skip
    index.add(5, "pdq_frame", f"{1:064x}", 7, ts=9.0)
    index.remove(5)
    index.compact()  # the rows move

    def times(ix: HashIndex) -> list:
        return [ix.search("pdq_frame", v, 0)[0].ts for v in (a, b, c, d)]

    assert times(index) == [1.5, 2.5, None, 3.5]
    again = HashIndex()
    again.restore(index.dump())
    assert times(again) == [1.5, 2.5, None, 3.5]


def test_frame_times_of_a_reference():
    """The distinct times of a reference's live frame entries (a still's and another ref's,
    a removed one and one without a time are not among them)."""
    index = HashIndex()
    index.add_many(
        [(i, "pdq_frame", f"{i:064x}", 3, float(i // 2)) for i in range(1, 9)]  # 2 a second
        + [(20, "pdq_frame", f"{20:064x}", 4, 9.0), (21, "pdq", f"{21:064x}", 3, None)]
        + [(22, "pdq_frame", f"{22:064x}", 3, None)]
    )
    index.remove(8)
    assert index.frame_times(3).tolist() == [0.0, 1.0, 2.0, 3.0]
    assert index.frame_times(4).tolist() == [9.0] and index.frame_times(5).size == 0
    index.remove_many([6, 7])  # both of its third second
    assert index.frame_times(3).tolist() == [0.0, 1.0, 2.0]
