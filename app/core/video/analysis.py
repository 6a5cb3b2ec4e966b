"""Video and animated-image hashing: vPDQ-compatible frame PDQ, duration, keyframe strip.

No Qt, no SQL. ``analyze_video`` never raises: a file that cannot be decoded gives an
UNREADABLE analysis carrying the reason, so the item stays visible and actionable.

Frames are sampled about once per second at frame indices ``round(k * fps)``; the PDQ of a
sampled frame is comparable line-for-line with the reference vPDQ output for the same frame
number (the reference hashes every frame).

What decodes what. Videos are decoded with PyAV (its own FFmpeg), only as far as the sampled
frames need: one demux pass (no decoding) lists every packet's timestamps and keyframe flag;
frame numbers are the display order of the timestamps (so B-frame reordering does not
matter); a sampled frame needs the packets from the keyframe before it up to its own, and of
those FFmpeg decodes only the reference frames (``skip_frame`` NONREF per packet, the sample
itself in full); packets no sample needs are never sent. The frames are the very pixels a
decode of every frame gives (tests compare them with OpenCV's decode of every frame). Should
a file's keyframe flags or timestamps lie (a frame flagged key that the decoder does not find
to be one, a sample that does not come out intact), the file is decoded again in full, every
frame counted in order. OpenCV could not do this: it has no per-packet skipping, and its seek
per sample was slower than grabbing every frame on the corpus's H.264 (4.4 s against 3.4 s
for a minute).

Measured on this 2-core machine while other work ran on it (``hashdesk bench video``, two
runs), a minute of 720p: the bench's mp4v (a keyframe every 12 frames) decodes 240 of its 1800
frames and hashes in 0.50-0.96 s, 0.38-0.44 of the time to decode every frame (1.1-2.5 s);
the corpus's H.264 (B-frames, a keyframe every 2 s) decodes 555 of 1800 frames and hashes in
0.98-1.20 s, 0.34-0.48 of its every-frame floor (2.0-3.5 s). Against the OpenCV way, in a
paired run: 2.1-2.3 times faster (mp4v 1.71 s -> 0.74 s, corpus H.264 3.10 s -> 1.50 s). Decoding
the samples alone (no hashing), per minute: corpus H.264 1.3-1.5 s this way, 1.5-1.7 s
seeking to the keyframe before each sample, 3.1-3.4 s grabbing every frame, 4.4-4.9 s with
OpenCV's seek; on a long-GOP x264 minute (778 of 1800 frames decoded) 0.9-1.2 s, against
3.1-3.6 s seeking per sample (a seek re-decodes the GOP) and 4.4-7.8 s with OpenCV's seek.

Each sampled frame is converted to RGB once and its luma computed once: the plain and seven
dihedral PDQs come from one downsample of it, the bars-trimmed PDQ from a crop of it, the
halves from it reduced (:func:`app.core.hashing.regions.region_signals` of the plane). Segments of a
long video decode in parallel (each its own container, seeking to its first keyframe): the same
frames by timestamp.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import io
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from PIL import Image, ImageSequence

from app.core.errors import Refusal, describe
from app.core.hashing.bars import BarDetector, Bars, bars_agree, crop
from app.core.hashing.pdq import dihedral_signals, luma_from_rgb, pdq_dihedral_from_luma
from app.core.hashing.regions import region_signals
from app.core.hashing.resample import area_reduce
from app.core.matching.signal_types import TRIMMED
from app.core.model.domain import Algorithm, MediaAnalysis, MediaKind, Signal

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.packet import Packet
    from av.video.codeccontext import VideoCodecContext
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream

log = logging.getLogger(__name__)

FALLBACK_FPS = 25.0
MAX_SAMPLED_FRAMES = 3600  # beyond an hour, sample less often than once a second
TIME_BUDGET_SECONDS = 120.0  # wall-clock cap per file; keep what was hashed so far
MAX_FRAME_PIXELS = 7680 * 4320  # larger than 8K UHD: frames are refused (decompression-bomb guard)
PDQ_WORK_SIDE = 2048  # larger frames are reduced to this long side before PDQ (see _work_rgb)
STRIP_HEIGHT = 360  # keyframe strip: every frame this tall ...
STRIP_MAX_FRAMES = 8  # ... and at most this many frames side by side
STRIP_JPEG_QUALITY = 80
MAX_ANIMATED_FRAMES = 20000  # frames walked in a GIF/WebP before giving up on the rest
BAR_DECIDE_FRAMES = 5  # informative sampled frames looked at before the bars are decided ...
BAR_MAX_PENDING = 10  # ... or this many sampled frames held back waiting for the decision
DIHEDRAL_FRAMES = 16  # sampled frames (evenly spread) whose dih: query hashes are kept
# Parallel decoding of one video: segments (each its own capture and thread, seeking to its
# start). None = one per core; the ingest pool sets 1 in its workers (files are parallel there).
SEGMENTS: int | None = None
MAX_SEGMENTS = 4
MIN_SEGMENT_SAMPLES = 15  # a segment is at least this many samples (seconds) long

_GIF_MAGIC = (b"GIF87a", b"GIF89a")
_TEXT_MAGIC = (b"#EXTM3U", b"ffconcat", b"file ", b"[playlist]", b"<?xml", b"<")


# --------------------------------------------------------------------------------------------
# Frame hashing: one luma plane per sampled frame


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


def _work_rgb(rgb: np.ndarray) -> np.ndarray:
    """The RGB frame PDQ works on. Frames up to PDQ_WORK_SIDE are hashed at full size, as the
    reference vPDQ does: reducing a 720p frame to 512 px measured 4-24 bits off the references
    (median), against 0-2 bits at full size. Only bigger (4K+) frames are reduced."""
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
    return _Hashed(rgb, luma, work is not rgb, ts, sigs)


# --------------------------------------------------------------------------------------------
# Evasion-resistant frame signals (issue 3): bars trimmed, rotated/mirrored


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
      half the logo does not touch.
    """

    def __init__(self) -> None:
        self.plain: list[Signal] = []
        self.dihedral: list[list[Signal]] = []
        self.trimmed: list[Signal] = []
        self.trimmed_dihedral: list[list[Signal]] = []
        self.regions: list[Signal] = []
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

    def _decide(self) -> None:
        self.decided = True
        self.bars = self.detector.bars()
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
        return [*plain, *by_ts(trimmed), *by_ts(self.regions), *dihedral]


def _spread(groups: list[list[Signal]]) -> list[Signal]:
    """The dihedral signals of :data:`DIHEDRAL_FRAMES` evenly spread frames (by time)."""
    ordered = sorted(groups, key=lambda group: (group[0].frame_ts or 0.0) if group else 0.0)
    n = len(ordered)
    keep = np.unique(np.linspace(0, n - 1, min(n, DIHEDRAL_FRAMES)).round().astype(int))
    return [s for i in keep.tolist() for s in ordered[i]] if n else []


# --------------------------------------------------------------------------------------------
# Keyframe strip


class _StripCollector:
    """Keeps small copies of an evenly spread subset of the sampled frames without knowing in
    advance how many there will be: keep every ``stride``-th sample, halve the set when it
    overflows. Samples may arrive out of order (segments decoded in parallel): they are kept by
    sample number."""

    def __init__(self, frame_w: int, frame_h: int) -> None:
        self.height = STRIP_HEIGHT
        width = round(STRIP_HEIGHT * frame_w / max(1, frame_h))
        self.width = min(max(width, 16), 4 * STRIP_HEIGHT)  # absurd aspect ratios stay sane
        self.stride = 1
        self.kept: dict[int, np.ndarray] = {}  # sample number -> RGB, self.height x self.width

    @property
    def frames(self) -> list[np.ndarray]:
        return [self.kept[k] for k in sorted(self.kept)]

    def offer(self, sample: int, rgb: np.ndarray) -> None:
        """Consider sampled frame number ``sample`` (RGB pixels ``rgb``): a small copy is kept
        when the sample falls on the stride."""
        if sample % self.stride:
            return
        size = (self.width, self.height)
        if rgb.shape[0] >= self.height and rgb.shape[1] >= self.width:
            self.kept[sample] = area_reduce(rgb, size)
        else:  # a small frame is enlarged (or stretched): a display copy, bilinear is enough
            img = Image.fromarray(np.ascontiguousarray(rgb)).resize(size, Image.Resampling.BILINEAR)
            self.kept[sample] = np.asarray(img)
        while len(self.kept) > 2 * STRIP_MAX_FRAMES:
            self.stride *= 2
            self.kept = {k: v for k, v in self.kept.items() if k % self.stride == 0}

    def jpeg(self) -> tuple[bytes | None, int]:
        frames = self.frames
        if not frames:
            return None, 0
        n = min(STRIP_MAX_FRAMES, len(frames))
        picks = np.linspace(0, len(frames) - 1, n).round().astype(int)
        strip = np.hstack([frames[i] for i in picks])
        buf = io.BytesIO()
        Image.fromarray(strip, "RGB").save(buf, "JPEG", quality=STRIP_JPEG_QUALITY, optimize=False)
        return buf.getvalue(), n


# --------------------------------------------------------------------------------------------
# Public API


def analyze_video(
    path: str | os.PathLike[str],
    sha256: str,
    md5: str,
    size: int,
    *,
    time_budget: float = TIME_BUDGET_SECONDS,
    max_samples: int = MAX_SAMPLED_FRAMES,
    segments: int | None = None,
) -> MediaAnalysis:
    """Hash a video (or animated GIF/WebP) file. Never raises for bad media.

    ``segments``: how many parts of the video are decoded in parallel (None: :data:`SEGMENTS`,
    by default one per core). The result is the same either way (tests check it)."""
    byte_signals = [Signal(Algorithm.MD5, md5), Signal(Algorithm.SHA256, sha256)]
    try:
        p = Path(path).resolve()
        head = _read_head(p)
        if head.startswith(_GIF_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
            return _analyze_animated(p, sha256, md5, size, byte_signals, time_budget, max_samples)
        if _looks_like_text(head):
            return _unreadable(sha256, md5, size, "not a video (text file or playlist)")
        return _analyze_av(
            p, head, sha256, md5, size, byte_signals, time_budget, max_samples, segments
        )
    except MemoryError:
        return _unreadable(sha256, md5, size, "video too large to decode")
    except Exception as exc:  # adversarial input: nothing may escape
        log.warning("video analysis failed for %s: %r", path, exc)
        return _unreadable(sha256, md5, size, f"video could not be decoded ({describe(exc)})")


def parse_vpdq_file(path: str | os.PathLike[str]) -> list[tuple[int, int, str, float]]:
    """Read reference vPDQ output: one ``frame_number,quality,pdq_hex,timestamp_seconds`` a line."""
    rows: list[tuple[int, int, str, float]] = []
    with open(path, encoding="ascii") as fh:
        for line in fh:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            frame, quality, hex_, ts = line.split(",")
            rows.append((int(frame), int(quality), hex_.strip().lower(), float(ts)))
    return rows


@dataclass(frozen=True)
class SampleDecode:
    """What decoding a video's sampled frames took (:func:`decode_samples`)."""

    frames: int  # frames in the video stream
    decoded: int  # frames the decoder produced on the way
    selective: bool  # only the packets the samples need were decoded
    samples: dict[int, np.ndarray]  # frame index -> RGB (when kept)


def decode_samples(
    path: str | os.PathLike[str], *, every_frame: bool = False, keep: bool = True
) -> SampleDecode:
    """Decode the frames :func:`analyze_video` samples (one a second), without hashing them:
    as analysis does (only the packets they need), or, with ``every_frame``, every frame
    counted in output order. For the benchmark and the tests; raises on bad media."""
    p = Path(path).resolve()
    container = _open_container(p, TIME_BUDGET_SECONDS)
    probed = _probe(container, time.monotonic() + TIME_BUDGET_SECONDS)
    if probed is None:
        raise ValueError(f"{p.name}: no video stream")
    fps, pk = probed
    if every_frame:
        pk = pk.in_order()
    count = pk.count
    samples = [sample_index(k, 1.0, fps) for k in _samples_below(count, 1.0, fps)]
    reader = _Reader(p, pk, samples, TIME_BUDGET_SECONDS, to_end=every_frame)
    kept = {index: rgb for index, rgb in reader.frames() if keep}
    if reader.missing:
        raise _PlanMismatch(f"{len(reader.missing)} sampled frames missed")
    return SampleDecode(count, reader.decoded, pk.exact, kept)


# --------------------------------------------------------------------------------------------
# Implementation: which packets a set of frames needs, and decoding only those


def sample_index(k: int, interval: float, fps: float) -> int:
    """Frame index of the ``k``-th sample: ``round(k * interval * fps)``."""
    return round(k * interval * fps)


# FFmpeg options for every file opened here: local files only (no network, no playlist or
# concat entry reaching out of the file), and concat lists limited to safe names.
_FFMPEG_OPTIONS = {"protocol_whitelist": "file", "safe": "1"}
_SkipLevel = Literal["DEFAULT", "NONREF"]
_DECODE: _SkipLevel = "DEFAULT"  # skip_frame for a packet whose frame is wanted: decode it
_REFS_ONLY: _SkipLevel = (
    "NONREF"  # for a packet on the way to a wanted frame: skip it unless a reference
)
_SCAN_CHECK_EVERY = 1024  # packets demuxed between two looks at the clock while scanning


class _TimedOut(Refusal):
    """The time budget ran out before any frame was decoded."""


class _PlanMismatch(Refusal):
    """A wanted frame did not come out of a selective decode intact (a file whose keyframe
    flags or timestamps do not say what they should): it is decoded again in full."""


def _open_container(p: Path, time_budget: float) -> InputContainer:
    import av  # here: 0.1 s to import, and only a decoding worker needs it

    timeout = max(1.0, min(time_budget, 30.0))
    container = av.open(str(p), "r", options=dict(_FFMPEG_OPTIONS), timeout=(timeout, timeout))
    if not isinstance(container, av.container.InputContainer):  # for the type checker
        container.close()
        raise TypeError("not an input container")
    return container


def _video_stream(container: InputContainer) -> VideoStream | None:
    """The first video stream that is not a cover picture (an MP3's or M4A's artwork)."""
    import av

    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


@dataclass(frozen=True)
class _Packets:
    """What one demux pass over the video stream (no decoding: cheap) tells: each packet's
    timestamps and keyframe flag in decode order, and the frame index (display order) of each
    presentation timestamp. ``index`` is empty when the timestamps cannot name the frames
    (missing or repeated, or no keyframe first): then every frame is decoded and counted."""

    pts: list[int | None]
    dts: list[int | None]
    keys: list[bool]
    frames: int  # frames the stream shows (packets an edit list does not discard)
    index: dict[int, int]  # pts -> frame index
    position: list[int]  # frame index -> decode position

    @property
    def exact(self) -> bool:
        return bool(self.index)

    @property
    def count(self) -> int:
        """The frames of the stream: those it shows when the timestamps name them, else every
        packet (a decode of every frame counts them as they come out)."""
        return self.frames if self.exact else len(self.pts)

    def in_order(self) -> _Packets:
        """The same packets with the frames unnamed: every frame decoded, counted in order."""
        return replace(self, index={}, position=[])


def _probe(
    container: InputContainer, deadline: float, *, refuse_large: bool = False
) -> tuple[float, _Packets] | None:
    """The frame rate of an opened file's video stream and its one demux pass (:func:`_scan`),
    or None when it has no video stream; the container is closed either way. Raises
    _TimedOut from the scan and, with ``refuse_large``, _FrameTooLarge (before any scan) when
    the stream's header gives frames over MAX_FRAME_PIXELS."""
    try:
        stream = _video_stream(container)
        if stream is None:
            return None
        if refuse_large:
            width, height = stream.codec_context.width, stream.codec_context.height
            if width * height > MAX_FRAME_PIXELS:
                raise _FrameTooLarge(width, height)
        fps = _stream_fps(stream)
        return fps, _scan(container, stream, deadline)
    finally:
        container.close()


def _scan(container: InputContainer, stream: VideoStream, deadline: float) -> _Packets:
    """Demux every packet of ``stream`` once; a file that breaks off ends the scan there."""
    import av

    pts: list[int | None] = []
    dts: list[int | None] = []
    keys: list[bool] = []
    shown: list[bool] = []
    if time.monotonic() >= deadline:
        raise _TimedOut
    try:
        for packet in container.demux(stream):
            if packet.size == 0:  # the empty packet that ends the stream
                continue
            pts.append(packet.pts)
            dts.append(packet.dts)
            keys.append(bool(packet.is_keyframe))
            shown.append(not packet.is_discard)
            if len(pts) % _SCAN_CHECK_EVERY == 0 and time.monotonic() >= deadline:
                raise _TimedOut
    except av.error.FFmpegError as exc:  # damaged or cut short: what was read is the stream
        log.info("demux stopped after %d packets: %r", len(pts), exc)
    frames = sum(shown)
    shown_pts = [t for t, s in zip(pts, shown, strict=True) if s]
    exact = (
        bool(pts)
        and keys[0]
        and None not in pts
        and len(set(pts)) == len(pts)
        and len(shown_pts) == frames
    )
    if not exact:
        return _Packets(pts, dts, keys, frames, {}, [])
    decode_pos = {t: d for d, t in enumerate(pts)}
    ordered = sorted(t for t in shown_pts if t is not None)
    index = {t: i for i, t in enumerate(ordered)}
    return _Packets(pts, dts, keys, frames, index, [decode_pos[t] for t in ordered])


def _needed_packets(
    pk: _Packets, wanted: list[int]
) -> tuple[dict[int, _SkipLevel], int, int, set[int]]:
    """For the frames at indices ``wanted`` (a selective decode): the packets to send, by pts,
    with the decoder's skip level for each, the decode positions of the first and last, and
    the pts of the keyframes the runs start from.

    A wanted frame needs the packets from the last keyframe before it (in decode order, and
    shown no later than it: an open GOP's leading B-frames refer back past their keyframe) up
    to its own packet. Of those, only reference frames are decoded (``NONREF``: FFmpeg skips
    the frames nothing refers to, cheaply, from their slice headers); the wanted frame itself
    is decoded in full. Packets outside every such run are not sent at all."""
    keys = [d for d, k in enumerate(pk.keys) if k]
    n = len(pk.pts)
    cover = np.zeros(n + 1, dtype=np.int64)
    targets = []
    starts = set()
    first = n
    for i in wanted:
        d = pk.position[i]
        shown_at = pk.pts[d]
        j = bisect.bisect_right(keys, d) - 1
        while j > 0 and (pk.pts[keys[j]] or 0) > (shown_at or 0):
            j -= 1
        start = keys[max(j, 0)]
        cover[start] += 1
        cover[d] -= 1
        targets.append(d)
        starts.add(start)
        first = min(first, start)
    needed: dict[int, _SkipLevel] = {}
    for d in np.flatnonzero(np.cumsum(cover[:n]) > 0).tolist():
        needed[pk.pts[d] or 0] = _REFS_ONLY
    for d in targets:
        needed[pk.pts[d] or 0] = _DECODE
    shown_starts = {pk.pts[d] or 0 for d in starts} & pk.index.keys()
    return needed, first, max(targets, default=-1), shown_starts


class _Reader:
    """Decodes the frames at ``wanted`` indices of a video and yields them as RGB.

    Selective (``pk.exact``): only the packets :func:`_needed_packets` names are sent to the
    decoder, each frame is named by its presentation timestamp (so B-frame reordering and
    frame threads do not matter), and a reader that starts past the file's first needed packet
    seeks to its keyframe first. A wanted frame that does not come out, or comes out flagged
    corrupt, is counted in ``missing``: the caller then decodes the file in full.
    Otherwise every packet is decoded and the frames are counted in the order they come out,
    as a player (and the reference vPDQ) counts them.
    """

    def __init__(
        self, p: Path, pk: _Packets, wanted: list[int], time_budget: float, to_end: bool = False
    ) -> None:
        self.path = p
        self.to_end = to_end  # decode on past the last wanted frame, to the end of the stream
        self.pk = pk
        # A selective decode names frames by timestamp: only frames the stream has.
        self.wanted = sorted(i for i in wanted if i >= 0 and (i < pk.frames or not self.exact))
        self.time_budget = time_budget
        self.decoded = 0  # frames that came out of the decoder
        self.last_index = -1
        self.errors = 0  # packets the decoder refused
        self.missing: set[int] = set()  # wanted frames (and keyframes) that did not come out
        self._keys: set[int] = set()  # pts of the keyframes the decode runs start from
        self._done: set[int] = set()

    @property
    def exact(self) -> bool:
        """A selective decode: the timestamps name the frames."""
        return self.pk.exact

    def frames(self, stop: threading.Event | None = None) -> Iterator[tuple[int, np.ndarray]]:
        import av

        if not self.wanted:
            return
        container = _open_container(self.path, self.time_budget)
        try:
            stream = _video_stream(container)
            if stream is None:
                return
            stream.thread_type = "AUTO"  # frame and slice threads, one per core
            cc = stream.codec_context
            if self.exact:
                needed, first, last, self._keys = _needed_packets(self.pk, self.wanted)
                last_pts = self.pk.pts[last]
                if first > 0:
                    dts = self.pk.dts[first]
                    target = dts if dts is not None else self.pk.pts[first] or 0
                    container.seek(target, stream=stream, backward=True, any_frame=False)
            else:
                needed, last_pts = {}, None
            wanted = set(self.wanted)
            try:
                for packet in container.demux(stream):
                    if stop is not None and stop.is_set():
                        return
                    if packet.size == 0:
                        continue
                    if self.exact:
                        level = needed.get(packet.pts) if packet.pts is not None else None
                        if level is None:
                            continue
                        cc.skip_frame = level
                    yield from self._take(self._decode(cc, packet), wanted)
                    if packet.pts == last_pts and last_pts is not None:
                        break
                    if not (self.exact or self.to_end) and self.last_index >= self.wanted[-1]:
                        break
            except av.error.FFmpegError as exc:  # the file breaks off: keep what decoded
                log.info("%s: demux stopped: %r", self.path.name, exc)
            cc.skip_frame = _DECODE
            yield from self._take(self._decode(cc, None), wanted)
            if self.errors:
                log.info("%s: %d packets refused by the decoder", self.path.name, self.errors)
            if self.exact:
                self.missing = (wanted - self._done) | {self.pk.index[t] for t in self._keys}
        finally:
            container.close()

    def _decode(self, cc: VideoCodecContext, packet: Packet | None) -> list[VideoFrame]:
        import av

        try:
            return cc.decode(packet)
        except av.error.FFmpegError:  # a damaged packet: the decoder goes on with the next
            self.errors += 1
            return []

    def _take(self, frames: list[VideoFrame], wanted: set[int]) -> Iterator[tuple[int, np.ndarray]]:
        for frame in frames:
            self.decoded += 1
            if self.exact:
                index = self.pk.index.get(frame.pts) if frame.pts is not None else None
                if index is None:
                    continue
            else:
                index = self.decoded - 1
            self.last_index = max(self.last_index, index)
            if frame.pts in self._keys and frame.key_frame:
                # A keyframe by the container's word is one by the decoder's too (an IDR or a
                # recovery point): the frames after it do not depend on what was not sent.
                self._keys.discard(frame.pts)
            if index not in wanted or index in self._done:
                continue
            if self.exact and frame.is_corrupt:
                continue  # counted in missing
            if frame.width * frame.height > MAX_FRAME_PIXELS:
                raise _FrameTooLarge(frame.width, frame.height)
            self._done.add(index)
            yield index, _rotated(frame.to_ndarray(format="rgb24"), frame.rotation)


class _FrameTooLarge(Refusal):
    def __init__(self, width: int, height: int) -> None:
        super().__init__(f"video frames too large ({width}x{height})")


def _rotated(rgb: np.ndarray, degrees: float) -> np.ndarray:
    """The frame as it is shown: a phone video's display rotation (counter-clockwise degrees,
    from its display matrix) applied, as players and OpenCV do."""
    turns = round(degrees / 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


def _stream_fps(stream: VideoStream) -> float:
    """Frames per second from the stream's header (its average rate, else its base rate, as
    OpenCV reads it), or FALLBACK_FPS when it says nothing usable. PyAV gives each rate as a
    Fraction of two nonzero C ints, or None: a finite number when there is one."""
    rate = stream.average_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    if fps <= 0 or fps > 1000:
        log.info("fps %r unusable, assuming %s", fps, FALLBACK_FPS)
        return FALLBACK_FPS
    return fps


def _segment_count(requested: int | None, samples: int) -> int:
    """How many segments to decode in parallel: one per core (or ``requested``), each of at
    least :data:`MIN_SEGMENT_SAMPLES` samples (a short clip is not worth a second seek)."""
    wanted = requested if requested is not None else SEGMENTS or (os.cpu_count() or 1)
    return max(1, min(wanted, MAX_SEGMENTS, samples // MIN_SEGMENT_SAMPLES))


class _Decoder(threading.Thread):
    """Decodes one segment's sampled frames (a :class:`_Reader` of its own) on its own thread
    and hashes each (:func:`_hash_frame`: FFmpeg and numpy release the GIL), handing
    ``(sample_number, hashed)`` over ``out``, so decoding and hashing overlap the caller's
    work; the last item is ``(None, None)``."""

    def __init__(
        self, reader: _Reader, samples: dict[int, int], fps: float, out: queue.Queue, segment: int
    ) -> None:
        super().__init__(name=f"hashdesk-video-decode-{segment}", daemon=True)
        self.reader = reader
        self.samples = samples  # frame index -> sample number
        self.fps = fps
        self.out = out
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for index, rgb in self.reader.frames(self.stop):
                hashed = _hash_frame(rgb, round(index / self.fps, 3))
                self._put((self.samples[index], hashed))
        except BaseException as exc:  # reported to the caller, never lost in the thread
            self.error = exc
        finally:
            self._put((None, None))

    def _put(self, item: tuple) -> None:
        while True:
            try:
                self.out.put(item, timeout=0.1)
                return
            except queue.Full:
                if self.stop.is_set() and item[0] is not None:
                    return

    def halt(self) -> None:
        self.stop.set()
        with contextlib.suppress(queue.Empty):  # unblock a producer waiting on a full queue
            while True:
                self.out.get_nowait()
        self.join(timeout=5.0)


@dataclass(frozen=True)
class _Job:
    """One video being hashed: what every decoding pass needs to know."""

    path: Path
    head: bytes
    sha256: str
    md5: str
    size: int
    byte_signals: list[Signal]
    fps: float
    packets: _Packets
    samples: list[int]  # frame index of each sample, in order
    deadline: float
    time_budget: float
    max_samples: int

    def unreadable(self, why: str) -> MediaAnalysis:
        return _unreadable(self.sha256, self.md5, self.size, why)


def _analyze_av(
    p: Path,
    head: bytes,
    sha256: str,
    md5: str,
    size: int,
    byte_signals: list[Signal],
    time_budget: float,
    max_samples: int,
    segments: int | None = None,
) -> MediaAnalysis:
    import av

    deadline = time.monotonic() + time_budget
    try:
        container = _open_container(p, time_budget)
    except (av.error.FFmpegError, TypeError) as exc:
        log.info("%s: not opened: %r", p.name, exc)
        return _unreadable(sha256, md5, size, "video could not be opened (unknown format)")
    try:
        probed = _probe(container, deadline, refuse_large=True)
    except _FrameTooLarge as exc:
        return _unreadable(sha256, md5, size, str(exc))
    except _TimedOut:
        return _unreadable(sha256, md5, size, "video decoding timed out before any frame")
    if probed is None:
        return _unreadable(sha256, md5, size, "no video stream")
    fps, pk = probed
    count = pk.count
    # Seconds between samples: 1, or more for very long videos so at most max_samples.
    interval = 1.0
    if count > 0 and count / fps > max_samples:
        interval = (count / fps) / max_samples
    promised = min(max_samples, len(_samples_below(count, interval, fps)))
    samples = [sample_index(k, interval, fps) for k in range(promised)]
    job = _Job(
        p, head, sha256, md5, size, byte_signals, fps, pk, samples, deadline, time_budget,
        max_samples,
    )  # fmt: skip
    if not samples:
        return job.unreadable("video could not be decoded (no frames)")
    # Segments seek: only where frames are named by their timestamps, and every sample is
    # its own frame.
    n_seg = _segment_count(segments, promised) if pk.exact and interval * fps >= 1.0 else 1
    try:
        return _decode(job, n_seg, pk.exact)
    except _PlanMismatch as exc:
        log.info("%s: %s; decoding every frame", p.name, exc)
        return _decode(job, 1, exact=False)


def _samples_below(count: int, interval: float, fps: float) -> range:
    """The sample numbers whose frame index is below ``count``."""
    if count <= 0:
        return range(0)
    k = max(0, math.floor((count - 0.5) / (interval * fps)) - 1)
    while sample_index(k, interval, fps) < count:
        k += 1
    return range(k)


def _decode(job: _Job, n_seg: int, exact: bool) -> MediaAnalysis:
    """Decode the sampled frames in ``n_seg`` parallel segments and hash them (``exact``: a
    selective decode, else every frame). Raises _PlanMismatch when a selective decode missed
    a sampled frame."""
    pk = job.packets if exact else job.packets.in_order()
    fps = job.fps
    bounds = [round(i * len(job.samples) / n_seg) for i in range(n_seg + 1)]
    out: queue.Queue = queue.Queue(maxsize=2 + n_seg)
    decoders: list[_Decoder] = []
    frames = _FrameHasher()
    strip: _StripCollector | None = None
    width = height = None
    stop_reason = ""
    try:
        for seg in range(n_seg):
            part = job.samples[bounds[seg] : bounds[seg + 1]]
            numbers = {index: bounds[seg] + k for k, index in enumerate(part)}
            reader = _Reader(job.path, pk, part, job.time_budget)
            decoders.append(_Decoder(reader, numbers, fps, out, seg))
        for d in decoders:
            d.start()
        running = n_seg
        while running:
            remaining = job.deadline - time.monotonic()
            if remaining <= 0:
                stop_reason = "time budget"
                break
            try:
                sample, hashed = out.get(timeout=min(remaining, 1.0))
            except queue.Empty:
                continue
            if sample is None:
                running -= 1
                continue
            if strip is None:
                height, width = hashed.rgb.shape[:2]
                strip = _StripCollector(width, height)
            frames.add(hashed)
            strip.offer(sample, hashed.rgb)
            if len(frames) >= job.max_samples:
                stop_reason = "sample cap"
                break
    finally:
        for d in decoders:
            d.halt()

    errors = [d.error for d in decoders if d.error is not None]
    for err in errors:
        if isinstance(err, _FrameTooLarge):
            return job.unreadable(str(err))
    if exact and not stop_reason:
        if errors:  # a segment that could not seek or read: its samples are not to be lost
            raise _PlanMismatch(f"a segment failed ({describe(errors[0])})")
        missing = sorted(i for d in decoders for i in d.reader.missing)
        if missing:
            raise _PlanMismatch(
                f"{len(missing)} sampled frames or keyframes not decoded as flagged, "
                f"first frame {missing[0]}"
            )
    if errors and not len(frames):
        raise errors[0]
    if not len(frames) or strip is None:
        if stop_reason == "time budget":
            return job.unreadable("video decoding timed out before any frame")
        return job.unreadable("video could not be decoded (no frames)")
    if stop_reason:
        log.info("%s: stopped after %d samples (%s)", job.path.name, len(frames), stop_reason)
    last = max((d.reader.last_index for d in decoders), default=0)
    # A selective decode counts the frames the timestamps name; a full one, every packet.
    duration = max(job.packets.frames if exact else len(job.packets.pts), last + 1) / fps
    preview, n_preview = strip.jpeg()
    return MediaAnalysis(
        sha256=job.sha256,
        md5=job.md5,
        size=job.size,
        kind=MediaKind.VIDEO,
        mime=_mime_for(job.head),
        width=width,
        height=height,
        duration=round(duration, 3),
        signals=[*frames.signals(job.path.name), *job.byte_signals],
        preview=preview,
        preview_frames=n_preview,
    )


def _analyze_animated(
    p: Path,
    sha256: str,
    md5: str,
    size: int,
    byte_signals: list[Signal],
    time_budget: float,
    max_samples: int,
) -> MediaAnalysis:
    """Animated GIF / WebP through Pillow: one frame per second of display time (frame 0 always)."""
    deadline = time.monotonic() + time_budget
    frames = _FrameHasher()
    strip: _StripCollector | None = None
    t = 0.0  # display time (s) at which the current frame starts
    next_sample = 0.0
    interval = 1.0
    with Image.open(p) as im:  # Pillow's MAX_IMAGE_PIXELS bomb check applies here
        fmt = (im.format or "").upper()
        width, height = im.size
        if width * height > MAX_FRAME_PIXELS:
            return _unreadable(sha256, md5, size, f"animation frames too large ({width}x{height})")
        n_frames = getattr(im, "n_frames", 1)
        try:
            for i, frame in enumerate(ImageSequence.Iterator(im)):
                if i >= MAX_ANIMATED_FRAMES or time.monotonic() > deadline:
                    break
                dur = frame.info.get("duration") or 0
                # Browsers show 0/10 ms GIF frames for ~100 ms; do the same for timing.
                dur_s = (dur if dur > 10 else 100) / 1000.0
                if t + 1e-9 >= next_sample:
                    rgb = np.asarray(frame.convert("RGB"))
                    frames.add(_hash_frame(rgb, round(t, 3)))
                    if strip is None:
                        strip = _StripCollector(*rgb.shape[1::-1])
                    strip.offer(len(frames) - 1, rgb)
                    next_sample += interval
                    while next_sample <= t:
                        next_sample += interval
                    if len(frames) >= max_samples:
                        break
                t += dur_s
        except (OSError, EOFError, ValueError) as exc:  # truncated animation: keep what decoded
            if not len(frames):
                return _unreadable(
                    sha256, md5, size, f"animation could not be decoded ({describe(exc)})"
                )
            log.info("%s: animation truncated after %d samples: %r", p.name, len(frames), exc)
    if not len(frames) or strip is None:
        return _unreadable(sha256, md5, size, "animation could not be decoded (no frames)")
    preview, n_preview = strip.jpeg()
    return MediaAnalysis(
        sha256=sha256,
        md5=md5,
        size=size,
        kind=MediaKind.ANIMATED if n_frames > 1 else MediaKind.IMAGE,
        mime="image/gif" if fmt == "GIF" else "image/webp",
        width=width,
        height=height,
        duration=round(t, 3),
        signals=[*frames.signals(p.name), *byte_signals],
        preview=preview,
        preview_frames=n_preview,
    )


def _unreadable(sha256: str, md5: str, size: int, why: str) -> MediaAnalysis:
    return MediaAnalysis(
        sha256=sha256,
        md5=md5,
        size=size,
        kind=MediaKind.UNREADABLE,
        signals=[Signal(Algorithm.MD5, md5), Signal(Algorithm.SHA256, sha256)],
        preview=None,
        preview_frames=0,
        error=why,  # the reason alone, as for pictures: screens and summaries add "unreadable"
    )


def _read_head(p: Path) -> bytes:
    with open(p, "rb") as fh:
        return fh.read(64)


def _looks_like_text(head: bytes) -> bool:
    """Playlists and concat lists are text; real containers start with binary headers."""
    if not head:
        return False
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return stripped.startswith(_TEXT_MAGIC)


def _mime_for(head: bytes) -> str:
    """MIME from the container's own header (extensions lie)."""
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return "video/quicktime" if brand == b"qt  " else "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"webm" in head else "video/x-matroska"
    if head[:4] == b"RIFF" and head[8:11] == b"AVI":
        return "video/x-msvideo"
    if head[:3] == b"FLV":
        return "video/x-flv"
    if head[:4] == b"OggS":
        return "video/ogg"
    if head[:4] == b"\x00\x00\x01\xba":
        return "video/mpeg"
    if head[:1] == b"\x47":
        return "video/mp2t"
    if head[:4] == b"\x30\x26\xb2\x75":
        return "video/x-ms-asf"
    return "application/octet-stream"


@dataclass(frozen=True)
class SampledFrames:
    """A video's sampled frames as the scrubber shows them: where the file is, each frame's
    timestamp (the ingest's samples, about one a second), and the timestamps whose frame PDQ
    matched the known content the item was badged with."""

    path: str | None
    times: tuple[float, ...] = ()
    matched: frozenset[float] = frozenset()


SCRUB_LONG_SIDE = 480  # scrubber frames: small, like a preview (blurred small, shown scaled)


def decode_frames_at(
    path: str | os.PathLike[str], times: list[float], long_side: int = SCRUB_LONG_SIDE
) -> list[Image.Image | None]:
    """The frames at ``times`` (seconds, the ingest's sampled timestamps), small, for the silent
    scrubber. Decoded as hashing decodes them (only the packets those frames need), on a
    worker. Never audio (only the video stream is read). A frame that cannot be decoded is
    None; nothing raises for bad media."""
    out: list[Image.Image | None] = [None] * len(times)
    if not times:
        return out
    try:
        p = Path(path).resolve()
        container = _open_container(p, TIME_BUDGET_SECONDS)
        probed = _probe(container, time.monotonic() + TIME_BUDGET_SECONDS)
        if probed is None:
            return out
        fps, pk = probed
        wanted: dict[int, list[int]] = {}
        for i, ts in enumerate(times):
            wanted.setdefault(round(ts * fps), []).append(i)
        for packets in (pk, pk.in_order()) if pk.exact else (pk,):
            reader = _Reader(p, packets, list(wanted), TIME_BUDGET_SECONDS)
            for index, rgb in reader.frames():
                img = Image.fromarray(rgb)
                img.thumbnail((long_side, long_side))
                for i in wanted[index]:
                    out[i] = img
            if not reader.missing:
                break
    except Exception as exc:  # adversarial input: the scrubber shows what it could decode
        log.warning("scrubber decode failed for %s: %r", path, exc)
    return out
