"""A video's (or animated picture's) analysis: duration, vPDQ-compatible frame PDQ (about one
sampled frame a second), keyframe strip, MIME from the content.

No Qt, no SQL. :func:`analyze_video` never raises: a file that cannot be decoded gives an
UNREADABLE analysis carrying the reason, so the item stays visible and actionable. Each file
is probed once (:mod:`~app.core.video.probe`), its samples planned
(:mod:`~app.core.video.plan`), decoded in parallel segments (:mod:`~app.core.video.decode`),
hashed (:mod:`~app.core.video.frames`) and stripped (:mod:`~app.core.video.strip`); when a
selective decode misses a sampled frame, the file is decoded again in full, every frame
counted in order. The result is the same for any number of segments. Measurements:
docs/PERFORMANCE.md, "Video".
"""

from __future__ import annotations

import logging
import os
import queue
import time
from dataclasses import dataclass
from pathlib import Path

from app.core.errors import describe
from app.core.hashing.imaging import looks_like_text, video_mime
from app.core.model.domain import Algorithm, MediaAnalysis, MediaKind, Signal
from app.core.video.animated import _analyze_animated
from app.core.video.decode import (
    TIME_BUDGET_SECONDS,
    _Decoder,
    _PlanMismatch,
    _Reader,
    _segment_count,
)
from app.core.video.frames import _FrameHasher
from app.core.video.plan import MAX_SAMPLED_FRAMES, _samples_below, sample_index
from app.core.video.probe import _FrameTooLarge, _open_container, _Packets, _probe, _TimedOut
from app.core.video.strip import _StripCollector
from app.core.video.unreadable import _unreadable

log = logging.getLogger(__name__)

_GIF_MAGIC = (b"GIF87a", b"GIF89a")


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

    ``segments``: how many parts of the video are decoded in parallel (None: ``decode.SEGMENTS``,
    by default one per core). The result is the same either way (tests check it)."""
    byte_signals = [Signal(Algorithm.MD5, md5), Signal(Algorithm.SHA256, sha256)]
    try:
        p = Path(path).resolve()
        head = _read_head(p)
        if head.startswith(_GIF_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
            return _analyze_animated(p, sha256, md5, size, byte_signals, time_budget, max_samples)
        if looks_like_text(head):
            return _unreadable(sha256, md5, size, "not a video (text file or playlist)")
        return _analyze_av(
            p, head, sha256, md5, size, byte_signals, time_budget, max_samples, segments
        )
    except MemoryError:
        return _unreadable(sha256, md5, size, "video too large to decode")
    except Exception as exc:  # adversarial input: nothing may escape
        log.warning("video analysis failed for %s: %r", path, exc)
        return _unreadable(sha256, md5, size, f"video could not be decoded ({describe(exc)})")


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
        mime=video_mime(job.head),
        width=width,
        height=height,
        duration=round(duration, 3),
        signals=[*frames.signals(job.path.name), *job.byte_signals],
        preview=preview,
        preview_frames=n_preview,
    )


def _read_head(p: Path) -> bytes:
    with open(p, "rb") as fh:
        return fh.read(64)
