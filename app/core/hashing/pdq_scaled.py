"""PDQ of a picture decoded smaller than it is, as the reference hashes it at full size.
No Qt, no SQL.

The reference (and every partner using it) hashes the full-size picture: PDQ's 64x64 buffer is
a linear map of the full-size luma, ``L @ luma @ R`` (:func:`app.core.hashing.pdq.downsample_64`).
A JPEG decoded at 1/2 or 1/4 scale (DCT scaling) gives, pixel for pixel, the mean of each 2x2
or 4x4 block of the full-size decode (libjpeg's reduced IDCTs are exact block means, up to the
rounding of the result; measured: 0.3 grey levels RMS on the bench's photos). What is lost is
how the luma varies inside a block, and PDQ's weights vary across a block (its box filters are
a 64th of the side wide): hashing the small picture as it is moves 2-28 bits at 1/4 scale.

Here the full-size luma is estimated from the block means, then the reference's map applied
to the estimate, all as one linear map per axis (cached per size): the estimate is the smooth
curve whose block means are the decoded pixels - the derivative of the natural cubic spline
through the running sums of the blocks (the best linear estimate of a Brownian-like signal
from its block means; a Gaussian-process estimate with an exponential covariance of any length
from 3 to 256 px gave the same hashes). Measured against the ``pdqhash`` binding on the
full-size decode, 61 JPEGs of 1000-4032 px (corpus and scikit-image photos upscaled and
grained, the bench's synthetic photos), whole hash / worst of the 8 dihedral hashes:

=========  ===========================  ===============================  ================
scale      as decoded (equal, worst)    spline map (equal, worst)        decode, 2400x1600
=========  ===========================  ===============================  ================
1          61/61, 0 / 0                 (the reference map)              13.1-13.6 ms
1/2        3/23 at 2000+ px, 16 / 18    56/61, 2 / 2                     9.6-9.8 ms
1/4        0/23 at 2000+ px, 28 / 34    21/23 at 2000+ px, 2 / 2         8.2-8.6 ms
                                        (1900 px and under: up to 4 / 6)
1/8        0/23 at 2000+ px, 46 / 52    17/23 at 2000+ px, 4 / 4         7.4 ms
=========  ===========================  ===============================  ================

(A 2000+ px set of 23 and a 1000-2048 px set of 38; the remaining 2-bit differences are
near-ties, where two DCT values lie within 0.1 of the median: decoding only the luma plane at
full size moves the same bits.) :mod:`app.core.hashing.imaging` picks the scale from these figures.

The map along an axis is described by a :class:`ScaledAxis`: the full-size length, the block
size and which end the short block is at (an EXIF flip reverses an axis, putting it first).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.core.hashing import pdq

_F32 = np.float32
_BUFFER_DIM = 64
_GATHER_FLOATS = 1 << 18  # as in pdq.downsample_64
_LUMA_BAND_PIXELS = 1 << 22  # full-size pixels converted to luma at a time (16 MB of float32)
#: Spline weights smaller than this share of a row's largest are left out of its band (they
#: decay geometrically, by 0.27 a block, away from the filter's window): at 1/4 scale the
#: band narrows from 26 to 15 decoded pixels, at most 0.01 grey level of error; no hash of the
#: measured sets changed (at 3e-3, 3 of 33 moved 2 bits).
_WEIGHT_FLOOR = 1e-4
#: Knots beyond a column's own on each side in the spline's local solves.
_SOLVE_MARGIN = 16


@dataclass(frozen=True)
class ScaledAxis:
    """One axis of a decoded plane against the full-size picture: ``length`` full-size pixels
    decoded in blocks of ``scale`` (each decoded pixel the mean of its block); when ``length``
    is not a multiple of ``scale`` the short block is the last one, or the first one when
    ``reversed`` (the axis was flipped after decoding)."""

    length: int
    scale: int = 1
    reversed: bool = False

    @property
    def decoded(self) -> int:
        """Decoded pixels along the axis."""
        return -(-self.length // self.scale)

    def flipped(self) -> ScaledAxis:
        return ScaledAxis(self.length, self.scale, not self.reversed)

    def edges(self) -> npt.NDArray[np.float64]:
        """Full-size positions of the block boundaries, ``decoded + 1`` of them."""
        forward = np.minimum(np.arange(self.decoded + 1) * self.scale, self.length)
        if self.reversed:
            forward = self.length - forward[::-1]
        return forward.astype(np.float64)

    def crop(self, start: int, stop: int) -> ScaledAxis:
        """The axis of decoded pixels ``start:stop``."""
        edges = self.edges()
        length = int(edges[stop] - edges[start])
        if length % self.scale == 0:
            return ScaledAxis(length, self.scale)
        # the short block is kept: at the start when this axis has it first
        return ScaledAxis(length, self.scale, self.reversed and start == 0)


def spline_map(axis: ScaledAxis) -> npt.NDArray[np.float64]:
    """64 x decoded: the reference's map along the axis (64 x length) applied to the full-size
    pixels estimated from the decoded block means (see the module doc).

    The estimate of pixel ``x`` is ``F(x + 1) - F(x)``, F the natural cubic spline through the
    running sums ``F(edge_k)``; ``F = P f + Q sigma`` with sigma the spline's second
    derivatives, solving a tridiagonal system. Built in float64 in O(64 x length)."""
    n, m = axis.length, axis.decoded
    full = pdq._reduction_matrix(n)
    edges = axis.edges()
    h = np.diff(edges)
    # g[:, x] weighs F(x): sum_x M[:, x] (F(x + 1) - F(x))
    g = np.zeros((_BUFFER_DIM, n + 1))
    g[:, 1:] += full
    g[:, :-1] -= full
    x = np.arange(n + 1, dtype=np.float64)
    k = np.minimum(np.searchsorted(edges, x, side="right") - 1, m - 1)
    hk = h[k]
    right, left = edges[k + 1] - x, x - edges[k]
    # g @ P and g @ Q, by knot: x's interval k is non-decreasing and takes every value
    starts = np.flatnonzero(np.diff(k, prepend=-1))
    on_f = np.zeros((m + 1, _BUFFER_DIM))
    on_sigma = np.zeros((m + 1, _BUFFER_DIM))
    on_f[:m] += np.add.reduceat((g * (right / hk)).T, starts)
    on_f[1:] += np.add.reduceat((g * (left / hk)).T, starts)
    on_sigma[:m] += np.add.reduceat((g * ((right**3 / hk - hk * right) / 6)).T, starts)
    on_sigma[1:] += np.add.reduceat((g * ((left**3 / hk - hk * left) / 6)).T, starts)
    # F_k = sum_{j < k} h_j v_j: v_j weighs h_j times every knot after it
    after = np.cumsum(on_f[::-1], axis=0)[::-1]
    matrix = (after[1:] * h[:, None]).T
    if m >= 2:
        # interior second derivatives: h_{k-1} s_{k-1} + 2 (h_{k-1} + h_k) s_k + h_k s_{k+1}
        # = 6 (v_k - v_{k-1}); the ends are natural (s_0 = s_m = 0). T is symmetric.
        z = _solve_tridiagonal(h[1 : m - 1], 2.0 * (h[:-1] + h[1:]), on_sigma[1:m]).T
        matrix[:, 1:] += 6.0 * z
        matrix[:, :-1] -= 6.0 * z
    return matrix


Band = tuple[npt.NDArray[np.intp], pdq.FloatArray]
"""A 64 x n map as, for each of the 64 outputs, the indices of the inputs it reads (64 x
width, one width for all) and their float32 weights (as ``pdq._band``)."""


def band_of(matrix: npt.NDArray[np.float64]) -> Band:
    """The band of a dense 64 x n map; weights under a :data:`_WEIGHT_FLOOR` share of a row's
    largest are left out."""
    n = matrix.shape[1]
    magnitude = np.abs(matrix)
    keep = magnitude > magnitude.max(axis=1, keepdims=True) * _WEIGHT_FLOOR
    first = keep.argmax(axis=1)
    last = n - 1 - keep[:, ::-1].argmax(axis=1)
    width = min(n, int((last - first).max()) + 1)
    index = np.minimum(first, n - width)[:, None] + np.arange(width)
    weight = np.take_along_axis(matrix, index, axis=1).astype(_F32)
    index.setflags(write=False)
    weight.setflags(write=False)
    return index, weight


def _solve_tridiagonal(
    off: npt.NDArray[np.float64], diag: npt.NDArray[np.float64], rhs: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Solve ``T x = rhs`` (rhs: n x k, each column non-zero over a short run) for the
    symmetric tridiagonal T with ``diag`` (n) and ``off`` (n - 1).

    T is strongly diagonally dominant (the diagonal is twice the sum of the neighbours), so
    its inverse decays by at least 0.27 a step: each column is solved on its run widened by
    :data:`_SOLVE_MARGIN` knots on each side (0.27^16 < 1e-9), all columns at once as a
    batch of small dense systems instead of one long sequential elimination."""
    n, k = rhs.shape
    nonzero = rhs != 0
    first = np.where(nonzero.any(axis=0), nonzero.argmax(axis=0), 0)
    last = np.where(nonzero.any(axis=0), n - 1 - nonzero[::-1].argmax(axis=0), 0)
    width = min(n, int((last - first).max()) + 1 + 2 * _SOLVE_MARGIN)
    starts = np.clip(first - _SOLVE_MARGIN, 0, n - width)
    local = starts[:, None] + np.arange(width)[None, :]  # k x width
    systems = np.zeros((k, width, width))
    steps = np.arange(width)
    systems[:, steps, steps] = diag[local]
    systems[:, steps[:-1], steps[1:]] = off[local[:, :-1]]
    systems[:, steps[1:], steps[:-1]] = off[local[:, :-1]]
    local_rhs = np.take_along_axis(rhs, local.T, axis=0).T  # k x width
    solved = np.linalg.solve(systems, local_rhs[:, :, None])[:, :, 0]
    x = np.zeros((n, k))
    np.put_along_axis(x, local.T, solved.T, axis=0)
    return x


@functools.lru_cache(maxsize=256)
def _scaled_band(axis: ScaledAxis) -> Band:
    """:func:`spline_map` as a band; an axis at scale 1 is the reference's own band."""
    if axis.scale == 1:
        return pdq._band(axis.length)
    return band_of(spline_map(axis))


def reduce_rows(plane: pdq.FloatArray, rows: Band) -> pdq.FloatArray:
    """``rows @ plane`` (64 x W) for a banded 64 x H map: the rows each output reads are
    gathered a few outputs at a time (about 1 MB, as ``pdq.downsample_64``) and weighed by a
    batch of small matrix products (a quarter faster than ``einsum`` here; the sums differ
    from ``pdq.downsample_64``'s in float rounding, which is why the reference's own map at
    scale 1 keeps ``pdq.downsample_64``)."""
    row_index, row_weight = rows
    step = max(1, _GATHER_FLOATS // (row_index.shape[1] * plane.shape[1]))
    reduced = np.empty((_BUFFER_DIM, 1, plane.shape[1]), dtype=_F32)
    for i in range(0, _BUFFER_DIM, step):
        gathered = plane[row_index[i : i + step]]
        weights = row_weight[i : i + step, None, :]
        np.matmul(weights, gathered, out=reduced[i : i + step])  # the products, in place
    return reduced[:, 0, :]


def reduce_cols(reduced: pdq.FloatArray, cols: Band) -> pdq.FloatArray:
    """``reduced @ cols^T`` (64 x 64) for a 64 x W plane and a banded 64 x W map."""
    return reduce_rows(np.ascontiguousarray(reduced.T), cols).T


def downsample_64_banded(plane: pdq.FloatArray, rows: Band, cols: Band) -> pdq.FloatArray:
    """``rows @ plane @ cols^T`` for two banded maps (64 x H and 64 x W)."""
    return reduce_cols(reduce_rows(plane, rows), cols)


def downsample_64_scaled(luma: npt.ArrayLike, rows: ScaledAxis, cols: ScaledAxis) -> pdq.FloatArray:
    """The 64x64 buffer the reference computes from the full-size picture, estimated from the
    luma plane of a decode at reduced scale (``rows.decoded x cols.decoded``)."""
    plane = np.asarray(luma, dtype=_F32)
    if plane.shape != (rows.decoded, cols.decoded):
        raise ValueError(f"plane {plane.shape} is not {rows} x {cols} decoded")
    if rows.scale == 1 and cols.scale == 1:
        return pdq.downsample_64(plane)
    return downsample_64_banded(plane, _scaled_band(rows), _scaled_band(cols))


def downsample_64_rgb(rgb: np.ndarray) -> pdq.FloatArray:
    """``pdq.downsample_64(pdq.luma_from_rgb(rgb))`` (the same buffer) without holding the
    whole luma plane: the luma is made a band of rows at a time, for the output rows that
    read them. For big pictures (a 89-megapixel one would need 360 MB of float32 luma)."""
    rows, cols = rgb.shape[:2]
    if rows < 1 or cols < 1:
        raise ValueError(f"empty picture: {cols}x{rows}")
    if rows == _BUFFER_DIM and cols == _BUFFER_DIM:
        return pdq.downsample_64(pdq.luma_from_rgb(rgb))
    row_index, row_weight = pdq._band(rows)
    reduced = np.empty((_BUFFER_DIM, cols), dtype=_F32)
    rows_per_output = max(1, rows // _BUFFER_DIM)
    step = max(1, _LUMA_BAND_PIXELS // (cols * (rows_per_output + row_index.shape[1])))
    for i in range(0, _BUFFER_DIM, step):
        index = row_index[i : i + step]
        first, last = int(index.min()), int(index.max())
        luma = pdq.luma_from_rgb(rgb[first : last + 1])
        np.einsum(
            "is,isw->iw", row_weight[i : i + step], luma[index - first], out=reduced[i : i + step]
        )
    col_index, col_weight = pdq._band(cols)
    return np.einsum("js,ijs->ij", col_weight, reduced[:, col_index]).astype(_F32, copy=False)
