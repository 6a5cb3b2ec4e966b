"""In-memory matching of hashes against the hash list (no Qt, no SQL).

Contract:

* ``HashIndex`` holds entries ``(entry_id, algorithm, value, ref)``; an ``entry_id`` is unique
  across the index and its spaces (adding it again replaces the entry). Each signal type lives
  in the table its :class:`~app.core.matching.signal_types.SignalType` names
  (``index_table``): near types in bit tables (PDQ and video-frame PDQ share one, so a
  confirmed still matches a frame and back), exact types in dict tables.
* ``search``/``search_many`` return every live entry within ``max_distance`` bits (inclusive;
  exact types: equal), nearest first, ties by entry id; exact at any threshold (the
  multi-index answers up to 47 bits, the scan the rest), whatever the table's size.
* ``space(name)``: a sub-index (a list's, a half's); ``remove``, ``len`` and ``in`` reach every
  space. ``dump``/``restore`` round-trip every live entry as plain arrays (the snapshot).
* Thread safety: mutations hold a lock; a bit-table search scans a snapshot taken under it
  (appends write past the snapshot, growth and compaction build new arrays), so a concurrent
  retraction is either seen or not. The multi-index is built outside the lock and published
  under it unless a compaction moved the rows meanwhile.
* Memory: 54 bytes an entry of a bit table (no Python object per entry), 64 more for the
  multi-index of a large 256-bit table (``HASHDESK_INDEX_MULTI=off`` to go without).

How it is built (column-major uint64 words, chunked XOR + popcount with a half-hash prefilter,
multi-index hashing over 16 blocks of 16 bits) is told where it is done, below; the
measurements behind those choices are in docs/PERFORMANCE.md, "Matching (hash index)", and
the benchmarks in :mod:`app.tools.bench_index`.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import NamedTuple

import numpy as np

from app.core.matching.signal_types import SIGNAL_TYPES
from app.core.model.domain import Algorithm

__all__ = [
    "NO_REF",
    "VIDEO_FRAMES",
    "HashIndex",
    "Match",
    "VideoMatch",
    "best_video_matches",
    "hex_block_to_words",
    "hex_to_words",
    "video_match_fraction",
    "video_matches",
]

NO_REF = np.iinfo(np.int64).min  # stored in place of ``ref=None``
#: A search builds the multi-index itself once searches have scanned the whole table this
#: many times since (a build costs about as much as ~1,000 scans of it).
AUTO_BUILD_SCANS = 256
_CHUNK = 1 << 15
_INITIAL_CAPACITY = 1024

# Every table comes from the signal-type registry: which table holds each hash type, its
# length, bit tables (near types: table -> number of 64-bit words) and exact ones.
_TABLE_OF = {alg: t.index_table for alg, t in SIGNAL_TYPES.items()}
_WORDS = {t.index_table: t.bits // 64 for t in SIGNAL_TYPES.values() if t.near}
_EXACT_TABLES = tuple(dict.fromkeys(t.index_table for t in SIGNAL_TYPES.values() if not t.near))
_HEX_LEN = {alg: t.hex_len for alg, t in SIGNAL_TYPES.items()}
_BIT_ALGS = tuple(alg for alg, t in SIGNAL_TYPES.items() if t.near)  # code = position
_ALG_CODE = {alg: i for i, alg in enumerate(_BIT_ALGS)}
_EXACT_ALGS = tuple(alg for alg, t in SIGNAL_TYPES.items() if not t.near)
# A video's frame hashes: counted per ref (the video rule's target side).
_FRAME_ALGS = frozenset(alg for alg, t in SIGNAL_TYPES.items() if t.video_frames)
_FRAME_CODES = [_ALG_CODE[a] for a in _FRAME_ALGS if a in _ALG_CODE]
# Tables of sequences matched by aligned bit error rate (the sound's blocks): never searched by
# Hamming distance, so never given a multi-index (app.core.matching.audio_match reads them).
_ALIGNED_TABLES = frozenset(t.index_table for t in SIGNAL_TYPES.values() if t.aligned)
#: What a video's frames are searched as (:func:`best_video_matches`).
VIDEO_FRAMES = next(alg for alg in SIGNAL_TYPES if alg in _FRAME_ALGS)
# What a dump's algorithm codes and tables mean: a dump is only read back by the same layout.
_LAYOUT = np.array(
    [f"{a.value}:{_TABLE_OF[a]}" for a in _BIT_ALGS]
    + [f"{a.value}:{_TABLE_OF[a]}" for a in _EXACT_ALGS],
    dtype=np.str_,
)

# ---------------------------------------------------------------------------------------------
# popcount

_HAS_BITWISE_COUNT = hasattr(np, "bitwise_count")
_BYTE_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _popcount(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Bits set in each uint64 of ``x``, as uint8 (into ``out`` if given)."""
    if _HAS_BITWISE_COUNT:
        return np.bitwise_count(x, out=out) if out is not None else np.bitwise_count(x)
    x = np.ascontiguousarray(x, dtype=np.uint64)
    counts = _BYTE_POPCOUNT[x.view(np.uint8)].reshape(*x.shape, 8).sum(axis=-1, dtype=np.uint8)
    if out is None:
        return counts
    out[...] = counts
    return out


# ---------------------------------------------------------------------------------------------
# hex helpers


_ALG_LOOKUP: dict[str, Algorithm] = {a.value: a for a in SIGNAL_TYPES}


def _algorithm(algorithm: str) -> Algorithm:
    alg = _ALG_LOOKUP.get(algorithm)
    if alg is None:
        raise ValueError(f"unknown hash algorithm {algorithm!r}")
    return alg


_HEX_RE = re.compile(r"[0-9a-fA-F]*")


def _check_lengths(values: Sequence[str], hex_len: int, what: str) -> None:
    if set(map(len, values)) - {hex_len}:
        bad = next(v for v in values if len(v) != hex_len)
        raise ValueError(f"{what} hash {bad!r}: expected {hex_len} hex digits")


def _check_hex(value: str) -> None:
    if _HEX_RE.fullmatch(value) is None:
        raise ValueError(f"not a hex hash: {value[:80]!r}")


def _hexes_to_words(values: Sequence[str], hex_len: int) -> np.ndarray:
    """``(words, len(values))`` uint64 from same-length hex strings (vectorised)."""
    _check_lengths(values, hex_len, f"{hex_len * 4}-bit")
    joined = "".join(values)
    _check_hex(joined)  # also rejects the whitespace bytes.fromhex would skip
    raw = bytes.fromhex(joined)
    arr = np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(len(values), hex_len // 16)
    return np.ascontiguousarray(arr.T)


def hex_block_to_words(joined: str, n: int, bits: int) -> np.ndarray:
    """``(bits // 64, n)`` uint64 from ``n`` hex hashes of ``bits`` bits written end to end
    (one string, as a database aggregate gives them): one vectorised step, no string per hash.
    ValueError when the string is not exactly that."""
    hex_len = bits // 4
    if len(joined) != n * hex_len:
        raise ValueError(f"{len(joined)} hex digits for {n} hashes of {bits} bits")
    raw = bytes.fromhex(joined)
    if len(raw) * 2 != len(joined):  # fromhex skips whitespace: not a hash
        raise ValueError("whitespace among hex hashes")
    arr = np.frombuffer(raw, dtype=">u8").reshape(n, bits // 64)
    return np.ascontiguousarray(arr.T, dtype=np.uint64)


def hex_to_words(value_hex: str, bits: int) -> np.ndarray:
    """One hex hash of ``bits`` bits as a ``(bits // 64,)`` uint64 array, word 0 first."""
    return _hexes_to_words([value_hex], bits // 4)[:, 0]


def _hamming_hex(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


# ---------------------------------------------------------------------------------------------
# scanning
#
# A bit table is a ``(words, capacity)`` array of uint64, one contiguous row per 64-bit word
# ("column-major": word ``k`` of every hash is contiguous), grown by doubling. Word 0 is the
# first 16 hex digits read as a big-endian integer, so ``int(hex, 16)`` and the words agree. A
# scan reads the table in chunks of 32k hashes (so the temporaries stay in L2): XOR the query's
# first half of the words, popcount, keep the rows whose partial distance is already <= the
# threshold (a lower bound of the full distance), then finish the other words only for those
# few rows. For PDQ at threshold 31, two random hashes differ in ~64 of the first 128 bits
# (sd ~5.7), so the prefilter leaves essentially nothing to finish and the scan reads half of
# the table.


def _scan_chunk(
    cols: np.ndarray,
    s: int,
    e: int,
    q: np.ndarray,
    max_distance: int,
    bufs: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray] | None:
    """Rows in ``[s, e)`` within ``max_distance`` of ``q``: (absolute rows, distances)."""
    words = cols.shape[0]
    prefix = (words + 1) // 2  # 2 of 4 for PDQ, 1 of 1 for pHash; <= 128 bits fits uint8
    m = e - s
    xb, dd, d2 = bufs[0][:m], bufs[1][:m], bufs[2][:m]
    np.bitwise_xor(cols[0, s:e], q[0], out=xb)
    _popcount(xb, out=dd)
    for k in range(1, prefix):
        np.bitwise_xor(cols[k, s:e], q[k], out=xb)
        _popcount(xb, out=d2)
        np.add(dd, d2, out=dd)
    idx = np.flatnonzero(dd <= max_distance)
    if idx.size == 0:
        return None
    if prefix == words:
        return idx + s, dd[idx].astype(np.int32)
    if idx.size * 4 > m:  # loose threshold: finishing the whole chunk beats gathering
        full = dd.astype(np.int32)
        for k in range(prefix, words):
            full += _popcount(cols[k, s:e] ^ q[k])
        idx = np.flatnonzero(full <= max_distance)
        return (idx + s, full[idx]) if idx.size else None
    rows = idx + s
    dist = dd[idx].astype(np.int32)
    for k in range(prefix, words):
        dist += _popcount(cols[k, rows] ^ q[k])
    keep = dist <= max_distance
    if not keep.any():
        return None
    return rows[keep], dist[keep]


def _new_bufs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.empty(_CHUNK, np.uint64), np.empty(_CHUNK, np.uint8), np.empty(_CHUNK, np.uint8)


def _scan_many(
    cols: np.ndarray, n: int, queries: np.ndarray, max_distance: int, start: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each column of ``queries`` (words, Q): (rows, distances) within ``max_distance``
    among rows ``[start, n)``.

    Chunk-outer, query-inner, so each chunk of the table is read from RAM once."""
    nq = queries.shape[1]
    parts: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(nq)]
    bufs = _new_bufs()
    qs = [np.ascontiguousarray(queries[:, i]) for i in range(nq)]
    for s in range(start, n, _CHUNK):
        e = min(n, s + _CHUNK)
        for i, q in enumerate(qs):
            hit = _scan_chunk(cols, s, e, q, max_distance, bufs)
            if hit is not None:
                parts[i].append(hit)
    out = []
    empty = (np.empty(0, np.int64), np.empty(0, np.int32))
    for p in parts:
        if not p:
            out.append(empty)
        elif len(p) == 1:
            out.append(p[0])
        else:
            out.append((np.concatenate([r for r, _ in p]), np.concatenate([d for _, d in p])))
    return out


# ---------------------------------------------------------------------------------------------
# multi-index hashing (256-bit table)

_MIH_WORDS = 4  # the multi-index is over 256-bit tables
_MIH_BLOCKS = 16  # substrings of 16 bits: word k holds blocks 4k .. 4k+3, high bits first
_MIH_SHIFTS = np.array([48, 32, 16, 0], np.uint64)
#: Below this many rows the scan is as fast as the probes (about 0.1 ms a query).
MIH_MIN_ROWS = 1 << 16
#: A query whose probes would gather more than 1/_MIH_MAX_SHARE of the rows is scanned instead.
_MIH_MAX_SHARE = 16


def _flip_masks(radius: int) -> np.ndarray:
    """Every 16-bit mask with at most ``radius`` bits set (radius 0, 1, 2)."""
    masks = [0]
    if radius >= 1:
        masks += [1 << i for i in range(16)]
    if radius >= 2:
        masks += [(1 << i) | (1 << j) for i in range(16) for j in range(i + 1, 16)]
    return np.array(masks, np.uint16)


_FLIPS = {r: _flip_masks(r) for r in (0, 1, 2)}


def _blocks(cols: np.ndarray) -> np.ndarray:
    """``(16, n)`` uint16: the 16-bit substrings of ``(4, n)`` words."""
    n = cols.shape[1]
    return (cols[:, None, :] >> _MIH_SHIFTS[None, :, None]).astype(np.uint16).reshape(16, n)


def _block_radii(max_distance: int) -> list[int] | None:
    """Per block, the radius to probe so that every hash within ``max_distance`` is found
    (-1: not probed), or None when the probes would be too many (then: scan).

    Pigeonhole: if the 16 block distances sum to at most t, then for any radii with
    sum(r_j + 1) >= t + 1 some block j is within r_j. t = 31: every block at radius 1."""
    s = max_distance + 1
    base, extra = divmod(s, _MIH_BLOCKS)
    radii = [base - 1 + (1 if j < extra else 0) for j in range(_MIH_BLOCKS)]
    return radii if max(radii) <= 2 else None


class _MultiIndex:
    """Multi-index hashing (Norouzi et al.) over rows ``[0, n)`` of a 256-bit table: for each
    of the 16 blocks of 16 bits, the rows sorted by that block's value (``post``, uint32) and
    where each value's rows start (``offs``, 65,537 per block). A query probes, in every block,
    the values within that block's radius (:func:`_block_radii`), gathers those rows and checks
    their full distance: exact, and at the usual threshold 31 about 270 probes and ~4,000
    candidates a query against a million random hashes instead of a scan of all of them.
    Costs 64 bytes an entry (16 row numbers of 4 bytes) plus 4 MB. Rows never move while it
    lives (growth copies them in place; compaction, which moves them, drops it)."""

    __slots__ = ("n", "offs", "post")

    def __init__(self, cols: np.ndarray, n: int) -> None:
        self.n = n
        self.post = np.empty((_MIH_BLOCKS, n), np.uint32)
        self.offs = np.empty((_MIH_BLOCKS, 65537), np.uint32)
        for k in range(4):  # word by word: a (4, n) uint16 temporary, not (16, n)
            blocks = (cols[k, None, :n] >> _MIH_SHIFTS[:, None]).astype(np.uint16)
            for b in range(4):
                j = 4 * k + b
                self.post[j] = np.argsort(blocks[b], kind="stable")  # radix sort: O(n)
                self.offs[j, 0] = 0
                np.cumsum(np.bincount(blocks[b], minlength=65536), out=self.offs[j, 1:])

    def search(
        self, cols: np.ndarray, queries: np.ndarray, max_distance: int, radii: list[int]
    ) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[int]]:
        """For each query column of ``queries`` (4, Q): (rows, distances) among rows
        ``[0, n)``, and the queries left to the caller to scan (too many candidates)."""
        nq = queries.shape[1]
        qb = _blocks(queries).astype(np.int64)  # (16, Q)
        starts, lens, owner = [], [], []
        for j, r in enumerate(radii):
            if r < 0:
                continue
            keys = qb[j][:, None] ^ _FLIPS[r][None, :].astype(np.int64)  # (Q, P)
            st = self.offs[j][keys].astype(np.int64)
            starts.append((st + j * self.n).ravel())
            lens.append((self.offs[j][keys + 1] - st).ravel())
            owner.append(np.repeat(np.arange(nq), keys.shape[1]))
        start = np.concatenate(starts)
        length = np.concatenate(lens)
        query = np.concatenate(owner)
        per_query = np.bincount(query, weights=length, minlength=nq)
        too_many = per_query * _MIH_MAX_SHARE > self.n
        scan = np.flatnonzero(too_many).tolist()
        if scan:  # uneven buckets (near-duplicates): those queries are scanned
            keep = ~too_many[query]
            start, length, query = start[keep], length[keep], query[keep]
        total = int(length.sum())
        ends = np.cumsum(length)
        pos = np.repeat(start - (ends - length), length) + np.arange(total)
        rows = self.post.ravel()[pos].astype(np.int64)
        qi = np.repeat(query, length)
        # Distances in two steps: words 0-1 for every candidate, 2-3 for the survivors.
        dist = _popcount(cols[0, rows] ^ queries[0, qi]).astype(np.int32)
        dist += _popcount(cols[1, rows] ^ queries[1, qi])
        near = np.flatnonzero(dist <= max_distance)
        rows, qi, dist = rows[near], qi[near], dist[near]
        for k in (2, 3):
            dist += _popcount(cols[k, rows] ^ queries[k, qi])
        close = dist <= max_distance
        # A row found through several blocks counts once: sort by (query, row), drop repeats.
        key = qi[close] * self.n + rows[close]
        key, first = np.unique(key, return_index=True)
        dist = dist[close][first]
        qi, rows = np.divmod(key, self.n)
        bounds = np.searchsorted(qi, np.arange(nq + 1))
        out = [(rows[a:b], dist[a:b]) for a, b in pairwise(bounds.tolist())]
        return out, scan


# ---------------------------------------------------------------------------------------------
# the index


@dataclass(frozen=True, slots=True)
class Match:
    """One hash-list entry matched by a query. ``algorithm`` is the entry's own algorithm (a
    ``pdq`` query can match a ``pdq_frame`` entry); ``distance`` is 0 for exact algorithms."""

    entry_id: int
    ref: int | None
    algorithm: Algorithm
    distance: int
    ts: float | None = None  # a video frame's time in its video (seconds), when known


class _BitTable:
    """One bit table: the words, and per row its entry id, ref, algorithm code and liveness.

    Finding an entry's row (retraction, replacement, ``in``) needs no per-entry Python object:
    rows ``[0, sorted_n)`` have strictly increasing ids (a bulk load in id order, or a table
    just compacted, which sorts), found by binary search; only rows appended out of order
    live in the ``where`` dict (id -> row), until the next compaction sorts them in. That is
    what keeps an entry at 54 bytes (32 of words, 8 of id, 8 of ref, 4 of frame time, 2 of
    flags): a dict entry alone cost ~100 more."""

    __slots__ = (
        "algs",
        "alive",
        "cols",
        "dead",
        "epoch",
        "ids",
        "mih",
        "n",
        "refs",
        "scan_work",
        "sorted_n",
        "ts",
        "where",
        "words",
    )

    def __init__(self, words: int, capacity: int = _INITIAL_CAPACITY) -> None:
        self.words = words
        self.cols = np.zeros((words, capacity), np.uint64)
        self.ids = np.zeros(capacity, np.int64)
        self.refs = np.zeros(capacity, np.int64)
        self.algs = np.zeros(capacity, np.uint8)
        self.ts = np.full(capacity, np.nan, np.float32)  # a frame's time in its video, or NaN
        self.alive = np.zeros(capacity, bool)
        self.n = 0
        self.dead = 0
        self.sorted_n = 0
        self.where: dict[int, int] = {}  # id -> row, for the live rows past sorted_n
        self.mih: _MultiIndex | None = None  # over rows [0, mih.n), 256-bit table only
        self.epoch = 0  # counts compactions: a multi-index built before one is stale
        self.scan_work = 0  # rows x queries scanned since the last multi-index build

    def mih_wanted(self, min_rows: int) -> bool:
        """Whether a (new) multi-index would pay: a 256-bit table of ``min_rows`` rows or more
        whose rows past the current multi-index (scanned by every query) have grown past
        1/16 of it."""
        if self.words != _MIH_WORDS or self.n < min_rows:
            return False
        built = self.mih.n if self.mih is not None else 0
        return self.n - built > max(min_rows // 4, built // 16)

    @property
    def live(self) -> int:
        return self.n - self.dead

    def find(self, entry_id: int) -> int:
        """The live row of ``entry_id``, or -1."""
        row = self.where.get(entry_id)
        if row is not None:
            return row
        k = self.sorted_n
        if k:
            i = int(np.searchsorted(self.ids[:k], entry_id))
            if i < k and int(self.ids[i]) == entry_id and self.alive[i]:
                return i
        return -1

    def find_many(self, ids: np.ndarray) -> np.ndarray:
        """The live row of each of ``ids`` (int64), -1 where absent."""
        out = np.full(ids.shape[0], -1, np.int64)
        k = self.sorted_n
        if k and ids.size and int(ids.min()) <= int(self.ids[k - 1]):  # else: all beyond
            pos = np.minimum(np.searchsorted(self.ids[:k], ids), k - 1)
            hit = (self.ids[pos] == ids) & self.alive[pos]
            out[hit] = pos[hit]
        if self.where and ids.size:
            tail = np.fromiter(self.where.keys(), np.int64, len(self.where))
            for j in np.flatnonzero(np.isin(ids, tail)).tolist():
                out[j] = self.where[int(ids[j])]
        return out

    def reserve(self, extra: int) -> None:
        need = self.n + extra
        cap = self.ids.shape[0]
        if need <= cap:
            return
        while cap < need:
            cap *= 2
        self._realloc(cap, None)

    def _realloc(self, cap: int, keep: np.ndarray | None) -> None:
        """New arrays of capacity ``cap`` holding rows ``keep`` (None: all ``n``, in place).
        Old snapshots stay valid."""
        m = self.n if keep is None else keep.shape[0]
        sel: slice | np.ndarray = slice(0, m) if keep is None else keep
        cols = np.zeros((self.words, cap), np.uint64)
        for k in range(self.words):  # row by row: no (words, n) temporary
            cols[k, :m] = self.cols[k, sel]
        ids = np.zeros(cap, np.int64)
        ids[:m] = self.ids[sel]
        refs = np.zeros(cap, np.int64)
        refs[:m] = self.refs[sel]
        algs = np.zeros(cap, np.uint8)
        algs[:m] = self.algs[sel]
        ts = np.full(cap, np.nan, np.float32)
        ts[:m] = self.ts[sel]
        alive = np.zeros(cap, bool)
        alive[:m] = self.alive[sel]  # growth keeps tombstones; compaction keeps live rows only
        self.cols, self.ids, self.refs, self.algs, self.alive = cols, ids, refs, algs, alive
        self.ts = ts
        self.n = m


def _new_bit_tables() -> dict[str, _BitTable]:
    return {key: _BitTable(words) for key, words in _WORDS.items()}


class _Snapshot(NamedTuple):
    cols: np.ndarray
    ids: np.ndarray
    refs: np.ndarray
    algs: np.ndarray
    alive: np.ndarray
    n: int
    mih: _MultiIndex | None
    ts: np.ndarray


class HashIndex:
    """In-memory index of hash-list entries; see the module docstring.

    ``entry_id`` is the hash-list row id and must be unique across the index: adding an id that
    is already present replaces the old entry. ``ref`` is an opaque int (the item id) or None.
    Compaction drops tombstones once there are at least ``compact_min_dead`` of them and they
    are a quarter of a table. A 256-bit table of ``mih_min_rows`` rows or more gets a
    multi-index (:meth:`prepare`; :class:`_MultiIndex`).
    """

    def __init__(self, compact_min_dead: int = 1024, mih_min_rows: int = MIH_MIN_ROWS) -> None:
        self._lock = threading.Lock()
        self._bits: dict[str, _BitTable] = _new_bit_tables()
        # exact table -> value -> {entry_id: ref}
        self._exact: dict[str, dict[str, dict[int, int | None]]] = {k: {} for k in _EXACT_TABLES}
        # entry_id -> (algorithm, value) for the exact tables (the bit tables find their own).
        self._exact_where: dict[int, tuple[Algorithm, str]] = {}
        self._frame_count: Counter[int] = Counter()  # ref -> live pdq_frame entries
        self._compact_min_dead = max(1, compact_min_dead)
        self._spaces: dict[str, HashIndex] = {}
        self._build_lock = threading.Lock()  # one multi-index build at a time
        self._mih_min_rows = max(1, mih_min_rows)

    def clear(self) -> None:
        """Empty the index, every space with it (a snapshot that turned out wrong, before the
        list is loaded again). Searches already running finish on what they snapshotted."""
        with self._lock:
            self._bits = _new_bit_tables()
            self._exact = {k: {} for k in _EXACT_TABLES}
            self._exact_where = {}
            self._frame_count = Counter()
            self._spaces = {}

    # -- spaces ---------------------------------------------------------------------------

    def space(self, name: str) -> HashIndex:
        """The sub-index ``name`` (created on first use); ``""`` is this index itself.

        Hashes that must only be compared with their own kind live in a space of their own:
        the bottom half of a frame against bottom halves (``region:bottom``), never against
        whole pictures. Entry ids stay unique across spaces, and ``remove``, ``len`` and ``in``
        on this index reach into every space, so the hash-list watcher needs no routing."""
        if not name:
            return self
        with self._lock:
            sub = self._spaces.get(name)
            if sub is None:
                sub = self._spaces[name] = HashIndex(self._compact_min_dead, self._mih_min_rows)
            return sub

    # -- size -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return (
            sum(t.live for t in self._bits.values())
            + len(self._exact_where)
            + sum(len(sub) for sub in list(self._spaces.values()))
        )

    def __contains__(self, entry_id: object) -> bool:
        if not isinstance(entry_id, int | np.integer):
            return False
        eid = int(entry_id)
        with self._lock:
            here = eid in self._exact_where or any(t.find(eid) >= 0 for t in self._bits.values())
        return here or any(eid in sub for sub in list(self._spaces.values()))

    def contains_many(self, entry_ids: np.ndarray) -> np.ndarray:
        """Whether each of ``entry_ids`` is in this index or any of its spaces (bool array)."""
        ids = np.asarray(entry_ids, np.int64)
        with self._lock:
            out = np.zeros(ids.shape[0], bool)
            for t in self._bits.values():
                if t.live:
                    out |= t.find_many(ids) >= 0
            if self._exact_where:
                out |= np.isin(ids, np.fromiter(self._exact_where, np.int64))
            spaces = list(self._spaces.values())
        for sub in spaces:
            out |= sub.contains_many(ids)
        return out

    def frame_count(self, ref: int) -> int:
        """Live ``pdq_frame`` entries of ``ref`` (0 for a still image or an unknown ref)."""
        with self._lock:
            return self._frame_count.get(ref, 0)

    def frame_times(self, ref: int) -> np.ndarray:
        """The distinct times (seconds, sorted) of ``ref``'s live video-frame entries in this
        index (not its spaces) that have one: how much of the reference the index holds, and
        how densely. One pass over the frame table (a run of frames asks it once)."""
        with self._lock:
            t = self._bits[_TABLE_OF[VIDEO_FRAMES]]
            n, refs, algs, alive, ts = t.n, t.refs, t.algs, t.alive, t.ts
        rows = np.flatnonzero((refs[:n] == ref) & alive[:n] & np.isin(algs[:n], _FRAME_CODES))
        times = ts[rows]
        return np.unique(times[~np.isnan(times)]).astype(np.float64)

    # -- mutation -------------------------------------------------------------------------

    def add(
        self,
        entry_id: int,
        algorithm: str,
        value_hex: str,
        ref: int | None = None,
        ts: float | None = None,
    ) -> None:
        """Add (or replace) one entry (``ts``: a video frame's time in its video). Amortised
        O(1)."""
        self.add_many([(entry_id, algorithm, value_hex, ref, ts)])

    def add_many(self, rows: Iterable[tuple]) -> None:
        """Bulk add ``(entry_id, algorithm, value_hex, ref)`` rows, or ``(entry_id, algorithm,
        value_hex, ref, ts)`` (``ts``: a video frame's time in its video, seconds, or None); the
        last row of a repeated entry_id wins. Invalid rows raise ValueError before anything is
        added."""
        rows = [r if len(r) == 5 else (*r, None) for r in rows]
        if not rows:
            return
        ids, algs, values, refs, times = (list(c) for c in zip(*rows, strict=True))
        last = dict(zip(ids, range(len(ids)), strict=True))
        if len(last) != len(ids):
            keep = sorted(last.values())
            ids, algs, values, refs, times = (
                [c[i] for i in keep] for c in (ids, algs, values, refs, times)
            )
        # Group by algorithm, parse and validate everything before mutating.
        kinds = set(algs)
        parsed = []
        for name in kinds:
            alg = _ALG_LOOKUP.get(name)
            if alg is None:
                raise ValueError(f"unknown hash algorithm {name!r}")
            if len(kinds) == 1:
                g_ids, g_values, g_refs, g_ts = ids, values, refs, times
            else:
                sel = [i for i, a in enumerate(algs) if a == name]
                g_ids = [ids[i] for i in sel]
                g_values = [values[i] for i in sel]
                g_refs = [refs[i] for i in sel]
                g_ts = [times[i] for i in sel]
            data: np.ndarray | list[str]  # bit words, or the exact hashes' hex strings
            if alg in _ALG_CODE:
                data = _hexes_to_words(g_values, _HEX_LEN[alg])  # fromhex takes upper case
            else:
                data = [v.lower() for v in g_values]
                _check_lengths(data, _HEX_LEN[alg], alg)
                _check_hex("".join(data))
            parsed.append((alg, g_ids, data, g_refs, g_ts))
        with self._lock:
            self._remove_present_locked(np.fromiter(last, np.int64, len(last)))
            for alg, g_ids, data, g_refs, g_ts in parsed:
                if isinstance(data, np.ndarray):
                    refs_arr = np.array([NO_REF if r is None else r for r in g_refs], np.int64)
                    ts_arr = np.array([np.nan if t is None else t for t in g_ts], np.float32)
                    self._append_bits(alg, np.array(g_ids, np.int64), data, refs_arr, ts_arr)
                else:
                    table = self._exact[_TABLE_OF[alg]]
                    for entry_id, value, ref in zip(g_ids, data, g_refs, strict=True):
                        table.setdefault(value, {})[entry_id] = ref
                        self._exact_where[entry_id] = (alg, value)
            self._maybe_compact()

    def add_words(
        self,
        algorithm: str,
        entry_ids: np.ndarray,
        words: np.ndarray,
        refs: np.ndarray,
        ts: np.ndarray | None = None,
    ) -> None:
        """Bulk add entries of one bit algorithm from arrays: ``entry_ids`` (int64, unique),
        ``words`` ``(words, n)`` uint64 as :func:`hex_to_words` gives them, ``refs`` (int64,
        :data:`NO_REF` for none), ``ts`` (each video frame's time in its video, NaN for none;
        None: none known). Entries already present are replaced. The hash list's bulk load uses
        this: no Python object per entry."""
        alg = _algorithm(algorithm)
        if alg not in _ALG_CODE:
            raise ValueError(f"{alg} is not a bit hash")
        ids = np.asarray(entry_ids, np.int64)
        refs = np.asarray(refs, np.int64)
        words = np.asarray(words, np.uint64)
        n = ids.shape[0]
        if words.shape != (_WORDS[_TABLE_OF[alg]], n) or refs.shape != (n,):
            raise ValueError(f"{alg}: {n} ids, words {words.shape}, refs {refs.shape}")
        times = np.full(n, np.nan, np.float32) if ts is None else np.asarray(ts, np.float32)
        if times.shape != (n,):
            raise ValueError(f"{alg}: {n} ids, times {times.shape}")
        if n == 0:
            return
        if n > 1 and not bool(np.all(ids[1:] > ids[:-1])) and np.unique(ids).size != n:
            raise ValueError("add_words: repeated entry ids")
        with self._lock:
            self._remove_present_locked(ids)
            self._append_bits(alg, ids, words, refs, times)
            self._maybe_compact()

    def _remove_present_locked(self, ids: np.ndarray) -> None:
        """Remove the entries of ``ids`` this index (not its spaces) holds."""
        for t in self._bits.values():
            if not t.live:
                continue
            if not t.where and t.sorted_n == t.n and int(ids.min()) > int(t.ids[t.n - 1]):
                continue  # the usual bulk load: every id is new
            for row in t.find_many(ids).tolist():
                if row >= 0:
                    self._kill_row_locked(t, row)
        if self._exact_where:
            for entry_id in self._exact_where.keys() & set(ids.tolist()):
                self._remove_locked(entry_id)

    def _append_bits(
        self, alg: Algorithm, ids: np.ndarray, cols: np.ndarray, refs: np.ndarray, ts: np.ndarray
    ) -> None:
        t = self._bits[_TABLE_OF[alg]]
        k = ids.shape[0]
        t.reserve(k)
        s, e = t.n, t.n + k
        t.cols[:, s:e] = cols
        t.ids[s:e] = ids
        t.refs[s:e] = refs
        t.ts[s:e] = ts
        code = _ALG_CODE[alg]
        t.algs[s:e] = code
        t.alive[s:e] = True
        in_order = t.sorted_n == s and not t.where
        in_order = in_order and (s == 0 or int(ids[0]) > int(t.ids[s - 1]))
        in_order = in_order and (k == 1 or bool(np.all(ids[1:] > ids[:-1])))
        if in_order:
            t.sorted_n = e
        else:
            t.where.update(zip(ids.tolist(), range(s, e), strict=True))
        t.n = e  # publish the rows last: a concurrent snapshot sees whole rows only
        if alg in _FRAME_ALGS:
            self._frame_count.update(r for r in refs.tolist() if r != NO_REF)

    def remove(self, entry_id: int) -> None:
        """Retract one entry (no error if absent), whichever space holds it."""
        self.remove_many([entry_id])

    def remove_many(self, entry_ids: Iterable[int]) -> None:
        """Retract several entries (absent ones are ignored), whichever space holds them."""
        elsewhere = []
        with self._lock:
            for entry_id in entry_ids:
                if not self._remove_locked(int(entry_id)):
                    elsewhere.append(entry_id)
            self._maybe_compact()
            spaces = list(self._spaces.values())
        if elsewhere:
            for sub in spaces:
                sub.remove_many(elsewhere)

    def _kill_row_locked(self, t: _BitTable, row: int) -> None:
        t.where.pop(int(t.ids[row]), None)
        t.alive[row] = False
        t.dead += 1
        if _BIT_ALGS[int(t.algs[row])] in _FRAME_ALGS:
            ref = int(t.refs[row])
            if ref != NO_REF:
                self._frame_count[ref] -= 1
                if self._frame_count[ref] <= 0:
                    del self._frame_count[ref]

    def _remove_locked(self, entry_id: int) -> bool:
        for t in self._bits.values():
            row = t.find(entry_id) if t.live else -1
            if row >= 0:
                self._kill_row_locked(t, row)
                return True
        loc = self._exact_where.pop(entry_id, None)
        if loc is None:
            return False
        alg, value = loc
        table = self._exact[_TABLE_OF[alg]]
        bucket = table[value]
        del bucket[entry_id]
        if not bucket:
            del table[value]
        return True

    def _maybe_compact(self) -> None:
        for key, t in self._bits.items():
            if t.dead >= self._compact_min_dead and t.dead * 4 >= t.n:
                self._compact_locked(key)
            elif len(t.where) >= self._compact_min_dead and len(t.where) * 4 >= t.n:
                self._compact_locked(key)  # many rows out of order: sort them in

    def compact(self) -> None:
        """Drop every tombstone now."""
        with self._lock:
            for key, t in self._bits.items():
                if t.dead or t.where:
                    self._compact_locked(key)
            spaces = list(self._spaces.values())
        for sub in spaces:
            sub.compact()

    def _compact_locked(self, key: str) -> None:
        """Keep the live rows only, sorted by entry id (then every row is found by search)."""
        t = self._bits[key]
        keep = np.flatnonzero(t.alive[: t.n])
        keep = keep[np.argsort(t.ids[keep], kind="stable")]
        cap = max(_INITIAL_CAPACITY, 1 << (2 * keep.size - 1).bit_length())
        t._realloc(cap, keep)
        t.mih = None  # rows moved
        t.epoch += 1
        t.dead = 0
        t.sorted_n = t.n
        t.where = {}

    # -- snapshot -------------------------------------------------------------------------

    def dump(self) -> dict[str, np.ndarray]:
        """Every live entry of this index and its spaces as plain arrays (no objects: safe to
        save with ``np.savez`` and load without pickle), each bit table sorted by entry id;
        :meth:`restore` reads them back. ``spaces`` lists the space paths (JSON), and the
        arrays of space ``i`` are named ``"<i>.<table>.<field>"``."""
        out: dict[str, np.ndarray] = {}
        paths: list[list[str]] = []
        self._dump_into(out, paths, [])
        out["spaces"] = np.array([json.dumps(p) for p in paths], dtype=np.str_)
        out["layout"] = _LAYOUT.copy()
        return out

    def _dump_into(self, out: dict[str, np.ndarray], paths: list, path: list[str]) -> None:
        i = len(paths)
        paths.append(path)
        with self._lock:
            for key, t in self._bits.items():
                keep = np.flatnonzero(t.alive[: t.n])
                keep = keep[np.argsort(t.ids[keep], kind="stable")]
                out[f"{i}.{key}.cols"] = np.ascontiguousarray(t.cols[:, keep])
                out[f"{i}.{key}.ids"] = t.ids[keep]
                out[f"{i}.{key}.refs"] = t.refs[keep]
                out[f"{i}.{key}.algs"] = t.algs[keep]
                out[f"{i}.{key}.ts"] = t.ts[keep]
            for key, table in self._exact.items():
                rows = [(e, v, r) for v, b in table.items() for e, r in b.items()]
                rows.sort()
                out[f"{i}.{key}.ids"] = np.array([e for e, _, _ in rows], np.int64)
                out[f"{i}.{key}.values"] = np.array([v for _, v, _ in rows], dtype=np.bytes_)
                out[f"{i}.{key}.refs"] = np.array(
                    [NO_REF if r is None else r for _, _, r in rows], np.int64
                )
            spaces = sorted(self._spaces.items())
        for name, sub in spaces:
            sub._dump_into(out, paths, [*path, name])

    def restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Fill this empty index from :meth:`dump`'s arrays. Everything is checked before
        anything is added: ValueError (and the index left empty) when they are not exactly
        what ``dump`` writes."""
        if len(self):
            raise ValueError("restore: the index is not empty")
        try:
            plan = _restore_plan(arrays)
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"restore: {exc!r}") from None
        for path, bits, exact in plan:
            target = self
            for name in path:
                target = target.space(name)
            with target._lock:
                for key, (cols, ids, refs, algs, ts) in bits.items():
                    t = target._bits[key]
                    n = ids.shape[0]
                    if n == 0:
                        continue  # keep the empty table's own capacity
                    t.cols, t.ids, t.refs, t.algs, t.ts = cols, ids, refs, algs, ts
                    t.alive = np.ones(n, bool)
                    t.n = t.sorted_n = n
                    frames = refs[np.isin(algs, _FRAME_CODES) & (refs != NO_REF)]
                    target._frame_count.update(frames.tolist())
            for alg, (ids, values, refs) in exact.items():
                target.add_many(
                    (e, alg.value, v, None if r == NO_REF else r)
                    for e, v, r in zip(ids.tolist(), values, refs.tolist(), strict=True)
                )

    # -- search ---------------------------------------------------------------------------

    def _snapshot(self, key: str) -> _Snapshot:
        with self._lock:
            t = self._bits[key]
            return _Snapshot(t.cols, t.ids, t.refs, t.algs, t.alive, t.n, t.mih, t.ts)

    def search(self, algorithm: str, value_hex: str, max_distance: int) -> list[Match]:
        """Entries within ``max_distance`` bits of ``value_hex`` (inclusive), nearest first
        (ties by entry_id). Exact algorithms ignore ``max_distance``."""
        return self.search_many(algorithm, [value_hex], max_distance)[0]

    def search_many(
        self, algorithm: str, values_hex: Sequence[str], max_distance: int
    ) -> list[list[Match]]:
        """``search`` for many query hashes at once (video frames): one pass over the table,
        identical queries searched once. Returns one list per query, in order."""
        alg = _algorithm(algorithm)
        values = list(values_hex)
        if not values:
            return []
        key = _TABLE_OF[alg]
        if key not in self._bits:
            values = [v.lower() for v in values]
            _check_lengths(values, _HEX_LEN[alg], alg)
            _check_hex("".join(values))
            with self._lock:
                table = self._exact[key]
                return [
                    [
                        Match(entry_id, ref, alg, 0)
                        for entry_id, ref in sorted(table.get(v, {}).items())
                    ]
                    for v in values
                ]
        if max_distance < 0:
            return [[] for _ in values]
        queries = _hexes_to_words(values, _HEX_LEN[alg])
        uniq, inverse = np.unique(queries, axis=1, return_inverse=True)
        inverse = inverse.reshape(-1)
        snap = self._snapshot(key)
        max_distance = min(int(max_distance), 64 * uniq.shape[0])
        hits = self._search_table(key, snap, uniq, max_distance)
        results = [self._matches(snap, rows, dist) for rows, dist in hits]
        return [list(results[i]) for i in inverse.tolist()]

    def _search_table(
        self, key: str, snap: _Snapshot, queries: np.ndarray, max_distance: int
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """(rows, distances) within ``max_distance`` of each query column, every row of the
        snapshot considered: through the multi-index where there is one and the threshold
        allows, the rows past it (and queries it would not narrow down) by the scan."""
        nq = queries.shape[1]
        radii = _block_radii(max_distance) if snap.mih is not None else None
        if snap.mih is None or radii is None:
            hits = _scan_many(snap.cols, snap.n, queries, max_distance)
            self._count_scan(key, snap.n * nq)
            return hits
        hits, scan = snap.mih.search(snap.cols, queries, max_distance, radii)
        if scan:  # those queries' buckets are crowded: scan the rows the multi-index holds
            q = queries[:, scan]
            for i, more in zip(
                scan, _scan_many(snap.cols, snap.mih.n, q, max_distance), strict=True
            ):
                hits[i] = more
        if snap.n > snap.mih.n:  # rows added since it was built
            tail = _scan_many(snap.cols, snap.n, queries, max_distance, start=snap.mih.n)
            hits = [
                (np.concatenate([a, c]), np.concatenate([b, d]))
                for (a, b), (c, d) in zip(hits, tail, strict=True)
            ]
        self._count_scan(key, (snap.n - snap.mih.n) * nq + snap.mih.n * len(scan))
        return hits

    # -- multi-index ----------------------------------------------------------------------

    def _count_scan(self, key: str, work: int) -> None:
        """Note rows x queries scanned; once the scans would have paid for a multi-index
        (:data:`AUTO_BUILD_SCANS` scans of the whole table), build it (in this thread)."""
        t = self._bits[key]
        t.scan_work += work  # unlocked: a lost update only delays the build
        if t.scan_work >= AUTO_BUILD_SCANS * t.n and t.mih_wanted(self._mih_min_rows):
            self._build_mih(key)

    def _build_mih(self, key: str) -> bool:
        """Build the multi-index of the table ``key`` over its rows now, outside the index's
        lock (searches and updates go on meanwhile; a compaction in between makes it stale
        and it is thrown away). One build at a time. Whether one was published."""
        if not self._build_lock.acquire(blocking=False):
            return False  # another thread builds it
        try:
            with self._lock:
                t = self._bits[key]
                if not t.mih_wanted(self._mih_min_rows):
                    return False
                cols, n, epoch = t.cols, t.n, t.epoch
            mih = _MultiIndex(cols, n)
            with self._lock:
                if t.epoch != epoch:
                    return False
                t.mih = mih
                t.scan_work = 0
            return True
        finally:
            self._build_lock.release()

    def prepare(self) -> None:
        """Build the multi-index of every large 256-bit table (this index's and its spaces')
        that has none or has grown well past it; without it, searches scan (and build one
        themselves once they have scanned enough, see :data:`AUTO_BUILD_SCANS`). A million
        entries: about a second, on the calling thread; searches go on meanwhile."""
        for key, words in _WORDS.items():
            if words == _MIH_WORDS and key not in _ALIGNED_TABLES:
                self._build_mih(key)
        with self._lock:
            spaces = list(self._spaces.values())
        for sub in spaces:
            sub.prepare()

    def live_rows(self, algorithm: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple]:
        """The live entries of one bit algorithm's table in this index (not its spaces), for a
        reader that compares them its own way (the sound's aligned bit error rate): ``words``
        ``(words, n)`` uint64, ``entry_ids``, ``refs`` (:data:`NO_REF` for none), and a
        version that changes whenever the table does (to cache what is built from them)."""
        alg = _algorithm(algorithm)
        key = _TABLE_OF[alg]
        if key not in self._bits:
            raise ValueError(f"{alg} is not a bit hash")
        with self._lock:
            t = self._bits[key]
            snap = _Snapshot(t.cols, t.ids, t.refs, t.algs, t.alive, t.n, t.mih, t.ts)
            version = (id(t.cols), t.n, t.dead, t.epoch)
        live = np.flatnonzero(snap.alive[: snap.n] & (snap.algs[: snap.n] == _ALG_CODE[alg]))
        return snap.cols[:, live], snap.ids[live], snap.refs[live], version

    @staticmethod
    def _matches(snap: _Snapshot, rows: np.ndarray, dist: np.ndarray) -> list[Match]:
        if rows.size == 0:
            return []
        live = snap.alive[rows]
        rows, dist = rows[live], dist[live]
        ids = snap.ids[rows]
        order = np.lexsort((ids, dist))
        out = []
        for entry_id, ref, code, d, ts in zip(
            ids[order].tolist(),
            snap.refs[rows][order].tolist(),
            snap.algs[rows][order].tolist(),
            dist[order].tolist(),
            snap.ts[rows][order].tolist(),
            strict=True,
        ):
            ref = None if ref == NO_REF else ref
            out.append(Match(entry_id, ref, _BIT_ALGS[code], d, None if ts != ts else ts))
        return out


def _restore_plan(arrays: Mapping[str, np.ndarray]) -> list:
    """:meth:`HashIndex.restore`'s arrays checked and grouped by space: (path, {table: (cols,
    ids, refs, algs, ts)}, {algorithm: (ids, hex values, refs)}). KeyError, TypeError or
    ValueError when anything is off."""
    layout = np.asarray(arrays["layout"])
    if layout.shape != _LAYOUT.shape or not bool(np.all(layout == _LAYOUT)):
        raise ValueError("restore: written by a Hashdesk with other hash types")
    plan = []
    seen: list[np.ndarray] = []
    paths = [json.loads(str(p)) for p in np.asarray(arrays["spaces"]).tolist()]
    if not paths or paths[0] != []:
        raise ValueError("restore: no root space")
    for i, path in enumerate(paths):
        if not isinstance(path, list) or not all(isinstance(p, str) and p for p in path):
            raise ValueError(f"restore: bad space path {path!r}")
        bits = {}
        for key, words in _WORDS.items():
            cols = np.asarray(arrays[f"{i}.{key}.cols"])
            ids = np.asarray(arrays[f"{i}.{key}.ids"])
            refs = np.asarray(arrays[f"{i}.{key}.refs"])
            algs = np.asarray(arrays[f"{i}.{key}.algs"])
            ts = np.asarray(arrays[f"{i}.{key}.ts"])
            n = ids.shape[0] if ids.ndim == 1 else -1
            if (
                cols.dtype != np.uint64
                or ids.dtype != np.int64
                or refs.dtype != np.int64
                or algs.dtype != np.uint8
                or ts.dtype != np.float32
                or ts.shape != (n,)
                or cols.shape != (words, n)
                or refs.shape != (n,)
                or algs.shape != (n,)
            ):
                raise ValueError(f"restore: space {i} table {key}: bad arrays")
            if n > 1 and not bool(np.all(ids[1:] > ids[:-1])):
                raise ValueError(f"restore: space {i} table {key}: ids not increasing")
            codes = [_ALG_CODE[a] for a in _BIT_ALGS if _TABLE_OF[a] == key]
            if n and not bool(np.isin(algs, codes).all()):
                raise ValueError(f"restore: space {i} table {key}: bad algorithm codes")
            bits[key] = (
                np.ascontiguousarray(cols),
                ids.copy(),
                refs.copy(),
                algs.copy(),
                ts.copy(),
            )
            seen.append(ids)
        exact = {}
        for alg in _EXACT_ALGS:
            key = _TABLE_OF[alg]
            ids = np.asarray(arrays[f"{i}.{key}.ids"])
            refs = np.asarray(arrays[f"{i}.{key}.refs"])
            raw = np.asarray(arrays[f"{i}.{key}.values"])
            if ids.dtype != np.int64 or refs.dtype != np.int64 or ids.ndim != 1:
                raise ValueError(f"restore: space {i} table {key}: bad arrays")
            if raw.shape != ids.shape or refs.shape != ids.shape or raw.dtype.kind != "S":
                raise ValueError(f"restore: space {i} table {key}: bad arrays")
            values = [v.decode("ascii") for v in raw.tolist()]
            _check_lengths(values, _HEX_LEN[alg], alg)
            _check_hex("".join(values))
            exact[alg] = (ids, values, refs)
            seen.append(ids)
        plan.append((path, bits, exact))
    seen = [ids for ids in seen if ids.size]
    if len(seen) > 1:  # each table's ids increase: only across tables can one come twice
        every = np.concatenate(seen)
        if np.unique(every).size != every.size:
            raise ValueError("restore: an entry id twice")
    return plan


# ---------------------------------------------------------------------------------------------
# video


def video_match_fraction(
    query_frames: Sequence[str], target_frames: Sequence[str], max_distance: int
) -> float:
    """Fraction of ``query_frames`` (PDQ hex) with some target frame within ``max_distance``.

    All pairs are compared, in blocks of about a million pairs to bound memory. 0.0 if either
    list is empty. Not symmetric: swap the arguments for the target's coverage."""
    if not query_frames or not target_frames:
        return 0.0
    q = _hexes_to_words([v.lower() for v in query_frames], 64)  # (4, Q)
    t = _hexes_to_words([v.lower() for v in target_frames], 64)  # (4, T)
    nq, nt = q.shape[1], t.shape[1]
    block = max(1, (1 << 20) // nt)
    matched = 0
    for s in range(0, nq, block):
        e = min(nq, s + block)
        d = np.zeros((e - s, nt), np.uint16)
        for k in range(4):
            d += _popcount(q[k, s:e, None] ^ t[k, None, :])
        matched += int((d <= max_distance).any(axis=1).sum())
    return matched / nq


class VideoMatch(NamedTuple):
    """A ref whose frames cover a query video. ``fraction_target`` is the share of the ref's
    ``pdq_frame`` entries hit by some query frame, or None when the ref has none (a still
    image, matched through its ``pdq`` entries)."""

    ref: int
    fraction_query: float
    fraction_target: float | None
    matched_frames: int
    min_distance: int


def best_video_matches(
    index: HashIndex,
    frame_hexes: Sequence[str],
    max_distance: int = 31,
    min_fraction: float = 0.8,
    min_target_fraction: float = 0.0,
) -> list[VideoMatch]:
    """Refs (confirmed videos or images) matched by a query video's PDQ frame hashes.

    Rule: a ref matches when at least ``min_fraction`` of the query's frames are within
    ``max_distance`` of some entry of that ref (pdq or pdq_frame), and, when the ref's own
    frame count is known (it has pdq_frame entries), at least ``min_target_fraction`` of its
    frames are hit. The defaults are ThreatExchange/HMA's vPDQ defaults (distance 31, query
    80%, index 0%): the query side decides. So a clip cut from a confirmed video matches
    (all of the clip's frames are in it), a video that is mostly a confirmed still image
    matches, and a long compilation that merely contains a confirmed video does not match as
    a whole -- its individual frames still show up in ``index.search_many`` for a "known
    match" hint, and callers wanting vPDQ's stricter two-sided check raise
    ``min_target_fraction``. Entries without a ref are ignored. Sorted by fraction_query,
    then fraction_target, descending. Duplicate query frames count individually (a static
    scene weighs by its duration).
    """
    if not frame_hexes:
        return []
    results = index.search_many(VIDEO_FRAMES, frame_hexes, max_distance)
    return video_matches(index, results, min_fraction, min_target_fraction)


def video_matches(
    index: HashIndex,
    results: Sequence[Sequence[Match]],
    min_fraction: float = 0.8,
    min_target_fraction: float = 0.0,
) -> list[VideoMatch]:
    """:func:`best_video_matches` from the frames' hits already found (one list per query
    frame, as ``search_many`` gives them, in ``index``: the refs' frame counts are its own)."""
    if not results:
        return []
    hit_queries: dict[int, set[int]] = {}
    hit_frames: dict[int, set[int]] = {}
    best: dict[int, int] = {}
    for qi, matches in enumerate(results):
        for m in matches:
            if m.ref is None:
                continue
            hit_queries.setdefault(m.ref, set()).add(qi)
            if m.algorithm in _FRAME_ALGS:
                hit_frames.setdefault(m.ref, set()).add(m.entry_id)
            if m.distance < best.get(m.ref, 1 << 30):
                best[m.ref] = m.distance
    nq = len(results)
    out = []
    for ref, qset in hit_queries.items():
        fq = len(qset) / nq
        if fq < min_fraction:
            continue
        n_target = index.frame_count(ref)
        ft = min(1.0, len(hit_frames.get(ref, ())) / n_target) if n_target else None
        if ft is not None and ft < min_target_fraction:
            continue
        out.append(VideoMatch(ref, fq, ft, len(qset), best[ref]))
    out.sort(key=lambda v: (-v.fraction_query, -(v.fraction_target or 0.0), v.ref))
    return out
