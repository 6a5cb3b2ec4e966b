"""Reducing pictures by area, in numpy (no OpenCV in the application: one FFmpeg, PyAV's).

:func:`area_reduce` averages each output pixel over the exact area of the input it covers,
fractional pixels at its edges weighted by the part covered: what OpenCV's ``INTER_AREA``
computes when shrinking (tests/unit/test_resample.py compares them: at most 1 level apart, from
rounding). Pillow's ``BOX`` filter is not this: it rounds each output pixel's edges to whole
input pixels, and on a non-integer factor moves busy pictures by up to 20+ levels.

Separable: rows are reduced first, then columns on the already smaller picture; each as a few
weighted sums of gathered rows (columns), about one pass over the input in all.
"""

from __future__ import annotations

import numpy as np


def _reduce_axis(a: np.ndarray, out: int, axis: int) -> np.ndarray:
    n = a.shape[axis]
    if out == n:
        return a.astype(np.float32, copy=False)
    scale = n / out
    edges = np.arange(out + 1, dtype=np.float64) * scale
    edges[-1] = n
    first = np.floor(edges[:-1]).astype(np.intp)
    shape = [1] * a.ndim
    shape[axis] = out
    acc: np.ndarray | None = None
    # Output pixel i covers input pixels first[i] .. first[i] + ceil(scale): the k-th of them,
    # for every i at once, weighted by the part of it inside [edges[i], edges[i + 1]).
    for k in range(int(np.ceil(scale)) + 1):
        index = first + k
        cover = np.minimum(index + 1, edges[1:]) - np.maximum(index, edges[:-1])
        if not (cover > 0).any():
            break
        weight = (np.clip(cover, 0.0, None) / scale).astype(np.float32).reshape(shape)
        term = np.take(a, np.minimum(index, n - 1), axis=axis).astype(np.float32, copy=False)
        if acc is None:
            acc = term * weight
        else:
            term *= weight
            acc += term
    assert acc is not None
    return acc


def area_reduce(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``pixels`` (HxW or HxWxC, uint8 or float32) shrunk to ``size`` = (width, height), each
    no larger than the input's, by exact area averaging. uint8 comes back uint8 (rounded),
    anything else float32."""
    w, h = size
    rows, cols = pixels.shape[:2]
    if not (0 < w <= cols and 0 < h <= rows):
        raise ValueError(f"area_reduce shrinks only: {cols}x{rows} to {w}x{h}")
    out = _reduce_axis(pixels, h, 0)
    out = _reduce_axis(out, w, 1)
    if pixels.dtype == np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out, dtype=np.float32)
