"""The sound's fingerprint (app.core.audio) and its matching (app.core.matching.audio_match),
checked against the published algorithm's definition and on real decoded files: the bits are
the paper's rule, blocks go to hex and back, a speed variant is what the original would give,
silence is never compared, matching finds the right reference at the right speed and nothing
for unrelated sound, and exports leave the sound out and say so."""

from __future__ import annotations

import io

import numpy as np
import pytest

from app.core.audio import fingerprint as fp
from app.core.audio.decode import decode_sound
from app.core.audio.signals import sound_signals, speed_windows
from app.core.exchange import pytx, tat
from app.core.exchange.entries import ExchangeEntry
from app.core.matching.audio_match import (
    SUBS,
    block_hex,
    block_near,
    blocks_of,
    sequence_of,
)
from app.core.matching.hash_index import HashIndex, hex_block_to_words
from app.core.matching.match_rules import MatchPolicy, find_known, index_signal
from app.core.matching.signal_types import SIGNAL_TYPES, Variant, is_query_only, speed_variant
from app.core.model.domain import Algorithm, MediaKind
from app.tools import sound_writer as sw

R = fp.RATE


def _down(seed: int, seconds: float) -> np.ndarray:
    x = sw.music(seconds, seed, 22050)
    n = int(x.shape[0] * R / 22050)
    return np.interp(np.arange(n) * 22050 / R, np.arange(x.shape[0]), x).astype(np.float32)


def _ber(a: np.ndarray, b: np.ndarray) -> float:
    n = min(a.shape[0], b.shape[0])
    both = (a[:n] != 0) & (b[:n] != 0)
    x = np.bitwise_xor(a[:n][both], b[:n][both])
    return float(np.unpackbits(x.view(np.uint8)).sum()) / (32 * int(both.sum()))


def test_bits_follow_the_papers_rule_band_by_band():
    r = np.random.default_rng(1)
    e = r.uniform(1, 10, (5, fp.BANDS)).astype(np.float32)
    subs = fp.bits_of(e, floor=0.0)
    assert subs.shape == (4,)
    for n in range(1, 5):
        for m in range(32):
            want = (e[n, m] - e[n, m + 1]) - (e[n - 1, m] - e[n - 1, m + 1]) > 0
            assert bool(subs[n - 1] >> np.uint32(31 - m) & np.uint32(1)) == want


def test_bands_are_the_papers_log_spaced_300_to_2000_hz_and_cover_every_bin_once():
    m = fp.band_matrix()
    assert m.shape == (fp.FRAME // 2 + 1, fp.BANDS)
    covered = m.sum(axis=0) * fp.RATE / fp.FRAME  # Hz each band holds
    edges = 300 * (2000 / 300) ** (np.arange(fp.BANDS + 1) / fp.BANDS)
    assert np.allclose(covered, np.diff(edges), rtol=1e-3)
    assert m.sum(axis=1).max() <= 1.0 + 1e-6  # no bin counted twice


def test_silence_gives_zero_sub_fingerprints_and_level_changes_nothing():
    x = _down(3, 8)
    x[2 * R : 4 * R] = 0
    f = fp.fingerprint(x)
    quiet = fp.fingerprint(x * 0.01)
    second = int(fp.FRAMES_PER_SECOND)
    assert not f[int(2.5 * second) : int(3.5 * second)].any()
    assert f[:second].all()
    assert _ber(f, quiet) < 0.01


def test_a_steady_tone_has_no_sub_fingerprints_so_two_copies_of_it_never_match():
    tone = sw.tone(6, (440.0,), R)
    assert not fp.fingerprint(tone).any()
    assert not fp.fingerprint(sw.add_noise(tone, 20, 1)).any()
    index = _index({1: np.concatenate([_down(30, 6), tone])})
    assert find_known(index, sound_signals(tone * 0.5), MediaKind.AUDIO, MatchPolicy()) is None


def test_a_speed_variant_is_what_the_original_gives():
    x = _down(4, 20)
    original = fp.fingerprint(x)
    copy = sw.speed(x, 1.25)
    power = fp.power_spectrum(copy)
    floor = fp.silence_floor(power @ fp.band_matrix())
    as_read = fp.speed_variant(power, 125, floor)
    plain = fp.fingerprint(copy)
    # read at its speed the copy agrees with the original; as it is, it is unrelated
    n = min(as_read.shape[0], original.shape[0]) - 20
    assert _ber(as_read[10:n], original[10:n]) < 0.25
    assert _ber(plain, original) > 0.4


def test_blocks_go_to_hex_and_back():
    r = np.random.default_rng(2)
    subs = r.integers(0, 2**32, (3, SUBS), dtype=np.uint64).astype(np.uint32)
    hexes = [block_hex(1000 * i + 5, subs[i].tolist()) for i in range(3)]
    assert all(len(h) == 64 for h in hexes)
    numbers, back = blocks_of(hex_block_to_words("".join(hexes), 3, 256))
    assert numbers.tolist() == [5, 1005, 2005]
    assert np.array_equal(back, subs)
    seq = sequence_of(numbers[:1], back[:1])
    assert seq.start == 5 and np.array_equal(seq.subs, subs[0])
    with pytest.raises(ValueError):
        block_hex(-1, subs[0].tolist())


def test_the_speed_variant_is_query_only_and_parsed_once():
    v = Variant.parse(speed_variant(125))
    assert v.kind == "speed" and v.speed == 125 and str(v) == "speed:125"
    assert is_query_only("speed:75") and not is_query_only("")
    for bad in ("speed:", "speed:0", "speed:075", "speed:x", "speed:1000"):
        with pytest.raises(ValueError):
            Variant.parse(bad)


def test_speed_windows_cover_a_long_sound_every_30_s_and_a_short_one_in_the_middle():
    per_s = fp.FRAMES_PER_SECOND
    assert len(speed_windows(int(10 * per_s))) == 1
    long = speed_windows(int(95 * per_s))
    assert len(long) == 3 and all(b - a == int(6 * per_s) for a, b in long)
    assert speed_windows(0) == []


def _index(refs: dict[int, np.ndarray]) -> HashIndex:
    index, eid, pol = HashIndex(), 1, MatchPolicy()
    for ref, x in refs.items():
        for s in sound_signals(x):
            if index_signal(index, eid, s, ref, pol):
                eid += 1
    return index


def test_matching_finds_the_reference_at_its_speed_and_nothing_for_other_sound():
    refs = {i: _down(10 + i, 20) for i in range(1, 4)}
    index = _index(refs)
    pol = MatchPolicy()
    for factor, ref in ((1.0, 1), (0.8, 2), (1.25, 3)):
        k = find_known(index, sound_signals(sw.speed(refs[ref], factor)), MediaKind.AUDIO, pol)
        assert k is not None and k.evidence is not None
        assert k.evidence.ref == ref and k.evidence.algorithm == "audio"
        assert k.evidence.distance <= pol.audio_ber
        if factor != 1.0:
            assert k.evidence.variant.startswith("speed:")
        assert k.evidence.entry_id in index
    for other in (_down(99, 15), sw.noise(15, 1, R), sw.tone(15, (440.0, 554.0), R)):
        assert find_known(index, sound_signals(other), MediaKind.AUDIO, pol) is None


def test_a_sound_shorter_than_the_window_matches_nothing_and_does_not_fail():
    refs = {1: _down(21, 20)}
    index = _index(refs)
    short = refs[1][R : 3 * R]  # 2 s of the very reference
    sigs = sound_signals(short)
    assert sigs and all(not s.variant for s in sigs)
    assert find_known(index, sigs, MediaKind.AUDIO, MatchPolicy()) is None
    assert sound_signals(np.zeros(100, np.float32)) == []


def test_block_near_is_the_servers_rule():
    r = np.random.default_rng(3)
    a = r.integers(0, 2**32, SUBS, dtype=np.uint64).tolist()
    flipped = [v ^ 0x0F0F for v in a]  # 8 of 32 bits: 250 thousandths
    assert block_near(block_hex(0, a), block_hex(7, flipped))
    assert not block_near(block_hex(0, a), block_hex(0, [v ^ 0x0FFFF0F for v in a]))
    assert block_near(block_hex(0, a), block_hex(0, [0, 0, 0, *a[:4]]))  # shifted by 3


def test_the_audio_table_gets_no_multi_index():
    index = HashIndex(mih_min_rows=1)
    for i in range(50):
        index.add(i + 1, "audio", block_hex(i * 7, list(range(i, i + 7))), 1)
    index.prepare()
    words, ids, refs, _ = index.live_rows("audio")
    assert words.shape == (4, 50) and ids.tolist() == list(range(1, 51))
    assert set(refs.tolist()) == {1}
    assert index._bits["audio"].mih is None


def test_exports_leave_the_sound_out_and_count_it():
    t = SIGNAL_TYPES[Algorithm.AUDIO]
    assert t.exchange_names == () and t.aligned and not t.clusters
    entries = [
        ExchangeEntry(Algorithm.AUDIO, block_hex(0, [1] * 7)),
        ExchangeEntry(Algorithm.MD5, "0" * 32),
    ]
    buf = io.StringIO()
    n, skipped = tat.write(buf, entries, csv_form=False)
    assert n == 1 and skipped == {"audio": 1}
    buf = io.StringIO()
    n, skipped = pytx.write_local(buf, entries)
    assert n == 1 and skipped == {"audio": 1}


def test_decoding_a_real_file_resamples_to_mono_5512(tmp_path):
    x = sw.music(4, 5, 44100)
    p = tmp_path / "s.mp3"
    sw.write_sound(p, x, 44100, bit_rate=64000)
    sound = decode_sound(p)
    assert sound.has_stream and sound.note is None
    assert abs(sound.seconds - 4.0) < 0.1
    assert sound.samples.dtype == np.float32 and sound.samples.ndim == 1
    none = decode_sound(tmp_path / "missing.mp3")
    assert not none.samples.size and "not read" in (none.note or "")
