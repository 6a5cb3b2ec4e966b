"""Animated GIF and WebP through Pillow: one frame per second of display time (frame 0
always), hashed and stripped as a video's sampled frames are. A truncated animation keeps
the frames that decoded.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence

from app.core.errors import describe
from app.core.model.domain import MediaAnalysis, MediaKind, Signal
from app.core.video.frames import _FrameHasher, _hash_frame
from app.core.video.probe import MAX_FRAME_PIXELS
from app.core.video.strip import _StripCollector
from app.core.video.unreadable import _unreadable

log = logging.getLogger(__name__)

MAX_ANIMATED_FRAMES = 20000  # frames walked in a GIF/WebP before giving up on the rest


def _analyze_animated(
    p: Path,
    sha256: str,
    md5: str,
    size: int,
    byte_signals: list[Signal],
    time_budget: float,
    max_samples: int,
) -> MediaAnalysis:
    """Animated GIF / WebP through Pillow: one frame per second of display time (frame 0 always)."""
    deadline = time.monotonic() + time_budget
    frames = _FrameHasher()
    strip: _StripCollector | None = None
    t = 0.0  # display time (s) at which the current frame starts
    next_sample = 0.0
    interval = 1.0
    with Image.open(p) as im:  # Pillow's MAX_IMAGE_PIXELS bomb check applies here
        fmt = (im.format or "").upper()
        width, height = im.size
        if width * height > MAX_FRAME_PIXELS:
            return _unreadable(sha256, md5, size, f"animation frames too large ({width}x{height})")
        n_frames = getattr(im, "n_frames", 1)
        try:
            for i, frame in enumerate(ImageSequence.Iterator(im)):
                if i >= MAX_ANIMATED_FRAMES or time.monotonic() > deadline:
                    break
                dur = frame.info.get("duration") or 0
                # Browsers show 0/10 ms GIF frames for ~100 ms; do the same for timing.
                dur_s = (dur if dur > 10 else 100) / 1000.0
                if t + 1e-9 >= next_sample:
                    rgb = np.asarray(frame.convert("RGB"))
                    frames.add(_hash_frame(rgb, round(t, 3)))
                    if strip is None:
                        strip = _StripCollector(*rgb.shape[1::-1])
                    strip.offer(len(frames) - 1, rgb)
                    next_sample += interval
                    while next_sample <= t:
                        next_sample += interval
                    if len(frames) >= max_samples:
                        break
                t += dur_s
        except (OSError, EOFError, ValueError) as exc:  # truncated animation: keep what decoded
            if not len(frames):
                return _unreadable(
                    sha256, md5, size, f"animation could not be decoded ({describe(exc)})"
                )
            log.info("%s: animation truncated after %d samples: %r", p.name, len(frames), exc)
    if not len(frames) or strip is None:
        return _unreadable(sha256, md5, size, "animation could not be decoded (no frames)")
    preview, n_preview = strip.jpeg()
    return MediaAnalysis(
        sha256=sha256,
        md5=md5,
        size=size,
        kind=MediaKind.ANIMATED if n_frames > 1 else MediaKind.IMAGE,
        mime="image/gif" if fmt == "GIF" else "image/webp",
        width=width,
        height=height,
        duration=round(t, 3),
        signals=[*frames.signals(p.name), *byte_signals],
        preview=preview,
        preview_frames=n_preview,
    )
