"""Writing short MPEG-4 videos (the demo set, the frozen self-test, the video benchmark) with
PyAV's FFmpeg, the one the application decodes with.

MPEG-4 Part 2 (FourCC ``mp4v``) in an MP4 file, as OpenCV's ``mp4v`` writer made them: every
FFmpeg build has its encoder (H.264 needs x264, which a wheel may lack), and players and the
application's own decoder read it. A keyframe every :data:`GOP` frames and no B-frames, so
frame-accurate seeking and per-packet skipping have keyframes to work with.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np

GOP = 12  # frames from one keyframe to the next
MAX_BIT_RATE = 2**30


def write_mp4(path: Path, frames: Iterable[np.ndarray], fps: float) -> int:
    """Encode ``frames`` (HxWx3 uint8 RGB, all one even size) into ``path``; returns the
    number of frames written. The bit rate is about one bit per pixel per second of frames
    (OpenCV's default for this encoder, at most :data:`MAX_BIT_RATE`), enough for sharp
    synthetic pictures."""
    import av

    written = 0
    with av.open(str(path), "w") as container:
        stream = None
        for rgb in frames:
            h, w = rgb.shape[:2]
            if stream is None:
                rate = Fraction(fps).limit_denominator(1001)
                stream = container.add_stream("mpeg4", rate=rate)
                stream.width, stream.height = w, h
                stream.pix_fmt = "yuv420p"
                stream.bit_rate = min(int(w * h * fps), MAX_BIT_RATE)
                stream.codec_context.gop_size = GOP
                stream.codec_context.max_b_frames = 0
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            container.mux(stream.encode(frame.reformat(format="yuv420p")))
            written += 1
        if stream is not None:
            container.mux(stream.encode(None))
    return written
