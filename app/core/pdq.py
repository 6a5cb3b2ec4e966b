"""PDQ: the 256-bit perceptual hash GIFCT, Tech Against Terrorism and HMA exchange, and the
helpers every caller of it shares (hex form, Hamming distance, the dihedral variants).

PDQ hex follows the ThreatExchange reference (``Hash256::format`` / python-threatexchange): the
256-bit hash is printed most significant bit first. ``pdqhash.compute`` already returns the bits
in that order (bit 255 first), so :func:`pdq_hex` packs them big-endian, and a frame hashed here
lands within a few bits of the vPDQ reference output for the same frame.

Images (:mod:`app.core.imaging`), video frames (:mod:`app.core.video`) and half pictures
(:mod:`app.core.regions`) all hash through here. No Qt, no SQL.
"""

from __future__ import annotations

import numpy as np
import pdqhash

from app.core.domain import Algorithm, Signal
from app.core.signal_types import dihedral_variant

#: Order of the hashes returned by :func:`pdq_dihedral_from_rgb` (the reference
#: ``pdqDihedralHash256esFromFloatLuma`` outputs; each is the PDQ the picture would have after
#: that transform). Checked against the ``dih__bridge-*`` corpus files and numpy transforms of
#: an array ``a``: rotate90 = ``np.rot90(a, 1)`` (counter-clockwise quarter turn), rotate180 =
#: ``np.rot90(a, 2)``, rotate270 = ``np.rot90(a, -1)`` (clockwise), flipx = ``a[::-1]`` (mirror
#: about the x axis: top-bottom), flipy = ``a[:, ::-1]`` (mirror about the y axis: left-right),
#: flip_plus1 = ``a.transpose(1, 0, 2)`` (about the main diagonal), flip_minus1 = the
#: anti-transpose ``np.rot90(a, 2).transpose(1, 0, 2)``.
DIHEDRAL_ORDER = (
    "original",
    "rotate90",
    "rotate180",
    "rotate270",
    "flipx",
    "flipy",
    "flip_plus1",
    "flip_minus1",
)


def pdq_hex(bits: np.ndarray) -> str:
    """256 bits as returned by ``pdqhash.compute`` (most significant first) -> 64 hex chars,
    the ThreatExchange reference format."""
    arr = np.asarray(bits)
    if arr.shape != (256,):
        raise ValueError(f"PDQ hash must have 256 bits, got shape {arr.shape}")
    return np.packbits(arr.astype(np.uint8, copy=False)).tobytes().hex()


def hex_to_bits(value: str) -> np.ndarray:
    """Inverse of :func:`pdq_hex` (any even-length hex): uint8 array of 0/1, MSB first."""
    return np.unpackbits(np.frombuffer(bytes.fromhex(value), dtype=np.uint8))


def hamming_hex(a: str, b: str) -> int:
    """Number of differing bits between two hex hashes of the same length."""
    if len(a) != len(b):
        raise ValueError(f"hashes differ in length: {len(a)} vs {len(b)} hex digits")
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _rgb_array(arr: np.ndarray) -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    elif a.ndim == 3 and a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, :3]
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB array, got shape {a.shape}")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"empty picture: {a.shape[1]}x{a.shape[0]}")
    return np.ascontiguousarray(a, dtype=np.uint8)


def pdq_from_rgb(arr: np.ndarray) -> tuple[str, int]:
    """PDQ of an HxWx3 uint8 RGB array (HxW grey and HxWx4 are accepted): (hex, quality)."""
    bits, quality = pdqhash.compute(_rgb_array(arr))
    return pdq_hex(bits), int(quality)


def pdq_dihedral_from_rgb(arr: np.ndarray) -> list[str]:
    """The 8 dihedral PDQ hashes of an RGB array, in :data:`DIHEDRAL_ORDER`: original,
    rotate90, rotate180, rotate270, flipx, flipy, flip_plus1, flip_minus1."""
    hashes, _quality = pdqhash.compute_dihedral(_rgb_array(arr))
    return [pdq_hex(h) for h in hashes]


def pdq_signals_with_dihedral(
    arr: np.ndarray, *, algorithm: Algorithm = Algorithm.PDQ, frame_ts: float | None = None
) -> list[Signal]:
    """The PDQ of a picture and its 7 rotated/mirrored hashes, from ONE
    ``pdqhash.compute_dihedral`` (which costs the same as a plain ``compute``): the plain signal
    first, then ``dih:<name>`` signals in :data:`DIHEDRAL_ORDER`. A dihedral hash is the PDQ
    the picture would have after that transform, so a rotated or mirrored copy of confirmed
    content has one within the usual distance of the confirmed hash. They are for querying
    only: the hash list never stores ``dih:`` signals."""
    hashes, quality = pdqhash.compute_dihedral(_rgb_array(arr))
    quality = int(quality)
    out = [Signal(algorithm, pdq_hex(hashes[0]), quality, frame_ts)]
    for name, bits in zip(DIHEDRAL_ORDER[1:], hashes[1:], strict=True):
        out.append(Signal(algorithm, pdq_hex(bits), quality, frame_ts, dihedral_variant(name)))
    return out
