"""The video evasion set (:mod:`app.tools.video_evasion`): its edits are what they say (geometry,
duration, sound), deterministic, and its negatives are decodable videos unrelated to a source.
How many edits the hash list catches is ``hashdesk bench evasion --video``'s to say, not a test's.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from app.core.ingest.media import analyze_file
from app.core.matching.hash_index import HashIndex
from app.core.matching.match_rules import MatchPolicy, find_known, index_signal
from app.core.model.domain import Algorithm, MediaKind
from app.tools import video_evasion as ve

FPS = 10.0
SIZE = (160, 96)
SECONDS = 8.0


@pytest.fixture(scope="module")
def source() -> ve.Footage:
    """A short pan over a synthetic scene, with music."""
    path = ve.PanPath((0.9, 0.45, 0.45), (0.6, 0.55, 0.5), seed=1)
    sound = ve._sound("music", SECONDS, 11)
    return ve.pan(ve.synthetic_scene(5), path, SECONDS, FPS, SIZE, sound)


@pytest.fixture(scope="module")
def ctx() -> ve.Context:
    return ve.Context(ve.synthetic_scene(6), 3)


def _read(path: Path) -> tuple[list[np.ndarray], float, float | None]:
    """Frames, frame rate, and the sound's seconds (None: no sound)."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        fps = float(v.average_rate)
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(v)]
    sound = ve.read_sound(path)
    return frames, fps, None if sound is None else sound.shape[0] / ve.RATE


def _write(tmp_path: Path, name: str, f: ve.Footage) -> Path:
    p = tmp_path / f"{name}.mp4"
    assert ve.write(p, f) == f.n
    return p


def test_the_source_round_trips_with_its_sound(tmp_path, source):
    frames, fps, sound_s = _read(_write(tmp_path, "src", source))
    assert len(frames) == source.n == round(SECONDS * FPS)
    assert frames[0].shape == (SIZE[1], SIZE[0], 3)
    assert fps == pytest.approx(FPS)
    assert sound_s == pytest.approx(SECONDS, abs=0.1)
    # the camera moves: the last frame is not the first
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 5


def test_mirror_keeps_size_duration_and_sound(tmp_path, source, ctx):
    frames, _, sound_s = _read(_write(tmp_path, "mirror", ve.EDITS["mirror"](source, ctx)))
    original = next(iter(source.frames()))
    assert len(frames) == source.n
    assert np.abs(frames[0].astype(int) - original[:, ::-1].astype(int)).mean() < 8
    assert np.abs(frames[0].astype(int) - original.astype(int)).mean() > 8
    assert sound_s == pytest.approx(SECONDS, abs=0.1)


def test_speed_changes_the_pictures_and_the_sound_alike(tmp_path, source, ctx):
    for kind, factor in (("speed 2x", 2.0), ("speed 0.8x", 0.8)):
        frames, fps, sound_s = _read(_write(tmp_path, "speed", ve.EDITS[kind](source, ctx)))
        assert fps == pytest.approx(FPS)
        assert len(frames) / fps == pytest.approx(SECONDS / factor, abs=2 / FPS)
        assert sound_s == pytest.approx(SECONDS / factor, abs=0.15)


def test_clips_cut_the_sound_with_the_pictures(tmp_path, source, ctx):
    f = ve.EDITS["clip from the middle"](source, ctx)
    frames, fps, sound_s = _read(_write(tmp_path, "clip", f))
    assert len(frames) / fps < SECONDS
    assert sound_s == pytest.approx(len(frames) / fps, abs=0.1)
    start = round(0.3 * SECONDS * FPS)
    expected = list(source.frames())[start]
    assert np.abs(frames[0].astype(int) - expected.astype(int)).mean() < 8


def test_geometry_of_the_reframing_edits(tmp_path, source, ctx):
    w, h = SIZE
    turned, _, _ = _read(_write(tmp_path, "turn", ve.EDITS["quarter turn"](source, ctx)))
    assert turned[0].shape[:2] == (w, h)
    tall, _, _ = _read(
        _write(tmp_path, "tall", ve.EDITS["vertical 9:16 over blurred copy"](source, ctx))
    )
    th, tw = tall[0].shape[:2]
    assert th == h and tw / th == pytest.approx(9 / 16, abs=0.05)
    cropped, _, _ = _read(_write(tmp_path, "crop", ve.EDITS["crop 5% per side"](source, ctx)))
    ch, cw = cropped[0].shape[:2]
    assert 0.85 * w <= cw < w and 0.85 * h <= ch < h


def test_screen_recording_sets_the_picture_in_a_darker_surround(tmp_path, source, ctx):
    f = ve.EDITS["screen recording off a monitor"](source, ctx)
    frames, _, sound_s = _read(_write(tmp_path, "screen", f))
    first = frames[0].astype(int)
    corner = first[: SIZE[1] // 12, : SIZE[0] // 12]
    centre = first[SIZE[1] // 3 : 2 * SIZE[1] // 3, SIZE[0] // 3 : 2 * SIZE[0] // 3]
    assert corner.mean() < 70 < centre.mean() or corner.std() < centre.std()
    # the sound is re-recorded: as long, not the same samples
    assert sound_s == pytest.approx(SECONDS, abs=0.1)
    assert source.sound is not None and f.sound is not None
    assert not np.allclose(f.sound[: source.sound.shape[0]], source.sound, atol=0.01)


def test_compilation_is_three_times_as_long_with_sound_throughout(tmp_path, source, ctx):
    frames, _, sound_s = _read(
        _write(tmp_path, "comp", ve.EDITS["compilation (a third)"](source, ctx))
    )
    assert len(frames) == 3 * source.n
    assert sound_s == pytest.approx(3 * SECONDS, abs=0.15)


def test_edits_are_deterministic(source, ctx):
    for kind in ("screen recording off a monitor", "picture-in-picture 45% over other"):
        a = list(ve.EDITS[kind](source, ctx).frames())
        b = list(ve.EDITS[kind](source, ctx).frames())
        assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_a_negative_clip_decodes_and_matches_no_source(tmp_path, source):
    src = analyze_file(_write(tmp_path, "src", source))
    policy = MatchPolicy()
    index = HashIndex()
    for i, sig in enumerate(src.signals):
        index_signal(index, i + 1, sig, 0, policy)
    stem, _, make = next(c for c in ve.negative_clips(None) if c[1].startswith("synthetic"))
    neg = make()
    assert neg is not None
    a = analyze_file(_write(tmp_path, stem, neg))
    assert a.kind is MediaKind.VIDEO and a.error is None
    assert any(s.algorithm is Algorithm.PDQ_FRAME for s in a.signals)
    assert find_known(index, a.signals, a.kind, policy) is None
    # and the source, looked up against its own index, does match (the index is not empty)
    assert find_known(index, src.signals, src.kind, policy) is not None


def test_captions_are_drawn_inside_the_picture_or_its_band():
    from app.tools import video_evasion as E

    rgb = np.full((360, 640, 3), 90, np.uint8)
    banded = E.caption_band(rgb)
    band = banded.shape[0] - rgb.shape[0]
    assert band > 0 and banded.shape[1] == rgb.shape[1]
    top = banded[:band]
    assert (top == 255).all(axis=2).mean() > 0.5  # a white band ...
    assert (top < 128).all(axis=2).any()  # ... with black text on it
    assert np.array_equal(banded[band:], rgb)  # the picture below it untouched
    captioned = E.captions_and_logo(rgb)
    assert captioned.shape == rgb.shape and not np.array_equal(captioned, rgb)
