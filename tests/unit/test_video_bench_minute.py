"""The bench's minute of real H.264 (app/tools/video_bench.repeat_clip): the corpus clip's
video and sound packets copied end to end, both streams as long as the copies make them."""

from __future__ import annotations

import av
import pytest

from app.core.ingest.media import analyze_file
from app.core.model.domain import Algorithm, MediaKind
from app.tools.video_bench import repeat_clip
from tests.conftest import CORPUS


def _seconds(path, kind: str) -> float:
    with av.open(str(path)) as c:
        stream = getattr(c.streams, kind)[0]
        last = 0
        for p in c.demux(stream):
            if p.pts is not None:
                last = max(last, p.pts + (p.duration or 0))
        return float(last * stream.time_base)


def test_the_minute_carries_the_clips_picture_and_sound_end_to_end(tmp_path):
    clip = CORPUS / "videos" / "doorknob-hd-no-bar.mp4"
    if not clip.is_file():
        pytest.skip("reference corpus not found")
    out = tmp_path / "minute.mp4"
    copies = repeat_clip(clip, out, 20)
    assert copies >= 2
    one_video, one_sound = _seconds(clip, "video"), _seconds(clip, "audio")
    assert _seconds(out, "video") == pytest.approx(copies * one_video, abs=0.2)
    assert _seconds(out, "audio") == pytest.approx(copies * one_sound, abs=0.2)
    a = analyze_file(out)
    assert a.kind is MediaKind.VIDEO
    frames = [s for s in a.signals if s.algorithm is Algorithm.PDQ_FRAME and not s.variant]
    sound = [s for s in a.signals if s.algorithm is Algorithm.AUDIO and not s.variant]
    assert len(frames) == pytest.approx(copies * one_video, abs=1.5)
    assert sound  # the sound survives the copy: the bench's ingest figure includes it
