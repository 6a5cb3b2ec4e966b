"""The hash index's benchmarks (``hashdesk bench match``, ``hashdesk bench --index``): one-item
PDQ searches against random hashes with planted neighbours, and the scan beside the multi-index
on random and clustered hashes. Figures and their history: docs/PERFORMANCE.md, "Matching (hash
index)"."""

from __future__ import annotations

import statistics
import time

import numpy as np

from app.core.matching.hash_index import (
    _FLIPS,
    _HAS_BITWISE_COUNT,
    _MIH_BLOCKS,
    HashIndex,
    _block_radii,
    _blocks,
)
from app.core.matching.signal_types import signal_type
from app.core.model.domain import Algorithm

_PDQ_TABLE = signal_type(Algorithm.PDQ).index_table


def _flip_bits(value: int, n_bits: int, rng: np.random.Generator) -> int:
    for b in rng.choice(256, size=n_bits, replace=False).tolist():
        value ^= 1 << b
    return value


def bench_match(n_hashes: int, queries: int = 50, seed: int = 0) -> dict:
    """Time one-item PDQ searches against ``n_hashes`` random hashes (threshold 31).

    For each query a random hash is planted at distances 0, 5, 31 and 32; the search must find
    the first three and not the fourth. Returns the figures (milliseconds unless named)."""
    rng = np.random.default_rng(seed)
    raw = rng.bytes(32 * n_hashes).hex()
    values = [raw[i : i + 64] for i in range(0, len(raw), 64)]
    del raw
    rows: list[tuple[int, str, str, int | None]] = [(i, "pdq", v, i) for i, v in enumerate(values)]
    planted: list[tuple[str, set[int], int]] = []  # (query hex, expected ids, id at 32)
    next_id = n_hashes
    for _ in range(queries):
        q = int.from_bytes(rng.bytes(32), "big")
        expected = set()
        for dist in (0, 5, 31, 32):
            v = format(_flip_bits(q, dist, rng), "064x")
            rows.append((next_id, "pdq", v, next_id))
            if dist <= 31:
                expected.add(next_id)
            else:
                far = next_id
            next_id += 1
        planted.append((format(q, "064x"), expected, far))
    index = HashIndex()
    t0 = time.perf_counter()
    index.add_many(rows)
    load_s = time.perf_counter() - t0
    del rows

    times = []
    found_all = True
    for qhex, expected, far in planted:
        t0 = time.perf_counter()
        matches = index.search("pdq", qhex, 31)
        times.append((time.perf_counter() - t0) * 1e3)
        got = {m.entry_id for m in matches}
        found_all &= expected <= got and far not in got
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]

    frames = [p[0] for p in planted[:60]]
    t0 = time.perf_counter()
    index.search_many("pdq_frame", frames, 31)
    many_ms = (time.perf_counter() - t0) * 1e3

    sample = [int(v, 16) for v in values[: min(len(values), 20_000)]]
    q = int(planted[0][0], 16)
    t0 = time.perf_counter()
    _ = [i for i, a in enumerate(sample) if bin(a ^ q).count("1") <= 31]
    baseline_ms = (time.perf_counter() - t0) * 1e3 * (len(index) / max(1, len(sample)))
    median = statistics.median(times)
    return {
        "n_hashes": len(index),
        "queries": queries,
        "load_s": round(load_s, 3),
        "median_ms": round(median, 3),
        "p95_ms": round(p95, 3),
        "search_many_frames": len(frames),
        "search_many_ms": round(many_ms, 2),
        "baseline_python_ms": round(baseline_ms, 1),
        "speedup": round(baseline_ms / median, 1) if median else None,
        "planted_found": bool(found_all),
        "popcount": "np.bitwise_count" if _HAS_BITWISE_COUNT else "byte lookup table",
    }


def bench_multi_index(n_hashes: int, queries: int = 16, repeats: int = 7, seed: int = 0) -> dict:
    """``queries`` PDQ queries in one ``search_many`` (threshold 31) against ``n_hashes``
    entries, by the scan and by the multi-index, on random hashes and on clustered ones (one
    picture in 20 entries, each 0-12 bits from it, as a confirmed picture's frames, halves and
    re-encodes make them), half of the queries near an entry. Median CPU milliseconds, the
    candidates the multi-index checked a query, the build's seconds, and whether both found
    the same matches."""
    rng = np.random.default_rng(seed)
    out: dict = {"n_hashes": n_hashes, "queries": queries}
    for kind in ("random", "clustered"):
        if kind == "random":
            words = rng.integers(0, 2**64, size=(4, n_hashes), dtype=np.uint64)
        else:
            words = np.repeat(
                rng.integers(0, 2**64, size=(4, -(-n_hashes // 20)), dtype=np.uint64), 20, axis=1
            )[:, :n_hashes]
            for _ in range(12):  # up to 12 bits each (a bit may flip back: 0-12 away)
                rows = np.flatnonzero(rng.random(n_hashes) < 0.5)
                bits = rng.integers(0, 256, size=rows.size)
                words[bits // 64, rows] ^= np.uint64(1) << (bits % 64).astype(np.uint64)
        index = HashIndex(mih_min_rows=1)  # built whatever the size, to compare
        index.add_words("pdq", np.arange(1, n_hashes + 1), words, np.arange(n_hashes))
        del words
        q = rng.integers(0, 2**64, size=(4, queries), dtype=np.uint64)
        near = rng.choice(n_hashes, queries // 2, replace=False)
        t = index._bits[_PDQ_TABLE]
        q[:, : queries // 2] = t.cols[:, near] ^ np.uint64(0b101101)
        qhex = ["".join(format(int(w), "016x") for w in q[:, i]) for i in range(queries)]
        scan_ms, scanned = _timed_search(index, qhex, repeats)  # fewer than AUTO_BUILD_SCANS
        c = time.process_time()
        index.prepare()
        build_s = time.process_time() - c
        mih = t.mih
        assert mih is not None
        mih_ms, found = _timed_search(index, qhex, repeats)
        _, crowded = mih.search(t.cols, q, 31, _block_radii(31) or [])
        candidates = 0
        for j in range(_MIH_BLOCKS):
            keys = _blocks(q)[j].astype(np.int64)[:, None] ^ _FLIPS[1][None, :].astype(np.int64)
            candidates += int((mih.offs[j][keys + 1] - mih.offs[j][keys]).astype(np.int64).sum())
        out[kind] = {
            "scan_cpu_ms": round(scan_ms, 2),
            "mih_cpu_ms": round(mih_ms, 2),
            "build_cpu_s": round(build_s, 2),
            "candidates_per_query": candidates // queries,
            "queries_scanned_instead": len(crowded),
            "same_matches": found == scanned,
            "matches": sum(len(m) for m in found),
        }
    return out


def _timed_search(index: HashIndex, qhex: list[str], repeats: int) -> tuple[float, list]:
    """Median CPU milliseconds of ``search_many(qhex)`` at threshold 31, and its result."""
    cpu, got = [], []
    for _ in range(repeats):
        c = time.process_time()
        got = index.search_many("pdq", qhex, 31)
        cpu.append((time.process_time() - c) * 1e3)
    return statistics.median(cpu), got
