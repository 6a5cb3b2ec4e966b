"""Preparing a stored preview for the screen, off the GUI thread: split a video's keyframe
strip into frames and make the blurred versions.

Blur is done small: downscale, blur, and let the screen scale it up. At these sizes that looks
the same as blurring at full size and costs a fraction of it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageFilter

# (long side in px, Gaussian radius) per blur strength, weakest first. The weakest was chosen
# on corpus photos (docs/blur-levels.png): at (48, 1.4) the tree and the bridge of
# bridge-mods__aaa-orig.jpg still showed, at (32, 1.6) the pen and the coaster of
# pen-and-coaster.png; at (20, 1.6) only colour is left, no shape to recognise.
BLUR_LEVELS: tuple[tuple[int, float], ...] = ((20, 1.6), (14, 1.6), (10, 1.4))
DEFAULT_BLUR_LEVEL = 0


@dataclass(frozen=True)
class ComfortDefaults:
    """How the preview starts: the organisation's default (settings), or a person's own."""

    greyscale: bool = False
    blur_level: int = DEFAULT_BLUR_LEVEL

    def __post_init__(self) -> None:
        if not 0 <= self.blur_level < len(BLUR_LEVELS):
            raise ValueError(f"blur level {self.blur_level} is not 0 to {len(BLUR_LEVELS) - 1}")


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
