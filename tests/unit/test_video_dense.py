"""Dense frame hashes of a video (app.core.video.dense), on the corpus videos: every frame is
hashed (each within DROP_BITS of a kept one), the hashes are the sampled frames' own where they
meet, bars give trimmed hashes, bad media gives [] or what decoded; and a clip cut between two
samples, played faster or slower, matches by the video rule against dense references where it
did not (or less) against the sampled ones."""

from __future__ import annotations

import itertools
from pathlib import Path

import av
import pytest

from app.core.hashing.pdq import hamming_hex, luma_from_rgb, pdq_from_luma
from app.core.matching.hash_index import HashIndex, best_video_matches
from app.core.model.domain import Algorithm
from app.core.video.analysis import analyze_video
from app.core.video.dense import DROP_BITS, KEEP_EVERY_SECONDS, dense_frame_signals
from app.core.video.frames import _work_rgb

CORPUS = Path(__file__).resolve().parents[2] / "../shared/corpus/videos"


def _every_frame(path: Path) -> list[tuple[float, str]]:
    """Each frame's time and PDQ, decoded and hashed here on their own."""
    out = []
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        fps = float(s.average_rate)
        for n, f in enumerate(c.decode(s)):
            value, _q = pdq_from_luma(luma_from_rgb(_work_rgb(f.to_ndarray(format="rgb24"))))
            out.append((round(n / fps, 3), value))
    return out


def _sampled(path: Path, variant: str = "") -> list:
    a = analyze_video(path, "0" * 64, "0" * 32, path.stat().st_size)
    return [g for g in a.signals if g.algorithm == Algorithm.PDQ_FRAME and g.variant == variant]


def make_clip(src: Path, dst: Path, start: float, end: float, speed: float = 1.0) -> Path:
    """A clip of ``src`` from ``start`` to ``end`` seconds, played at ``speed`` (frames picked
    or repeated), re-encoded with H.264 at the original frame rate."""
    with av.open(str(src)) as c:
        s = c.streams.video[0]
        fps = float(s.average_rate)
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
    a, b = round(start * fps), min(len(frames), round(end * fps))
    picks = [frames[round(a + k * speed)] for k in range(int((b - a) / speed))]
    with av.open(str(dst), "w") as out:
        st = out.add_stream("libx264", rate=round(fps))
        st.height, st.width = picks[0].shape[:2]
        st.pix_fmt = "yuv420p"
        for rgb in picks:
            for p in st.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(p)
        for p in st.encode():
            out.mux(p)
    return dst


@pytest.mark.parametrize("name", ["doorknob-hd-no-bar.mp4", "pattern-hd-no-bar.mp4"])
def test_every_frame_is_near_a_kept_one(name):
    path = CORPUS / name
    dense = dense_frame_signals(path)
    kept = [g for g in dense if g.variant == ""]
    every = _every_frame(path)
    assert 0 < len(kept) <= len(every)
    for ts, value in every:
        assert min(hamming_hex(value, g.value) for g in kept) <= DROP_BITS, ts
    times = [g.frame_ts for g in kept]
    assert times == sorted(times) and len(set(times)) == len(times)
    fps_step = every[1][0] - every[0][0]
    assert all(b - a <= KEEP_EVERY_SECONDS + fps_step + 1e-6 for a, b in itertools.pairwise(times))
    # Keeping every frame: one signal per frame, each the frame's own hash.
    everything = dense_frame_signals(path, drop_bits=-1)
    assert [(g.frame_ts, g.value) for g in everything] == every


def test_the_sampled_frames_hashes_are_the_dense_ones_and_bars_give_trimmed():
    path = CORPUS / "chair-19-sd-bar.mp4"
    dense = dense_frame_signals(path, drop_bits=-1)
    by_key = {(g.variant, g.frame_ts): g.value for g in dense}
    for variant in ("", "trimmed"):
        sampled = _sampled(path, variant)
        assert sampled
        assert all(by_key[(variant, g.frame_ts)] == g.value for g in sampled)
    plain = [g.frame_ts for g in dense if g.variant == ""]
    assert [g.frame_ts for g in dense if g.variant == "trimmed"] == plain


def test_bad_media_gives_what_decoded(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n" * 50)
    assert dense_frame_signals(text) == []
    assert dense_frame_signals(tmp_path / "missing.mp4") == []
    src = (CORPUS / "pattern-hd-no-bar.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(src[: len(src) // 2])
    whole = dense_frame_signals(CORPUS / "pattern-hd-no-bar.mp4", drop_bits=-1)
    part = dense_frame_signals(cut, drop_bits=-1)
    assert len(part) < len(whole)  # an MP4 cut in half: what decoded, or nothing; never raises
    assert dense_frame_signals(CORPUS / "pattern-hd-no-bar.mp4", time_budget=0.0) == []


def _index(frames: list[str]) -> HashIndex:
    index = HashIndex()
    index.add_many((i + 1, Algorithm.PDQ_FRAME.value, v, 7) for i, v in enumerate(frames))
    return index


def _fraction(index: HashIndex, query: list[str], distance: int = 31) -> float:
    found = [m for m in best_video_matches(index, query, distance, 0.0) if m.ref == 7]
    return found[0].fraction_query if found else 0.0


@pytest.mark.parametrize(
    ("start", "end", "speed"),
    [(5.5, 15.5, 1.0), (2.3, 20.0, 1.25), (3.3, 9.0, 0.5), (1.2, 21.0, 2.0)],
    ids=["middle", "faster", "slower", "double"],
)
def test_clips_meet_dense_references(tmp_path, start, end, speed):
    """A clip cut between two samples, at another speed, against the references as ingest
    samples them and with the dense frames added: the video rule matches it against the dense
    ones, and never less than against the sampled ones alone."""
    src = CORPUS / "chair-orig-22-sd-bar.mp4"
    sampled = [g.value for g in _sampled(src)]
    dense = [g.value for g in dense_frame_signals(src) if g.variant == ""]
    clip = make_clip(src, tmp_path / "clip.mp4", start, end, speed)
    query = [g.value for g in _sampled(clip)]
    assert len(query) >= 5
    sparse_refs, dense_refs = _index(sampled), _index(sampled + dense)
    against_sparse, against_dense = _fraction(sparse_refs, query), _fraction(dense_refs, query)
    assert against_dense >= 0.8  # the video rule's share: a match
    assert against_dense > against_sparse
    # The frame count the rule's target fraction is taken over is every row of the ref.
    assert dense_refs.frame_count(7) == len(sampled) + len(dense)
    (m,) = best_video_matches(dense_refs, query, 31, 0.0)
    assert 0.0 < (m.fraction_target or 0.0) <= 1.0
