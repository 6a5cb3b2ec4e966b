"""The sound's fingerprint: Haitsma-Kalker sub-fingerprints, 32 bits every 23 ms.

The published algorithm (J. Haitsma, T. Kalker, "A Highly Robust Audio Fingerprinting
System", ISMIR 2002), step by step, with the two places this one differs said plainly:

1. The sound, mixed to mono and resampled to 5,512 Hz (PyAV's ``AudioResampler``, in
   :mod:`app.core.audio.decode`), is cut into frames of 2,048 samples (0.37 s) under a Hann
   window. The paper overlaps frames by 31/32 (a frame every 11.6 ms); here by 15/16 (every
   128 samples, 23.2 ms): half the rows to store, and a query's misalignment of at most half a
   step is still under 3 % of a frame.
2. The power spectrum of each frame is summed into 33 bands spaced logarithmically from 300
   to 2,000 Hz (the paper's bands; a bin on a band edge is shared in proportion).
3. Bit ``m`` of frame ``n`` is 1 when ``E(n,m) - E(n,m+1) - (E(n-1,m) - E(n-1,m+1)) > 0``:
   the sign of the band-energy difference's change in time. 33 bands give 32 bits.

Two sub-fingerprint sequences are compared by their bit error rate (BER) at the alignment
where they agree best (:mod:`app.core.matching.audio_match`).

Speed. A copy played faster by ``s`` has every frequency ``s`` times higher and every moment
``1/s`` times sooner. The paper's fingerprint survives a few percent of that; a copy at 1.25x
does not match at all. :func:`speed_variants` therefore computes, from the query's one
spectrum, the sub-fingerprints *the original* would have: each band's edges multiplied by
``s`` (the band that held 300-318 Hz in the original holds 375-397 Hz in the copy) and the
frames read at ``s`` times the copy's pace (energies interpolated between frames). One FFT
pass serves every speed; each speed costs a matrix product and a subtraction. The speeds
(:data:`SPEEDS`) are about 3 % apart, so no copy between 0.75x and 1.33x is more than
about 2 % from one of them (measured: docs/PERFORMANCE.md, "Audio").
"""

from __future__ import annotations

import numpy as np

#: Samples per second the fingerprint is computed at (mono).
RATE = 5512
#: Frame length (samples) and step between frames.
FRAME = 2048
HOP = 128
#: Band edges (Hz): 33 bands log-spaced, 300 to 2,000 Hz.
LOW_HZ, HIGH_HZ, BANDS = 300.0, 2000.0, 33
#: Sub-fingerprints per second.
FRAMES_PER_SECOND = RATE / HOP
#: The speeds a query is also read at (percent: the copy played this many times faster than
#: the original; 100 = as is). About 3 % apart from 0.75x to 1.33x.
SPEEDS: tuple[int, ...] = (
    75,
    77,
    80,
    82,
    85,
    87,
    90,
    93,
    96,
    104,
    107,
    110,
    113,
    117,
    120,
    124,
    128,
    133,
)
#: A frame quieter than this share of the sound's loud frames (95th percentile), or than
#: :data:`SILENCE_FLOOR` itself, is silence: its sub-fingerprint is 0 (never compared).
SILENCE_SHARE = 1e-5
SILENCE_FLOOR = 1e-3
#: A frame whose band energies changed by less than this share of their sum since the frame
#: before is steady (a held tone, a hum): its bits are the sign of rounding noise, the same
#: for every copy of that tone, so its sub-fingerprint is 0 too (music and speech change by
#: 5-30 % a frame; a steady tone by 0.01-0.04 %, a tone under noise by 0.2 %).
STEADY_SHARE = 0.01

_WINDOW = np.hanning(FRAME).astype(np.float32)
_BIN_HZ = RATE / FRAME


def band_matrix(scale: float = 1.0) -> np.ndarray:
    """``(FRAME // 2 + 1, BANDS)`` weights: how much of each FFT bin falls in each band, the
    band edges multiplied by ``scale`` (a bin on an edge is shared in proportion)."""
    edges = LOW_HZ * (HIGH_HZ / LOW_HZ) ** (np.arange(BANDS + 1) / BANDS) * scale
    lo_bin = (np.arange(FRAME // 2 + 1) - 0.5) * _BIN_HZ
    hi_bin = lo_bin + _BIN_HZ
    lo = np.maximum(lo_bin[:, None], edges[None, :-1])
    hi = np.minimum(hi_bin[:, None], edges[None, 1:])
    return (np.clip(hi - lo, 0.0, None) / _BIN_HZ).astype(np.float32)


def power_spectrum(samples: np.ndarray) -> np.ndarray:
    """``(frames, FRAME // 2 + 1)`` power spectra of the Hann-windowed frames (none when the
    sound is shorter than one frame)."""
    x = np.asarray(samples, np.float32)
    n = 0 if x.shape[0] < FRAME else 1 + (x.shape[0] - FRAME) // HOP
    if n == 0:
        return np.zeros((0, FRAME // 2 + 1), np.float32)
    out = np.empty((n, FRAME // 2 + 1), np.float32)
    step = 512  # frames per FFT batch: bounded memory for long sound
    frames = np.lib.stride_tricks.sliding_window_view(x, FRAME)[::HOP]
    for s in range(0, n, step):
        spec = np.fft.rfft(frames[s : s + step] * _WINDOW, axis=1)
        out[s : s + step] = spec.real**2 + spec.imag**2
    return out


def silence_floor(energies: np.ndarray) -> float:
    """The band-energy sum under which a frame counts as silence (see :data:`SILENCE_SHARE`)."""
    if energies.shape[0] == 0:
        return SILENCE_FLOOR
    loud = float(np.percentile(energies.sum(axis=1), 95))
    return max(SILENCE_FLOOR, SILENCE_SHARE * loud)


_WEIGHTS = np.uint32(1) << np.arange(31, -1, -1, dtype=np.uint32)


def bits_of(energies: np.ndarray, floor: float) -> np.ndarray:
    """The sub-fingerprints (uint32, one per frame after the first) of ``(frames, BANDS)``
    band energies, by the paper's rule (step 3); 0 where either frame is silence (a band-energy
    sum of at most ``floor``) or the second is steady (:data:`STEADY_SHARE`)."""
    if energies.shape[0] < 2:
        return np.zeros(0, np.uint32)
    d = energies[:, :-1] - energies[:, 1:]  # (frames, 32)
    bits = (d[1:] - d[:-1]) > 0
    out = (bits.astype(np.uint32) * _WEIGHTS).sum(axis=1, dtype=np.uint64).astype(np.uint32)
    total = energies.sum(axis=1)
    loud = total > floor
    change = np.abs(energies[1:] - energies[:-1]).sum(axis=1)
    moving = change > STEADY_SHARE * np.maximum(total[1:], 1e-30)
    out[~(loud[1:] & loud[:-1] & moving)] = 0
    return out


def fingerprint(samples: np.ndarray) -> np.ndarray:
    """The sub-fingerprints of mono ``samples`` at :data:`RATE` (uint32, about 43 a second;
    empty when the sound is shorter than two frames, 0.39 s)."""
    energies = power_spectrum(samples) @ band_matrix()
    return bits_of(energies, silence_floor(energies))


def speed_variant(power: np.ndarray, speed: int, floor: float) -> np.ndarray:
    """The sub-fingerprints the original would have, were ``power`` (:func:`power_spectrum`)
    the spectrum of a copy played ``speed`` / 100 times faster (see the module docstring);
    ``floor``: :func:`silence_floor` of the copy as it is."""
    s = speed / 100.0
    energies = power @ band_matrix(s)
    n = energies.shape[0]
    if n < 2:
        return np.zeros(0, np.uint32)
    # The original's frame j sits at the copy's frame j / s.
    at = np.arange(0.0, (n - 1) * s + 1e-9, 1.0) / s
    at = at[at <= n - 1]
    i0 = np.floor(at).astype(np.int64)
    i1 = np.minimum(i0 + 1, n - 1)
    w = (at - i0).astype(np.float32)[:, None]
    return bits_of(energies[i0] * (1 - w) + energies[i1] * w, floor)
