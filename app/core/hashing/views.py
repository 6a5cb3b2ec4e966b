"""Views of a picture: the parts a re-post hides its picture in, found by their geometry, and
the picture with a cut margin put back. No Qt, no SQL.

Each view is hashed with PDQ as a query-only signal (``view:<name>``,
:func:`app.core.matching.signal_types.view_variant`), looked up as a whole picture: a partner's
list gives one hash per item, so the query side must find the picture the copy carries.

* ``border``: the picture inside a frame of any colour, even or not, plain or shaded (a zoom-out
  with a coloured or white frame): the lines from each edge inwards that are smooth (little
  change along the line and from one line to the next) are the frame. Found on three or four
  sides (two opposite flat sides are the bars of :mod:`app.core.hashing.bars`, which has them).
* ``band``: the sharp picture inside a vertical (9:16) re-framing over a blurred or stretched
  copy of itself: the rows whose Laplacian is strong, between rows whose Laplacian is weak.
* ``pip``: an inset, axis-aligned rectangle over other footage or a meme template (picture in
  picture), :data:`PIP_MIN`..:data:`PIP_MAX` of each side: rows and columns with long steps of
  grey level are its candidate sides, and a rectangle is kept when steps run along most of all
  four (:func:`find_pips`); its edges are then moved onto the full picture and past an
  outline (:func:`refine_box`). For a video, a rectangle found at the same place in most of the
  first frames (:func:`steady_pip`).
* ``screen``: a screen filmed by a camera: the largest convex quadrilateral among the edges'
  contours (Canny, ``findContours``, ``approxPolyDP``) that is not an axis-aligned rectangle,
  its sides fitted again on the full picture (:func:`refine_quad`), warped back to a rectangle
  of its own aspect and blurred a little against moiré.
* ``padN``: the picture with a margin of N % of the original's side put back on each side by
  reflection (:data:`PAD_LEVELS`): a copy cut by a few percent per side hashes near its original
  once its margin is approximately restored.

Detection works on a grey copy at most :data:`DETECT_SIDE` px on its long side
(:func:`detect_plane`); a geometry is a box in fractions of the picture (:data:`Box`) or a
quadrilateral (:data:`Quad`), so it applies to the full-size luma plane the views are hashed
from. OpenCV is used for geometry only (resizing, edges, contours, warps); decoding stays
with PyAV and Pillow.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from app.core.hashing.pdq import pdq_from_luma
from app.core.matching.signal_types import view_variant, zoom_variant
from app.core.model.domain import Algorithm, Signal

log = logging.getLogger(__name__)

#: Long side (px) of the grey copy the geometry is found on.
DETECT_SIDE = 320
#: A view must keep at least this share of each dimension of the picture.
MIN_VIEW_FRACTION = 0.2
#: Crop put back: the share of the original's side each level restores on every side (per
#: cent of the original; the copy is the original less twice that). Measured in
#: docs/PERFORMANCE.md, "Views of a picture".
PAD_LEVELS = (2, 4)
#: Long side (px) of the plane the padded views are hashed from (a query-only view need not be
#: the reference's exact hash).
PAD_SIDE = 256
#: The centres stored with every picture and sampled frame (``zoom:<percent>``, the percent cut
#: off each side): the reference side of crops and zooms too deep for a margin put back
#: (:data:`PAD_LEVELS` reaches about 4 %), and of small crops seen through a query that has no
#: margin put back (a mirrored copy, trimmed of a caption band). A copy cut by c % per side
#: finds a level at or just above c with its plain hash, or near c - 2 with its padded view:
#: 1 % apart up to 5, then 2 % apart (3 levels 4 % apart: 147 of 247 crops of 3-16 % of the
#: test photos matched; 5 to 15 % 2 % apart: 184; docs/PERFORMANCE.md, "Views of a picture").
ZOOM_LEVELS = (3, 4, 5, 7, 9, 11, 13, 15)

Box = tuple[float, float, float, float]
"""(left, top, right, bottom) in fractions of the picture's width and height."""
Quad = tuple[tuple[float, float], ...]
"""Four corners (x, y) in fractions of the picture, clockwise from the top left."""

# border: a line is smooth when its mean absolute step along the line is at most this (grey
# levels, on the detection copy) and its mean distance from the line outside it at most
# BORDER_STEP_ACROSS.
BORDER_STEP_ALONG = 2.0
BORDER_STEP_ACROSS = 3.0
BORDER_MIN = 0.02  # a side counts from this share of its dimension
BORDER_MAX = 0.3  # and is looked for up to this share
# band: a sharp band's rows have at least BAND_CONTRAST times the Laplacian of the rows
# outside it, the band is BAND_MIN..BAND_MAX of the height and leaves BAND_MARGIN above and
# below.
BAND_CONTRAST = 2.0
BAND_MIN, BAND_MAX, BAND_MARGIN = 0.2, 0.8, 0.06
# pip: the inset's sides are PIP_MIN..PIP_MAX of the picture's.
PIP_MIN, PIP_MAX = 0.18, 0.7
# screen: the quadrilateral covers SCREEN_MIN..SCREEN_MAX of the picture's area.
SCREEN_MIN, SCREEN_MAX = 0.12, 0.92


@dataclass(frozen=True)
class Geometry:
    """The views found in a picture (or decided for a video): boxes and a quadrilateral, each
    None when not found."""

    border: Box | None = None
    band: Box | None = None
    pip: Box | None = None
    screen: Quad | None = None

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.border, self.band, self.pip, self.screen))


def detect_plane(luma: np.ndarray) -> np.ndarray:
    """The grey copy the geometry is found on: ``luma`` (HxW float) area-reduced to at most
    :data:`DETECT_SIDE` px on its long side, float32."""
    plane = np.asarray(luma, dtype=np.float32)
    h, w = plane.shape
    scale = DETECT_SIDE / max(h, w)
    if scale >= 1.0:
        return np.ascontiguousarray(plane)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(plane, size, interpolation=cv2.INTER_AREA)


def _u8(small: np.ndarray) -> np.ndarray:
    return np.clip(small + 0.5, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# border


def _smooth_run(lines: np.ndarray, limit: int) -> int:
    """How many lines from the edge of ``lines`` (L x N, edge first) are smooth: little step
    along each, little change from one to the next."""
    along = np.abs(np.diff(lines[:limit], axis=1)).mean(axis=1)
    across = np.abs(np.diff(lines[: limit + 1], axis=0)).mean(axis=1)
    run = 0
    slack = 1  # one odd line at the very edge (an encoder's)
    for i in range(limit):
        ok = along[i] <= BORDER_STEP_ALONG and (i + 1 >= limit or across[i] <= BORDER_STEP_ACROSS)
        if ok:
            run = i + 1
        elif run == 0 and i < slack:
            continue
        else:
            break
    return run


def find_border(small: np.ndarray) -> Box | None:
    """A frame around the picture on three or four sides (see the module docstring), as the box
    inside it; None when there is none."""
    h, w = small.shape
    if min(h, w) < 16:
        return None
    runs = []
    for lines, n in (
        (small, h),
        (small[::-1], h),
        (small.T, w),
        (small.T[::-1], w),
    ):
        limit = max(2, int(BORDER_MAX * n))
        run = _smooth_run(lines, limit)
        # A frame ends before the limit (a flat picture, or a sky, runs on past it).
        runs.append(run if max(2, BORDER_MIN * n) <= run < limit else 0)
    top, bottom, left, right = runs
    if sum(1 for r in runs if r) < 3:
        return None
    if h - top - bottom < MIN_VIEW_FRACTION * h or w - left - right < MIN_VIEW_FRACTION * w:
        return None
    return (left / w, top / h, (w - right) / w, (h - bottom) / h)


# --------------------------------------------------------------------------------------------
# band


def _row_sharpness(small: np.ndarray) -> np.ndarray:
    lap = np.abs(cv2.Laplacian(small, cv2.CV_32F, ksize=1))
    return lap.mean(axis=1)


def find_band(small: np.ndarray, sharpness: np.ndarray | None = None) -> Box | None:
    """The sharp horizontal band of a picture laid over a blurred or stretched copy of itself,
    as a box; None when the rows are not sharp inside and soft outside. ``sharpness``: each
    row's mean absolute Laplacian, when already summed over several frames."""
    h, w = small.shape
    if h < 32 or w < 16:
        return None
    s = _row_sharpness(small) if sharpness is None else sharpness
    s = np.convolve(s, np.ones(3) / 3, mode="same")
    high, low = float(np.percentile(s, 70)), float(np.percentile(s, 10))
    if high <= 0 or high < BAND_CONTRAST * low:
        return None
    sharp = s > (high + low) / 2
    # The longest run of sharp rows.
    edges = np.flatnonzero(np.diff(np.concatenate(([0], sharp.astype(np.int8), [0]))))
    starts, ends = edges[::2], edges[1::2]
    if not len(starts):
        return None
    k = int(np.argmax(ends - starts))
    top, bottom = int(starts[k]), int(ends[k])
    # Short soft gaps inside the band (a flat sky) are part of it: join runs a few rows apart.
    for a, b in zip(starts[k + 1 :], ends[k + 1 :], strict=True):
        if a - bottom <= 0.05 * h:
            bottom = int(b)
    for a, b in zip(starts[:k][::-1], ends[:k][::-1], strict=True):
        if top - b <= 0.05 * h:
            top = int(a)
    if not (BAND_MIN * h <= bottom - top <= BAND_MAX * h):
        return None
    if top < BAND_MARGIN * h or h - bottom < BAND_MARGIN * h:
        return None
    inside = float(s[top:bottom].mean())
    outside = float(np.concatenate((s[: max(1, top - 2)], s[min(h - 1, bottom + 2) :])).mean())
    if inside < BAND_CONTRAST * outside:
        return None
    return (0.0, top / h, 1.0, bottom / h)


# --------------------------------------------------------------------------------------------
# quadrilaterals (pip, screen)


def _edges(small: np.ndarray) -> np.ndarray:
    grey = cv2.GaussianBlur(_u8(small), (3, 3), 0)
    edges = cv2.Canny(grey, 40, 120)
    return cv2.dilate(edges, np.ones((3, 3), np.uint8))


def _quads(edges: np.ndarray) -> list[np.ndarray]:
    """Convex quadrilaterals among the contours of an edge map (corner arrays of 4x2 float,
    in pixels of the map)."""
    h, w = edges.shape
    contours, _ = cv2.findContours(edges, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    # And every edge at once: a screen in a plain room is the hull of all the edges.
    points = cv2.findNonZero(edges)
    contours = [*contours, points] if points is not None else list(contours)
    out = []
    floor = 0.02 * h * w
    for c in contours:
        if cv2.contourArea(c) < floor:
            continue
        hull = cv2.convexHull(c)
        approx = cv2.approxPolyDP(hull, 0.03 * cv2.arcLength(hull, True), True)
        if len(approx) == 4 and cv2.isContourConvex(approx):
            out.append(approx.reshape(4, 2).astype(np.float32))
    return out


def _ordered(q: np.ndarray) -> np.ndarray:
    """Corners clockwise from the top left."""
    s = q.sum(axis=1)
    d = q[:, 0] - q[:, 1]
    return np.array([q[np.argmin(s)], q[np.argmax(d)], q[np.argmax(s)], q[np.argmin(d)]])


def _axis_box(q: np.ndarray, w: int, h: int) -> Box | None:
    """The box of a quadrilateral that is an axis-aligned rectangle (each corner within 2.5 %
    of the picture of its bounding box's corner), else None."""
    tl, tr, br, bl = _ordered(q)
    x0, y0 = min(tl[0], bl[0]), min(tl[1], tr[1])
    x1, y1 = max(tr[0], br[0]), max(bl[1], br[1])
    tol_x, tol_y = 0.025 * w, 0.025 * h
    corners = ((tl, x0, y0), (tr, x1, y0), (br, x1, y1), (bl, x0, y1))
    if any(abs(c[0] - x) > tol_x or abs(c[1] - y) > tol_y for c, x, y in corners):
        return None
    return (x0 / w, y0 / h, x1 / w, y1 / h)


def _pip_box(box: Box) -> bool:
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    inside = x0 > 0.01 or y0 > 0.01 or x1 < 0.99 or y1 < 0.99  # not the whole picture
    return inside and PIP_MIN <= bw <= PIP_MAX and PIP_MIN <= bh <= PIP_MAX


#: A step of at least this many grey levels (detection copy) across a line is an edge.
EDGE_STEP = 10.0
#: An inset's sides must each be steps along at least this share of their length.
PIP_COVER = 0.6


def _long_runs(edge: np.ndarray, min_len: int) -> list[tuple[int, int, int]]:
    """(line, start, end) of the longest run of each line (row) of a boolean map, for lines
    whose longest run is at least ``min_len``, keeping the longest of neighbouring lines."""
    padded = np.zeros((edge.shape[0], edge.shape[1] + 2), np.int8)
    padded[:, 1:-1] = edge
    change = np.diff(padded, axis=1)
    out: list[tuple[int, int, int]] = []
    for y in np.flatnonzero(edge.sum(axis=1) >= min_len).tolist():
        starts = np.flatnonzero(change[y] == 1)
        ends = np.flatnonzero(change[y] == -1)
        k = int(np.argmax(ends - starts))
        if ends[k] - starts[k] >= min_len:
            out.append((y, int(starts[k]), int(ends[k])))
    kept: list[tuple[int, int, int]] = []
    for run in out:  # a step spreads over two lines: keep the longer
        if kept and run[0] - kept[-1][0] <= 2:
            if run[2] - run[1] > kept[-1][2] - kept[-1][1]:
                kept[-1] = run
            continue
        kept.append(run)
    return kept


def _pairs(lines: list[int], lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (a, b) of ``lines`` with ``lo <= b - a <= hi``, as two arrays."""
    arr = np.array(sorted(set(lines)), np.intp)
    a, b = np.meshgrid(arr, arr, indexing="ij")
    keep = (b - a >= lo) & (b - a <= hi)
    return a[keep], b[keep]


#: Lines (rows, columns) with the longest steps tried as an inset's sides, at most.
PIP_LINES = 40
#: Candidate insets kept per picture, at most (the best outlined).
PIP_KEEP = 6
#: More rectangles than this passing: steps everywhere, no inset stands out.
PIP_TOO_MANY = 2000


def find_pips(small: np.ndarray) -> list[Box]:
    """Axis-aligned inset rectangles of a picture (sides :data:`PIP_MIN`..:data:`PIP_MAX` of
    the picture's), the most clearly outlined first: the rows and columns with long steps
    (:data:`EDGE_STEP`) are the candidate sides, and a rectangle of two of each is kept when
    steps run along at least :data:`PIP_COVER` of each of its four sides."""
    h, w = small.shape
    if min(h, w) < 32:
        return []
    grey = cv2.GaussianBlur(small, (3, 3), 0)
    steps_v = (np.abs(np.diff(grey, axis=1)) >= EDGE_STEP).astype(np.uint8)  # h x (w-1)
    steps_h = (np.abs(np.diff(grey, axis=0)) >= EDGE_STEP).astype(np.uint8)  # (h-1) x w
    vert: np.ndarray = cv2.morphologyEx(steps_v, cv2.MORPH_CLOSE, np.ones((7, 1), np.uint8))
    horiz: np.ndarray = cv2.morphologyEx(steps_h, cv2.MORPH_CLOSE, np.ones((1, 7), np.uint8))
    cols = _long_runs(vert.T, round(PIP_MIN * h))
    rows = _long_runs(horiz, round(PIP_MIN * w))
    cols = sorted(cols, key=lambda r: r[1] - r[2])[:PIP_LINES]
    rows = sorted(rows, key=lambda r: r[1] - r[2])[:PIP_LINES]
    if len(cols) < 2 or len(rows) < 2:
        return []
    vert = cv2.dilate(vert, np.ones((1, 3), np.uint8))  # a column either side
    horiz = cv2.dilate(horiz, np.ones((3, 1), np.uint8))
    # Steps counted along each row and down each column (a zero first).
    along = np.zeros((h - 1, w + 1), np.int32)
    along[:, 1:] = np.cumsum(horiz, axis=1)
    down = np.zeros((h + 1, w - 1), np.int32)
    down[1:] = np.cumsum(vert, axis=0)
    # The boundary between column x and x + 1 of the picture is the picture's column x + 1.
    x0, x1 = _pairs([c[0] + 1 for c in cols], PIP_MIN * w, PIP_MAX * w)
    y0, y1 = _pairs([r[0] + 1 for r in rows], PIP_MIN * h, PIP_MAX * h)
    if not len(x0) or not len(y0):
        return []
    yy0, yy1 = y0[:, None], y1[:, None]
    width = (x1 - x0)[None, :].astype(np.float32)
    height = (yy1 - yy0).astype(np.float32)
    top = (along[yy0 - 1, x1] - along[yy0 - 1, x0]) / width
    bottom = (along[yy1 - 1, x1] - along[yy1 - 1, x0]) / width
    left = (down[yy1, x0 - 1] - down[yy0, x0 - 1]) / height
    right = (down[yy1, np.minimum(x1 - 1, w - 2)] - down[yy0, np.minimum(x1 - 1, w - 2)]) / height
    score = np.minimum(np.minimum(top, bottom), np.minimum(left, right))
    iy, ix = np.nonzero(score >= PIP_COVER)
    if len(iy) > PIP_TOO_MANY:
        return []  # steps everywhere (a texture): no inset stands out
    bx0, bx1, by0, by1 = x0[ix] / w, x1[ix] / w, y0[iy] / h, y1[iy] / h
    inside = (bx0 > 0.01) | (by0 > 0.01) | (bx1 < 0.99) | (by1 < 0.99)  # not the whole picture
    order = np.lexsort(((bx1 - bx0) * (by1 - by0), -np.round(score[iy, ix], 2)))
    found = [
        (float(bx0[k]), float(by0[k]), float(bx1[k]), float(by1[k]))
        for k in order[: 4 * PIP_TOO_MANY // 10].tolist()
        if inside[k]
    ]
    kept: list[Box] = []
    for box in found:  # near-duplicates (the two edges of an outline) count once
        if all(_box_gap(box, k) >= 0.02 for k in kept):
            kept.append(box)
            if len(kept) == PIP_KEEP:
                break
    return kept


def find_pip(small: np.ndarray) -> Box | None:
    boxes = find_pips(small)
    return boxes[0] if boxes else None


def _box_gap(a: Box, b: Box) -> float:
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


def steady_pip(boxes: Sequence[Sequence[Box]], share: float = 0.6) -> Box | None:
    """The inset rectangle found at the same place (within 2 % of the picture) in at least
    ``share`` of several frames' candidates (:func:`find_pips` of each), averaged; None when
    none recurs."""
    frames = list(boxes)
    if not frames:
        return None
    need = max(1, int(np.ceil(share * len(frames))))
    for cand in (b for found in frames for b in found):
        same = []
        for found in frames:
            near = [
                b for b in found if max(abs(x - y) for x, y in zip(b, cand, strict=True)) < 0.02
            ]
            if near:
                same.append(near[0])
        if len(same) >= need:
            mean = np.mean(np.array(same), axis=0)
            return (float(mean[0]), float(mean[1]), float(mean[2]), float(mean[3]))
    return None


def find_screen(small: np.ndarray) -> Quad | None:
    """The largest convex quadrilateral that is not an axis-aligned rectangle and covers
    :data:`SCREEN_MIN`..:data:`SCREEN_MAX` of the picture (a filmed screen, seen at an angle),
    as corners in fractions; None when there is none."""
    h, w = small.shape
    if min(h, w) < 32:
        return None
    best, best_area = None, 0.0
    for q in _quads(_edges(small)):
        area = cv2.contourArea(q) / (h * w)
        if not (SCREEN_MIN <= area <= SCREEN_MAX) or area <= best_area:
            continue
        if _axis_box(q, w, h) is not None:
            continue
        o = _ordered(q)
        # A plausible screen: opposite sides of comparable length (perspective, not a sliver).
        sides = np.linalg.norm(o - np.roll(o, -1, axis=0), axis=1)
        if min(sides[0], sides[2]) < 0.5 * max(sides[0], sides[2]):
            continue
        if min(sides[1], sides[3]) < 0.5 * max(sides[1], sides[3]):
            continue
        best, best_area = o, area
    if best is None:
        return None
    return tuple((float(x) / w, float(y) / h) for x, y in best)


def find_geometry(small: np.ndarray) -> Geometry:
    """Every view found in one picture's detection copy (:func:`detect_plane`)."""
    return Geometry(
        border=find_border(small),
        band=find_band(small),
        pip=find_pip(small),
        screen=find_screen(small),
    )


# --------------------------------------------------------------------------------------------
# the views' planes and hashes


#: A line inside a found box whose grey levels vary less than this is an outline, not picture.
OUTLINE_STD = 6.0


def refine_box(plane: np.ndarray, box: Box) -> Box:
    """``box`` (found on the detection copy) with each side moved, within a few lines of the
    full-size ``plane`` (float luma), to the line of the strongest step across it over the
    side's span (the innermost of the strong ones), then past any line of one flat colour (an
    outline drawn around the picture): the copy's resolution would leave the edge up to a few
    pixels off."""
    h, w = plane.shape
    x0, y0, x1, y1 = (round(box[0] * w), round(box[1] * h), round(box[2] * w), round(box[3] * h))
    reach = max(3, round(2.5 * max(h, w) / DETECT_SIDE))

    def best(profile_of, at: int, n: int, inward: int) -> int:
        lo, hi = max(1, at - reach), min(n - 1, at + reach)
        if hi <= lo:
            return at
        steps = np.array([profile_of(i) for i in range(lo, hi + 1)])
        strong = np.flatnonzero(steps >= 0.5 * steps.max())
        # The innermost strong step: past an outline drawn around the picture.
        return lo + int(strong[-1] if inward > 0 else strong[0])

    def row_step(i: int) -> float:
        return float(np.abs(plane[i, x0:x1] - plane[i - 1, x0:x1]).mean())

    def col_step(i: int) -> float:
        return float(np.abs(plane[y0:y1, i] - plane[y0:y1, i - 1]).mean())

    if y0 > 0:
        y0 = best(row_step, y0, h, 1)
    if y1 < h:
        y1 = best(row_step, y1, h, -1)
    if x0 > 0:
        x0 = best(col_step, x0, w, 1)
    if x1 < w:
        x1 = best(col_step, x1, w, -1)

    # Then past an outline drawn around the picture: lines of one flat colour just inside.
    def flat(line: np.ndarray) -> bool:
        return line.size > 0 and float(line.std()) < OUTLINE_STD

    for _ in range(reach):
        if y1 - y0 > 2 and flat(plane[y0, x0:x1]):
            y0 += 1
        if y1 - y0 > 2 and flat(plane[y1 - 1, x0:x1]):
            y1 -= 1
        if x1 - x0 > 2 and flat(plane[y0:y1, x0]):
            x0 += 1
        if x1 - x0 > 2 and flat(plane[y0:y1, x1 - 1]):
            x1 -= 1
    return (x0 / w, y0 / h, x1 / w, y1 / h)


def crop_box(plane: np.ndarray, box: Box) -> np.ndarray:
    """The part of ``plane`` (HxW or HxWxC) inside ``box`` (a view)."""
    h, w = plane.shape[:2]
    x0, y0, x1, y1 = box
    return plane[round(y0 * h) : round(y1 * h), round(x0 * w) : round(x1 * w)]


def _line_through(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    vx, vy, x, y = cv2.fitLine(points.astype(np.float32), cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
    return np.array([x, y]), np.array([vx, vy])


def _cross(p: tuple[np.ndarray, np.ndarray], q: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Where two lines (point, direction) cross."""
    (a, u), (b, v) = p, q
    det = u[0] * -v[1] - u[1] * -v[0]
    if abs(det) < 1e-9:
        raise ValueError("parallel sides")
    t = ((b[0] - a[0]) * -v[1] - (b[1] - a[1]) * -v[0]) / det
    return a + t * u


def refine_quad(plane: np.ndarray, quad: Quad) -> Quad:
    """``quad`` (found on the detection copy) with each side moved onto the full-size
    ``plane``'s edge: along the side, the innermost strong step across it within a few pixels,
    a line fitted through those points, the corners where the lines cross. The quad as given
    when the sides cannot be fitted."""
    h, w = plane.shape
    corners = np.array([(x * w, y * h) for x, y in quad], np.float64)
    centre = corners.mean(axis=0)
    reach = max(3, round(2.5 * max(h, w) / DETECT_SIDE))
    offsets = np.arange(-reach, reach + 1)
    lines = []
    for k in range(4):
        a, b = corners[k], corners[(k + 1) % 4]
        along = (b - a) / max(1e-9, float(np.linalg.norm(b - a)))
        normal = np.array([-along[1], along[0]])
        if np.dot(centre - a, normal) < 0:
            normal = -normal  # pointing inwards
        ts = np.linspace(0.1, 0.9, 24)
        base = a[None, :] + ts[:, None] * (b - a)[None, :]
        pts = base[:, None, :] + offsets[None, :, None] * normal[None, None, :]
        xs = np.clip(np.rint(pts[..., 0]).astype(np.intp), 0, w - 1)
        ys = np.clip(np.rint(pts[..., 1]).astype(np.intp), 0, h - 1)
        profile = plane[ys, xs]  # samples x offsets, outside to inside
        steps = np.abs(np.diff(profile, axis=1))
        found = []
        for i in range(len(ts)):
            strong = np.flatnonzero(steps[i] >= 0.5 * steps[i].max())
            if steps[i].max() > 0 and len(strong):
                o = offsets[strong[-1]] + 1  # the first pixel inside the innermost step
                found.append(base[i] + o * normal)
        if len(found) < 6:
            return quad
        lines.append(_line_through(np.array(found)))
    try:
        refined = np.array([_cross(lines[k - 1], lines[k]) for k in range(4)])
    except ValueError:
        return quad
    if float(np.abs(refined - corners).max()) > 2 * reach:
        return quad
    return tuple((float(x) / w, float(y) / h) for x, y in refined)


def warp_quad(plane: np.ndarray, quad: Quad, long_side: int = 512) -> np.ndarray:
    """The quadrilateral of ``plane`` (float luma) warped to a rectangle of its own aspect
    (the mean lengths of its opposite sides), at most ``long_side`` px, blurred a little
    against moiré."""
    h, w = plane.shape[:2]
    src = np.array([(x * w, y * h) for x, y in quad], np.float32)
    width = float(np.linalg.norm(src[1] - src[0]) + np.linalg.norm(src[2] - src[3])) / 2
    height = float(np.linalg.norm(src[3] - src[0]) + np.linalg.norm(src[2] - src[1])) / 2
    scale = min(1.0, long_side / max(width, height, 1.0))
    ow, oh = max(8, round(width * scale)), max(8, round(height * scale))
    dst = np.array([(0, 0), (ow, 0), (ow, oh), (0, oh)], np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    out = cv2.warpPerspective(
        np.asarray(plane, np.float32),
        m,
        (ow, oh),
        flags=cv2.INTER_AREA,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return cv2.GaussianBlur(out, (0, 0), max(0.8, max(ow, oh) / 400))


def _pad_copy(plane: np.ndarray) -> np.ndarray:
    """``plane`` as float luma, reduced to at most :data:`PAD_SIDE` px long."""
    plane = np.asarray(plane, np.float32)
    h, w = plane.shape
    scale = PAD_SIDE / max(h, w)
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        plane = cv2.resize(plane, size, interpolation=cv2.INTER_AREA)
    return plane


def pad_planes(plane: np.ndarray, levels: Sequence[int]) -> dict[int, np.ndarray]:
    """``plane`` (float luma) with ``level`` % of the original's side put back on each side by
    reflection, for each level (the copy is the original less 2 x ``level`` %), from one copy
    at most :data:`PAD_SIDE` px long."""
    if not levels:
        return {}
    plane = _pad_copy(plane)
    h, w = plane.shape
    out = {}
    for level in levels:
        share = level / 100 / (1 - 2 * level / 100)
        py, px = round(h * share), round(w * share)
        out[level] = cv2.copyMakeBorder(plane, py, py, px, px, cv2.BORDER_REFLECT)
    return out


def zoom_planes(plane: np.ndarray, levels: Sequence[int]) -> dict[int, np.ndarray]:
    """The centre of ``plane`` (float luma) with ``level`` % cut off each side, for each level,
    from one copy at most :data:`PAD_SIDE` px long."""
    if not levels:
        return {}
    plane = _pad_copy(plane)
    h, w = plane.shape
    out = {}
    for level in levels:
        dy, dx = round(h * level / 100), round(w * level / 100)
        if h - 2 * dy >= 16 and w - 2 * dx >= 16:
            out[level] = plane[dy : h - dy, dx : w - dx]
    return out


def zoom_signals(
    luma: np.ndarray,
    *,
    levels: Sequence[int] = ZOOM_LEVELS,
    algorithm: Algorithm = Algorithm.PDQ,
    frame_ts: float | None = None,
) -> list[Signal]:
    """The stored PDQ signals (``zoom:<percent>``) of the picture's centres; none for a
    picture OpenCV refuses (its other signals stand)."""
    try:
        planes = zoom_planes(luma, levels)
    except (cv2.error, ValueError, FloatingPointError):
        log.warning("centres skipped for a %s picture", "x".join(map(str, luma.shape)))
        return []
    out = []
    for level, plane in planes.items():
        value, quality = pdq_from_luma(np.ascontiguousarray(plane))
        out.append(Signal(algorithm, value, quality, frame_ts, zoom_variant(level)))
    return out


def view_planes(
    luma: np.ndarray, geometry: Geometry, pads: Sequence[int] = ()
) -> dict[str, np.ndarray]:
    """The views of a luma plane by name: those ``geometry`` found, then the padded ones."""
    out: dict[str, np.ndarray] = {}
    h, w = luma.shape
    for name, box in (("border", geometry.border), ("band", geometry.band), ("pip", geometry.pip)):
        if box is not None:
            part = crop_box(luma, refine_box(luma, box))
            if min(part.shape) >= MIN_VIEW_FRACTION * min(h, w) / 2:
                out[name] = part
    if geometry.screen is not None:
        out["screen"] = warp_quad(luma, refine_quad(luma, geometry.screen))
    for level, padded in pad_planes(luma, pads).items():
        out[f"pad{level}"] = padded
    return out


def view_signals(
    luma: np.ndarray,
    geometry: Geometry,
    *,
    pads: Sequence[int] = (),
    algorithm: Algorithm = Algorithm.PDQ,
    frame_ts: float | None = None,
) -> list[Signal]:
    """The query-only PDQ signals (``view:<name>``) of the views of a luma plane."""
    out = []
    for name, plane in view_planes(luma, geometry, pads).items():
        value, quality = pdq_from_luma(plane)
        out.append(Signal(algorithm, value, quality, frame_ts, view_variant(name)))
    return out


def picture_view_signals(luma: np.ndarray, *, pads: Sequence[int] = PAD_LEVELS) -> list[Signal]:
    """A still picture's view signals: its geometry found on its own detection copy, and the
    padded views. A picture the views cannot be taken of (an odd shape OpenCV refuses) gets
    none: its other signals stand."""
    try:
        return view_signals(luma, find_geometry(detect_plane(luma)), pads=pads)
    except (cv2.error, ValueError, FloatingPointError):
        log.warning("views skipped for a %s picture", "x".join(map(str, luma.shape)), exc_info=True)
        return []


def frame_view_signals(
    luma: np.ndarray, small: np.ndarray, *, frame_ts: float | None = None
) -> list[Signal]:
    """The views a video frame gives on its own: the margin put back, and a filmed screen
    where one is seen (it moves with the camera); none for a frame OpenCV refuses."""
    try:
        geometry = Geometry(screen=find_screen(small))
        return view_signals(
            luma, geometry, pads=PAD_LEVELS, algorithm=Algorithm.PDQ_FRAME, frame_ts=frame_ts
        )
    except (cv2.error, ValueError, FloatingPointError):
        log.warning("views skipped for a frame at %s s", frame_ts, exc_info=True)
        return []


def steady_view_signals(
    luma: np.ndarray, geometry: Geometry, *, frame_ts: float | None = None
) -> list[Signal]:
    """A video frame's views cut where the video's :class:`ViewDetector` decided (a frame, a
    band, an inset); none for a frame OpenCV refuses."""
    try:
        return view_signals(luma, geometry, algorithm=Algorithm.PDQ_FRAME, frame_ts=frame_ts)
    except (cv2.error, ValueError, FloatingPointError):
        log.warning("views skipped for a frame at %s s", frame_ts, exc_info=True)
        return []


@dataclass
class ViewDetector:
    """The steady views of a video, decided from its first frames' detection copies (as
    :class:`app.core.hashing.bars.BarDetector` decides the bars): a border or a band must be
    found in most of them at the same place, an inset at the same place
    (:func:`steady_pip`). A filmed screen moves with the camera: it is found frame by frame
    (:func:`find_screen`)."""

    frames: int = 0

    def __post_init__(self) -> None:
        self._borders: list[Box | None] = []
        self._pips: list[list[Box]] = []
        self._sharpness: np.ndarray | None = None
        self._shape: tuple[int, int] | None = None

    def add(self, small: np.ndarray) -> None:
        if self._shape is None:
            self._shape = small.shape
        elif small.shape != self._shape:
            return
        if float(small.std()) < 2.0:  # a flat frame (a fade, black) tells nothing
            return
        self.frames += 1
        self._borders.append(find_border(small))
        self._pips.append(find_pips(small))
        s = _row_sharpness(small)
        self._sharpness = s if self._sharpness is None else self._sharpness + s

    def geometry(self) -> Geometry:
        if not self.frames or self._shape is None:
            return Geometry()
        return Geometry(
            border=_steady_box(self._borders),
            band=None
            if self._sharpness is None
            else find_band(np.zeros(self._shape, np.float32), self._sharpness / self.frames),
            pip=steady_pip(self._pips),
        )


def _steady_box(boxes: list[Box | None], share: float = 0.6) -> Box | None:
    """The box found in at least ``share`` of the frames, all within 2 % of one another: the
    one of them that leaves the least out (the smallest frame)."""
    found = [b for b in boxes if b is not None]
    if not found or len(found) < share * len(boxes):
        return None
    arr = np.array(found)
    if float((arr.max(axis=0) - arr.min(axis=0)).max()) > 0.02:
        return None
    return (
        float(arr[:, 0].min()),
        float(arr[:, 1].min()),
        float(arr[:, 2].max()),
        float(arr[:, 3].max()),
    )
