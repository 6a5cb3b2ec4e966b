"""Half-picture PDQ hashes, so a copy stamped with a large logo still matches. No Qt, no SQL.

A logo, caption or sticker laid over a quarter of the picture moves the whole-picture PDQ by
50-90 bits: far past any threshold (the ``chair-22-with-large-logo`` and
``pattern-sd-with-large-logo`` corpus edits give 0-10 % of frames within 31 bits, with bars
trimmed). The half of the picture the overlay does not touch is unchanged, so each picture also
gets the PDQ of its four halves (``region:top``, ``region:bottom``, ``region:left``,
``region:right``), taken from the picture with its bars trimmed. A half is only ever compared
with the same half of another picture: the index keeps each region in a space of its own
(:meth:`app.core.matching.hash_index.HashIndex.space`).

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
up in the space of the half the turn puts it in
(:func:`app.core.matching.signal_types.half_query_space`):
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

from app.core.hashing.pdq import (
    _DCT_MATRIX,
    _hexes_from_dcts,
    _reduction_matrix,
    dihedral_signals,
    luma_from_rgb,
    pdq_from_luma,
    pdq_from_rgb,
    pdq_transformed_from_luma,
)
from app.core.hashing.pdq_scaled import Band, band_of
from app.core.hashing.resample import area_reduce
from app.core.matching.signal_types import region_variant
from app.core.model.domain import Algorithm, Signal

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
    or an HxW luma plane, as a video frame's; bars already trimmed), as ``region:<half>``
    signals in :data:`REGIONS` order.

    ``dihedral``: then also each half rotated and mirrored, as the query-only
    ``dih:<code>:<half>`` signals (:func:`app.core.matching.signal_types.dihedral_variant`), each
    hashed as the transformed half itself would be
    (:func:`app.core.hashing.pdq.pdq_transformed_from_luma`): a mirrored or rotated copy's half is a
    transformed half of the original (``half_query_space`` says which)."""
    small = _reduce(pixels)
    if bgr:
        small = small[:, :, ::-1]  # BGR -> RGB (made contiguous per half below)
    parts = halves(small)
    if not dihedral:
        return [
            Signal(algorithm, *pdq_from_rgb(np.ascontiguousarray(part)), frame_ts, variant)
            for variant, part in ((region_variant(n), p) for n, p in parts.items())
        ]
    hashed = {
        name: pdq_transformed_from_luma(luma_from_rgb(np.ascontiguousarray(part)), faithful=False)
        for name, part in parts.items()
    }
    return _with_turns(hashed, algorithm, frame_ts)


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
    :func:`app.core.hashing.pdq.luma_from_rgb`; bars already trimmed), for a caller that has it.

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
    signals = _with_turns(_turned_halves(plane, small_h, small_w), algorithm, frame_ts)
    return signals if dihedral else signals[: len(REGIONS)]  # the plain halves come first


#: Where each of a half's 8 DCTs (:data:`DIHEDRAL_ORDER`) comes from: which of its 4 flipped
#: buffers (as it is, upside down, mirrored, both) and whether transposed (a quarter turn).
_TURN_SOURCES = (
    (0, False),
    (2, True),
    (3, False),
    (1, True),
    (1, False),
    (2, False),
    (0, True),
    (3, True),
)
#: Into the 16 buffers' DCTs followed by their transposes: the 4 halves' 8 DCTs each.
_TURN_PICK = np.array(
    [4 * half + flip + 16 * transposed for half in range(4) for flip, transposed in _TURN_SOURCES]
)
#: Floats gathered at a time by :func:`_banded_rows` (about 1 MB, as ``pdq.downsample_64``).
_GATHER_FLOATS = 1 << 18


def _banded_rows(plane: np.ndarray, index: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``map @ plane`` (n x W) for a banded n x H map given as its ``index`` and ``weight``
    (n x b each): the rows each output reads are gathered a few outputs at a time and weighed
    by a batch of small matrix products (as :func:`app.core.hashing.pdq_scaled.reduce_rows`)."""
    n, width = index.shape
    step = max(1, _GATHER_FLOATS // (width * plane.shape[1]))
    out = np.empty((n, 1, plane.shape[1]), dtype=np.float32)
    for i in range(0, n, step):
        gathered = plane[index[i : i + step]]
        np.matmul(weight[i : i + step, None, :], gathered, out=out[i : i + step])
    return out[:, 0, :]


def _banded_cols(reduced: np.ndarray, index: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``reduced @ map^T`` (R x n) for an R x W plane and a banded n x W map: one gather of
    the columns (n x b x R: each gathered column contiguous), weighed along the band.

    The columns are gathered as rows of the transposed plane, a plain copy of each, which is
    faster than gathering them in place and lays them out as ``reduced[:, index]`` does (the
    same products, summed in the same order: the same floats)."""
    gathered = np.ascontiguousarray(reduced.T)[index]  # n x b x R
    weighed: np.ndarray = np.matmul(gathered.transpose(0, 2, 1), weight[:, :, None])[:, :, 0].T
    return weighed


def _stacked(*bands: Band) -> tuple[np.ndarray, np.ndarray]:
    """Banded maps as one (their rows one after the other), narrower bands padded with
    zero weights."""
    width = max(index.shape[1] for index, _ in bands)
    pad = [((0, 0), (0, width - index.shape[1])) for index, _ in bands]
    index = np.concatenate([np.pad(b[0], p, mode="edge") for b, p in zip(bands, pad, strict=True)])
    weight = np.concatenate([np.pad(b[1], p) for b, p in zip(bands, pad, strict=True)])
    return index, weight


@functools.lru_cache(maxsize=64)
def _turned_maps(
    h: int, w: int, small_h: int, small_w: int
) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """The stacked maps :func:`_turned_halves` reads: the whole picture's rows as they are and
    upside down; the top's and the bottom's, each as they are and upside down; the whole
    picture's columns as they are and mirrored; the left's and the right's, each as they are
    and mirrored."""
    rows, top, bottom = _axis_bands(h, small_h)
    rows_t, top_t, bottom_t = _axis_bands(h, small_h, turned=True)
    cols, left, right = _axis_bands(w, small_w)
    cols_t, left_t, right_t = _axis_bands(w, small_w, turned=True)
    return (
        _stacked(rows, rows_t),
        _stacked(top, top_t, bottom, bottom_t),
        _stacked(cols, cols_t),
        _stacked(left, left_t, right, right_t),
    )


def _turned_halves(
    plane: np.ndarray, small_h: int, small_w: int
) -> dict[str, tuple[list[str], int]]:
    """Each half's hashes in :data:`DIHEDRAL_ORDER` and its quality. A half's 64x64 buffer as
    it is, upside down, mirrored and both come from its rows' and columns' maps and the same
    maps read in reverse: two gathers of rows (128 and 256 maps) and two of columns, then
    the 16 buffers' DCTs in one product; the quarter turns are transposed DCTs."""
    h, w = plane.shape
    full_rows, half_rows, cols, half_cols = _turned_maps(h, w, small_h, small_w)
    whole = _banded_rows(plane, *full_rows)  # whole picture, upside down: 128 x W
    top_bottom = _banded_rows(plane, *half_rows)  # top, top upside down, bottom, bottom u.d.
    # [half, row flip, 64, column flip, 64] -> [half, column flip, row flip, 64, 64]
    tb = _banded_cols(top_bottom, *cols).reshape(2, 2, 64, 2, 64).transpose(0, 3, 1, 2, 4)
    # [row flip, 64, half, column flip, 64] -> [half, column flip, row flip, 64, 64]
    lr = _banded_cols(whole, *half_cols).reshape(2, 64, 2, 2, 64).transpose(2, 3, 0, 1, 4)
    # Per half (REGIONS order): as it is, upside down, mirrored, both.
    buffers = np.concatenate([tb.reshape(2, 4, 64, 64), lr.reshape(2, 4, 64, 64)])
    dcts = _DCT_MATRIX @ buffers.reshape(16, 64, 64) @ _DCT_MATRIX.T
    hexes = _hexes_from_dcts(np.concatenate([dcts, dcts.transpose(0, 2, 1)])[_TURN_PICK])
    qualities = _qualities(buffers[:, 0])
    return {name: (hexes[8 * i : 8 * i + 8], qualities[i]) for i, name in enumerate(REGIONS)}


def _qualities(buffers: np.ndarray) -> list[int]:
    """:func:`app.core.hashing.pdq._quality` of each of a stack of 64x64 buffers, in one pass."""
    hundred, top = np.float32(100), np.float32(255)
    down = ((buffers[:, :-1, :] - buffers[:, 1:, :]) * hundred) / top
    across = ((buffers[:, :, :-1] - buffers[:, :, 1:]) * hundred) / top
    sums = np.abs(np.trunc(down)).sum(axis=(1, 2), dtype=np.float64)
    sums_across = np.abs(np.trunc(across)).sum(axis=(1, 2), dtype=np.float64)
    return [min((int(a) + int(b)) // 90, 100) for a, b in zip(sums, sums_across, strict=True)]


def _with_turns(
    hashed: dict[str, tuple[list[str], int]], algorithm: Algorithm, frame_ts: float | None
) -> list[Signal]:
    """The plain ``region:<half>`` signals, then every half's 7 turns
    (``dih:<code>:<half>``), from each half's hashes in :data:`DIHEDRAL_ORDER`."""
    out, turned = [], []
    for name, (hashes, quality) in hashed.items():
        plain, *turns = dihedral_signals(
            hashes, quality, algorithm=algorithm, frame_ts=frame_ts, of=region_variant(name)
        )
        out.append(plain)
        turned.extend(turns)
    return out + turned
