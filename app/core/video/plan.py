"""Which frames a video's analysis samples, and which packets decoding them needs.

Samples are about one a second, at frame indices ``round(k * interval * fps)`` (interval 1 s,
longer past :data:`MAX_SAMPLED_FRAMES` seconds), so the PDQ of a sampled frame compares
line-for-line with the reference vPDQ output for the same frame number. A sampled frame needs
the packets from the keyframe before it up to its own; of those only the reference frames
are decoded (``NONREF``), the sample itself in full; no other packet is sent.
"""

from __future__ import annotations

import bisect
import math
from typing import Literal

import numpy as np

from app.core.video.probe import _Packets

MAX_SAMPLED_FRAMES = 3600  # beyond an hour, sample less often than once a second


_SkipLevel = Literal["DEFAULT", "NONREF"]
_DECODE: _SkipLevel = "DEFAULT"  # skip_frame for a packet whose frame is wanted: decode it
_REFS_ONLY: _SkipLevel = (
    "NONREF"  # for a packet on the way to a wanted frame: skip it unless a reference
)


def sample_index(k: int, interval: float, fps: float) -> int:
    """Frame index of the ``k``-th sample: ``round(k * interval * fps)``."""
    return round(k * interval * fps)


def _samples_below(count: int, interval: float, fps: float) -> range:
    """The sample numbers whose frame index is below ``count``."""
    if count <= 0:
        return range(0)
    k = max(0, math.floor((count - 0.5) / (interval * fps)) - 1)
    while sample_index(k, interval, fps) < count:
        k += 1
    return range(k)


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
