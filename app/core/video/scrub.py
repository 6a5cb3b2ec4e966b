"""The scrubber's frames: a video's sampled frames decoded again, small, at the ingest's
sampled timestamps, for the silent scrubber (never audio). Nothing raises for bad media: a
frame that cannot be decoded is None.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from app.core.video.decode import TIME_BUDGET_SECONDS, _Reader
from app.core.video.probe import _open_container, _probe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SampledFrames:
    """A video's sampled frames as the scrubber shows them: where the file is, each frame's
    timestamp (the ingest's samples, about one a second), the timestamps whose frame PDQ
    matched the known content the item was badged with, and for a partial copy (a run of
    frames matching part of a known video) the seconds it spans and the video's duration."""

    path: str | None
    times: tuple[float, ...] = ()
    matched: frozenset[float] = frozenset()
    span: tuple[float, float] | None = None
    duration: float | None = None


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
