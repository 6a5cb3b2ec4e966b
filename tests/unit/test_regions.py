"""Half-picture hashes (region:*): a copy stamped with a large logo still matches.

Real corpus videos; the figures printed are the ones quoted in app/core/hashing/regions.py."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from app.core.hashing.regions import REGIONS, region_signals
from app.core.ingest.media import analyze_file
from app.core.matching.hash_index import HashIndex, video_match_fraction
from app.core.matching.match_rules import MatchPolicy, find_match, index_signal
from app.core.model.domain import Algorithm, MediaAnalysis, MediaKind
from tests.conftest import CORPUS, corpus_mark

VIDEOS = CORPUS / "videos"
MATCH = 31

needs_corpus = corpus_mark()

A = "0" * 64
B = "f" * 64


@cache
def video(name: str) -> MediaAnalysis:
    return analyze_file(VIDEOS / f"{name}.mp4")


def frames(a: MediaAnalysis, variant: str = "") -> list[str]:
    return [
        s.value for s in a.signals if s.algorithm is Algorithm.PDQ_FRAME and s.variant == variant
    ]


def index_of(a: MediaAnalysis, ref: int = 1) -> HashIndex:
    index = HashIndex()
    for i, sig in enumerate(a.signals):
        index_signal(index, i, sig, ref, MatchPolicy())
    return index


# ---------------------------------------------------------------------------------------------
# the index keeps each half apart


def test_a_space_is_searched_on_its_own_and_retracted_through_the_parent():
    index = HashIndex()
    index.add(1, "pdq", A, ref=10)
    index.space("region:bottom").add(2, "pdq", A, ref=20)
    index.space("region:top").add(3, "pdq_frame", A, ref=30)
    assert [m.ref for m in index.search("pdq", A, 0)] == [10]  # whole pictures only
    assert [m.ref for m in index.space("region:bottom").search("pdq", A, 0)] == [20]
    assert index.space("") is index
    assert len(index) == 3 and 2 in index and 3 in index and 4 not in index
    index.remove_many([2, 99])  # the hash-list watcher retracts by row id, not by space
    index.remove(3)
    assert 2 not in index and 3 not in index and len(index) == 1
    assert index.space("region:bottom").search("pdq", A, 0) == []
    assert index.space("region:top").search("pdq_frame", A, 256) == []
    index.compact()
    assert [m.entry_id for m in index.search("pdq", B, 256)] == [1]


def test_region_signals_are_indexed_in_their_own_space():
    picture = np.random.default_rng(3).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    sigs = region_signals(picture)
    assert [s.variant for s in sigs] == [f"region:{h}" for h in REGIONS]
    assert all(s.algorithm is Algorithm.PDQ and s.quality is not None for s in sigs)
    index = HashIndex()
    for i, sig in enumerate(sigs):
        assert index_signal(index, i, sig, 7, MatchPolicy())
    assert index.search("pdq", sigs[1].value, 0) == []
    assert [m.entry_id for m in index.space("region:bottom").search("pdq", sigs[1].value, 0)] == [1]


def test_tiny_pictures_have_no_halves_and_flat_halves_never_match():
    assert region_signals(np.zeros((40, 40, 3), np.uint8)) == []
    # The top half is detailed, the bottom half flat grey: the flat half's quality is too low
    # for it to match anything, on either side.
    rng = np.random.default_rng(5)
    picture = np.full((256, 256, 3), 128, np.uint8)
    picture[:128] = rng.integers(0, 256, (128, 256, 3), dtype=np.uint8)
    sigs = {s.variant: s for s in region_signals(picture)}
    assert sigs["region:bottom"].quality < MatchPolicy().min_quality <= sigs["region:top"].quality
    index = HashIndex()
    policy = MatchPolicy()
    assert not index_signal(index, 1, sigs["region:bottom"], 1, policy)
    assert index_signal(index, 2, sigs["region:top"], 1, policy)
    assert find_match(index, [sigs["region:bottom"]], MediaKind.IMAGE, policy) is None
    ev = find_match(index, [sigs["region:top"]], MediaKind.IMAGE, policy)
    assert ev is not None and (ev.variant, ev.distance) == ("region:top", 0)


# ---------------------------------------------------------------------------------------------
# the corpus


@pytest.mark.corpus
@needs_corpus
@pytest.mark.parametrize(
    ("edit", "orig"),
    [
        ("chair-22-with-large-logo-bar", "chair-orig-22-sd-bar"),
        ("pattern-sd-with-large-logo-bar", "pattern-hd-no-bar"),
    ],
)
def test_large_logo_edits_keep_their_bottom_half(edit, orig):
    e, o = video(edit), video(orig)
    # Whole frames (bars trimmed or not) cannot carry it: the logo moves PDQ too far.
    whole = max(
        video_match_fraction(frames(e, v), frames(o) + frames(o, "trimmed"), MATCH)
        for v in ("", "trimmed")
    )
    halves = {
        h: video_match_fraction(frames(e, f"region:{h}"), frames(o, f"region:{h}"), MATCH)
        for h in REGIONS
    }
    print(f"{edit} vs {orig}: whole frames {whole:.2f}, halves {halves}")
    assert whole < 0.8
    assert halves["bottom"] >= 0.8  # the logo sits in the top right
    assert halves["top"] < 0.8 and halves["right"] < 0.8
    # The pictures alone: both clips keep their original's sound, which the sound's own
    # fingerprint rightly matches (tests/storage/test_audio_ingest.py); this is about halves.
    pictures = [s for s in e.signals if s.algorithm != Algorithm.AUDIO]
    ev = find_match(index_of(o), pictures, e.kind, MatchPolicy())
    assert ev is not None and ev.variant == "region:bottom" and ev.fraction >= 0.8
    assert find_match(index_of(o), pictures, e.kind, MatchPolicy(use_regions=False)) is None


@pytest.mark.corpus
@needs_corpus
@pytest.mark.parametrize(
    ("query", "orig"),
    [
        ("doorknob-hd-no-bar", "chair-orig-22-sd-bar"),
        ("doorknob-hd-no-bar", "pattern-hd-no-bar"),
        ("chair-orig-22-sd-bar", "pattern-hd-no-bar"),
        ("pattern-hd-no-bar", "chair-22-with-large-logo-bar"),
    ],
)
def test_unrelated_videos_share_no_half(query, orig):
    q, o = video(query), video(orig)
    for h in REGIONS:
        assert video_match_fraction(frames(q, f"region:{h}"), frames(o, f"region:{h}"), MATCH) == 0
    assert find_match(index_of(o), q.signals, q.kind, MatchPolicy()) is None


def test_region_hashes_do_not_depend_on_the_colour_order_flag():
    rgb = np.random.default_rng(9).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    before = bgr.copy()
    as_rgb = region_signals(rgb)
    as_bgr = region_signals(bgr, bgr=True)
    assert [s.value for s in as_rgb] == [s.value for s in as_bgr]
    assert np.array_equal(bgr, before)  # the caller's frame is not modified


def _stamp_logo(rgb: np.ndarray) -> np.ndarray:
    """A large cartoon face over the top right, as in the corpus's logo-stamped videos."""
    import cv2

    out = np.ascontiguousarray(rgb.copy())
    h, w = out.shape[:2]
    cx, cy, r = int(w * 0.72), int(h * 0.25), int(min(h, w) * 0.21)
    cv2.circle(out, (cx, cy), r, (255, 255, 255), -1)
    cv2.circle(out, (cx, cy), r, (0, 0, 0), max(2, r // 12))
    for dx in (-r // 3, r // 3):
        cv2.circle(out, (cx + dx, cy - r // 4), r // 6, (0, 0, 0), -1)
    cv2.ellipse(out, (cx, cy + r // 5), (r // 2, r // 3), 0, 0, 180, (0, 0, 0), max(2, r // 10))
    return out


@pytest.mark.corpus
@needs_corpus
def test_logo_stamped_photo_matches_through_a_half(tmp_path):
    from PIL import Image

    from app.core.hashing.pdq import hamming_hex

    orig_path = CORPUS / "pdq-images" / "bridge-mods__aaa-orig.jpg"
    orig = analyze_file(orig_path)
    stamped = tmp_path / "stamped.jpg"
    with Image.open(orig_path) as im:
        Image.fromarray(_stamp_logo(np.asarray(im.convert("RGB")))).save(stamped, quality=85)
    copy = analyze_file(stamped)

    def pdq(a, variant=""):
        return next(s for s in a.signals if s.algorithm is Algorithm.PDQ and s.variant == variant)

    whole = hamming_hex(pdq(orig).value, pdq(copy).value)
    halves = {
        h: hamming_hex(pdq(orig, f"region:{h}").value, pdq(copy, f"region:{h}").value)
        for h in REGIONS
    }
    print(f"logo-stamped bridge: whole PDQ {whole} bits, halves {halves}")
    assert whole > MATCH  # the logo defeats the whole-picture hash ...
    assert halves["bottom"] <= MATCH and halves["left"] <= MATCH  # ... not the halves it misses
    # pHash sits right at its threshold on this copy (10 bits): leave it out to see PDQ alone.
    pdq_only = MatchPolicy(phash_threshold=-1)
    ev = find_match(index_of(orig), copy.signals, copy.kind, pdq_only)
    assert ev is not None and ev.variant in ("region:bottom", "region:left"), ev
    no_halves = MatchPolicy(phash_threshold=-1, use_regions=False)
    assert find_match(index_of(orig), copy.signals, copy.kind, no_halves) is None
