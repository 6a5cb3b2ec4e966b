"""The hashes of a video's sampled frames, vPDQ-compatible: per frame, its luma computed once,
the plain ``pdq_frame`` and its 7 turns from one downsample; once the letterbox/pillarbox bars
are decided, the frame with the bars trimmed (``trimmed``) and its halves (``region:*``).
Frames arrive in any order (segments decode in parallel): the signals come out by time.
Frames up to :data:`PDQ_WORK_SIDE` are hashed at full size, as the reference vPDQ does.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import numpy as np

from app.core.hashing.bars import BarDetector, Bars, bars_agree, crop
from app.core.hashing.pdq import dihedral_signals, luma_from_rgb, pdq_dihedral_from_luma
from app.core.hashing.regions import region_signals
from app.core.hashing.resample import area_reduce
from app.core.hashing.views import (
    PAD_LEVELS,
    Geometry,
    ViewDetector,
    detect_plane,
    frame_view_signals,
    steady_view_signals,
    view_signals,
    zoom_signals,
)
from app.core.matching.signal_types import TRIMMED, view_variant
from app.core.model.domain import Algorithm, Signal

log = logging.getLogger(__name__)

PDQ_WORK_SIDE = 2048  # larger frames are reduced to this long side before PDQ (see _work_rgb)
BAR_DECIDE_FRAMES = 5  # informative sampled frames looked at before the bars are decided ...
BAR_MAX_PENDING = 10  # ... or this many sampled frames held back waiting for the decision
DIHEDRAL_FRAMES = 16  # sampled frames (evenly spread) whose dih: query hashes are kept
#: Whether sampled frames get their views and stored centres (:mod:`app.core.hashing.views`).
#: Always on in the application; ``hashdesk bench video`` turns it off for one measurement, to
#: put the analysis as it was before them beside today's in the same run.
GEOMETRY = True
SCREEN_SHARE = 0.5  # a filmed screen's view is kept when seen in this share of the frames


@dataclass
class _Hashed:
    """A sampled frame with what its hashing needs: RGB pixels (for the bars and the strip), the
    luma plane of the frame PDQ works on (:func:`_work_rgb`), its time, and the plain and
    dihedral signals taken from it (each with that time as its ``frame_ts``)."""

    rgb: np.ndarray
    luma: np.ndarray
    reduced: bool  # the luma is of a reduced copy (frames over PDQ_WORK_SIDE)
    ts: float  # seconds, rounded to the millisecond
    signals: list[Signal]
    small: np.ndarray  # the grey copy views are found on (app.core.hashing.views.detect_plane)
    views: list[Signal]  # the frame's own views: margin put back, a filmed screen


def _work_rgb(rgb: np.ndarray) -> np.ndarray:
    """The RGB frame PDQ works on. Frames up to PDQ_WORK_SIDE are hashed at full size, as the
    reference vPDQ does (a reduced frame's hash moves off the reference's: docs/PERFORMANCE.md,
    "Video"). Only bigger (4K+) frames are reduced."""
    h, w = rgb.shape[:2]
    scale = PDQ_WORK_SIDE / max(h, w)
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        rgb = area_reduce(rgb, size)
    return rgb


def _hash_frame(rgb: np.ndarray, ts: float) -> _Hashed:
    """The luma of a sampled RGB frame, computed once, and its plain ``pdq_frame`` signal and
    7 ``dih:*`` ones from one downsample and one DCT of it."""
    work = _work_rgb(rgb)
    luma = luma_from_rgb(work)
    hashes, quality = pdq_dihedral_from_luma(luma)
    sigs = dihedral_signals(hashes, quality, algorithm=Algorithm.PDQ_FRAME, frame_ts=ts)
    small = detect_plane(luma)
    # The views a frame gives on its own (on the decoder's thread): the margin put back, and a
    # filmed screen where one is seen (it moves with the camera).
    views = frame_view_signals(luma, small, frame_ts=ts) if GEOMETRY else []
    return _Hashed(rgb, luma, work is not rgb, ts, sigs, small, views)


class _FrameHasher:
    """Every signal of the sampled frames of one video, in the order they arrive.

    * plain ``pdq_frame`` (vPDQ-compatible) for every sampled frame;
    * ``dih:<name>`` rotated/mirrored hashes: they come free with the plain hash (one
      ``compute_dihedral`` costs what one ``compute`` does), but each frame carries 7, so only
      :data:`DIHEDRAL_FRAMES` evenly spread frames keep theirs (query-only: bounded storage and
      match work; the matcher judges each transform on its own frame set);
    * ``trimmed``: when the video has letterbox/pillarbox bars, the PDQ of every sampled frame
      with the same crop (and, for the same spread frames as above, its 7 turns,
      ``dih:<code>:trimmed``). The bars are decided once from the first :data:`BAR_DECIDE_FRAMES`
      informative frames (frames held back meanwhile, at most :data:`BAR_MAX_PENDING`), and the
      :class:`BarDetector` keeps watching every later frame: if the bars seen over the whole
      video no longer agree with the crop used (content appeared in a "bar": it was a dark
      scene), the trimmed set is dropped rather than kept wrong;
    * ``region:<half>``: the PDQ of each half of every sampled frame's content (bars trimmed),
      from a small copy (:mod:`app.core.hashing.regions`): a copy stamped with a large logo keeps
      the
      half the logo does not touch;
    * ``view:<name>`` (query-only, :mod:`app.core.hashing.views`): a frame of any colour, a sharp
      band over a blurred copy or an inset, decided once from the same first frames as the bars
      (:class:`ViewDetector`) and cut from every frame; a filmed screen, found frame by frame
      (kept when seen in :data:`SCREEN_SHARE` of the frames);
      and every frame's content with a cut margin put back (:data:`PAD_LEVELS`). Each view's
      frames are one frame set for the video rule.
    """

    def __init__(self) -> None:
        self.plain: list[Signal] = []
        self.dihedral: list[list[Signal]] = []
        self.trimmed: list[Signal] = []
        self.trimmed_dihedral: list[list[Signal]] = []
        self.regions: list[Signal] = []
        self.views: list[Signal] = []
        self.zooms: list[Signal] = []
        self.view_detector = ViewDetector()
        self.geometry = Geometry()
        self.detector = BarDetector()
        self.pending: list[_Hashed] = []
        self.decided = False
        self.bars: Bars | None = None

    def __len__(self) -> int:
        return len(self.plain)

    def add(self, frame: _Hashed) -> None:
        """Add one sampled frame, hashed by :func:`_hash_frame` (on a decoder thread)."""
        self.plain.append(frame.signals[0])
        self.dihedral.append(frame.signals[1:])
        self.detector.add(frame.rgb)
        if self.decided:
            self._content(frame)
            return
        self.pending.append(frame)
        self.view_detector.add(frame.small)
        if self.detector.frames >= BAR_DECIDE_FRAMES or (
            self.detector.frames and len(self.pending) >= BAR_MAX_PENDING
        ):
            self._decide()
        elif len(self.pending) > BAR_MAX_PENDING:  # a long flat opening: nothing to learn yet
            self.pending.pop(0)

    def _content(self, frame: _Hashed) -> None:
        """The signals of the frame's content, once the bars are known: its PDQ with the bars
        trimmed (when there are bars) and the PDQ of its halves (region:*), both from the
        frame's luma plane (a crop of a plane is a view of it)."""
        luma = frame.luma
        same_size = frame.rgb.shape[:2] == (self.detector.height, self.detector.width)
        if self.bars is not None and same_size:  # bars measured on frames of this size
            if frame.reduced:  # a 4K+ frame: the crop is reduced on its own, as it always was
                luma = luma_from_rgb(_work_rgb(np.ascontiguousarray(crop(frame.rgb, self.bars))))
            else:
                luma = crop(luma, self.bars)
            # With its 7 turns (dih:<code>:trimmed), free with the hash: a mirrored or turned
            # copy with bars is matched through them.
            hashes, quality = pdq_dihedral_from_luma(luma)
            plain, *turns = dihedral_signals(
                hashes, quality, algorithm=Algorithm.PDQ_FRAME, frame_ts=frame.ts, of=TRIMMED
            )
            self.trimmed.append(plain)
            self.trimmed_dihedral.append(turns)
        self.regions.extend(region_signals(luma, algorithm=Algorithm.PDQ_FRAME, frame_ts=frame.ts))
        if not GEOMETRY:
            return
        self.zooms.extend(zoom_signals(luma, algorithm=Algorithm.PDQ_FRAME, frame_ts=frame.ts))
        # Views: the steady ones cut from the frame as decoded; the frame's own, with the
        # margin put back around the content (bars trimmed) rather than the frame.
        own = frame.views
        if luma is not frame.luma:
            own = [s for s in own if s.variant == view_variant("screen")]
            own += view_signals(
                luma, Geometry(), pads=PAD_LEVELS, algorithm=Algorithm.PDQ_FRAME, frame_ts=frame.ts
            )
        self.views.extend(own)
        if self.geometry:
            self.views.extend(steady_view_signals(frame.luma, self.geometry, frame_ts=frame.ts))

    def _decide(self) -> None:
        self.decided = True
        self.bars = self.detector.bars()
        self.geometry = self.view_detector.geometry() if GEOMETRY else Geometry()
        for frame in self.pending:
            self._content(frame)
        self.pending.clear()

    def signals(self, name: str = "") -> list[Signal]:
        """All frame signals: plain, trimmed, halves (region:*), then the kept dihedral ones."""
        if not self.decided:
            self._decide()
        trimmed, trimmed_dih = self.trimmed, self.trimmed_dihedral
        if self.bars is not None:
            final = self.detector.bars()
            h, w = self.detector.height or 0, self.detector.width or 0
            if not bars_agree(self.bars, final, h, w):
                log.info(
                    "%s: bars %s not borne out by the whole video (%s)", name, self.bars, final
                )
                trimmed, trimmed_dih = [], []
        # Frames may have arrived out of order (segments decoded in parallel): by time, stably.
        by_ts = functools.partial(sorted, key=lambda s: s.frame_ts or 0.0)
        plain = by_ts(self.plain)
        dihedral = _spread(self.dihedral) + _spread(trimmed_dih)
        return [
            *plain,
            *by_ts(trimmed),
            *by_ts(self.regions),
            *by_ts(self.zooms),
            *dihedral,
            *by_ts(self._views()),
        ]

    def _views(self) -> list[Signal]:
        """The views' signals; a screen only when it was seen in at least half of the sampled
        frames (a filmed screen stays in view; a quadrilateral in a frame or two is a door or
        a table, and a frame set of one or two frames would be judged on them alone)."""
        screen = view_variant("screen")
        seen = sum(1 for s in self.views if s.variant == screen)
        if seen >= max(2, SCREEN_SHARE * len(self.plain)):
            return self.views
        return [s for s in self.views if s.variant != screen]


def _spread(groups: list[list[Signal]]) -> list[Signal]:
    """The dihedral signals of :data:`DIHEDRAL_FRAMES` evenly spread frames (by time)."""
    ordered = sorted(groups, key=lambda group: (group[0].frame_ts or 0.0) if group else 0.0)
    n = len(ordered)
    keep = np.unique(np.linspace(0, n - 1, min(n, DIHEDRAL_FRAMES)).round().astype(int))
    return [s for i in keep.tolist() for s in ordered[i]] if n else []
