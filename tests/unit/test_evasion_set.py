"""Evasion edits caught once the original is confirmed (issue 15, part 4): every combination of
bars trimmed x rotated/mirrored x halves is a query, with no false match.

The set (:mod:`app.tools.evasion_set`) is scikit-image's bundled photos and, when
``../shared/corpus`` is there, the corpus's photos and its unrelated ``labelme`` set. Recall
floors sit under what was measured (``hashdesk bench evasion``, printed with ``-s`` too), leaving
room for one or two pictures per kind to move across the threshold after an unrelated change;
the properties the change is about (mirrored copies with bars, textured turns, no false match)
are asserted edit by edit.
"""

from __future__ import annotations

import numpy as np
import pytest

from app.core.hashing.pdq import (
    DIHEDRAL_ORDER,
    hamming_hex,
    pdq_from_luma,
    pdq_transformed_from_luma,
)
from app.core.hashing.regions import halves
from app.core.matching.signal_types import (
    HALF_AFTER,
    dihedral_parts,
    dihedral_variant,
    half_query_space,
    is_query_only,
    region_variant,
)
from app.core.model.domain import Algorithm
from app.tools import evasion_set as es_mod
from app.tools.evasion_set import (
    EDITS,
    MIRRORED_WITH_BARS,
    EvasionSet,
    Measurement,
    build_set,
    corpus_edits,
    format_table,
    load_photos,
    measure,
    unrelated_files,
    without_turned_parts,
)
from tests.conftest import CORPUS, corpus_mark

PHOTOS = CORPUS / "pdq-images"

#: numpy equivalents of each dihedral transform (as in app.core.hashing.pdq.DIHEDRAL_ORDER).
TRANSFORMS = {
    "original": lambda p: p,
    "rotate90": lambda p: np.rot90(p, 1),
    "rotate180": lambda p: np.rot90(p, 2),
    "rotate270": lambda p: np.rot90(p, 3),
    "flipx": lambda p: p[::-1],
    "flipy": lambda p: p[:, ::-1],
    "flip_plus1": lambda p: p.swapaxes(0, 1),
    "flip_minus1": lambda p: np.rot90(p, 2).swapaxes(0, 1),
}

#: Floors per kind (share of the originals whose edit matches its own original). Measured with
#: the 19 photos: 100 % for every kind below except the sticker kinds (95 %, 84 %, 79 %: a
#: sticker on a mirrored or barred copy leaves fewer clean halves; on the barred one it also
#: covers part of the bar), crop+mirror (74 %, through the turned pHash), the caption bands
#: (95 %; 84 % in black, which merges with the black edges of three photos) and the news strip
#: (89 %). A kind not listed (crop alone, 53 %) is outside what PDQ tolerates.
FLOORS = {
    "re-encode q55": 0.9,
    "resize 60%": 0.9,
    "brightness/contrast": 0.9,
    "grey": 0.9,
    "sticker on a corner": 0.8,
    "mirror": 0.9,
    "flip upside down": 0.9,
    "rotate 90": 0.9,
    "rotate 180": 0.9,
    "rotate 270": 0.9,
    "transpose": 0.9,
    "letterbox": 0.9,
    "pillarbox": 0.9,
    "white border q60": 0.9,
    "portrait frame": 0.9,
    "landscape frame": 0.9,
    "white portrait frame q60": 0.9,
    "mirror+letterbox q60": 0.9,
    "mirror+pillarbox q60": 0.9,
    "mirror+portrait frame q60": 0.9,
    "mirror+white border q60": 0.9,
    "rotate 90+landscape frame": 0.9,
    "rotate 270+letterbox q60": 0.9,
    "flip+white border": 0.9,
    "grey+letterbox": 0.9,
    "mirror+sticker": 0.7,
    "mirror+letterbox+sticker": 0.6,
    "crop+mirror": 0.6,
    "caption band": 0.85,
    "black caption band": 0.7,
    "mirror+caption band": 0.85,
    "news strip over bottom": 0.8,
}
TEXTURED = ("skimage:brick", "skimage:grass", "skimage:gravel")
TURNS = ("mirror", "flip upside down", "rotate 90", "rotate 180", "rotate 270", "transpose")


@pytest.fixture(scope="module")
def evasion() -> tuple[EvasionSet, Measurement]:
    photos = load_photos(PHOTOS if PHOTOS.is_dir() else None)
    if len(photos) < 2:
        pytest.skip("no evasion photos: scikit-image is not installed and no corpus")
    corpus = PHOTOS if PHOTOS.is_dir() else None
    es = build_set(photos, unrelated_files(corpus), extra=corpus_edits(corpus, photos))
    m = measure(es)
    print("\n" + "\n".join(format_table({"recall": m})))
    return es, m


# ---------------------------------------------------------------------------------------------
# the pieces


@pytest.mark.parametrize("shape", [(300, 451), (97, 130), (64, 64), (512, 512)])
def test_turned_hashes_are_what_the_turned_picture_hashes_to(shape):
    plane = np.random.default_rng(7).random(shape).astype(np.float32) * 255
    hashes, quality = pdq_transformed_from_luma(plane)
    assert (hashes[0], quality) == pdq_from_luma(plane)  # the plain hash is the reference's
    for name, value in zip(DIHEDRAL_ORDER, hashes, strict=True):
        direct, _ = pdq_from_luma(np.ascontiguousarray(TRANSFORMS[name](plane)))
        assert hamming_hex(direct, value) <= 2, name  # float summation order aside


def test_a_turned_half_is_looked_up_where_the_turn_puts_it():
    picture = np.arange(70 * 90).reshape(70, 90)
    for name, transform in TRANSFORMS.items():
        turned = transform(picture)
        for half, part in halves(picture[:, :, None]).items():
            lands = HALF_AFTER[name][half]
            assert np.array_equal(halves(turned[:, :, None])[lands], transform(part)), (name, half)
            variant = dihedral_variant(name, region_variant(half)) if name != "original" else ""
            if variant:
                assert half_query_space(variant) == region_variant(lands)


def test_turned_variant_names_fit_the_column_and_stay_query_only():
    for name in DIHEDRAL_ORDER[1:]:
        for of in ("", "trimmed", *(region_variant(h) for h in ("top", "bottom", "left", "right"))):
            v = dihedral_variant(name, of)
            assert len(v) <= 16 and is_query_only(v) and dihedral_parts(v) == (name, of)
    assert half_query_space("region:top") == "region:top"
    assert half_query_space("") is None and half_query_space("trimmed") is None
    assert half_query_space(dihedral_variant("flipy", "trimmed")) is None


# ---------------------------------------------------------------------------------------------
# the set


def test_every_mirrored_copy_with_bars_matches_its_original(evasion):
    _es, m = evasion
    for kind in MIRRORED_WITH_BARS:
        r = m.by_kind[kind]
        assert r.matched == r.total, (kind, r.missed)


def test_turned_trimmed_picture_is_what_catches_them(evasion):
    es, m = evasion
    older = measure(es, keep=without_turned_parts)
    for kind in MIRRORED_WITH_BARS:
        assert older.by_kind[kind].matched < m.by_kind[kind].matched, kind
    assert any("trimmed" in how for k in MIRRORED_WITH_BARS for how in m.by_kind[k].how)


def test_textured_photos_match_turned_and_mirrored(evasion):
    es, _m = evasion
    from app.core.matching.match_rules import MatchPolicy, find_known
    from app.tools.evasion_set import confirmed_index

    policy = MatchPolicy(phash_threshold=-1)  # PDQ alone
    index = confirmed_index(es.originals, policy)
    checked = 0
    for e in es.edits:
        if e.kind in TURNS and es.names[e.original] in TEXTURED:
            known = find_known(index, e.analysis.signals, e.analysis.kind, policy)
            assert known is not None and known.evidence is not None, (e.kind, e.original)
            assert known.evidence.ref == e.original and known.evidence.algorithm == "pdq"
            checked += 1
    assert checked == len(TURNS) * len([n for n in es.names if n in TEXTURED])
    assert checked > 0


def test_no_false_match_between_originals_or_with_unrelated_photos(evasion):
    es, m = evasion
    assert m.comparisons >= len(es.originals) * (len(es.originals) - 1)
    assert m.false_matches == []


@corpus_mark(PHOTOS)
def test_labelme_set_is_part_of_the_false_match_check(evasion):
    es, m = evasion
    assert len(es.unrelated) >= 5
    assert m.comparisons >= 2 * len(es.unrelated) * len(es.originals)
    assert m.false_matches == []


def test_recall_by_kind_at_or_above_the_floors(evasion):
    _es, m = evasion
    assert set(FLOORS) <= set(EDITS)
    low = {
        kind: f"{m.by_kind[kind].matched}/{m.by_kind[kind].total}"
        for kind, floor in FLOORS.items()
        if m.by_kind[kind].matched < floor * m.by_kind[kind].total
    }
    assert not low, low


def test_the_set_is_deterministic():
    photos = load_photos(None)[:1] or load_photos(PHOTOS if PHOTOS.is_dir() else None)[:1]
    if not photos:
        pytest.skip("no evasion photos")
    for kind in ("mirror+letterbox q60", "white portrait frame q60", "mirror+sticker"):
        assert EDITS[kind](photos[0].rgb) == EDITS[kind](photos[0].rgb)
    a = es_mod.analyze_bytes(EDITS["mirror+letterbox q60"](photos[0].rgb))
    assert any(s.algorithm is Algorithm.PDQ and s.variant == "trimmed" for s in a.signals)
