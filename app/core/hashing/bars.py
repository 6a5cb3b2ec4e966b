"""Evasion-resistant picture variants: letterbox/pillarbox bar trimming. No Qt, no SQL.

Re-uploads are often padded with bars (letterbox top/bottom, pillarbox left/right, or a flat
coloured frame) so that their PDQ no longer matches. :func:`trim_bars` finds such bars on a
single picture; :class:`BarDetector` finds them once for a whole video from several sampled
frames (a bar must be flat, and of the same colour, in every informative frame, so a dark scene
is not mistaken for a bar) and then one crop is applied to every frame.

A border *line* (row for top/bottom, column for left/right) is flat when at least
:data:`FLAT_FRACTION` of its pixels are within :data:`FLAT_TOLERANCE` (largest channel
difference) of the side's bar colour, which is the median colour of the outermost
:data:`MIN_BAR_FRACTION` band. The fraction, not a standard deviation, makes a few noisy or
compressed pixels harmless while a textured dark border (vignette, night scene) is not flat.
A bar is the run of flat lines from the edge (up to :data:`EDGE_SLACK_FRACTION` of odd lines at
the very edge are tolerated, as some encoders leave one), and past lines of text written on it
(a meme's caption band, a news strip) when they are still mostly bar-coloured and the band ends
flat before the picture (:data:`CAPTION_FRACTION`), or where most of the side's columns end
together when something covers part of it (:data:`COLUMN_MAJORITY`). A side counts only when
its bar is at least :data:`MIN_BAR_FRACTION` of the side; the content left must be at least
:data:`MIN_CONTENT_FRACTION` of each dimension, or nothing is trimmed.

Lines are point-sampled (at most :data:`LINE_SAMPLES` pixels a line, no averaging, so texture
stays texture), and a side whose outer band is not flat costs a few hundred pixel reads: pictures
without bars pay almost nothing.

Works on any HxWx3 uint8 array (RGB or BGR: colours are only compared with each other).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

#: A bar must cover at least this share of its side (each side separately).
MIN_BAR_FRACTION = 0.02
#: What is left after trimming must be at least this share of each dimension. A quarter, not a
#: half: a landscape photo re-posted in a portrait phone frame (9:16) fills only 3/8 (3:2) or
#: 1/3 (4:3) of its height, and the same for a portrait photo in a landscape frame.
MIN_CONTENT_FRACTION = 0.25
#: Largest per-channel difference from the bar colour for a pixel to count as bar.
FLAT_TOLERANCE = 16
#: Share of a line's sampled pixels that must be bar-coloured for the line to be flat.
FLAT_FRACTION = 0.97
#: Non-flat lines tolerated at the very edge of a bar (share of the side, at least 1 line).
EDGE_SLACK_FRACTION = 0.005
#: Pixels sampled along each line.
LINE_SAMPLES = 256
#: A caption written on a bar (a meme's band of text, a news strip): its lines of text still
#: have at least this share of bar-coloured pixels, and the band (text and margins) covers at
#: most MAX_CAPTION_FRACTION of the side (:func:`_caption_end`).
CAPTION_FRACTION = 0.25
MAX_CAPTION_FRACTION = 0.4
#: Something over part of a bar (a sticker, a logo): the bar still ends where at least this
#: share of the side's columns end together, and at most COLUMN_BEYOND of them go on further
#: (:func:`_column_majority_end`).
COLUMN_MAJORITY = 0.6
COLUMN_BEYOND = 0.05

SIDES = ("top", "bottom", "left", "right")

Bars = tuple[int, int, int, int]
"""Bar thickness in pixels: (top, bottom, left, right). The content is
``a[top : h - bottom, left : w - right]``."""


@dataclass(frozen=True)
class BorderScan:
    """Raw flat-border runs of one picture, before the size rules. ``runs`` are in
    :data:`SIDES` order; ``colours`` are each side's bar colour (None when the side's outer band
    is not flat). ``uniform`` is True when the whole picture is one flat colour (it says nothing
    about bars)."""

    height: int
    width: int
    runs: Bars
    colours: tuple[tuple[int, int, int] | None, ...]
    uniform: bool


def _min_bar(side_len: int) -> int:
    return max(2, math.ceil(MIN_BAR_FRACTION * side_len))


def _side_view(a: np.ndarray, side: str) -> np.ndarray:
    """The picture seen from ``side``: lines ordered from that edge inwards, shape (L, N, 3),
    with at most LINE_SAMPLES samples per line (point sampling, a view, no copy)."""
    if side in ("left", "right"):
        a = a.transpose(1, 0, 2)
    if side in ("bottom", "right"):
        a = a[::-1]
    step = max(1, a.shape[1] // LINE_SAMPLES)
    return a[:, ::step]


def _bar_pixels(lines: np.ndarray, colour: np.ndarray) -> tuple[np.ndarray, bool]:
    """Which pixels of ``lines`` (L, N, 3) are within FLAT_TOLERANCE of colour, as an (L, N)
    bool array, or (N, L) with True second when the lines are the picture's columns."""
    # The pixels are compared where they lie: a left or right side's lines are the picture's
    # columns, and copying them out line by line costs more than the comparisons themselves.
    down = abs(lines.strides[0]) < abs(lines.strides[1])  # the lines are columns
    pixels = lines.transpose(1, 0, 2) if down else lines
    ok = np.ones(pixels.shape[:2], dtype=bool)
    for c in range(3):
        v = int(colour[c])
        ch = pixels[:, :, c]
        if v > FLAT_TOLERANCE:
            ok &= ch >= v - FLAT_TOLERANCE
        if v < 255 - FLAT_TOLERANCE:
            ok &= ch <= v + FLAT_TOLERANCE
    return ok, down


def _flat_lines(lines: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Bool per line: at least FLAT_FRACTION of its pixels within FLAT_TOLERANCE of colour."""
    ok, down = _bar_pixels(lines, colour)
    counts = np.count_nonzero(ok, axis=0 if down else 1)
    flat: np.ndarray = counts >= math.ceil(FLAT_FRACTION * lines.shape[1])
    return flat


def _bar_end(view: np.ndarray, run: int, colour: np.ndarray) -> int:
    """Where a bar whose flat run stops at line ``run`` (of ``n``) really ends: past a caption
    written on it (:func:`_caption_end`) or a sticker over part of it
    (:func:`_column_majority_end`), within :data:`MAX_CAPTION_FRACTION` of the side; ``run``
    when neither applies. One pixel test over those lines serves both."""
    n = view.shape[0]
    limit = min(n, math.ceil(MAX_CAPTION_FRACTION * n))
    if run >= limit:
        return run
    ok, down = _bar_pixels(view[:limit], colour)
    by_line = ok.T if down else ok  # lines x samples
    slack = _caption_slack(n)
    return max(_caption_end(by_line, run, slack), _column_majority_end(by_line, run, slack))


def _caption_end(by_line: np.ndarray, run: int, slack: int) -> int:
    """The end of a caption band written on the bar (a meme's text band, a news strip), given
    which pixels of the lines up to the limit are bar-coloured: past ``run`` the lines go on
    mostly in the bar colour (:data:`CAPTION_FRACTION`) and, after the text, flat again up to
    the picture. Then the bar ends after its last flat line; otherwise at ``run``.

    The band must end at content (a line mostly of other colours) before the limit, and its
    last flat line must be at most ``slack`` lines before that content line: a bright picture
    (sky, snow, a white wall), mostly bar-coloured far into the side, is left alone."""
    counts = np.count_nonzero(by_line[run:], axis=1)
    samples = by_line.shape[1]
    mostly = counts >= math.ceil(CAPTION_FRACTION * samples)
    if mostly.all():
        return run  # no content line within reach: not a caption band
    content = int(np.argmin(mostly))
    flat = np.flatnonzero(counts[:content] >= math.ceil(FLAT_FRACTION * samples))
    if flat.size == 0:
        return run  # text running into the picture, or a bright edge: not a clean band
    end = int(flat[-1]) + 1
    if content - end > slack:
        return run
    return run + end


def _column_majority_end(by_line: np.ndarray, run: int, slack: int) -> int:
    """The end of a bar something lies over (a sticker, a logo, letters), given which pixels
    of the lines up to the limit are bar-coloured: each sampled column's run of bar colour
    from the edge, and the bar ends where at least :data:`COLUMN_MAJORITY` of the columns end
    within ``slack`` lines of one another (the rest, covered, end sooner). ``run`` when they
    do not agree."""
    limit = by_line.shape[0]
    ends = np.where(by_line.all(axis=0), limit, np.argmin(by_line, axis=0))
    end = int(np.median(ends))
    if end <= run or end >= limit:
        return run
    agree = np.abs(ends - end) <= slack
    # Columns may end sooner (covered), hardly any later: the picture starts at ``end``.
    if agree.mean() < COLUMN_MAJORITY or (ends > end + slack).mean() > COLUMN_BEYOND:
        return run
    return end


def _caption_slack(side_len: int) -> int:
    """Lines between a caption band's last flat line and the picture tolerated (JPEG ringing
    and resampling blur the edge)."""
    return max(2, round(2 * EDGE_SLACK_FRACTION * side_len))


def _scan_side(a: np.ndarray, side: str) -> tuple[int, tuple[int, int, int] | None]:
    """(run, colour) of one side: the number of lines from the edge that belong to a flat bar
    (0 when shorter than the minimum bar), and the bar colour."""
    view = _side_view(a, side)
    n = view.shape[0]
    band = min(n, _min_bar(n))
    slack = max(1, round(EDGE_SLACK_FRACTION * n))
    # Bar colour: median of a few lines spread over the outer band.
    probe = view[: band : max(1, band // 4)]
    colour = np.median(probe.reshape(-1, 3), axis=0).round().astype(np.uint8)
    # Cheap rejection first: the outer band (bar minimum) must be flat, bar a few edge lines.
    head = _flat_lines(view[: band + slack], colour)
    first = int(np.argmax(head)) if head.any() else n
    if first > slack or not head[first:].all():
        return 0, None
    # Then walk inwards in growing chunks until a line is not flat.
    run = len(head)
    chunk = max(8, run)
    while run < n:
        flat = _flat_lines(view[run : run + chunk], colour)
        if not flat.all():
            run += int(np.argmin(flat))
            break
        run += len(flat)
        chunk *= 2
    if run < n:
        run = _bar_end(view, run, colour)
    return run, (int(colour[0]), int(colour[1]), int(colour[2]))


def scan_borders(a: np.ndarray) -> BorderScan:
    """Flat-border runs of one HxWx3 uint8 picture (see :class:`BorderScan`)."""
    a = np.asarray(a)
    if a.ndim != 3 or a.shape[2] < 3:
        raise ValueError(f"expected an HxWx3 picture, got shape {a.shape}")
    a = a[:, :, :3]
    h, w = a.shape[:2]
    runs: list[int] = []
    colours: list[tuple[int, int, int] | None] = []
    for side in SIDES:
        run, colour = _scan_side(a, side)
        runs.append(run)
        colours.append(colour)
    uniform = runs[0] >= h or runs[2] >= w
    return BorderScan(h, w, (runs[0], runs[1], runs[2], runs[3]), tuple(colours), uniform)


def bars_from_runs(height: int, width: int, runs: Bars) -> Bars | None:
    """Apply the size rules to raw runs: sides below the minimum bar are dropped; None when no
    side is left or the content would be under MIN_CONTENT_FRACTION of a dimension."""
    top, bottom, left, right = runs
    top = top if top >= _min_bar(height) else 0
    bottom = bottom if bottom >= _min_bar(height) else 0
    left = left if left >= _min_bar(width) else 0
    right = right if right >= _min_bar(width) else 0
    if not (top or bottom or left or right):
        return None
    if height - top - bottom < MIN_CONTENT_FRACTION * height:
        return None
    if width - left - right < MIN_CONTENT_FRACTION * width:
        return None
    return top, bottom, left, right


def crop(a: np.ndarray, bars: Bars) -> np.ndarray:
    """The content of ``a`` inside ``bars`` (a view)."""
    top, bottom, left, right = bars
    h, w = a.shape[:2]
    return a[top : h - bottom, left : w - right]


def _may_have_bar(a: np.ndarray, side: str) -> bool:
    """Cheap necessary condition for :func:`_scan_side` to find a bar on ``side`` (pictures of
    at least 2x2 px). A bar needs the line ``slack`` lines in from the edge to be flat (its run
    starts at most ``slack`` lines in and covers the whole outer band), and a flat line has, in
    each channel separately, FLAT_FRACTION of its samples within a 2 x FLAT_TOLERANCE span,
    whatever the bar colour. False means no bar for sure; True means look properly."""
    view = _side_view(a, side)
    slack = max(1, round(EDGE_SLACK_FRACTION * view.shape[0]))  # as in _scan_side
    line = np.sort(view[slack], axis=0).astype(np.int16)  # (samples, 3), each channel sorted
    samples = line.shape[0]
    need = math.ceil(FLAT_FRACTION * samples)  # as in _flat_lines
    spans = line[need - 1 :] - line[: samples - need + 1]
    return bool((spans.min(axis=0) <= 2 * FLAT_TOLERANCE).all())


def trim_bars(rgb: np.ndarray) -> tuple[np.ndarray, Bars] | None:
    """Remove letterbox/pillarbox bars (flat borders of one colour, any colour) from a picture.

    Returns ``(content, (top, bottom, left, right))`` -- the content is a view of ``rgb`` -- or
    None when there is nothing to trim (or the picture is one flat colour, or the content would
    be less than :data:`MIN_CONTENT_FRACTION` of a dimension).

    The same answer as :func:`scan_borders` then :func:`bars_from_runs`, for less: a side is
    scanned only when one sorted line says it may have a bar (most photos have no flat border,
    and pay about 50 us), and a picture found to be one flat colour stops the scan."""
    a = np.asarray(rgb)
    if a.ndim != 3 or a.shape[2] < 3 or min(a.shape[:2]) < 2:
        scan = scan_borders(a)  # odd shapes: the plain scan (and its errors)
        if scan.uniform:
            return None
        bars = bars_from_runs(scan.height, scan.width, scan.runs)
        return None if bars is None else (crop(a, bars), bars)
    a = a[:, :, :3]
    h, w = a.shape[:2]
    runs = [0, 0, 0, 0]
    for i, side in enumerate(SIDES):
        if _may_have_bar(a, side):
            runs[i] = _scan_side(a, side)[0]
            if runs[i] >= (h if side in ("top", "bottom") else w):
                return None  # one flat colour: nothing to say about bars (BorderScan.uniform)
    bars = bars_from_runs(h, w, (runs[0], runs[1], runs[2], runs[3]))
    if bars is None:
        return None
    return crop(np.asarray(rgb), bars), bars


@dataclass
class BarDetector:
    """Bars of a video, from several of its frames: a side's bar is the shortest flat run seen
    on that side over every informative frame (frames of one flat colour -- fades, black
    frames -- are skipped), and the side counts only if its bar colour is the same in all of
    them (within FLAT_TOLERANCE). A dark scene therefore only passes for a bar if it is flat
    and black in every frame looked at."""

    height: int | None = None
    width: int | None = None
    frames: int = 0  # informative frames added
    _runs: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    _colours: list[tuple[int, int, int] | None] = field(default_factory=lambda: [None] * 4)
    _lost: list[bool] = field(default_factory=lambda: [False] * 4)

    def add(self, frame: np.ndarray) -> bool:
        """Look at one frame. Returns whether it was informative (not one flat colour, and of
        the same size as the first). Cheap once every side has lost its bar."""
        h, w = frame.shape[:2]
        if self.height is None:
            self.height, self.width = h, w
        elif (h, w) != (self.height, self.width):
            return False  # a resolution change mid-stream: judge by the first size only
        if self.frames and all(self._lost):
            self.frames += 1
            return True
        scan = scan_borders(frame)
        if scan.uniform:
            return False
        for i in range(4):
            if self._lost[i]:
                continue
            run, colour = scan.runs[i], scan.colours[i]
            if colour is None or run == 0:
                self._lost[i] = True
                continue
            ref = self._colours[i]
            if ref is None:
                self._colours[i], self._runs[i] = colour, run
            elif max(abs(x - y) for x, y in zip(colour, ref, strict=True)) > FLAT_TOLERANCE:
                self._lost[i] = True
            else:
                self._runs[i] = min(self._runs[i], run)
        self.frames += 1
        return True

    def bars(self) -> Bars | None:
        """The bars seen so far (None: none, or no informative frame yet)."""
        if not self.frames or self.height is None or self.width is None:
            return None
        runs = tuple(0 if lost else r for r, lost in zip(self._runs, self._lost, strict=True))
        return bars_from_runs(self.height, self.width, runs)  # type: ignore[arg-type]


def bars_agree(decided: Bars, final: Bars | None, height: int, width: int) -> bool:
    """Whether the bars found over the whole video (``final``) still support the crop decided
    early (``decided``): every side within a couple of lines (1 % of the dimension)."""
    if final is None:
        return False
    tol_h = max(2, round(0.01 * height))
    tol_w = max(2, round(0.01 * width))
    tols = (tol_h, tol_h, tol_w, tol_w)
    return all(abs(d - f) <= t for d, f, t in zip(decided, final, tols, strict=True))
