"""Views of a picture (issue 22): a frame of any colour, a sharp band over a blurred copy, an
inset, a filmed screen, and the margin put back, each hashed as a query-only ``view:<name>``
PDQ signal (app.core.hashing.views).

The synthetic pictures (app.tools.view_set) are real photos (scikit-image's and the corpus's)
put inside the thing the view must see through; the view's PDQ must land within the match
threshold of the original's own PDQ (our app.core.hashing.pdq), and unrelated photos must
match no original through any view.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.core.hashing import views as V
from app.core.hashing.pdq import hamming_hex, luma_from_rgb, pdq_from_luma
from app.core.matching.hash_index import HashIndex
from app.core.matching.match_rules import MatchPolicy, find_match, index_signal
from app.core.matching.signal_types import Variant, is_query_only, view_variant
from app.core.model.domain import Algorithm, MediaAnalysis, MediaKind
from app.core.video.analysis import analyze_video
from app.tools.evasion_set import crop, load_photos
from app.tools.video_writer import write_mp4
from app.tools.view_set import (
    analyze_bytes,
    as_inset,
    encode,
    in_blurred_portrait,
    in_shaded_frame,
    on_screen,
    resized,
)
from tests.conftest import CORPUS, PG_URL, corpus_mark

IMAGES = CORPUS / "pdq-images"
VIDEOS = CORPUS / "videos"
MATCH = 31

needs_corpus = corpus_mark()


def photo(name: str) -> np.ndarray:
    for p in load_photos(IMAGES if IMAGES.is_dir() else None):
        if p.name == name:
            return p.rgb
    pytest.skip(f"photo {name} not available")


def pdq(rgb: np.ndarray) -> str:
    return pdq_from_luma(luma_from_rgb(rgb))[0]


def jpeg_round(rgb: np.ndarray, quality: int = 80) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def views_of(rgb: np.ndarray) -> dict[str, str]:
    sigs = V.picture_view_signals(luma_from_rgb(rgb))
    return {Variant.parse(s.variant).view or "": s.value for s in sigs}


# ---------------------------------------------------------------------------------------------
# the variant


def test_a_view_is_a_query_only_whole_picture_variant():
    for name in ("border", "band", "pip", "screen", "pad2", "pad4"):
        text = view_variant(name)
        v = Variant.parse(text)
        assert str(v) == text and len(text) <= 16
        assert v.kind == "view" and v.view == name and v.whole and v.stored_space == ""
        assert is_query_only(text)
    for bad in ("view:", "view:Pip", "view:a-b", "view:twelve-chars"):
        with pytest.raises(ValueError):
            Variant.parse(bad)


# ---------------------------------------------------------------------------------------------
# each view recovers the picture


@pytest.mark.parametrize("name", ["skimage:astronaut", "skimage:chelsea", "skimage:camera"])
def test_a_shaded_coloured_frame_is_seen_through(name):
    original = photo(name)
    copy = jpeg_round(in_shaded_frame(original))
    views = views_of(copy)
    assert hamming_hex(pdq(copy), pdq(original)) > MATCH  # the copy as decoded is missed
    assert hamming_hex(views["border"], pdq(original)) <= MATCH


@pytest.mark.parametrize("name", ["skimage:astronaut", "skimage:cell", "skimage:hubble_deep_field"])
def test_the_sharp_band_of_a_blurred_portrait_frame_is_seen_through(name):
    original = photo(name)
    copy = jpeg_round(in_blurred_portrait(original))
    views = views_of(copy)
    assert hamming_hex(pdq(copy), pdq(original)) > MATCH
    assert hamming_hex(views["band"], pdq(original)) <= MATCH


@pytest.mark.parametrize(
    ("name", "under"),
    [
        ("skimage:rocket", "corpus:misc-images__c"),
        ("skimage:hubble_deep_field", "skimage:motorcycle_left"),
        ("skimage:coins", "skimage:hubble_deep_field"),
    ],
)
def test_an_outlined_inset_is_seen_through(name, under):
    original = photo(name)
    copy = jpeg_round(as_inset(original, photo(under)))
    views = views_of(copy)
    assert hamming_hex(pdq(copy), pdq(original)) > MATCH
    assert hamming_hex(views["pip"], pdq(original)) <= MATCH


@pytest.mark.parametrize(
    "name", ["skimage:chelsea", "skimage:cell", "skimage:moon", "skimage:coins"]
)
def test_a_filmed_screen_is_warped_back(name):
    original = photo(name)
    copy = jpeg_round(on_screen(original))
    views = views_of(copy)
    assert hamming_hex(pdq(copy), pdq(original)) > MATCH
    assert hamming_hex(views["screen"], pdq(original)) <= MATCH


@pytest.mark.parametrize("name", ["skimage:astronaut", "skimage:chelsea", "skimage:rocket"])
def test_a_margin_cut_by_two_percent_is_put_back(name):
    original = photo(name)
    copy = jpeg_round(crop(original, 0.02), 85)
    views = views_of(copy)
    assert hamming_hex(views["pad2"], pdq(original)) <= MATCH


@pytest.mark.parametrize("name", ["skimage:astronaut", "skimage:coffee", "skimage:chelsea"])
def test_a_plain_photo_gives_no_frame_band_or_inset_view(name):
    """Nothing to see through: no frame, band or inset view; the padded ones are always
    there."""
    views = views_of(photo(name))
    assert not {"border", "band", "pip"} & set(views)
    assert {f"pad{level}" for level in V.PAD_LEVELS} <= set(views)


def corpus_frame(name: str, index: int = 45) -> np.ndarray:
    """A real frame of a corpus video, decoded by PyAV."""
    import av

    with av.open(str(VIDEOS / f"{name}.mp4")) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="rgb24")
    raise AssertionError(f"{name} has fewer than {index + 1} frames")


@needs_corpus
@pytest.mark.parametrize("name", ["pattern-hd-no-bar", "doorknob-hd-no-bar"])
def test_a_corpus_video_frame_framed_and_filmed(name):
    """Real decoded video frames in a light frame and on a filmed screen."""
    frame = corpus_frame(name)
    original = pdq(frame)
    framed = views_of(jpeg_round(in_shaded_frame(frame, colour=(240, 240, 230))))
    assert hamming_hex(framed["border"], original) <= MATCH
    filmed = views_of(jpeg_round(on_screen(frame)))
    assert hamming_hex(filmed["screen"], original) <= MATCH


@needs_corpus
def test_a_landscape_corpus_video_frame_in_a_blurred_portrait_frame():
    frame = corpus_frame("doorknob-hd-no-bar")  # 16:9, soft: its band is sharp only by 2x
    views = views_of(jpeg_round(in_blurred_portrait(frame)))
    assert hamming_hex(pdq(jpeg_round(in_blurred_portrait(frame))), pdq(frame)) > MATCH
    assert hamming_hex(views["band"], pdq(frame)) <= MATCH


@needs_corpus
def test_a_corpus_video_frame_as_an_inset():
    frame = corpus_frame("doorknob-hd-no-bar")
    views = views_of(jpeg_round(as_inset(frame, photo("skimage:coffee"))))
    assert hamming_hex(views["pip"], pdq(frame)) <= MATCH


# ---------------------------------------------------------------------------------------------
# false matches


@needs_corpus
def test_unrelated_photos_match_no_original_through_any_view():
    originals = {p.name: pdq(p.rgb) for p in load_photos(IMAGES)}
    unrelated = sorted(IMAGES.glob("labelme-subset__*.jpg"))
    assert unrelated
    nearest = 256
    for path in unrelated:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        for made in (rgb, in_blurred_portrait(rgb), on_screen(rgb), in_shaded_frame(rgb)):
            for value in views_of(made).values():
                nearest = min(nearest, *(hamming_hex(value, o) for o in originals.values()))
    print(f"nearest view of an unrelated photo to an original: {nearest} bits")
    assert nearest > MATCH


@needs_corpus
def test_the_views_of_one_original_match_no_other_original():
    photos = load_photos(IMAGES)
    originals = [pdq(p.rgb) for p in photos]
    for i, p in enumerate(photos):
        for made in (p.rgb, in_shaded_frame(p.rgb), on_screen(p.rgb)):
            for value in views_of(made).values():
                others = [hamming_hex(value, o) for j, o in enumerate(originals) if j != i]
                assert min(others) > MATCH, p.name


# ---------------------------------------------------------------------------------------------
# through the matcher


def index_of(a: MediaAnalysis, ref: int = 1) -> HashIndex:
    index = HashIndex()
    for i, sig in enumerate(a.signals):
        index_signal(index, i, sig, ref, MatchPolicy())
    return index


def test_views_are_never_stored():
    a = analyze_bytes(encode(on_screen(photo("skimage:chelsea"))))
    views = [s for s in a.signals if Variant.parse(s.variant).kind == "view"]
    assert {s.variant for s in views} >= {"view:screen", "view:pad2", "view:pad4"}
    index = index_of(a)
    assert len(index) == sum(1 for s in a.signals if not is_query_only(s.variant)) - sum(
        1 for s in a.signals if s.quality is not None and s.quality < 50
    )


@pytest.mark.parametrize(
    ("name", "make", "variant"),
    [
        ("skimage:chelsea", on_screen, "view:screen"),
        ("skimage:chelsea", in_shaded_frame, "view:border"),
        ("skimage:coffee", lambda a: crop(a, 0.02), "view:pad2"),
    ],
)
def test_a_still_copy_matches_its_original_through_a_view(name, make, variant):
    original = photo(name)
    index = index_of(analyze_bytes(encode(original)))
    copy = analyze_bytes(encode(make(original)))
    ev = find_match(index, copy.signals, MediaKind.IMAGE, MatchPolicy())
    assert ev is not None and ev.ref == 1
    assert ev.variant == variant


def test_a_picture_in_a_meme_template_matches_its_original():
    """A meme template: a white page, a caption above and below, the picture inset with a
    black outline."""
    from PIL import ImageDraw, ImageFont

    original = photo("skimage:rocket")
    page = Image.new("RGB", (800, 900), "white")
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=48)
    draw.text((40, 30), "WHEN THE LAUNCH", fill="black", font=font)
    draw.text((40, 90), "GOES EXACTLY RIGHT", fill="black", font=font)
    height = round(440 * original.shape[0] / original.shape[1])
    draw.rectangle((176, 236, 176 + 440 + 8, 236 + height + 8), fill="black")
    page.paste(Image.fromarray(resized(original, 440, height)), (180, 240))
    draw.text((40, 800), "10/10", fill="black", font=ImageFont.load_default(size=40))
    index = index_of(analyze_bytes(encode(original)))
    copy = analyze_bytes(encode(np.asarray(page)))
    ev = find_match(index, copy.signals, MediaKind.IMAGE, MatchPolicy())
    assert ev is not None and ev.variant == "view:pip", ev


def test_a_video_with_an_inset_matches_its_original_through_the_view(tmp_path: Path):
    """A still photo confirmed, then a clip carrying it as a steady inset over moving footage:
    the inset's frames match it by the video rule."""
    original = photo("skimage:rocket")
    background = photo("corpus:misc-images__c")
    index = index_of(analyze_bytes(encode(original)))
    wide = resized(background, 1600, 900)

    def frames():
        for i in range(48):  # 4 s at 12 fps, the background panning
            under = np.ascontiguousarray(wide[90:810, 8 * i : 8 * i + 1280])
            yield as_inset(original, under)

    clip = tmp_path / "inset.mp4"
    write_mp4(clip, frames(), 12.0)
    a = analyze_video(clip, "0" * 64, "0" * 32, clip.stat().st_size)
    assert a.kind is MediaKind.VIDEO, a.error
    assert any(s.variant == "view:pip" for s in a.signals)
    assert all(s.algorithm is Algorithm.PDQ_FRAME for s in a.signals if s.variant == "view:pip")
    ev = find_match(index, a.signals, MediaKind.VIDEO, MatchPolicy())
    assert ev is not None and ev.variant == "view:pip", ev


# ---------------------------------------------------------------------------------------------
# the team server


def _server_query_only_function() -> str:
    """The team server's ``hd_query_only`` (app/storage/sql/api_review.sql), as written."""
    source = (Path(__file__).resolve().parents[2] / "app/storage/sql/api_review.sql").read_text()
    start = source.index("CREATE OR REPLACE FUNCTION hd_query_only(")
    end = source.index("$$;", source.index("$$", start) + 2) + 3
    return source[start:end]


@pytest.mark.skipif(not PG_URL, reason="HASHDESK_TEST_POSTGRES_URL is not set")
def test_the_team_server_never_lists_a_view():
    """The server's own rule for what a confirm lists (hd_query_only) says what
    is_query_only says, for every kind of variant the analyses write: a view never reaches the
    hash list through a confirm on the team server either."""
    from sqlalchemy import create_engine, text

    variants = ["", "trimmed", "region:top", "untrimmed:left", "dih:rotate90", "dih:fx:trimmed"]
    variants += ["dih:r90:left", "speed:125"] + [view_variant(n) for n in ("pip", "pad2")]
    variants += ["zoom:5", "zoom:15"]  # stored centres: listed
    engine = create_engine(PG_URL)
    schema = f"views_test_{abs(hash(PG_URL)) % 10_000_000}"
    try:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            conn.execute(text(f'SET LOCAL search_path TO "{schema}"'))
            conn.execute(text(_server_query_only_function()))
            for v in variants:
                server = conn.execute(text("SELECT hd_query_only(:v)"), {"v": v}).scalar_one()
                assert server is is_query_only(v), v
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        engine.dispose()
