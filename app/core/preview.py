"""Preparing a stored preview for the screen, off the GUI thread: split a video's keyframe
strip into frames and make the blurred versions.

Blur is done small: downscale, blur, and let the screen scale it up. At these sizes that looks
the same as blurring at full size and costs a fraction of it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageFilter

# (long side in px, Gaussian radius) per blur strength, weakest first.
BLUR_LEVELS: tuple[tuple[int, float], ...] = ((96, 1.6), (48, 1.4), (24, 1.2))
DEFAULT_BLUR_LEVEL = 1


@dataclass
class PreparedPreview:
    frames: list[Image.Image]  # RGB, as stored (long side about 1000 px)
    blurred: list[list[Image.Image]]  # [frame][level], small


def split_strip(img: Image.Image, frames: int) -> list[Image.Image]:
    if frames <= 1:
        return [img]
    w = img.width // frames
    return [img.crop((i * w, 0, (i + 1) * w, img.height)) for i in range(frames)]


def blur_small(img: Image.Image, level: int) -> Image.Image:
    long_side, radius = BLUR_LEVELS[level]
    scale = long_side / max(img.width, img.height)
    small = img.resize(
        (max(1, round(img.width * scale)), max(1, round(img.height * scale))),
        Image.Resampling.BOX,
    )
    return small.filter(ImageFilter.GaussianBlur(radius))


def prepare_preview(data: bytes, frames: int = 1) -> PreparedPreview:
    with Image.open(io.BytesIO(data)) as opened:
        img = opened.convert("RGB")
    parts = split_strip(img, frames)
    return PreparedPreview(
        frames=parts,
        blurred=[[blur_small(p, lvl) for lvl in range(len(BLUR_LEVELS))] for p in parts],
    )
