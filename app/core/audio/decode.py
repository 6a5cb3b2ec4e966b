"""Decoding a file's sound for the fingerprint: the first audio stream, mixed to mono and
resampled to :data:`app.core.audio.fingerprint.RATE` by PyAV's ``AudioResampler``. Local files
only (the video path's FFmpeg options). Never raises: a file without sound, or whose sound
cannot be decoded, gives no samples and a reason; a stream that breaks off keeps what came
before the break (and says where)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.core.audio.fingerprint import RATE
from app.core.errors import describe
from app.core.video.probe import _open_container

log = logging.getLogger(__name__)

#: Sound past this many seconds is not fingerprinted (the note says so).
MAX_SECONDS = 30 * 60
#: Packets that fail to decode before the stream is given up.
MAX_BAD_PACKETS = 50
#: Wall-clock budget for one file's sound (seconds).
TIME_BUDGET = 60.0


@dataclass(frozen=True)
class Sound:
    """``samples``: mono float32 at ``RATE`` (empty when there is none); ``seconds``: their
    length; ``note``: why there is none or less than the whole, or None; ``has_stream``:
    whether the file has an audio stream at all."""

    samples: np.ndarray
    note: str | None
    has_stream: bool

    @property
    def seconds(self) -> float:
        return self.samples.shape[0] / RATE


def _nothing(note: str | None, has_stream: bool) -> Sound:
    return Sound(np.zeros(0, np.float32), note, has_stream)


def decode_sound(
    path: str | Path, *, max_seconds: float = MAX_SECONDS, time_budget: float = TIME_BUDGET
) -> Sound:
    """The file's sound (see the module docstring)."""
    import av

    try:
        container = _open_container(Path(path), time_budget)
    except Exception as e:
        return _nothing(f"sound not read: {describe(e)}", False)
    try:
        if not container.streams.audio:
            return _nothing(None, False)
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        parts: list[np.ndarray] = []
        have = 0
        limit = int(max_seconds * RATE)
        bad = 0
        note: str | None = None
        deadline = time.monotonic() + time_budget

        def take(frames: list) -> None:
            nonlocal have
            for fr in frames:
                a = fr.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                parts.append(a)
                have += a.shape[0]

        try:
            for packet in container.demux(stream):
                if have >= limit:
                    note = f"sound fingerprinted up to {max_seconds / 60:.0f} min"
                    break
                if time.monotonic() > deadline:
                    note = f"sound fingerprinted up to {have / RATE:.1f} s (time budget)"
                    break
                try:
                    for frame in packet.decode():
                        take(resampler.resample(frame))
                except (av.error.InvalidDataError, ValueError) as e:
                    bad += 1
                    if bad >= MAX_BAD_PACKETS:
                        note = f"sound broken at {have / RATE:.1f} s: {describe(e)}"
                        break
            if note is None or "broken" not in note:
                take(resampler.resample(None))
        except av.error.FFmpegError as e:
            note = f"sound broken at {have / RATE:.1f} s: {describe(e)}"
        if bad and note is None:
            note = f"{bad} damaged sound packet(s) skipped"
        samples = np.concatenate(parts)[:limit] if parts else np.zeros(0, np.float32)
        if not np.all(np.isfinite(samples)):
            samples = np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0)
        return Sound(samples, note, True)
    except Exception as e:
        log.warning("sound decoding failed for %s: %r", path, e)
        return _nothing(f"sound not read: {describe(e)}", True)
    finally:
        container.close()
