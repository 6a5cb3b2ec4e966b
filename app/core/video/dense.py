"""Dense frame hashes of a confirmed video: every frame decoded and hashed, so a clip cut at
any offset, or played faster or slower, still meets frames of the reference.

Ingest samples about one frame a second (:mod:`app.core.video.analysis`); a query keeps that.
A confirmed video, as a reference, gets these frames too: every frame is decoded with PyAV
(codec threads on) and hashed with our own PDQ at full size (frames over
:data:`~app.core.video.frames.PDQ_WORK_SIDE` reduced first, as the sampled frames are). To
bound storage, a frame within :data:`DROP_BITS` of the last kept frame's hash is dropped, but
one frame is kept at least every :data:`KEEP_EVERY_SECONDS`: a still scene costs a row every
few seconds, a moving one every frame that moved.

When the video has letterbox/pillarbox bars, each kept frame's hash with the bars trimmed is
kept as well (variant ``trimmed``), with the crop decided before the pass from frames spread
over the video (:class:`~app.core.hashing.bars.BarDetector`, as the sampled frames' is), and
dropped if the frames seen during the pass do not bear it out.

No Qt, no SQL. :func:`dense_frame_signals` never raises for bad media: it returns what it could
hash within its time budget, or [].
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import numpy as np

from app.core.hashing.bars import BarDetector, Bars, bars_agree, crop
from app.core.hashing.pdq import luma_from_rgb, pdq_from_luma
from app.core.matching.signal_types import TRIMMED
from app.core.model.domain import Algorithm, Signal
from app.core.video.frames import _work_rgb
from app.core.video.probe import (
    MAX_FRAME_PIXELS,
    _open_container,
    _stream_fps,
    _video_stream,
)

log = logging.getLogger(__name__)

DROP_BITS = 10  # a frame this near the last kept one (Hamming bits) adds nothing: dropped
KEEP_EVERY_SECONDS = 2.0  # ... unless the last kept frame is this old
TIME_BUDGET_SECONDS = 3600.0  # wall-clock cap per video; keep what was hashed so far
BAR_PROBE_FRAMES = 12  # frames spread over the video the bars are decided from
BAR_WATCH_SECONDS = 1.0  # during the pass, one frame this often goes to the bar detector


def dense_frame_signals(
    path: str | os.PathLike[str],
    *,
    drop_bits: int = DROP_BITS,
    keep_every: float = KEEP_EVERY_SECONDS,
    time_budget: float = TIME_BUDGET_SECONDS,
    stop: threading.Event | None = None,
) -> list[Signal]:
    """The ``pdq_frame`` signals of every frame of the video at ``path`` that moved (plain,
    variant ""; and ``trimmed`` when the video has bars), each with its time (``frame_ts``:
    its index in output order over the frame rate, as the sampled frames'), by time.

    ``drop_bits``: a frame within this many bits of the last kept one is dropped (negative:
    keep every frame); ``keep_every``: seconds after which a frame is kept whatever its
    distance. ``stop``: set from another thread to end early. Never raises: a file that cannot
    be decoded gives [], one that breaks off or runs out of time what was hashed before."""
    try:
        return _dense(Path(path), drop_bits, keep_every, time_budget, stop)
    except MemoryError:
        log.warning("dense hashing of %s: out of memory", path)
        return []
    except Exception as exc:  # adversarial input: nothing may escape
        log.warning("dense hashing of %s failed: %r", path, exc)
        return []


def _dense(
    p: Path,
    drop_bits: int,
    keep_every: float,
    time_budget: float,
    stop: threading.Event | None,
) -> list[Signal]:
    import av

    deadline = time.monotonic() + time_budget
    bars = _decide_bars(p, time_budget)
    plain: list[Signal] = []
    trimmed: list[Signal] = []
    watcher = BarDetector()
    container = _open_container(p, time_budget)
    try:
        stream = _video_stream(container)
        if stream is None:
            return []
        cc = stream.codec_context
        if cc.width * cc.height > MAX_FRAME_PIXELS:
            log.info("%s: frames too large for dense hashing", p.name)
            return []
        fps = _stream_fps(stream)
        stream.thread_type = "AUTO"  # frame and slice threads, one per core
        last_bits: int | None = None
        last_ts = -1e9
        watched_at = -1e9
        n = -1
        try:
            for frame in container.decode(stream):
                n += 1
                if (stop is not None and stop.is_set()) or time.monotonic() >= deadline:
                    log.info("%s: dense hashing stopped after %d frames", p.name, n)
                    break
                rgb = frame.to_ndarray(format="rgb24")
                ts = round(n / fps, 3)
                if ts - watched_at >= BAR_WATCH_SECONDS:
                    watcher.add(rgb)
                    watched_at = ts
                work = _work_rgb(rgb)
                luma = luma_from_rgb(work)
                value, quality = pdq_from_luma(luma)
                bits = int(value, 16)
                near = last_bits is not None and (bits ^ last_bits).bit_count() <= drop_bits
                if near and ts - last_ts < keep_every:
                    continue
                last_bits, last_ts = bits, ts
                plain.append(Signal(Algorithm.PDQ_FRAME, value, quality, ts))
                if bars is not None and rgb.shape[:2] == (watcher.height, watcher.width):
                    trimmed.append(_trimmed(rgb, luma, work is not rgb, bars, ts))
        except av.error.FFmpegError as exc:  # the file breaks off: keep what decoded
            log.info("%s: dense decode stopped after %d frames: %r", p.name, n + 1, exc)
    finally:
        container.close()
    if bars is not None and trimmed:
        final = watcher.bars()
        if not bars_agree(bars, final, watcher.height or 0, watcher.width or 0):
            log.info("%s: bars %s not borne out by the dense pass (%s)", p.name, bars, final)
            trimmed = []
    return [*plain, *trimmed]


def _trimmed(rgb: np.ndarray, luma: np.ndarray, reduced: bool, bars: Bars, ts: float) -> Signal:
    """The frame's PDQ with the bars trimmed, as :mod:`app.core.video.frames` computes it."""
    if reduced:  # a 4K+ frame: the crop is reduced on its own
        cut = luma_from_rgb(_work_rgb(np.ascontiguousarray(crop(rgb, bars))))
    else:
        cut = crop(luma, bars)
    value, quality = pdq_from_luma(cut)
    return Signal(Algorithm.PDQ_FRAME, value, quality, ts, TRIMMED)


def _decide_bars(p: Path, time_budget: float) -> Bars | None:
    """The bars of the video, from :data:`BAR_PROBE_FRAMES` frames spread over it (each the
    first decoded after a seek), or None when it has none (or cannot be read so)."""
    import av

    detector = BarDetector()
    try:
        container = _open_container(p, min(time_budget, 60.0))
    except (av.error.FFmpegError, TypeError, OSError):
        return None
    try:
        stream = _video_stream(container)
        if stream is None:
            return None
        stream.thread_type = "AUTO"
        time_base = stream.time_base
        if time_base is None:
            return None
        span = float(stream.duration * time_base) if stream.duration else 0.0
        if not span and container.duration:
            span = container.duration / 1_000_000
        start = stream.start_time or 0
        for k in range(BAR_PROBE_FRAMES):
            target = start + int(span * (k + 0.5) / BAR_PROBE_FRAMES / time_base)
            try:
                container.seek(target, stream=stream, backward=True, any_frame=False)
                for frame in container.decode(stream):
                    if frame.pts is None or frame.pts >= target:
                        detector.add(frame.to_ndarray(format="rgb24"))
                        break
            except av.error.FFmpegError:
                continue
    except Exception as exc:  # the bars are a refinement: without them, plain frames only
        log.info("%s: bars not decided: %r", p.name, exc)
        return None
    finally:
        container.close()
    return detector.bars()
