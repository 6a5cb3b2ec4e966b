"""Matching the sound's fingerprint: aligned bit error rate, as Haitsma and Kalker do it.

A stored signal of the sound (:data:`Algorithm.AUDIO`) is a *block* of 256 bits: the number of
its first sub-fingerprint (32 bits), then 7 consecutive sub-fingerprints of 32 bits
(:mod:`app.core.audio.fingerprint`); a sub-fingerprint of 0 stands for silence or no data and
is never compared. The blocks of one reference (one item) put end to end give its sequence.

A query (the item's own blocks, and its query-only ``speed:<percent>`` blocks: the sound read
as if the copy were played that much faster) is matched in two steps, the paper's:

1. *Candidates.* Each half (16 bits) of each query sub-fingerprint is looked up exactly among
   the references' halves (a sorted array); every hit votes for a (reference, offset). Under
   distortion few whole sub-fingerprints survive, but enough halves do. A half that occurs
   more than :data:`MAX_KEY_HITS` times says nothing and is skipped.
2. *Verification.* For the :data:`CANDIDATES` best-voted alignments (each within
   :data:`SLACK` sub-fingerprints), the bit error rate (BER) of every :data:`WINDOW` sub-
   fingerprints (3 s) both sides have is computed; the lowest is the match's BER. It matches
   when that is at most the threshold (thousandths: ``MatchPolicy.audio_ber``, measured on
   unrelated sound: docs/PERFORMANCE.md, "Audio").

The evidence names one reference block (the hash-list entry) that agrees with one of the
query's own blocks by :func:`block_near`, the rule the team server applies to that claim
(``hd_audio_near`` in app/storage/sql/api_ingest.sql): at some shift of up to 3
sub-fingerprints, a BER of at most :data:`BLOCK_BER` thousandths over what they share. An
alignment without such a block is not reported. No Qt, no SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.core.matching.hash_index import NO_REF, HashIndex, hex_block_to_words

#: Sub-fingerprints in a block after its number.
SUBS = 7
#: Sub-fingerprints compared at once (3 s).
WINDOW = 128
#: A window counts when at least this share of its sub-fingerprints is there on both sides.
MIN_PRESENT = 0.75
#: A 16-bit half that occurs more often than this among the references is not looked up.
MAX_KEY_HITS = 4000
#: Alignments verified per query sequence, and the slack around each (sub-fingerprints).
CANDIDATES = 8
SLACK = 3
#: Votes an alignment needs to be verified at all.
MIN_VOTES = 2
#: The team server's rule for one block against another (thousandths; :func:`block_near`).
BLOCK_BER = 400
BLOCK_MIN_PAIRS = 4

_MASK32 = np.uint64(0xFFFFFFFF)


def blocks_of(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(numbers, subs)`` of blocks given as ``(4, n)`` uint64 words: the first
    sub-fingerprint's number (int64) and the 7 sub-fingerprints (``(n, 7)`` uint32)."""
    w = np.asarray(words, np.uint64)
    n = w.shape[1]
    subs = np.empty((n, SUBS), np.uint32)
    subs[:, 0] = (w[0] & _MASK32).astype(np.uint32)
    for k in range(1, 4):
        subs[:, 2 * k - 1] = (w[k] >> np.uint64(32)).astype(np.uint32)
        subs[:, 2 * k] = (w[k] & _MASK32).astype(np.uint32)
    return (w[0] >> np.uint64(32)).astype(np.int64), subs


def block_hex(number: int, subs: Sequence[int]) -> str:
    """One block's stored value (64 hex digits)."""
    if len(subs) != SUBS or not 0 <= number < 1 << 32:
        raise ValueError(f"block {number}: {len(subs)} sub-fingerprints")
    return f"{number:08x}" + "".join(f"{int(v):08x}" for v in subs)


def _popcount32(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.uint32)
    if hasattr(np, "bitwise_count"):  # numpy 2
        return np.bitwise_count(x).astype(np.int64)
    bits = np.unpackbits(x.astype(">u4").view(np.uint8).reshape(-1, 4), axis=1)
    return bits.sum(axis=1).astype(np.int64)


def block_near(a_hex: str, b_hex: str, limit: int = BLOCK_BER) -> bool:
    """Whether two blocks agree at some shift of up to 3 sub-fingerprints: over the
    ``7 - |shift|`` sub-fingerprints they then share (their numbers ignored, zeros compared as
    they are), at most ``limit`` thousandths of the bits differ. The team server applies this
    very rule to a claimed match (``hd_audio_near``, app/storage/sql/api_ingest.sql)."""
    _, a = blocks_of(hex_block_to_words(a_hex, 1, 256))
    _, b = blocks_of(hex_block_to_words(b_hex, 1, 256))
    a, b = a[0], b[0]
    reach = SUBS - BLOCK_MIN_PAIRS
    for shift in range(-reach, reach + 1):
        x = a[max(shift, 0) : SUBS + min(shift, 0)]
        y = b[max(-shift, 0) : SUBS + min(-shift, 0)]
        errors = int(_popcount32(np.bitwise_xor(x, y)).sum())
        if errors * 1000 <= limit * 32 * x.shape[0]:
            return True
    return False


@dataclass(frozen=True)
class SoundSequence:
    """A sound's sub-fingerprints end to end: ``subs[i]`` is number ``start + i`` (0: none)."""

    start: int
    subs: np.ndarray


def sequence_of(numbers: np.ndarray, subs: np.ndarray) -> SoundSequence:
    """The blocks' sub-fingerprints laid end to end by their numbers (gaps hold 0)."""
    if numbers.size == 0:
        return SoundSequence(0, np.zeros(0, np.uint32))
    start = int(numbers.min())
    seq = np.zeros(int(numbers.max()) - start + SUBS, np.uint32)
    at = (numbers - start)[:, None] + np.arange(SUBS)[None, :]
    seq[at.ravel()] = subs.ravel()
    return SoundSequence(start, seq)


@dataclass(frozen=True)
class AudioMatch:
    """The best alignment of a query with one reference: ``ber`` in thousandths over the best
    window, ``entry_id`` a reference block that agrees with ``query_block`` (the query's own
    block of the same variant) by :func:`block_near`, ``span`` the query's sub-fingerprint
    numbers the window covers, ``variant`` the query's."""

    ref: int | None
    ber: int
    entry_id: int
    query_block: str
    variant: str
    span: tuple[int, int]


class _References:
    """What the candidate step and the verification read, built once per version of the
    index's sound table: per reference its sequence and its blocks, and every non-zero half
    sub-fingerprint, sorted, with its reference and position."""

    def __init__(self, words: np.ndarray, ids: np.ndarray, refs: np.ndarray) -> None:
        numbers, subs = blocks_of(words)
        # One stream per reference (an entry without one is a stream of its own).
        keys = np.where(refs == NO_REF, -1 - ids, refs)
        self.stream_keys, stream = np.unique(keys, return_inverse=True)
        stream = stream.reshape(-1)
        self.seqs: list[SoundSequence] = []
        self.blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        halves_k, halves_s, halves_p = [], [], []
        for si in range(self.stream_keys.shape[0]):
            rows = np.flatnonzero(stream == si)
            seq = sequence_of(numbers[rows], subs[rows])
            self.seqs.append(seq)
            self.blocks.append((ids[rows], numbers[rows], subs[rows]))
            present = np.flatnonzero(seq.subs)
            v = seq.subs[present].astype(np.int64)
            for key in (v >> 16, (v & 0xFFFF) | 0x10000):
                halves_k.append(key)
                halves_s.append(np.full(present.shape[0], si, np.int32))
                halves_p.append(present.astype(np.int64) + seq.start)
        if halves_k:
            all_keys = np.concatenate(halves_k)
            order = np.argsort(all_keys, kind="stable")
            self.keys = all_keys[order]
            self.key_stream = np.concatenate(halves_s)[order]
            self.key_pos = np.concatenate(halves_p)[order]
        else:
            self.keys = np.zeros(0, np.int64)
            self.key_stream = np.zeros(0, np.int32)
            self.key_pos = np.zeros(0, np.int64)

    def ref_of(self, si: int) -> int | None:
        key = int(self.stream_keys[si])
        return key if key >= 0 else None

    def candidates(self, q: SoundSequence) -> list[tuple[int, int]]:
        """The best-voted (stream, offset) alignments of ``q`` (reference number = query
        number + offset)."""
        pos = np.flatnonzero(q.subs)
        if pos.size == 0 or self.keys.size == 0:
            return []
        v = q.subs[pos].astype(np.int64)
        qk = np.concatenate([v >> 16, (v & 0xFFFF) | 0x10000])
        qp = np.concatenate([pos, pos]).astype(np.int64) + q.start
        lo = np.searchsorted(self.keys, qk, "left")
        hi = np.searchsorted(self.keys, qk, "right")
        count = hi - lo
        use = (count > 0) & (count <= MAX_KEY_HITS)
        lo, count, qp = lo[use], count[use], qp[use]
        if count.size == 0:
            return []
        total = int(count.sum())
        # every hit of every key: index lo + 0 .. lo + count - 1
        first = np.repeat(lo - np.cumsum(count) + count, count)
        hit = first + np.arange(total)
        offs = self.key_pos[hit] - np.repeat(qp, count)
        streams = self.key_stream[hit].astype(np.int64)
        # votes per (stream, offset), then summed over offsets within SLACK of each other
        pair = streams * (1 << 40) + (offs + (1 << 39))
        uniq, votes = np.unique(pair, return_counts=True)
        best = np.argsort(-votes, kind="stable")[: CANDIDATES * 4]
        best = best[votes[best] >= MIN_VOTES]
        out: list[tuple[int, int]] = []
        for i in best.tolist():
            si = int(uniq[i] >> 40)
            off = int((uniq[i] & ((1 << 40) - 1)) - (1 << 39))
            if any(s == si and abs(o - off) <= SLACK for s, o in out):
                continue
            out.append((si, off))
            if len(out) == CANDIDATES:
                break
        return out

    def verify(self, q: SoundSequence, si: int, off: int) -> tuple[int, int, int] | None:
        """``(ber, offset, window start)`` of the best window of ``q`` against stream ``si``
        near offset ``off`` (within :data:`SLACK`), or None when no window has enough
        sub-fingerprints on both sides."""
        ref = self.seqs[si]
        best: tuple[int, int, int] | None = None
        for o in range(off - SLACK, off + SLACK + 1):
            # query index i meets reference index i + q.start + o - ref.start
            shift = q.start + o - ref.start
            i0 = max(0, -shift)
            i1 = min(q.subs.shape[0], ref.subs.shape[0] - shift)
            if i1 - i0 < WINDOW:
                continue
            a = q.subs[i0:i1]
            b = ref.subs[i0 + shift : i1 + shift]
            both = (a != 0) & (b != 0)
            err = np.where(both, _popcount32(np.bitwise_xor(a, b)), 0)
            c_err = np.concatenate([[0], np.cumsum(err)])
            c_n = np.concatenate([[0], np.cumsum(both)])
            w_err = c_err[WINDOW:] - c_err[:-WINDOW]
            w_n = c_n[WINDOW:] - c_n[:-WINDOW]
            ok = w_n >= MIN_PRESENT * WINDOW
            if not ok.any():
                continue
            ber = np.where(ok, w_err * 1000 / (32 * np.maximum(w_n, 1)), 1000.0)
            j = int(np.argmin(ber))
            found = (round(float(ber[j])), o, i0 + j)
            if best is None or found[0] < best[0]:
                best = found
        return best

    def entry_for(
        self, si: int, q_blocks: list[str], q_numbers: np.ndarray, lo: int, hi: int, off: int
    ) -> tuple[int | None, str | None]:
        """A reference block in the matched stretch (query numbers ``lo``..``hi``) that agrees
        with one of the query's blocks by :func:`block_near`, and that block."""
        ids, numbers, _ = self.blocks[si]
        pick = np.flatnonzero((numbers >= lo + off - SUBS) & (numbers <= hi + off))
        order = np.argsort(np.abs(numbers[pick] - (lo + hi) // 2 - off))
        for r in pick[order].tolist():
            want = int(numbers[r]) - off
            near_q = np.flatnonzero(np.abs(q_numbers - want) < SUBS)
            ref_hex = _block_hex_of(self.blocks[si], r)
            for qi in near_q.tolist():
                if block_near(q_blocks[qi], ref_hex):
                    return int(ids[r]), q_blocks[qi]
        return None, None


def _block_hex_of(blocks: tuple[np.ndarray, np.ndarray, np.ndarray], r: int) -> str:
    _, numbers, subs = blocks
    return block_hex(int(numbers[r]), subs[r].tolist())


_CACHE: dict[int, tuple[tuple, _References]] = {}


def _references(index: HashIndex, algorithm: str) -> _References:
    words, ids, refs, version = index.live_rows(algorithm)
    cached = _CACHE.get(id(index))
    if cached is not None and cached[0] == version:
        return cached[1]
    built = _References(words, ids, refs)
    if len(_CACHE) > 64:
        _CACHE.clear()
    _CACHE[id(index)] = (version, built)
    return built


def match_sound(
    index: HashIndex, algorithm: str, queries: dict[str, list[str]], threshold: int
) -> AudioMatch | None:
    """The best match of a sound's blocks (``queries``: variant -> its blocks' hex values)
    against the sound table of ``index``, or None when no alignment's BER is within
    ``threshold`` thousandths."""
    refs = _references(index, algorithm)
    if refs.keys.size == 0:
        return None
    best: AudioMatch | None = None
    for variant, values in queries.items():
        if not values:
            continue
        numbers, subs = blocks_of(hex_block_to_words("".join(values), len(values), 256))
        q = sequence_of(numbers, subs)
        if int(np.count_nonzero(q.subs)) < MIN_PRESENT * WINDOW:
            continue
        for si, off in refs.candidates(q):
            found = refs.verify(q, si, off)
            if found is None or found[0] > threshold:
                continue
            ber, o, i = found
            if best is not None and ber >= best.ber:
                continue
            lo, hi = q.start + i, q.start + i + WINDOW
            entry, q_block = refs.entry_for(si, values, numbers, lo, hi, o)
            if entry is None or q_block is None:
                continue
            best = AudioMatch(refs.ref_of(si), ber, entry, q_block, variant, (lo, hi))
    return best
