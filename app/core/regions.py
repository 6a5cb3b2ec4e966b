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

import functools
import math

import numpy as np
import numpy.typing as npt

from app.core.domain import Algorithm, Signal
from app.core.pdq import (
    _DCT_MATRIX,
    DIHEDRAL_ORDER,
    _hex_from_dct,
    _hexes_from_dcts,
    _quality,
    _reduction_matrix,
    luma_from_rgb,
    pdq_from_luma,
    pdq_from_rgb,
    pdq_transformed_from_luma,
)
from app.core.pdq_scaled import Band, band_of, reduce_cols, reduce_rows
from app.core.resample import area_reduce
from app.core.signal_types import dihedral_variant, region_variant

REGIONS = ("top", "bottom", "left", "right")
#: Long side of the reduced picture the halves are cut from.
REGION_SIDE = 256
#: A picture whose halves would be smaller than this (px, short side of a half) gets none.
MIN_REGION_SIDE = 32


def _reduce(pixels: np.ndarray) -> np.ndarray:
    """``pixels`` (HxWx3, or an HxW plane) with its long side at most :data:`REGION_SIDE`."""
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


def _area_matrix(n: int, m: int) -> npt.NDArray[np.float64]:
    """m x n: OpenCV's INTER_AREA reduction of n pixels to m (each output the mean of the
    input span it covers, border pixels weighed by the part covered)."""
    scale = n / m
    out = np.zeros((m, n))
    for i in range(m):
        lo, hi = i * scale, (i + 1) * scale
        for j in range(math.floor(lo), min(n, math.ceil(hi))):
            out[i, j] = (min(hi, j + 1) - max(lo, j)) / scale
    return out


@functools.lru_cache(maxsize=64)
def _axis_bands(n: int, m: int, turned: bool = False) -> tuple[Band, Band, Band]:
    """PDQ's map of the whole reduced axis, of its first half and of its second half (as
    :func:`halves` cuts them), each composed with the reduction of ``n`` pixels to ``m``:
    banded 64 x n maps of the full-size axis. ``turned``: the maps of each part read in
    reverse (the part flipped along this axis: PDQ's map with its columns reversed)."""
    area = _area_matrix(n, m)
    parts = (slice(0, m), slice(0, m // 2), slice(m - m // 2, m))
    maps = [_reduction_matrix(p.stop - p.start) for p in parts]
    if turned:
        maps = [r[:, ::-1] for r in maps]
    bands = [band_of(r @ area[p]) for r, p in zip(maps, parts, strict=True)]
    return bands[0], bands[1], bands[2]


def region_signals_from_luma(
    luma: np.ndarray,
    *,
    algorithm: Algorithm = Algorithm.PDQ,
    frame_ts: float | None = None,
    dihedral: bool = False,
) -> list[Signal]:
    """:func:`region_signals` of a picture given as its luma plane (HxW float32, from
    :func:`app.core.pdq.luma_from_rgb`; bars already trimmed), for a caller that has it.

    The reduction to :data:`REGION_SIDE` and PDQ's own filter are both linear maps, so each
    half's 64x64 buffer is computed from the plane by their composition (cached per size),
    without making the reduced copy (1.5 ms against 3.9 for the colour route, on a 600x400
    picture). The colour picture's 8-bit rounding after the reduction is missing: measured on
    the corpus photos and the bench's synthetic photos, 187 of 204 halves hash the same as
    :func:`region_signals`, the others 2-4 bits away (up to 6 on grainy synthetic pictures),
    far inside the 31-bit match distance.

    ``dihedral``: each half's 7 turns too, as :func:`region_signals` gives them (each hashed
    as the turned half itself would be): a half flipped along an axis is that axis's map read
    in reverse, so the four flips of a half take two row maps and two column maps, and the
    quarter turns are their transposes."""
    plane = np.asarray(luma, dtype=np.float32)
    h, w = plane.shape
    scale = REGION_SIDE / max(h, w)
    if scale >= 1.0:  # not reduced: the halves of the plane itself
        parts = halves(plane)
        if not dihedral:
            return [
                Signal(algorithm, *pdq_from_luma(part), frame_ts, region_variant(name))
                for name, part in parts.items()
            ]
        hashed = {
            name: pdq_transformed_from_luma(part, faithful=False) for name, part in parts.items()
        }
        return _with_turns(hashed, algorithm, frame_ts)
    small_w, small_h = max(1, round(w * scale)), max(1, round(h * scale))
    if not halves(np.empty((small_h, small_w), dtype=np.uint8)):
        return []
    rows, top, bottom = _axis_bands(h, small_h)
    cols, left, right = _axis_bands(w, small_w)
    full_rows = reduce_rows(plane, rows)  # shared by the left and right halves
    top_rows, bottom_rows = reduce_rows(plane, top), reduce_rows(plane, bottom)
    if not dihedral:
        buffers = {
            "top": reduce_cols(top_rows, cols),
            "bottom": reduce_cols(bottom_rows, cols),
            "left": reduce_cols(full_rows, left),
            "right": reduce_cols(full_rows, right),
        }
        return [
            Signal(algorithm, *_hash_buffer(buffer), frame_ts, region_variant(name))
            for name, buffer in buffers.items()
        ]
    rows_t, top_t, bottom_t = _axis_bands(h, small_h, turned=True)
    cols_t, left_t, right_t = _axis_bands(w, small_w, turned=True)
    full_rows_t = reduce_rows(plane, rows_t)
    # Per half: its rows as they are and upside down, its columns as they are and mirrored.
    layout = {
        "top": (top_rows, reduce_rows(plane, top_t), cols, cols_t),
        "bottom": (bottom_rows, reduce_rows(plane, bottom_t), cols, cols_t),
        "left": (full_rows, full_rows_t, left, left_t),
        "right": (full_rows, full_rows_t, right, right_t),
    }
    hashed = {}
    for name, (upright, upside_down, c, c_t) in layout.items():
        plain = reduce_cols(upright, c)
        flips = np.stack(
            [
                plain,
                reduce_cols(upside_down, c),
                reduce_cols(upright, c_t),
                reduce_cols(upside_down, c_t),
            ]
        )
        dct, dct_x, dct_y, dct_xy = _DCT_MATRIX @ flips @ _DCT_MATRIX.T
        # As app.core.pdq.pdq_transformed_from_luma orders them (DIHEDRAL_ORDER).
        dcts = np.stack([dct, dct_y.T, dct_xy, dct_x.T, dct_x, dct_y, dct.T, dct_xy.T])
        hashed[name] = (_hexes_from_dcts(dcts), _quality(plain))
    return _with_turns(hashed, algorithm, frame_ts)


def _with_turns(
    hashed: dict[str, tuple[list[str], int]], algorithm: Algorithm, frame_ts: float | None
) -> list[Signal]:
    """The plain ``region:<half>`` signals, then every half's 7 turns
    (``dih:<code>:<half>``), from each half's hashes in :data:`DIHEDRAL_ORDER`."""
    out, turned = [], []
    for name, (hashes, quality) in hashed.items():
        variant = region_variant(name)
        out.append(Signal(algorithm, hashes[0], quality, frame_ts, variant))
        for how, value in zip(DIHEDRAL_ORDER[1:], hashes[1:], strict=True):
            turned.append(
                Signal(algorithm, value, quality, frame_ts, dihedral_variant(how, variant))
            )
    return out + turned


def _hash_buffer(buffer: np.ndarray) -> tuple[str, int]:
    """PDQ of a 64x64 buffer with the DCT as two BLAS products (4 us, against 76 for the
    reference's summation order, which whole-picture hashes keep): halves need not agree
    with any outside hasher, and the two orders gave the same hash for all 232 halves of the
    corpus and bench photos (they differ only when a DCT value is within float rounding of
    the median)."""
    dct = (_DCT_MATRIX @ buffer) @ _DCT_MATRIX.T
    return _hex_from_dct(dct), _quality(buffer)
