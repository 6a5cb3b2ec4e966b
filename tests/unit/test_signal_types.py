"""The signal-type registry: one entry per hash type, and the index and match defaults read it."""

from __future__ import annotations

from enum import StrEnum

import numpy as np
import pytest
from PIL import Image

from app.core.matching.hash_index import HashIndex
from app.core.matching.hash_lists import ListPolicy, ListRule
from app.core.matching.match_rules import (
    MatchPolicy,
    Query,
    find_match,
    indexable,
    look_up,
    policy_for,
)
from app.core.matching.signal_types import (
    SIGNAL_TYPES,
    SignalType,
    Variant,
    by_exchange_name,
    dihedral_parts,
    dihedral_variant,
    half_query_space,
    is_dihedral,
    is_query_only,
    is_region,
    register,
    signal_type,
    unregister,
)
from app.core.model.domain import Algorithm, MediaKind, Signal


def test_every_algorithm_has_one_entry():
    assert set(SIGNAL_TYPES) == set(Algorithm)
    for alg, t in SIGNAL_TYPES.items():
        assert t.algorithm is alg and t.hex_len * 4 == t.bits
        assert t.near == (t.default_threshold > 0)


def test_match_defaults_and_index_come_from_the_registry():
    assert MatchPolicy().pdq_threshold == SIGNAL_TYPES[Algorithm.PDQ].default_threshold == 31
    assert MatchPolicy().phash_threshold == SIGNAL_TYPES[Algorithm.PHASH].default_threshold == 10
    index = HashIndex()
    for alg, t in SIGNAL_TYPES.items():
        index.add(len(index) + 1, alg.value, "0" * t.hex_len, None)
        with pytest.raises(ValueError):
            index.add(len(index) + 1, alg.value, "0" * (t.hex_len + 2), None)
    # PDQ and frame PDQ share one table: a confirmed still matches a frame and back.
    hits = index.search(Algorithm.PDQ_FRAME.value, "0" * 63 + "1", 1)
    assert {m.algorithm for m in hits} == {Algorithm.PDQ, Algorithm.PDQ_FRAME}


def test_exchange_names_and_distances():
    assert by_exchange_name("pytx", "PDQ") is SIGNAL_TYPES[Algorithm.PDQ]
    assert by_exchange_name("pytx", "video_md5") is SIGNAL_TYPES[Algorithm.MD5]
    assert by_exchange_name("tat", "sha256") is SIGNAL_TYPES[Algorithm.SHA256]
    assert by_exchange_name("pytx", "tmk") is None
    assert signal_type("phash").distance("ff" * 8, "fe" + "ff" * 7) == 1
    assert signal_type("md5").distance("a" * 32, "A" * 32) == 0
    assert signal_type("md5").distance("a" * 32, "b" * 32) == 128
    with pytest.raises(ValueError, match="unknown hash algorithm"):
        signal_type("tmk")


def test_variant_vocabulary():
    assert is_dihedral("dih:rotate90") and is_query_only("dih:flipx")
    assert is_region("region:top") and not is_query_only("region:top")
    assert not is_dihedral("") and not is_region(None) and not is_query_only("trimmed")


# --- the type's behaviour -------------------------------------------------------------------


def test_a_signal_type_is_constructed_by_keyword_and_checked():
    facts = dict(
        algorithm=Algorithm.PDQ,
        label="x",
        bits=256,
        index_table="b256",
        computed_by="x",
        near=True,
        default_threshold=31,
    )
    assert SignalType(**facts).hex_len == 64
    with pytest.raises(TypeError):
        SignalType(*facts.values())  # type: ignore[misc]  # positional facts are refused
    with pytest.raises(ValueError, match="exact type has no threshold"):
        SignalType(**{**facts, "near": False})
    with pytest.raises(ValueError, match="bits"):
        SignalType(**{**facts, "bits": 100})  # a bit table holds whole 64-bit words
    with pytest.raises(ValueError, match="query kinds"):
        SignalType(**{**facts, "query_kinds": frozenset({"region"})})


#: Per type: (near, bits, table, default threshold, the threshold of a query as decoded /
#: trimmed / turned / a half, on a still; as decoded on a video; exchange names written).
EXPECTED = {
    Algorithm.PDQ: (True, 256, "b256", 31, (31, 31, 31, 31), 31, ("pdq", "PDQ", "PDQ", None)),
    Algorithm.PDQ_FRAME: (
        True,
        256,
        "b256",
        31,
        (31, 31, 31, 31),
        31,
        ("vpdq", "VPDQ", None, "pdq"),
    ),
    Algorithm.PHASH: (
        True,
        64,
        "b64",
        10,
        (10, None, 8, None),
        None,
        ("phash", "PHASH", None, None),
    ),
    Algorithm.MD5: (False, 128, "md5", 0, (0, 0, 0, 0), 0, ("video_md5", "MD5", "MD5", None)),
    Algorithm.SHA256: (
        False,
        256,
        "sha256",
        0,
        (0, 0, 0, 0),
        0,
        ("video_sha256", "SHA256", "SHA256", None),
    ),
    # the sound: thousandths of a bit error rate; no exchange format carries it
    Algorithm.AUDIO: (True, 256, "audio", 300, (300, None, None, None), 300, (None,) * 4),
}


@pytest.mark.parametrize("alg", list(Algorithm))
def test_each_type_compares_thresholds_and_names(alg):
    near, bits, table, default, still, video, names = EXPECTED[alg]
    t = signal_type(alg)
    assert signal_type(alg.value) is t
    assert (t.near, t.bits, t.index_table, t.default_threshold) == (near, bits, table, default)
    policy = MatchPolicy()
    variants = ["", "trimmed", "dih:rotate90", "region:top"]
    got = tuple(t.query_threshold(policy, Variant.parse(v), video=False) for v in variants)
    assert got == still
    assert t.query_threshold(policy, Variant(), video=True) == video
    formats = ("pytx", "tat", "vics", "vpdq")
    assert tuple(t.exchange_name(f) for f in formats) == names
    for f, name in t.exchange_names:  # every name a format reads finds this type
        assert by_exchange_name(f, name.upper()) is t
    a = "0" * t.hex_len
    b = "1" + "0" * (t.hex_len - 1)  # one bit apart
    assert t.distance(a, a) == 0
    assert t.distance(a, b) == (1 if near else bits)
    assert t.compare == ("hamming" if near else "exact")


def test_thresholds_follow_the_settings_and_a_lists_own_threshold():
    policy = MatchPolicy(pdq_threshold=20, phash_threshold=6)
    pdq, frame, phash = (signal_type(a) for a in ("pdq", "pdq_frame", "phash"))
    assert pdq.threshold(policy) == frame.threshold(policy) == 20
    assert phash.query_threshold(policy, Variant.parse("dih:flipx"), video=False) == 4
    # A list's own threshold replaces the PDQ setting (stills and frames), never pHash's.
    assert pdq.list_override(12) == frame.list_override(12) == {"pdq_threshold": 12}
    assert phash.list_override(12) == {} and pdq.list_override(None) == {}
    own = policy_for(ListRule("partner", ListPolicy.RESOLVE, 12), policy)
    assert (own.pdq_threshold, own.phash_threshold) == (12, 6)
    assert policy_for(ListRule("partner", ListPolicy.RESOLVE), policy) is policy


def test_quality_floor_and_what_may_be_indexed():
    policy = MatchPolicy(min_quality=50)
    pdq, phash = signal_type("pdq"), signal_type("phash")
    assert pdq.trusted(None, policy) and pdq.trusted(50, policy) and not pdq.trusted(49, policy)
    assert phash.trusted(0, policy)  # the floor is PDQ's own metric
    assert pdq.indexable("region:top", 80, policy) and pdq.indexable("trimmed", None, policy)
    assert not pdq.indexable("dih:fx:top", 80, policy)  # query-only
    assert not pdq.indexable("untrimmed:top", 80, policy)
    assert not pdq.indexable("", 10, policy)
    assert indexable(Signal(Algorithm.PHASH, "0" * 16, 10, variant="dih:rotate90"), policy) is False


# --- variants -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emitted_variants(tmp_path_factory) -> set[str]:
    """Every variant string an image and a video analysis emit, on a generated letterboxed
    photo (bars: trimmed and untrimmed variants) and a clip of it."""
    data = pytest.importorskip("skimage.data")
    from app.core.ingest.media import analyze_file
    from app.tools.video_writer import write_mp4

    folder = tmp_path_factory.mktemp("media")
    bar = np.zeros((96, 512, 3), np.uint8)
    picture = np.concatenate([bar, data.astronaut(), bar])
    Image.fromarray(picture).save(folder / "still.jpg", quality=90)
    write_mp4(folder / "clip.mp4", (np.roll(picture, 4 * i, axis=1) for i in range(30)), 10)
    out: set[str] = set()
    for name, kind in (("still.jpg", MediaKind.IMAGE), ("clip.mp4", MediaKind.VIDEO)):
        a = analyze_file(folder / name)
        assert a.kind is kind
        out |= {s.variant for s in a.signals}
    return out


def test_every_emitted_variant_round_trips(emitted_variants):
    kinds = set()
    for v in sorted(emitted_variants):
        parsed = Variant.parse(v)
        assert str(parsed) == v  # the stored strings stay exactly as they were
        assert Variant.parse(str(parsed)) == parsed
        assert len(v) <= 16  # the variant column
        kinds.add((parsed.kind, parsed.turn is not None))
    # As decoded, trimmed, halves, halves as decoded, views (the margin put back, at least),
    # stored centres; turned: whole, trimmed, halves.
    assert kinds == {
        ("view", False),
        ("zoom", False),
        ("", False),
        ("trimmed", False),
        ("region", False),
        ("untrimmed", False),
        ("", True),
        ("trimmed", True),
        ("region", True),
    }


def test_variant_meanings():
    v = Variant.parse("dih:r90:left")
    assert (v.kind, v.half, v.turn) == ("region", "left", "rotate90")
    assert v.query_only and v.query_space == "region:bottom" and v.stored_space == ""
    assert Variant.parse("region:top").stored_space == "region:top"
    assert Variant.parse("untrimmed:top").query_space == "region:top"
    assert Variant.parse("untrimmed:top").query_only
    assert Variant.parse("dih:fx:trimmed") == Variant("trimmed", turn="flipx")
    assert Variant.parse(None) == Variant.parse("") == Variant()
    assert str(Variant("region", half="right", turn="flip_plus1")) == "dih:fp1:right"
    # The helpers the hashing modules call write the same strings.
    assert dihedral_variant("flipy", "trimmed") == "dih:fy:trimmed"
    assert dihedral_variant("rotate90", "region:top") == "dih:r90:top"
    assert dihedral_variant("rotate90") == "dih:rotate90"
    assert dihedral_parts("dih:r90:top") == ("rotate90", "region:top")
    assert half_query_space("dih:fy:left") == "region:right"
    for bad in ("region:", "dih:zz:top", "untrimmed", "bogus", "dih:fx:"):
        with pytest.raises(ValueError):
            Variant.parse(bad)
    with pytest.raises(ValueError):
        Variant("untrimmed", half="top", turn="flipx")


# --- matching reads one list of lookups -----------------------------------------------------


class _CountingIndex(HashIndex):
    calls: list[tuple[str, int, int]]

    def search_many(self, algorithm, values_hex, max_distance):
        self.calls.append((str(algorithm), len(values_hex), max_distance))
        return super().search_many(algorithm, values_hex, max_distance)


def test_each_query_is_looked_up_once_with_its_own_threshold():
    rng = np.random.default_rng(5)

    def h(bits: int) -> str:
        return rng.bytes(bits // 8).hex()

    index = _CountingIndex()
    index.calls = []
    stored = h(256)
    index.add(1, "pdq", stored, 100)
    signals = [
        Signal(Algorithm.PHASH, h(64), variant="trimmed"),  # pHash: not the trimmed picture
        Signal(Algorithm.PDQ, h(256), 10),  # below the quality floor: not looked up
        Signal(Algorithm.PHASH, h(64)),
        Signal(Algorithm.PDQ, h(256), 90, variant="dih:rotate90"),
        Signal(Algorithm.PHASH, h(64), variant="dih:flipx"),
        Signal(Algorithm.PDQ, stored[:-1] + format(int(stored[-1], 16) ^ 1, "x"), 90),
    ]
    policy = MatchPolicy()
    queries = [Query.of(s, MediaKind.IMAGE, policy) for s in signals]
    lookups = look_up(index, queries)
    assert [lk.query.signal for lk in lookups] == signals
    assert [lk.hits is None for lk in lookups] == [True, True, False, False, False, False]
    assert lookups[5].hits and lookups[5].hits[0].entry_id == 1
    # One search per (space, algorithm, threshold): PDQ at 31, pHash at 10 and turned at 8.
    assert sorted(index.calls) == [("pdq", 2, 31), ("phash", 1, 8), ("phash", 1, 10)]
    ev = find_match(index, signals, MediaKind.IMAGE, policy)
    assert ev is not None and (ev.entry_id, ev.distance, ev.variant) == (1, 1, "")
    # A video asks no pHash.
    video = [Query.of(s, MediaKind.VIDEO, policy) for s in signals]
    assert [q.threshold for q in video if q.type.algorithm is Algorithm.PHASH] == [None] * 3


# --- a new type touches the registry only ---------------------------------------------------


class _Fake(StrEnum):
    AUDIO = "audio_fp_test"


def test_a_new_type_needs_only_its_registry_entry():
    fake = SignalType(
        algorithm=_Fake.AUDIO,  # type: ignore[arg-type]  # the next type's Algorithm member
        label="audio fingerprint (test)",
        bits=128,
        index_table="b128",
        computed_by="tests",
        near=True,
        default_threshold=12,
        exchange_names=(("pytx", "audio_fp"), ("tat", "AUDIOFP")),
    )
    register(fake)
    try:
        assert signal_type("audio_fp_test") is fake and signal_type(_Fake.AUDIO) is fake
        assert by_exchange_name("pytx", "AUDIO_FP") is fake
        assert by_exchange_name("tat", "audiofp") is fake and fake.exchange_name("vics") is None
        assert fake.query_threshold(MatchPolicy(), Variant(), video=True) == 12
        assert fake.list_override(5) == {}
        assert fake.distance("0" * 32, "0" * 31 + "3") == 2
        with pytest.raises(ValueError, match="registered already"):
            register(fake)
    finally:
        unregister(_Fake.AUDIO)
    assert by_exchange_name("pytx", "audio_fp") is None
    with pytest.raises(ValueError, match="unknown hash algorithm"):
        signal_type("audio_fp_test")
    # A name another type holds is refused.
    with pytest.raises(ValueError, match="pdq's already"):
        register(
            SignalType(
                algorithm=_Fake.AUDIO,  # type: ignore[arg-type]
                label="x",
                bits=64,
                index_table="b64",
                computed_by="x",
                near=True,
                default_threshold=1,
                exchange_names=(("pytx", "pdq"),),
            )
        )
    assert _Fake.AUDIO not in SIGNAL_TYPES
