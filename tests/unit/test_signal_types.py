"""The signal-type registry: one entry per hash type, and the index and match defaults read it."""

from __future__ import annotations

import pytest

from app.core.matching.hash_index import HashIndex
from app.core.matching.match_rules import MatchPolicy
from app.core.matching.signal_types import (
    SIGNAL_TYPES,
    by_exchange_name,
    is_dihedral,
    is_query_only,
    is_region,
    signal_type,
)
from app.core.model.domain import Algorithm


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
