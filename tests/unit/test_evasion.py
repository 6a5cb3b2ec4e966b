"""Evasion-resistant signals (issue 3, part 2): letterbox/pillarbox trimming and rotated or
mirrored (dihedral) query hashes, for images and videos.

Corpus tests use ``../shared/corpus`` and skip when it is absent; the rest generate their input.
Distances and fractions are printed (``-s``) so the numbers can be quoted.
"""

from __future__ import annotations

import hashlib
import io
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from app.core.exchange.vpdq import read_frames
from app.core.hashing.bars import BarDetector, bars_agree, scan_borders, trim_bars
from app.core.hashing.imaging import analyze_image_bytes
from app.core.hashing.pdq import DIHEDRAL_ORDER, hamming_hex, pdq_from_rgb
from app.core.matching.hash_index import HashIndex, video_match_fraction
from app.core.matching.match_rules import MatchPolicy, find_match, index_signal
from app.core.matching.signal_types import ZOOM_PREFIX, half_query_space
from app.core.model.domain import Algorithm, MediaAnalysis, MediaKind, Signal
from app.core.video.analysis import analyze_video
from app.core.video.frames import DIHEDRAL_FRAMES
from tests.conftest import CORPUS, corpus_mark

IMAGES = CORPUS / "pdq-images"
VIDEOS = CORPUS / "videos"
MATCH = 31  # PDQ distance at which two hashes match

needs_corpus = corpus_mark()


# ---------------------------------------------------------------------------------------------
# helpers


def analyze_bytes(data: bytes) -> MediaAnalysis:
    return analyze_image_bytes(
        data, hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest()
    )


def pdq_signals(a: MediaAnalysis, variant: str | None = None) -> list[Signal]:
    return [
        s
        for s in a.signals
        if s.algorithm == Algorithm.PDQ and (variant is None or s.variant == variant)
    ]


def one(a: MediaAnalysis, algorithm: Algorithm, variant: str = "") -> Signal:
    found = [s for s in a.signals if s.algorithm == algorithm and s.variant == variant]
    assert len(found) == 1, (algorithm, variant, a.signals, a.error)
    return found[0]


def soft_picture(width: int, height: int, seed: int = 20240601) -> np.ndarray:
    """A deterministic photo-like RGB array: random blobs at several scales."""
    rng = np.random.default_rng(seed)
    acc = np.zeros((height, width))
    for cells, weight in ((4, 1.0), (8, 0.6), (16, 0.35), (32, 0.2)):
        small = rng.normal(0, 1, (max(2, cells * height // width), cells)).astype(np.float32)
        acc += weight * cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    acc = (acc - acc.min()) / (acc.max() - acc.min())
    rgb = np.stack([acc, acc**2, 1 - acc], axis=2) * 255
    return rgb.astype(np.uint8)


def jpeg(arr: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def pad(arr: np.ndarray, top: int, bottom: int, left: int, right: int, colour) -> np.ndarray:
    h, w = arr.shape[:2]
    out = np.empty((h + top + bottom, w + left + right, 3), np.uint8)
    out[:] = colour
    out[top : top + h, left : left + w] = arr
    return out


# ---------------------------------------------------------------------------------------------
# trim_bars on generated pictures


def test_no_bars_nothing_to_trim():
    assert trim_bars(soft_picture(320, 240)) is None


def test_letterbox_found_exactly_with_noise_in_the_bars():
    content = soft_picture(320, 180)
    barred = pad(content, 30, 30, 0, 0, (0, 0, 0))
    rng = np.random.default_rng(1)
    ys, xs = rng.integers(0, 30, 40), rng.integers(0, 320, 40)
    barred[ys, xs] = 255  # a few hot pixels in the top bar (1 in 240 of its pixels)
    out = trim_bars(barred)
    assert out is not None
    trimmed, bars = out
    assert bars == (30, 30, 0, 0)
    assert trimmed.shape == content.shape
    assert np.array_equal(trimmed, content)


def _ink_band(width: int, height: int, colour: int, ink_rows: slice, ink_share: float):
    """A band of ``colour`` with ``ink_share`` of each of ``ink_rows`` in the other colour
    (letters: short vertical strokes spread over the line)."""
    band = np.full((height, width, 3), colour, np.uint8)
    strokes = np.zeros(width, bool)
    period = 10
    strokes[np.arange(width) % period < round(ink_share * period)] = True
    band[ink_rows, strokes] = 255 - colour
    return band


@pytest.mark.parametrize("colour", [255, 0])
@pytest.mark.parametrize("ink_share", [0.3, 0.6])
def test_caption_band_is_trimmed_to_the_picture(colour, ink_share):
    """A meme's band: margin, text (up to 60% ink on a line), margin, then the picture."""
    content = soft_picture(320, 200)
    band = _ink_band(320, 50, colour, slice(15, 35), ink_share)
    out = trim_bars(np.concatenate([band, content]))
    assert out is not None
    trimmed, bars = out
    assert bars == (50, 0, 0, 0)
    assert np.array_equal(trimmed, content)


def test_caption_band_stops_where_its_dense_text_runs_into_the_picture():
    """No flat line between the text and the picture, and the text covers most columns: the
    band's end cannot be told, and only the flat margin above the text is a bar."""
    content = soft_picture(320, 200)
    band = _ink_band(320, 30, 255, slice(15, 30), 0.6)
    out = trim_bars(np.concatenate([band, content]))
    assert out is not None and out[1] == (15, 0, 0, 0)


def test_bright_picture_below_a_bar_is_not_taken_for_a_caption():
    """A thin white bar over a picture whose upper part is mostly white (overexposed sky with
    a few dark branches, then white haze) far into the side: no content line within reach of a
    caption band, so only the flat bar is trimmed."""
    sky = _ink_band(320, 150, 255, slice(0, 150), 0.3)
    sky[:, :, 1] = np.where(sky[:, :, 1] == 0, 40, 255)  # the branches: dark green
    white = np.full((10, 320, 3), 255, np.uint8)
    picture = np.concatenate([white, sky, white[:5], soft_picture(320, 100)])
    out = trim_bars(picture)
    assert out is not None and out[1] == (10, 0, 0, 0)


def test_bar_partly_covered_by_a_sticker_is_trimmed_to_the_picture():
    """A sticker over a third of a letterbox bar's width (and over the picture below it):
    most columns still end at the picture, so the whole bar is trimmed, not just the part
    above the sticker."""
    content = soft_picture(300, 200)
    barred = pad(content, 24, 24, 0, 0, (0, 0, 0))
    barred[10:80, 180:280] = (250, 250, 250)  # the sticker: from inside the bar into the picture
    out = trim_bars(barred)
    assert out is not None and out[1] == (24, 24, 0, 0)


def test_dark_picture_under_a_bar_is_not_taken_into_it():
    """A black bar over a dark, uneven picture (night sky, darker at random depths): the
    columns of the picture do not end together, so only the flat bar is trimmed."""
    rng = np.random.default_rng(3)
    content = soft_picture(300, 200)
    depth = rng.integers(0, 60, 300)  # per column, how far the near-black sky reaches
    depth[::10] = 0  # lit buildings: no line below the bar is flat
    rows = np.arange(200)[:, None]
    content[rows < depth[None, :]] = (6, 6, 10)
    barred = pad(content, 20, 0, 0, 0, (0, 0, 0))
    out = trim_bars(barred)
    assert out is not None and out[1] == (20, 0, 0, 0)


def test_flat_coloured_frame_on_all_four_sides():
    content = soft_picture(300, 200)
    barred = pad(content, 12, 20, 16, 24, (40, 90, 200))  # a flat blue frame, uneven
    out = trim_bars(barred)
    assert out is not None and out[1] == (12, 20, 16, 24)


def test_thin_or_huge_borders_are_not_bars():
    content = soft_picture(320, 240)
    # 1.5 % of the height: below the 2 % minimum.
    assert trim_bars(pad(content, 4, 0, 0, 0, (0, 0, 0))) is None
    # The content would be under a quarter of the height.
    assert trim_bars(pad(soft_picture(320, 50), 90, 90, 0, 0, (0, 0, 0))) is None
    # A 3:2 photo in a 9:16 portrait frame is 3/8 of the frame's height: trimmed.
    framed = pad(soft_picture(360, 240), 200, 200, 0, 0, (0, 0, 0))
    found = trim_bars(framed)
    assert found is not None and found[1] == (200, 200, 0, 0)
    # One flat colour everywhere: nothing to say about bars.
    assert trim_bars(np.full((240, 320, 3), 10, np.uint8)) is None


def test_bars_of_two_colours_on_one_side_stop_at_the_colour_change():
    content = soft_picture(320, 200)
    barred = pad(content, 40, 0, 0, 0, (0, 0, 0))
    barred[20:40] = (200, 200, 200)  # outer 20 rows black, inner 20 light grey
    out = trim_bars(barred)
    assert out is not None and out[1] == (20, 0, 0, 0)


def dark_edged_picture(width: int = 320, height: int = 240) -> np.ndarray:
    """A textured picture that is genuinely dark towards its edges (a strong vignette), but not
    flat: fine texture survives in the dark."""
    base = soft_picture(width, height).astype(np.float64)
    texture = np.random.default_rng(5).integers(0, 2, (height // 2, width // 2)) * 120.0
    texture = np.kron(texture, np.ones((2, 2)))[:height, :width, None]
    yy, xx = np.mgrid[0:height, 0:width]
    r = np.hypot((xx - width / 2) / (width / 2), (yy - height / 2) / (height / 2))
    vignette = np.clip(1.1 - r, 0.2, 1.0)[:, :, None]
    return np.clip((0.6 * base + texture) * vignette, 0, 255).astype(np.uint8)


def test_dark_but_textured_edges_are_not_trimmed():
    pic = dark_edged_picture()
    edge = pic[:8].astype(int)
    assert edge.mean() < 40  # genuinely dark at the edge ...
    assert edge.std() > 8  # ... but not flat
    assert trim_bars(pic) is None
    a = analyze_bytes(jpeg(pic))
    assert a.kind == MediaKind.IMAGE, a.error
    assert not [s for s in a.signals if s.variant == "trimmed"]


# ---------------------------------------------------------------------------------------------
# Trimmed signals on images


@pytest.mark.parametrize(
    ("label", "bars", "colour"),
    [
        ("letterbox-black", (60, 60, 0, 0), (0, 0, 0)),
        ("pillarbox-black", (0, 0, 80, 80), (0, 0, 0)),
        ("pillarbox-grey", (0, 0, 50, 70), (128, 128, 128)),
        ("frame-white", (24, 24, 32, 32), (255, 255, 255)),
    ],
)
def test_barred_picture_trimmed_hash_matches_the_unbarred(label, bars, colour, record_property):
    content = soft_picture(480, 360, seed=7)
    plain_pdq = one(analyze_bytes(jpeg(content)), Algorithm.PDQ).value
    a = analyze_bytes(jpeg(pad(content, *bars, colour)))
    assert a.kind == MediaKind.IMAGE, a.error
    padded = one(a, Algorithm.PDQ)
    trimmed = one(a, Algorithm.PDQ, "trimmed")
    d_plain = hamming_hex(plain_pdq, padded.value)
    d_trim = hamming_hex(plain_pdq, trimmed.value)
    record_property("plain_distance", d_plain)
    record_property("trimmed_distance", d_trim)
    print(f"{label}: padded plain PDQ {d_plain} bits away, trimmed {d_trim}")
    assert d_trim <= 16
    assert d_plain > MATCH
    assert trimmed.quality == 100
    phash_plain = one(analyze_bytes(jpeg(content)), Algorithm.PHASH).value
    assert hamming_hex(phash_plain, one(a, Algorithm.PHASH, "trimmed").value) <= 6
    # The untrimmed hashes are kept, first, as before.
    assert a.signals[0] == padded and a.signals[1].algorithm == Algorithm.PHASH


# ---------------------------------------------------------------------------------------------
# Dihedral query signals on images


def test_seven_dihedral_signals_named_and_computed_once():
    pic = soft_picture(320, 240)
    a = analyze_bytes(jpeg(pic))
    # The whole picture's turns (the trimmed picture's and the halves' carry ":<what>").
    whole_turns = [
        s for s in a.signals if s.variant.startswith("dih:") and ":" not in s.variant[4:]
    ]
    dih = [s for s in whole_turns if s.algorithm == Algorithm.PDQ]
    assert [s.variant for s in dih] == [f"dih:{n}" for n in DIHEDRAL_ORDER[1:]]
    # pHash has the same 7 turns; nothing else is turned whole.
    turned_phash = [s.variant for s in whole_turns if s.algorithm == Algorithm.PHASH]
    assert turned_phash == [f"dih:{n}" for n in DIHEDRAL_ORDER[1:]]
    assert len(whole_turns) == 14
    plain = one(a, Algorithm.PDQ)
    assert all(s.algorithm == Algorithm.PDQ and s.quality == plain.quality for s in dih)
    # the signals.variant column is String(16)
    assert all(len(s.variant) <= 16 for s in a.signals)
    # Each dih: hash is the PDQ of the picture after that transform (numpy equivalents), as
    # that picture hashes itself (float rounding aside).
    decoded = np.asarray(Image.open(io.BytesIO(jpeg(pic))).convert("RGB"))
    transforms = {
        "rotate90": np.rot90(decoded, 1),
        "rotate180": np.rot90(decoded, 2),
        "rotate270": np.rot90(decoded, -1),
        "flipx": decoded[::-1],
        "flipy": decoded[:, ::-1],
        "flip_plus1": decoded.transpose(1, 0, 2),
        "flip_minus1": np.rot90(decoded, 2).transpose(1, 0, 2),
    }
    candidates = [plain, *dih]
    for name, t in transforms.items():
        direct, _ = pdq_from_rgb(t)
        dists = {c.variant or "plain": hamming_hex(direct, c.value) for c in candidates}
        nearest = min(dists, key=dists.get)
        assert nearest == f"dih:{name}" and dists[nearest] <= 2, (name, dists)


_TURNS = {
    "original": lambda a: a,
    "rotate90": lambda a: np.rot90(a, 1),
    "rotate180": lambda a: np.rot90(a, 2),
    "rotate270": lambda a: np.rot90(a, -1),
    "flipx": lambda a: a[::-1],
    "flipy": lambda a: a[:, ::-1],
    "flip_plus1": lambda a: a.swapaxes(0, 1),
    "flip_minus1": lambda a: np.rot90(a, 2).swapaxes(0, 1),
}


@pytest.mark.corpus
@needs_corpus
def test_phash_turns_are_the_phash_of_the_turned_picture():
    """The 7 turned pHashes come from one DCT by sign flips and transposes: each is exactly
    imagehash's pHash of the turned 32x32 grey picture, and within the pHash threshold of the
    pHash the turned photo itself gets (Pillow's reduction rounds a little differently)."""
    import imagehash

    from app.core.hashing.imaging import (
        _phash_grey,
        decode_picture,
        phash_dihedral_hexes,
        phash_hex,
    )

    threshold = MatchPolicy().turned_phash_threshold
    files = [p for p in sorted(IMAGES.iterdir()) if not p.name.startswith("misc-images__modes")]
    assert len(files) >= 30
    far = []
    for path in files:
        rgb = decode_picture(path.read_bytes()).image
        hexes = phash_dihedral_hexes(rgb)
        assert hexes[0] == phash_hex(rgb), path.name
        grey = np.asarray(_phash_grey(rgb))
        pixels = np.asarray(rgb)
        for name, value in zip(DIHEDRAL_ORDER, hexes, strict=True):
            small = Image.fromarray(np.ascontiguousarray(_TURNS[name](grey)))
            assert value == str(imagehash.phash(small)), (path.name, name)
            turned = Image.fromarray(np.ascontiguousarray(_TURNS[name](pixels)))
            far.append(hamming_hex(value, phash_hex(turned)))
    assert max(far) <= threshold, far
    print(f"turned pHash vs the turned photo's own: {np.bincount(far).tolist()} (count by bits)")


def test_cropped_and_mirrored_photo_matches_through_a_turned_phash():
    """A mirrored copy cropped by 3% a side moves every PDQ beyond the threshold on a
    textured photo, and its plain pHash is the mirror's; its mirrored-back pHash (query-only
    ``dih:flipy``) is the one that finds the confirmed original."""
    data = pytest.importorskip("skimage.data")
    from app.tools import evasion_set as ev

    original = data.chelsea()
    copy = ev.jpeg(ev.mirror(ev.crop(original, 0.03)))
    policy = MatchPolicy()
    index = HashIndex()
    confirmed = analyze_bytes(ev.jpeg(original))
    for entry_id, sig in enumerate(confirmed.signals):
        index_signal(index, entry_id, sig, None, policy)
    query = analyze_bytes(copy)
    turned = one(query, Algorithm.PHASH, "dih:flipy")
    plain = one(query, Algorithm.PHASH)
    stored = one(confirmed, Algorithm.PHASH).value
    assert hamming_hex(plain.value, stored) > policy.phash_threshold
    assert hamming_hex(turned.value, stored) <= policy.turned_phash_threshold
    # Turned pHashes are query-only: the confirmed item's are never indexed.
    assert not index_signal(index, -1, one(confirmed, Algorithm.PHASH, "dih:flipy"), None, policy)
    ev_ = find_match(index, query.signals, MediaKind.IMAGE, policy)
    assert ev_ is not None and ev_.algorithm == "phash" and ev_.variant == "dih:flipy", ev_
    # Without the turned pHashes, the PDQs find it only through the original's stored centres
    # (zoom:*: its centre cut by 3 % a side, which the mirrored-back copy is); without those
    # too nothing matches (the PDQs, turned too, are all too far from the whole picture).
    rest = [s for s in query.signals if not (s.algorithm is Algorithm.PHASH and s.variant)]
    by_pdq = find_match(index, rest, MediaKind.IMAGE, policy)
    assert by_pdq is not None and by_pdq.algorithm == "pdq" and by_pdq.variant == "dih:flipy"
    no_centres = HashIndex()
    for entry_id, sig in enumerate(confirmed.signals):
        if not sig.variant.startswith(ZOOM_PREFIX):
            index_signal(no_centres, entry_id, sig, None, policy)
    assert find_match(no_centres, rest, MediaKind.IMAGE, policy) is None


def test_turned_phash_queries_are_held_to_a_tighter_threshold():
    """A rotated or mirrored pHash query matches within ``turned_phash_threshold`` (2 bits
    under the plain threshold); the plain query keeps the plain threshold; the trimmed
    picture's pHash is not queried; a video queries no pHash."""
    policy = MatchPolicy()
    stored = "0f0f0f0f0f0f0f0f"
    index = HashIndex()
    index_signal(index, 7, Signal(Algorithm.PHASH, stored), None, policy)

    def away(bits: int) -> str:
        return format(int(stored, 16) ^ ((1 << bits) - 1), "016x")

    def found(value: str, variant: str, kind: MediaKind = MediaKind.IMAGE) -> int | None:
        ev_ = find_match(index, [Signal(Algorithm.PHASH, value, variant=variant)], kind, policy)
        return None if ev_ is None else ev_.distance

    plain, turned = policy.phash_threshold, policy.turned_phash_threshold
    assert turned == plain - 2
    assert found(away(plain), "") == plain
    assert found(away(plain + 1), "") is None
    assert found(away(turned), "dih:flipy") == turned
    assert found(away(turned + 1), "dih:rotate90") is None
    assert found(away(0), "dih:fy:trimmed") is None  # the trimmed picture's turns: PDQ only
    assert found(away(0), "trimmed") is None
    assert found(away(0), "", MediaKind.VIDEO) is None


def test_news_strip_over_a_photo_matches_through_its_untrimmed_half():
    """A dark strip with text laid over the bottom of a photo is trimmed like a bar, so the
    trimmed picture and its halves are cut short; the untrimmed picture's top half
    (``untrimmed:top``, query-only) is the original's and finds it."""
    data = pytest.importorskip("skimage.data")
    from app.tools import evasion_set as ev

    original = data.chelsea()
    policy = MatchPolicy()
    index = HashIndex()
    confirmed = analyze_bytes(ev.jpeg(original))
    for entry_id, sig in enumerate(confirmed.signals):
        index_signal(index, entry_id, sig, None, policy)
    query = analyze_bytes(ev.jpeg(ev.news_strip(original)))
    untrimmed = [s for s in query.signals if s.variant.startswith("untrimmed:")]
    assert sorted(s.variant for s in untrimmed) == [
        f"untrimmed:{h}" for h in ("bottom", "left", "right", "top")
    ]
    assert all(half_query_space(s.variant) == "region:" + s.variant[10:] for s in untrimmed)
    assert all(len(s.variant) <= 16 for s in query.signals)  # the signals.variant column
    assert not index_signal(index, -1, untrimmed[0], None, policy)  # query-only
    found = find_match(index, query.signals, MediaKind.IMAGE, policy)
    assert found is not None and found.variant == "untrimmed:top", found
    rest = [s for s in query.signals if not s.variant.startswith("untrimmed:")]
    assert find_match(index, rest, MediaKind.IMAGE, policy) is None
    # A picture without bars has none (its halves are the picture's already).
    assert not [s for s in confirmed.signals if s.variant.startswith("untrimmed:")]


@cache
def corpus_image(name: str) -> MediaAnalysis:
    return analyze_bytes((IMAGES / name).read_bytes())


@pytest.mark.corpus
@needs_corpus
def test_every_dihedral_corpus_file_matches_the_original(record_property):
    orig = one(corpus_image("bridge-mods__aaa-orig.jpg"), Algorithm.PDQ).value
    report = {}
    for path in sorted(IMAGES.glob("dih__bridge-*")):
        a = corpus_image(path.name)
        dists = {s.variant or "plain": hamming_hex(orig, s.value) for s in pdq_signals(a)}
        best = min(dists, key=dists.get)
        report[path.name] = (dists["plain"], best, dists[best])
        assert dists[best] <= MATCH, (path.name, dists)
        if "original" not in path.name:
            assert dists["plain"] > MATCH  # the dih: query signal is what catches it
    for name, (plain, best, d) in report.items():
        print(f"{name}: plain {plain}, best {best} {d}")
    record_property("dihedral", report)


@pytest.mark.corpus
@needs_corpus
def test_unrelated_photos_match_the_bridge_in_no_variant():
    orig = one(corpus_image("bridge-mods__aaa-orig.jpg"), Algorithm.PDQ).value
    for path in sorted(IMAGES.glob("labelme-subset__*")):
        a = corpus_image(path.name)
        nearest = min(hamming_hex(orig, s.value) for s in pdq_signals(a))
        assert nearest > 2 * MATCH, (path.name, nearest)


@pytest.mark.corpus
@needs_corpus
def test_corpus_photo_with_a_real_bar_is_trimmed():
    """labelme q0746 has a flat grey band along its bottom edge (30 px of 256)."""
    a = corpus_image("labelme-subset__q0746.jpg")
    assert one(a, Algorithm.PDQ, "trimmed").quality >= 50
    assert not [s for s in pdq_signals(corpus_image("bridge-mods__aaa-orig.jpg"), "trimmed")]


# ---------------------------------------------------------------------------------------------
# BarDetector: bars of a video from several frames


def test_detector_needs_the_bar_in_every_frame():
    det = BarDetector()
    bars = (0, 0, 40, 40)
    for seed in range(3):
        assert det.add(pad(soft_picture(240, 240, seed), *bars, (0, 0, 0)))
    assert det.bars() == bars
    # A frame with content where the "bar" was: the bar is lost for good.
    assert det.add(soft_picture(320, 240, 9))
    assert det.bars() is None


def test_detector_dark_scene_is_not_a_bar():
    """A scene that is flat black at the top in some frames (night sky) but not in others."""
    det = BarDetector()
    for seed in range(4):
        frame = soft_picture(320, 240, seed)
        frame[:60] = 0
        det.add(frame)
    assert det.bars() == (60, 0, 0, 0)  # looks like a bar so far ...
    det.add(soft_picture(320, 240, 11))
    assert det.bars() is None  # ... until a frame shows content there


def test_detector_skips_uniform_frames_and_checks_bar_colour():
    det = BarDetector()
    assert not det.add(np.zeros((240, 320, 3), np.uint8))  # a black frame says nothing
    assert det.bars() is None
    det.add(pad(soft_picture(320, 180, 1), 30, 30, 0, 0, (0, 0, 0)))
    assert det.bars() == (30, 30, 0, 0)
    det.add(pad(soft_picture(320, 180, 2), 30, 30, 0, 0, (200, 30, 30)))  # other colour
    assert det.bars() is None


def test_scan_and_agreement_helpers():
    scan = scan_borders(pad(soft_picture(320, 180), 30, 30, 0, 0, (0, 0, 0)))
    assert scan.runs == (30, 30, 0, 0) and not scan.uniform
    assert bars_agree((30, 30, 0, 0), (29, 30, 0, 0), 240, 320)
    assert not bars_agree((30, 30, 0, 0), (10, 30, 0, 0), 240, 320)
    assert not bars_agree((30, 30, 0, 0), None, 240, 320)


# ---------------------------------------------------------------------------------------------
# Videos: generated


def write_clip(path: Path, frames) -> Path:
    writer = None
    for f in frames:
        if writer is None:
            h, w = f.shape[:2]
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (w, h))
            assert writer.isOpened()
        writer.write(np.ascontiguousarray(f))
    assert writer is not None
    writer.release()
    return path


def scene(i: int, width: int, height: int) -> np.ndarray:
    """Frame i of a generated clip: a new picture every second, drifting slowly."""
    base = soft_picture(width + 60, height, seed=100 + i // 30)
    shift = (i % 30) * 2
    return np.ascontiguousarray(base[:, shift : shift + width])


def analyze_path(path: Path) -> MediaAnalysis:
    a = analyze_video(path, "0" * 64, "0" * 32, path.stat().st_size)
    assert a.kind == MediaKind.VIDEO, a.error
    return a


def frame_hashes(a: MediaAnalysis, variant: str = "") -> list[Signal]:
    return [s for s in a.signals if s.algorithm == Algorithm.PDQ_FRAME and s.variant == variant]


def test_letterboxed_video_gets_trimmed_frames(tmp_path):
    n = 6 * 30
    plain = analyze_path(write_clip(tmp_path / "p.mp4", (scene(i, 320, 180) for i in range(n))))
    boxed = analyze_path(
        write_clip(tmp_path / "b.mp4", (pad(scene(i, 320, 180), 30, 30, 0, 0, 0) for i in range(n)))
    )
    trimmed = frame_hashes(boxed, "trimmed")
    assert [s.frame_ts for s in trimmed] == [s.frame_ts for s in frame_hashes(boxed)]
    ref = [s.value for s in frame_hashes(plain)]
    dists = [hamming_hex(r, t.value) for r, t in zip(ref, trimmed, strict=True)]
    print(f"generated letterbox: trimmed frames vs unboxed frames {dists}")
    assert max(dists) <= MATCH and sorted(dists)[len(dists) // 2] <= 12
    assert video_match_fraction([s.value for s in frame_hashes(boxed)], ref, MATCH) < 0.5


def test_video_dark_opening_scene_is_not_trimmed(tmp_path):
    """The first 6 s are black at the top (a dark scene), then the picture fills the frame: the
    bars decided from the first frames are not borne out, and no trimmed hashes are kept."""
    frames = []
    for i in range(9 * 30):
        f = scene(i, 320, 240)
        if i < 6 * 30:
            f = f.copy()
            f[:60] = 0
        frames.append(f)
    a = analyze_path(write_clip(tmp_path / "dark.mp4", frames))
    assert len(frame_hashes(a)) == 9
    assert frame_hashes(a, "trimmed") == []


def test_video_without_bars_has_no_trimmed_frames_and_bounded_dihedral(tmp_path):
    a = analyze_path(
        write_clip(tmp_path / "long.mp4", (scene(i, 160, 120) for i in range(20 * 30)))
    )
    assert len(frame_hashes(a)) == 20
    assert frame_hashes(a, "trimmed") == []
    dih = [s for s in a.signals if s.variant.startswith("dih:")]
    assert len(dih) == 7 * DIHEDRAL_FRAMES
    for name in DIHEDRAL_ORDER[1:]:
        ts = [s.frame_ts for s in dih if s.variant == f"dih:{name}"]
        assert len(ts) == DIHEDRAL_FRAMES and ts[0] == 0.0 and ts[-1] == 19.0


# ---------------------------------------------------------------------------------------------
# Videos: corpus


@cache
def corpus_video(name: str) -> MediaAnalysis:
    return analyze_path(VIDEOS / f"{name}.mp4")


def sd_vs_hd_fraction(edit: str, orig: str) -> tuple[float, list[int]]:
    """Share of the edit's sampled frames whose trimmed (or plain) hash is within MATCH of some
    sampled plain frame of the original, and each frame's best distance."""
    e, o = corpus_video(edit), corpus_video(orig)
    theirs = [s.value for s in frame_hashes(o)]
    trimmed = {s.frame_ts: s.value for s in frame_hashes(e, "trimmed")}
    best = []
    for s in frame_hashes(e):
        mine = [s.value] + ([trimmed[s.frame_ts]] if s.frame_ts in trimmed else [])
        best.append(min(hamming_hex(m, t) for m in mine for t in theirs))
    return sum(d <= MATCH for d in best) / len(best), best


@pytest.mark.corpus
@needs_corpus
@pytest.mark.parametrize(
    ("edit", "minimum"),
    [
        ("pattern-sd-grey-bar", 0.8),
        ("pattern-sd-with-small-logo-bar", 0.8),
        # The logo covers about a third of the picture: whole-frame PDQ does not survive it
        # (measured 0.00, best distances 44-76); the bottom halves match (test_regions.py).
        ("pattern-sd-with-large-logo-bar", 0.0),
    ],
)
def test_pillarboxed_sd_edits_match_the_hd_original(edit, minimum, record_property):
    frac, best = sd_vs_hd_fraction(edit, "pattern-hd-no-bar")
    plain = video_match_fraction(
        [s.value for s in frame_hashes(corpus_video(edit))],
        [s.value for s in frame_hashes(corpus_video("pattern-hd-no-bar"))],
        MATCH,
    )
    record_property("fraction", frac)
    print(f"{edit} vs pattern-hd-no-bar: {frac:.2f} trimmed|plain (plain only {plain:.2f}); {best}")
    assert frame_hashes(corpus_video(edit), "trimmed")
    assert frac >= minimum
    assert plain == 0.0  # without trimming they miss entirely


@pytest.mark.corpus
@needs_corpus
@pytest.mark.parametrize(
    "orig", ["chair-orig-22-sd-bar", "chair-22-sd-grey-bar", "pattern-hd-no-bar"]
)
def test_doorknob_matches_nothing_in_any_variant(orig):
    door = corpus_video("doorknob-hd-no-bar")
    o = corpus_video(orig)
    stored = [s.value for s in frame_hashes(o)] + [s.value for s in frame_hashes(o, "trimmed")]
    variants = {s.variant for s in door.signals if s.algorithm == Algorithm.PDQ_FRAME}
    for variant in variants:
        mine = [s.value for s in frame_hashes(door, variant)]
        frac = video_match_fraction(mine, stored, MATCH)
        assert frac == 0.0, (orig, variant, frac)


@pytest.mark.corpus
@needs_corpus
@pytest.mark.parametrize(
    ("transform", "undo"),
    [
        (lambda f: np.rot90(f, 1), "dih:rotate270"),
        (lambda f: f[:, ::-1], "dih:flipy"),
    ],
    ids=["rotated-90", "mirrored"],
)
def test_rotated_or_mirrored_video_matches_through_dihedral_frames(tmp_path, transform, undo):
    cap = cv2.VideoCapture(str(VIDEOS / "pattern-hd-no-bar.mp4"))
    frames = []
    while len(frames) < 150:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(transform(f))
    cap.release()
    copy = analyze_path(write_clip(tmp_path / "copy.mp4", frames))
    orig = [s.value for s in frame_hashes(corpus_video("pattern-hd-no-bar"))]
    plain = video_match_fraction([s.value for s in frame_hashes(copy)], orig, MATCH)
    by_variant = {
        v: video_match_fraction([s.value for s in frame_hashes(copy, v)], orig, MATCH)
        for v in {s.variant for s in copy.signals if s.variant.startswith("dih:")}
    }
    best = max(by_variant, key=by_variant.get)
    print(f"{undo}: plain {plain:.2f}, best {best} {by_variant[best]:.2f}")
    assert plain < 0.5
    assert best == undo and by_variant[best] >= 0.8


@pytest.mark.corpus
@needs_corpus
@pytest.mark.parametrize(
    "edit", ["chair-orig-22-sd-bar", "chair-22-sd-grey-bar", "chair-20-sd-bar"]
)
@pytest.mark.parametrize("hd", ["chair-orig-22-hd-no-bar", "chair-orig-22-fhd-no-bar"])
def test_pillarboxed_chair_matches_the_unbarred_reference_hashes(edit, hd):
    """The corpus has only the vPDQ reference hashes (every frame) of the unbarred hd/fhd chair
    originals: the sd pillarboxed versions reach them through their trimmed frames only."""
    bank = [h for _, q, h, _ in read_frames(CORPUS / "vpdq-hashes" / f"{hd}.txt") if q >= 50]
    a = corpus_video(edit)
    plain = video_match_fraction([s.value for s in frame_hashes(a)], bank, MATCH)
    trimmed = video_match_fraction([s.value for s in frame_hashes(a, "trimmed")], bank, MATCH)
    print(f"{edit} vs every frame of {hd}: plain {plain:.2f}, trimmed {trimmed:.2f}")
    assert plain == 0.0
    assert trimmed >= 0.95


def test_mirrored_letterboxed_video_matches_through_turned_trimmed_frames(tmp_path):
    width, height = 320, 240
    frames = [scene(i, width, height) for i in range(150)]
    orig = analyze_path(write_clip(tmp_path / "orig.mp4", frames))
    bar = 40
    copy_frames = [pad(f[:, ::-1], bar, bar, 0, 0, (0, 0, 0)) for f in frames]
    copy = analyze_path(write_clip(tmp_path / "copy.mp4", copy_frames))
    assert frame_hashes(copy, "trimmed")  # the bars were found
    reference = [s.value for s in frame_hashes(orig)]
    by_variant = {
        v: video_match_fraction([s.value for s in frame_hashes(copy, v)], reference, MATCH)
        for v in {s.variant for s in copy.signals if s.algorithm == Algorithm.PDQ_FRAME}
        if v and half_query_space(v) is None  # whole frames, not halves
    }
    best = max(by_variant, key=by_variant.get)
    print(f"mirrored + letterboxed clip: {by_variant}")
    assert by_variant["trimmed"] < 0.5 and by_variant["dih:flipy"] < 0.5
    assert best == "dih:fy:trimmed" and by_variant[best] >= 0.8
    # and through the matcher, with the original confirmed
    index = HashIndex()
    for i, sig in enumerate(orig.signals):
        index_signal(index, i, sig, 1, MatchPolicy())
    frame_sigs = [s for s in copy.signals if s.algorithm == Algorithm.PDQ_FRAME]  # not bytes
    ev = find_match(index, frame_sigs, copy.kind, MatchPolicy())
    assert ev is not None and ev.ref == 1 and ev.variant == "dih:fy:trimmed", ev
