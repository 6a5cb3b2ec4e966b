"""Half-picture PDQ hashes, so a copy stamped with a large logo still matches. No Qt, no SQL.

A logo, caption or sticker laid over a quarter of the picture moves the whole-picture PDQ by
50-90 bits: far past any threshold (the ``chair-22-with-large-logo`` and
``pattern-sd-with-large-logo`` corpus edits give 0-10 % of frames within 31 bits, with bars
trimmed). The half of the picture the overlay does not touch is unchanged, so each picture also
gets the PDQ of its four halves (``region:top``, ``region:bottom``, ``region:left``,
``region:right``), taken from the picture with its bars trimmed. A half is only ever compared
with the same half of another picture: the index keeps each region in a space of its own
(:meth:`app.core.hash_index.HashIndex.space`).

Measured on the corpus (``tests/unit/test_regions.py`` checks the same), per sampled frame, with
the target's frames at quality >= 50, distance to the nearest frame of the original:

=======================================  ======  ======  ======  ======  =========
query vs original                        top     bottom  left    right   unrelated
=======================================  ======  ======  ======  ======  =========
chair-22-with-large-logo vs chair-orig   82      **4**   30      78      111-118
pattern-sd-with-large-logo vs pattern-hd  --     **12**   --      --     110-118
=======================================  ======  ======  ======  ======  =========

(medians in bits; the logo sits in the top right, so the bottom half is clean.)

Region hashes do not need to agree with any outside reference implementation, so they are taken
from a small copy of the picture (:data:`REGION_SIDE` px on the long side): four PDQs of a
256x128 picture cost less than one of the 720p frame.

A mirrored or turned copy's halves are the original's halves, turned and moved: the left half
of a mirrored copy, mirrored back, is the original's right half. A picture's query therefore
carries each half in its 7 turns (``dih:<code>:<half>``, query-only), and the matcher looks each
up in the space of the half the turn puts it in (:func:`app.core.signal_types.half_query_space`):
a mirrored copy stamped with a sticker still matches through a clean half.

What they cannot do: an overlay over the middle of the picture touches every half. Halves are
also weaker evidence than the whole picture (half the content), which is why the matcher only
falls back to them when no whole-picture signal matched, a flat half (quality < 50) never
matches, and a picture whose halves would be under :data:`MIN_REGION_SIDE` px gets none. Two
different videos sharing a static half (the same studio backdrop filling the bottom half) would
match through it: ``match_halves = "off"`` turns the fallback off. Half hashes are kept out of
the partner export (:meth:`app.storage.hash_lists.HashListService.export_active`).
"""

from __future__ import annotations

import numpy as np

from app.core.domain import Algorithm, Signal
from app.core.pdq import DIHEDRAL_ORDER, luma_from_rgb, pdq_from_rgb, pdq_transformed_from_luma
from app.core.resample import area_reduce
from app.core.signal_types import dihedral_variant, region_variant

REGIONS = ("top", "bottom", "left", "right")
#: Long side of the reduced picture the halves are cut from.
REGION_SIDE = 256
#: A picture whose halves would be smaller than this (px, short side of a half) gets none.
MIN_REGION_SIDE = 32


def _reduce(pixels: np.ndarray) -> np.ndarray:
    h, w = pixels.shape[:2]
    scale = REGION_SIDE / max(h, w)
    if scale >= 1.0:
        return pixels
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return area_reduce(pixels, size)


def halves(pixels: np.ndarray) -> dict[str, np.ndarray]:
    """The four halves of a (reduced) picture, by region name; {} when it is too small."""
    h, w = pixels.shape[:2]
    if min(h // 2, w) < MIN_REGION_SIDE or min(h, w // 2) < MIN_REGION_SIDE:
        return {}
    return {
        "top": pixels[: h // 2],
        "bottom": pixels[h - h // 2 :],
        "left": pixels[:, : w // 2],
        "right": pixels[:, w - w // 2 :],
    }


def region_signals(
    pixels: np.ndarray,
    *,
    bgr: bool = False,
    algorithm: Algorithm = Algorithm.PDQ,
    frame_ts: float | None = None,
    dihedral: bool = False,
) -> list[Signal]:
    """PDQ of each half of ``pixels`` (HxWx3 uint8, RGB or, with ``bgr=True``, OpenCV's BGR;
    bars already trimmed), as ``region:<half>`` signals in :data:`REGIONS` order.

    ``dihedral``: then also each half rotated and mirrored, as the query-only
    ``dih:<code>:<half>`` signals (:func:`app.core.signal_types.dihedral_variant`), each
    hashed as the transformed half itself would be
    (:func:`app.core.pdq.pdq_transformed_from_luma`): a mirrored or rotated copy's half is a
    transformed half of the original (``half_query_space`` says which)."""
    small = _reduce(pixels)
    if bgr:
        small = small[:, :, ::-1]  # BGR -> RGB (made contiguous per half below)
    out = []
    turned = []
    for name, part in halves(small).items():
        variant = region_variant(name)
        if not dihedral:
            hex_, quality = pdq_from_rgb(np.ascontiguousarray(part))
            out.append(Signal(algorithm, hex_, quality, frame_ts, variant))
            continue
        luma = luma_from_rgb(np.ascontiguousarray(part))
        hashes, quality = pdq_transformed_from_luma(luma, faithful=False)
        out.append(Signal(algorithm, hashes[0], quality, frame_ts, variant))
        for how, value in zip(DIHEDRAL_ORDER[1:], hashes[1:], strict=True):
            v = dihedral_variant(how, variant)
            turned.append(Signal(algorithm, value, quality, frame_ts, v))
    return out + turned
