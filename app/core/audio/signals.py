"""The sound's signals: its fingerprint (:mod:`app.core.audio.fingerprint`) in stored blocks.

A block (:data:`Algorithm.AUDIO`, 64 hex digits) is the number of its first sub-fingerprint
and the 7 that follow (:func:`app.core.matching.audio_match.block_hex`); ``frame_ts`` is that
first sub-fingerprint's time. Blocks that are all silence are left out.

* The sound as it is (variant ``""``): every block, up to
  :data:`~app.core.audio.decode.MAX_SECONDS`. These go in the hash list when the item is
  confirmed (local list only).
* The sound read at other speeds (``speed:<percent>``, query-only, never in the list): for
  stretches of :data:`SPEED_WINDOW_SECONDS` every :data:`SPEED_EVERY_SECONDS` (one in the
  middle of a shorter sound), each read at every speed of
  :data:`~app.core.audio.fingerprint.SPEEDS`. A copy sped up or slowed down as a whole is
  found from any one of them; a stretch of a compilation played at another speed is found
  when it covers one.

A sound shorter than the comparison window (3 s) still gets its blocks (they are its
fingerprint) but cannot match anything (:mod:`app.core.matching.audio_match`).
"""

from __future__ import annotations

import numpy as np

from app.core.audio import fingerprint as fp
from app.core.matching.audio_match import SUBS, WINDOW, block_hex
from app.core.matching.signal_types import speed_variant
from app.core.model.domain import Algorithm, Signal

SPEED_WINDOW_SECONDS = 6.0
SPEED_EVERY_SECONDS = 30.0


def blocks(
    subs: np.ndarray,
    first: int = 0,
    seconds_per_sub: float = 1 / fp.FRAMES_PER_SECOND,
    variant: str = "",
    t0: float = 0.0,
) -> list[Signal]:
    """``subs`` (numbered from ``first``) cut into blocks of 7, silent ones left out."""
    out = []
    for i in range(0, subs.shape[0], SUBS):
        part = subs[i : i + SUBS]
        if not part.any():
            continue
        if part.shape[0] < SUBS:
            part = np.concatenate([part, np.zeros(SUBS - part.shape[0], np.uint32)])
        out.append(
            Signal(
                Algorithm.AUDIO,
                block_hex(first + i, part.tolist()),
                frame_ts=round(t0 + i * seconds_per_sub, 3),
                variant=variant,
            )
        )
    return out


def speed_windows(frames: int) -> list[tuple[int, int]]:
    """The stretches (frame ranges of the copy) read at other speeds."""
    per_s = fp.FRAMES_PER_SECOND
    size = int(SPEED_WINDOW_SECONDS * per_s)
    if frames <= size:
        return [(0, frames)] if frames > 0 else []
    every = int(SPEED_EVERY_SECONDS * per_s)
    if frames < every:
        mid = frames // 2
        return [(mid - size // 2, mid - size // 2 + size)]
    return [(a, a + size) for a in range(every // 2 - size // 2, frames - size + 1, every)]


def sound_signals(samples: np.ndarray, speeds: tuple[int, ...] = fp.SPEEDS) -> list[Signal]:
    """Every signal of a sound (mono, :data:`~app.core.audio.fingerprint.RATE`)."""
    power = fp.power_spectrum(samples)
    energies = power @ fp.band_matrix()
    floor = fp.silence_floor(energies)
    out = blocks(fp.bits_of(energies, floor))
    if power.shape[0] <= WINDOW:  # too short to match at any speed: no variants
        return out
    for a, b in speed_windows(power.shape[0]):
        piece = power[a:b]
        for sp in speeds:
            s = sp / 100.0
            subs = fp.speed_variant(piece, sp, floor)
            # the copy's frame a is the original's frame a * s: numbers in the original's
            first = round(a * s)
            out += blocks(
                subs,
                first,
                1 / (fp.FRAMES_PER_SECOND * s),
                speed_variant(sp),
                t0=a / fp.FRAMES_PER_SECOND,
            )
    return out
