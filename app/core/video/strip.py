"""The keyframe strip of a video or animation: at most :data:`STRIP_MAX_FRAMES` evenly spread
sampled frames, each :data:`STRIP_HEIGHT` px tall, side by side in one JPEG (the preview the
review screen shows under the picture).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from app.core.hashing.resample import area_reduce

STRIP_HEIGHT = 360  # keyframe strip: every frame this tall ...
STRIP_MAX_FRAMES = 8  # ... and at most this many frames side by side
STRIP_JPEG_QUALITY = 80


class _StripCollector:
    """Keeps small copies of an evenly spread subset of the sampled frames without knowing in
    advance how many there will be: keep every ``stride``-th sample, halve the set when it
    overflows. Samples may arrive out of order (segments decoded in parallel): they are kept by
    sample number."""

    def __init__(self, frame_w: int, frame_h: int) -> None:
        self.height = STRIP_HEIGHT
        width = round(STRIP_HEIGHT * frame_w / max(1, frame_h))
        self.width = min(max(width, 16), 4 * STRIP_HEIGHT)  # absurd aspect ratios stay sane
        self.stride = 1
        self.kept: dict[int, np.ndarray] = {}  # sample number -> RGB, self.height x self.width

    @property
    def frames(self) -> list[np.ndarray]:
        return [self.kept[k] for k in sorted(self.kept)]

    def offer(self, sample: int, rgb: np.ndarray) -> None:
        """Consider sampled frame number ``sample`` (RGB pixels ``rgb``): a small copy is kept
        when the sample falls on the stride."""
        if sample % self.stride:
            return
        size = (self.width, self.height)
        if rgb.shape[0] >= self.height and rgb.shape[1] >= self.width:
            self.kept[sample] = area_reduce(rgb, size)
        else:  # a small frame is enlarged (or stretched): a display copy, bilinear is enough
            img = Image.fromarray(np.ascontiguousarray(rgb)).resize(size, Image.Resampling.BILINEAR)
            self.kept[sample] = np.asarray(img)
        while len(self.kept) > 2 * STRIP_MAX_FRAMES:
            self.stride *= 2
            self.kept = {k: v for k, v in self.kept.items() if k % self.stride == 0}

    def jpeg(self) -> tuple[bytes | None, int]:
        frames = self.frames
        if not frames:
            return None, 0
        n = min(STRIP_MAX_FRAMES, len(frames))
        picks = np.linspace(0, len(frames) - 1, n).round().astype(int)
        strip = np.hstack([frames[i] for i in picks])
        buf = io.BytesIO()
        Image.fromarray(strip, "RGB").save(buf, "JPEG", quality=STRIP_JPEG_QUALITY, optimize=False)
        return buf.getvalue(), n
