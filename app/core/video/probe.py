"""Opening a video and its one demux pass: the video stream (not a cover picture), its frame
rate, and every packet's timestamps and keyframe flag (:class:`_Packets`), read without
decoding. Local files only: FFmpeg may not reach out of the file (no network, no playlist
entry). Frames larger than :data:`MAX_FRAME_PIXELS` are refused from the stream's header.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from app.core.errors import Refusal

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.stream import VideoStream

log = logging.getLogger(__name__)

FALLBACK_FPS = 25.0
MAX_FRAME_PIXELS = 7680 * 4320  # larger than 8K UHD: frames are refused (decompression-bomb guard)


# FFmpeg options for every file opened here: local files only (no network, no playlist or
# concat entry reaching out of the file), and concat lists limited to safe names.
_FFMPEG_OPTIONS = {"protocol_whitelist": "file", "safe": "1"}
_SCAN_CHECK_EVERY = 1024  # packets demuxed between two looks at the clock while scanning


class _TimedOut(Refusal):
    """The time budget ran out before any frame was decoded."""


class _FrameTooLarge(Refusal):
    def __init__(self, width: int, height: int) -> None:
        super().__init__(f"video frames too large ({width}x{height})")


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
