"""Decoding the sampled frames with PyAV: a reader that sends the decoder only the packets the
plan names (:mod:`app.core.video.plan`) and names each frame by its timestamp, or decodes
every frame counted in order; and the threads that decode a video's segments in parallel
(each its own container, seeking to its first keyframe), hashing each frame as it comes.

A selective decode gives the very pixels a decode of every frame gives. A wanted frame that
does not come out intact (keyframe flags or timestamps that lie) is reported
(``_Reader.missing``, :class:`_PlanMismatch`): the caller then decodes the file in full.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from app.core.errors import Refusal
from app.core.video.frames import _hash_frame
from app.core.video.plan import _DECODE, _needed_packets, _samples_below, sample_index
from app.core.video.probe import (
    MAX_FRAME_PIXELS,
    _FrameTooLarge,
    _open_container,
    _Packets,
    _probe,
    _video_stream,
)

if TYPE_CHECKING:
    from av.packet import Packet
    from av.video.codeccontext import VideoCodecContext
    from av.video.frame import VideoFrame

log = logging.getLogger(__name__)

TIME_BUDGET_SECONDS = 120.0  # wall-clock cap per file; keep what was hashed so far
# Parallel decoding of one video: segments (each its own capture and thread, seeking to its
# start). None = one per core; the ingest pool sets 1 in its workers (files are parallel there).
SEGMENTS: int | None = None
MAX_SEGMENTS = 4
MIN_SEGMENT_SAMPLES = 15  # a segment is at least this many samples (seconds) long


class _PlanMismatch(Refusal):
    """A wanted frame did not come out of a selective decode intact (a file whose keyframe
    flags or timestamps do not say what they should): it is decoded again in full."""


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


def _rotated(rgb: np.ndarray, degrees: float) -> np.ndarray:
    """The frame as it is shown: a phone video's display rotation (counter-clockwise degrees,
    from its display matrix) applied, as players and OpenCV do."""
    turns = round(degrees / 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


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
