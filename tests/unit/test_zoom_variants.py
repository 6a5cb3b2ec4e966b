"""The stored centres of a picture (``zoom:<percent>``, app.core.hashing.views.ZOOM_LEVELS):
the reference side of crops and zooms deeper than a margin put back reaches. Stored with the
item and written to the hash list at a confirm (not query-only), never searched with; a copy
cut by 6 to 16 % per side finds them through its plain hash or its padded views, where the
original's plain PDQ alone (a partner's list) does not."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from app.core.hashing import views as V
from app.core.matching.hash_index import HashIndex
from app.core.matching.match_rules import MatchPolicy, Query, find_match, index_signal
from app.core.matching.signal_types import Variant, is_query_only, zoom_variant
from app.core.model.domain import Algorithm, MediaKind
from app.tools.evasion_set import crop, load_photos
from app.tools.view_set import analyze_bytes, encode
from tests.conftest import CORPUS

IMAGES = CORPUS / "pdq-images"
POLICY = MatchPolicy()


def _photos():
    photos = load_photos(IMAGES if IMAGES.is_dir() else None)
    if len(photos) < 6:
        pytest.skip("not enough photos here (scikit-image's and the corpus's)")
    return photos


def _index(analyses, plain_only: bool = False) -> HashIndex:
    index = HashIndex()
    n = 0
    for ref, a in enumerate(analyses):
        for sig in a.signals:
            if plain_only and (sig.algorithm is not Algorithm.PDQ or sig.variant):
                continue
            n += 1
            index_signal(index, n, sig, ref, POLICY)
    return index


def test_the_zoom_variant_is_stored_never_searched_and_reads_back():
    v = zoom_variant(10)
    assert v == "zoom:10" and str(Variant.parse(v)) == v
    assert not is_query_only(v) and Variant.parse(v).whole
    for bad in ("zoom:0", "zoom:41", "zoom:x", "zoom:07"):
        with pytest.raises(ValueError):
            Variant.parse(bad)
    a = analyze_bytes(encode(_photos()[0].rgb))
    zooms = [s for s in a.signals if s.variant.startswith("zoom:")]
    assert sorted(Variant.parse(s.variant).zoom for s in zooms) == sorted(V.ZOOM_LEVELS)
    assert all(Query.of(s, MediaKind.IMAGE, POLICY).threshold is None for s in zooms)


def test_deeper_crops_find_the_stored_centres_and_unrelated_photos_find_none():
    photos = _photos()
    originals = [analyze_bytes(encode(p.rgb)) for p in photos]
    full, partner = _index(originals), _index(originals, plain_only=True)
    caught_full = caught_partner = total = 0
    for ref, p in enumerate(photos):
        for share in (0.06, 0.08, 0.10, 0.12):
            total += 1
            a = analyze_bytes(encode(crop(p.rgb, share)))
            ev = find_match(full, a.signals, MediaKind.IMAGE, POLICY)
            caught_full += ev is not None and ev.ref == ref
            ev = find_match(partner, a.signals, MediaKind.IMAGE, POLICY)
            caught_partner += ev is not None and ev.ref == ref
    # The centres carry most of these copies; a partner's single PDQ (no centres) few of them.
    assert caught_full >= 0.6 * total
    assert caught_full > caught_partner
    # Unrelated pictures (smooth random scenes, as structured as a photo) with all their
    # signals, cut by the same shares: none finds an original or its centres.
    rng = np.random.default_rng(3)
    others = [
        np.asarray(
            Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize(
                (480, 360), Image.Resampling.BICUBIC
            )
        )
        for _ in range(12)
    ]
    others = [crop(rgb, share) for rgb in others for share in (0.0, 0.06, 0.10)]
    for rgb in others:
        a = analyze_bytes(encode(rgb))
        assert find_match(full, a.signals, MediaKind.IMAGE, POLICY) is None
