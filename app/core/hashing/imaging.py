"""Image decoding and hashing: content sniffing, pHash, previews, and the PDQ signals of a
picture (computed by :mod:`app.core.hashing.pdq`). No Qt, no SQL.

Decoding rules (docs/ARCHITECTURE.md, "Hashing and matching"; bad input never escapes):

* the format comes from the content (:func:`sniff`), never the file name;
* EXIF orientation is honoured; width/height are those of the oriented original;
* every Pillow mode becomes RGB; alpha is dropped (not composited), the same as the reference
  ThreatExchange/HMA hasher, which hashes the first three channels;
* JPEGs of :data:`DRAFT_MIN_ORIGINAL_LONG_SIDE` px or more are decoded at 1/2 or 1/4 scale
  (DCT scaling) while the long side stays at least :data:`DRAFT_MIN_LONG_SIDE` pixels and the
  short side half that; their whole-picture PDQ is the reference's full-size hash estimated
  from that decode (:mod:`app.core.hashing.pdq_scaled`, which has the measured table: within 2 bits,
  mostly equal, where hashing the small picture as it is moved 2-28 bits);
* other formats over :data:`HASH_MAX_LONG_SIDE` get their whole-picture PDQ from the
  full-size picture (the reference's hash exactly), then are box-reduced for the rest;
* declared sizes above :data:`MAX_IMAGE_PIXELS` are refused before any pixel is decoded;
* animated GIF/WebP: the first frame is hashed (kind IMAGE);
* anything Pillow cannot decode gives an UNREADABLE analysis with a short reason.

Evasion-resistant signals (issue 3): besides the plain PDQ and pHash, an image gets the 7
rotated/mirrored PDQ hashes as ``dih:<name>`` query-only signals (each the hash the turned
picture itself gets: :func:`app.core.hashing.pdq.pdq_transformed_from_luma`; for a JPEG decoded at
reduced scale, the exact turns of its estimated full-size buffer), and when it has
letterbox/pillarbox bars (:func:`app.core.hashing.bars.trim_bars`) the PDQ and pHash of its
content as
``trimmed`` signals, with the content's 7 turns (``dih:<code>:trimmed``); its halves
(:mod:`app.core.hashing.regions`) come turned too (``dih:<code>:<half>``). Every combination of bars
trimmed x turned x halves is thus a query (issue 15). Views (:mod:`app.core.hashing.views`, issue
22): the picture inside a frame, a sharp band, an inset or a filmed screen when one is found,
and the picture with a cut margin put back, as query-only ``view:<name>`` PDQ signals.

Choosing the JPEG decode (measured 2026-11-30 on the bench's 2400x1600 q88 photos, decode
alone, and against the ``pdqhash`` binding on the full-size decode for 23 JPEGs of 2000-4032
px: equal / worst bits of the whole hash / worst of the 8 dihedral hashes):

==============  =========  ====================  ==================================
decode          time       hashed as decoded     full-size hash estimated
==============  =========  ====================  ==================================
full, RGB       13.1 ms    23/23, 0 / 0          (it is the reference's input)
full, luma (Y)  9.4 ms     20/23, 2 / 2          -
1/2, RGB        9.6 ms     3/23, 16 / 18         19/23, 2 / 2 (1000-2048 px: 37/38)
1/2, luma (Y)   7.9 ms     3/23, 16 / 18         (block model) 19/23, 2 / 4
1/4, RGB        8.2 ms     0/23, 28 / 34         21/23, 2 / 2 (under 2048 px: 4 / 6)
1/8, RGB        7.4 ms     0/23, 46 / 52         17/23, 4 / 4
==============  =========  ====================  ==================================

Decoding only the luma (``draft("L")``: the Y plane, JFIF's weights are PDQ's) saves the
colour conversion but is not the reference's luma, which comes from the rounded and clamped
RGB (2 bits off at full size on 3 of 23), and the preview needs the colours of the same
decode; so the decode is RGB, at 1/4 from 2048 px (1/2 when the short side would fall under
256 px), and at full size under 2048 px (the corpus's 1600 px photos moved 2 bits at 1/2).
MD5, SHA-256, the preview (at most :data:`PREVIEW_LONG_SIDE` px, from the decoded picture)
and pHash come from the same bytes and decode.
"""

from __future__ import annotations

import io
import logging
import math
import re
import struct
from dataclasses import dataclass, replace

import imagehash
import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from app.core.hashing.bars import trim_bars
from app.core.hashing.pdq import (
    DIHEDRAL_ORDER,
    dihedral_dcts,
    luma_from_rgb,
    pdq_signals_with_dihedral,
)
from app.core.hashing.pdq_scaled import ScaledAxis, downsample_64_rgb, downsample_64_scaled
from app.core.hashing.regions import region_signals_from_luma
from app.core.hashing.views import picture_view_signals, zoom_signals
from app.core.matching.signal_types import (
    REGION_PREFIX,
    TRIMMED,
    dihedral_variant,
    untrimmed_half_variant,
)
from app.core.model.domain import Algorithm, MediaAnalysis, MediaKind, Signal, UnreadableMedia

log = logging.getLogger(__name__)

#: Largest declared image (width x height) that is decoded at all. Pillow's own default limit.
MAX_IMAGE_PIXELS = 89_478_485
#: A JPEG is decoded at reduced scale only while its long side stays at least this long (and
#: its short side at least half this).
DRAFT_MIN_LONG_SIDE = 512
#: JPEGs with a shorter long side are decoded at full size (4 megapixels at most).
DRAFT_MIN_ORIGINAL_LONG_SIDE = 2048
#: The DCT scales a JPEG may be decoded at, largest first. Not 1/8: there the whole-picture PDQ
#: moves up to 4 bits from the reference's (:mod:`app.core.hashing.pdq_scaled`, measured table).
DRAFT_SCALES = (4, 2)
#: Decoded pictures with a longer side (PNG, WebP, TIFF...: JPEGs are drafted) are box-reduced
#: by an integer factor before hashing, bounding memory and time (PDQ works at 64x64).
HASH_MAX_LONG_SIDE = 2048
#: Long side of the stored preview.
PREVIEW_LONG_SIDE = 1024
PREVIEW_QUALITY = 85
#: pHash is ``imagehash.phash`` (64 bits from the DCT of the picture in grey, Lanczos-reduced to
#: 32x32) given the grey picture already reduced to 32x32 by Pillow with this ``reducing_gap``:
#: an integer box reduction to at least 5 x 32 px first, then Lanczos. imagehash's own
#: reduction runs Lanczos over the whole picture (1.5 ms at 600x400, 5 ms at 1008x756, growing
#: with the size). Measured: the same hash on every photo of the reference corpus; on noisy
#: synthetic photos 0 bits (73%), 2 (23%) or 4 (4%) away, what a JPEG draft decode already moves.
PHASH_REDUCING_GAP = 5.0
#: Side of the grey picture imagehash.phash hashes (hash_size 8 x highfreq_factor 4).
_PHASH_SIDE = 32

_FORMAT_NAMES = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WebP",
    "image/bmp": "BMP",
    "image/tiff": "TIFF",
    "image/avif": "AVIF",
    "image/heic": "HEIC",
}
_PIL_FORMATS = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
    "image/bmp": "BMP",
    "image/tiff": "TIFF",
    "image/avif": "AVIF",
}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
_BMP_DIB_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}
_ALPHA_MODES = {"LA": "L", "La": "L", "PA": "RGB", "RGBA": "RGB", "RGBa": "RGB"}
_TEXT_MAGIC = (b"#EXTM3U", b"ffconcat", b"file ", b"[playlist]", b"<?xml", b"<")


# --------------------------------------------------------------------------------------------
# Sniffing


def sniff(head: bytes) -> tuple[str, str] | None:
    """Detect the format from the first bytes of a file (32 or more is best).

    Returns ``(family, mime)`` with family "image", "video" or "audio" (sound alone), or None
    when unknown.
    """
    if head.startswith(b"\xff\xd8\xff"):
        return "image", "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image", "image/png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image", "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image", "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video", "video/x-msvideo"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio", "audio/wav"
    if head.startswith(b"fLaC"):
        return "audio", "audio/flac"
    if head.startswith(b"OggS"):
        return "audio", "audio/ogg"  # Ogg Theora video is rare: the sound path says so
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio", "audio/mpeg"
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return "image", "image/tiff"
    if head[:2] == b"BM" and len(head) >= 18:
        (dib_size,) = struct.unpack_from("<I", head, 14)
        if dib_size in _BMP_DIB_SIZES:
            return "image", "image/bmp"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _AVIF_BRANDS:
            return "image", "image/avif"
        if brand in _HEIF_BRANDS:
            return "image", "image/heic"
        if brand in (b"M4A ", b"M4B "):
            return "audio", "audio/mp4"
        if brand == b"qt  ":
            return "video", "video/quicktime"
        if brand.startswith(b"3g"):
            return "video", "video/3gpp"
        return "video", "video/mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide"):  # old QuickTime files without ftyp
        return "video", "video/quicktime"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        if b"webm" in head[:64]:
            return "video", "video/webm"
        return "video", "video/x-matroska"
    return None


def looks_like_text(head: bytes) -> bool:
    """Whether the head is text: playlists and concat lists are, real containers start with
    binary headers (a video path refuses them before FFmpeg sees them)."""
    if not head:
        return False
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return stripped.startswith(_TEXT_MAGIC)


def video_mime(head: bytes) -> str:
    """The MIME a video's analysis records, from the container's own header (extensions lie).
    Not :func:`sniff`'s routing: it also names FLV, Ogg, MPEG and ASF, and calls 3GP
    ``video/mp4``."""
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return "video/quicktime" if brand == b"qt  " else "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"webm" in head else "video/x-matroska"
    if head[:4] == b"RIFF" and head[8:11] == b"AVI":
        return "video/x-msvideo"
    if head[:3] == b"FLV":
        return "video/x-flv"
    if head[:4] == b"OggS":
        return "video/ogg"
    if head[:4] == b"\x00\x00\x01\xba":
        return "video/mpeg"
    if head[:1] == b"\x47":
        return "video/mp2t"
    if head[:4] == b"\x30\x26\xb2\x75":
        return "video/x-ms-asf"
    return "application/octet-stream"


def format_name(mime: str | None) -> str:
    """Short human name of an image mime type ("JPEG", "PNG", ...) for error messages."""
    if mime is None:
        return "image"
    return _FORMAT_NAMES.get(mime, mime.split("/")[-1].upper())


# --------------------------------------------------------------------------------------------
# Pillow helpers


def _scale_to_u8(a: np.ndarray, nominal_max: float | None) -> np.ndarray:
    """Map a single-channel integer or float array to 0..255."""
    a = a.astype(np.float64, copy=False)
    finite = np.isfinite(a)
    if not finite.all():
        a = np.where(finite, a, 0.0)
    lo, hi = float(a.min()), float(a.max())
    if nominal_max is not None and lo >= 0 and hi <= nominal_max:
        scale = 255.0 / nominal_max
        return np.clip(np.rint(a * scale), 0, 255).astype(np.uint8)
    if lo >= 0 and hi <= 255:
        return np.clip(np.rint(a), 0, 255).astype(np.uint8)
    if lo >= 0 and hi <= 65535 and np.issubdtype(a.dtype, np.integer):
        return np.clip(np.rint(a / 257.0), 0, 255).astype(np.uint8)
    if hi <= lo:
        return np.zeros(a.shape, dtype=np.uint8)
    return np.clip(np.rint((a - lo) * (255.0 / (hi - lo))), 0, 255).astype(np.uint8)


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB. Alpha is dropped (as the reference hasher does);
    32-bit integer and float pictures are scaled into 0..255."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode.startswith("I;16"):
        a = np.asarray(img)
        return Image.fromarray(_scale_to_u8(a, 65535.0), "L").convert("RGB")
    if mode == "I":
        a = np.asarray(img)
        if a.size and int(a.min()) >= 0 and int(a.max()) <= 255:
            return Image.fromarray(a.astype(np.uint8), "L").convert("RGB")
        return Image.fromarray(_scale_to_u8(a, 65535.0), "L").convert("RGB")
    if mode == "F":
        a = np.asarray(img)
        finite = a[np.isfinite(a)]
        if finite.size and float(finite.min()) >= 0 and float(finite.max()) <= 1.0:
            return Image.fromarray(_scale_to_u8(a, 1.0), "L").convert("RGB")
        return Image.fromarray(_scale_to_u8(a, 255.0), "L").convert("RGB")
    if mode == "P":
        # Through RGBA so a transparency entry is handled (and dropped) without a warning.
        return img.convert("RGBA").convert("RGB")
    if mode in _ALPHA_MODES:
        base = img.convert(mode.upper()) if mode in ("La", "RGBa") else img
        return base.convert(_ALPHA_MODES[mode]).convert("RGB")
    try:
        return img.convert("RGB")
    except (ValueError, OSError):
        return img.convert("L").convert("RGB")


def _phash_grey(img: Image.Image) -> Image.Image:
    """The 32x32 grey picture pHash hashes (see :data:`PHASH_REDUCING_GAP`)."""
    grey = img.convert("L")
    if grey.size != (_PHASH_SIDE, _PHASH_SIDE):
        grey = grey.resize(
            (_PHASH_SIDE, _PHASH_SIDE),
            Image.Resampling.LANCZOS,
            reducing_gap=PHASH_REDUCING_GAP,
        )
    return grey


def phash_hex(img: Image.Image) -> str:
    """pHash of a picture (any mode) as 16 lowercase hex digits (see :data:`PHASH_REDUCING_GAP`)."""
    return str(imagehash.phash(_phash_grey(img))).lower()


_PHASH_BITS_SIDE = 8  # imagehash's hash_size: the 8x8 lowest frequencies of the 32x32 DCT


def phash_dihedral_hexes(img: Image.Image) -> list[str]:
    """The pHash of a picture and of its 7 rotations and mirrors, in
    :data:`app.core.hashing.pdq.DIHEDRAL_ORDER` (the first is :func:`phash_hex`'s, bit for bit): one
    32x32 grey picture and one DCT, as ``imagehash.phash`` computes it; each turn's 8x8 low
    frequencies are the plain ones with signs flipped and/or transposed, which is what
    ``imagehash.phash`` gives for the turned 32x32 picture (rotating a picture and reducing it
    commute up to Pillow's rounding: a turned copy's own pHash is within a few bits of these).
    Query-only, as the dihedral PDQs are."""
    # imagehash's own DCT (scipy is imagehash's dependency; it ships no type stubs)
    from scipy import fftpack  # type: ignore[import-untyped]

    pixels = np.asarray(_phash_grey(img))
    dct = fftpack.dct(fftpack.dct(pixels, axis=0), axis=1)
    low = dct[:_PHASH_BITS_SIDE, :_PHASH_BITS_SIDE]
    # The DC term is frequency 0: its row and column keep their sign under a flip.
    turned = np.stack(dihedral_dcts(low, lowest_frequency=0))
    # imagehash: bits above the median, read row by row, most significant first.
    bits = turned.reshape(len(turned), -1)
    above = bits > np.median(bits, axis=1, keepdims=True)
    return [row.tobytes().hex() for row in np.packbits(above, axis=1)]


def make_preview_jpeg(img: Image.Image, long_side: int = PREVIEW_LONG_SIDE) -> bytes:
    """JPEG of ``img`` (any mode) with its long side at most ``long_side`` px."""
    rgb = to_rgb(img)
    w, h = rgb.size
    if max(w, h) > long_side:
        scale = long_side / max(w, h)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        rgb = rgb.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    buf = io.BytesIO()
    rgb.save(buf, "JPEG", quality=PREVIEW_QUALITY, optimize=False)
    return buf.getvalue()


def _draft_scale(width: int, height: int, min_long_side: int) -> int:
    """The JPEG DCT scale to decode at: 1 under :data:`DRAFT_MIN_ORIGINAL_LONG_SIDE`, else
    the largest of :data:`DRAFT_SCALES` keeping the long side >= ``min_long_side`` and the
    short side >= half that (1 when none does).

    Measured against the reference on the full-size decode (:mod:`app.core.hashing.pdq_scaled`): 1/4
    keeps the whole-picture PDQ within 2 bits (each dihedral hash too) from 2048 px up, and
    moves up to 4 bits (6 for a dihedral hash) at 1000-1900 px or with a 1000 px short side;
    1/2 keeps it within 2 bits from 1000 px up, but moved 2 bits on 6 of the corpus's 1600 px
    photos, which the full-size decode hashes exactly."""
    long_side, short_side = max(width, height), min(width, height)
    if long_side < DRAFT_MIN_ORIGINAL_LONG_SIDE:
        return 1
    for s in DRAFT_SCALES:
        if long_side // s >= min_long_side and short_side // s >= max(1, min_long_side // 2):
            return s
    return 1


def _decoded_scale(decoded: tuple[int, int], original: tuple[int, int]) -> int:
    """The DCT scale a JPEG was decoded at (its size rounded up, as libjpeg does)."""
    for s in (1, 2, 4, 8):
        if decoded == (-(-original[0] // s), -(-original[1] // s)):
            return s
    raise UnreadableMedia(f"unexpected JPEG decode size {decoded} of {original}")


def _declared_size(data: bytes, mime: str | None) -> tuple[int, int] | None:
    """Header-only size when Pillow refused to open (bomb): the format plugin reads only the
    header, Image.open's own limit check is what raised."""
    fmt = _PIL_FORMATS.get(mime or "")
    if fmt is None:
        return None
    try:
        Image.init()
        factory, _accept = Image.OPEN[fmt]
        im = factory(io.BytesIO(data), "")
        return im.size
    except Exception:
        return None


def _too_large(size: tuple[int, int]) -> UnreadableMedia:
    return UnreadableMedia(f"image too large: {size[0]}x{size[1]} pixels")


def _open(data: bytes, mime: str | None) -> ImageFile.ImageFile:
    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as e:
        size = _declared_size(data, mime)
        if size is not None:
            raise _too_large(size) from None
        m = re.search(r"\((\d+) pixels\)", str(e))
        pixels = f"{m.group(1)} pixels" if m else f"over {MAX_IMAGE_PIXELS} pixels"
        raise UnreadableMedia(f"image too large: {pixels}") from None
    w, h = img.size
    if w < 1 or h < 1:
        raise UnreadableMedia(f"not a valid {format_name(mime)}: empty picture ({w}x{h})")
    if w * h > MAX_IMAGE_PIXELS:
        raise _too_large((w, h))
    return img


#: EXIF orientation -> the transpose that shows the picture upright (as ImageOps.exif_transpose).
_ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


#: What each transpose does to the (rows, cols) axes of a plane: the axis that becomes the
#: rows, the one that becomes the columns (0 = the old rows, 1 = the old columns) and whether
#: each runs backwards (tests/unit/test_imaging.py checks it against Pillow).
_TRANSPOSE_AXES: dict[Image.Transpose, tuple[tuple[int, bool], tuple[int, bool]]] = {
    Image.Transpose.FLIP_LEFT_RIGHT: ((0, False), (1, True)),
    Image.Transpose.FLIP_TOP_BOTTOM: ((0, True), (1, False)),
    Image.Transpose.ROTATE_90: ((1, True), (0, False)),
    Image.Transpose.ROTATE_180: ((0, True), (1, True)),
    Image.Transpose.ROTATE_270: ((1, False), (0, True)),
    Image.Transpose.TRANSPOSE: ((1, False), (0, False)),
    Image.Transpose.TRANSVERSE: ((1, True), (0, True)),
}


def _transposed_axes(
    method: Image.Transpose, rows: ScaledAxis, cols: ScaledAxis
) -> tuple[ScaledAxis, ScaledAxis]:
    old = (rows, cols)
    (r, r_back), (c, c_back) = _TRANSPOSE_AXES[method]
    new_rows = old[r].flipped() if r_back else old[r]
    new_cols = old[c].flipped() if c_back else old[c]
    return new_rows, new_cols


def _orientation(img: Image.Image) -> int:
    try:
        value = img.getexif().get(0x0112)
        return int(value) if value else 1
    except Exception:
        return 1


@dataclass(frozen=True)
class DecodedPicture:
    """A decoded picture (first frame, EXIF orientation applied, RGB) and how it relates to
    the full-size original, for hashing it as the reference hashes the original."""

    image: Image.Image
    #: (width, height) of the oriented original
    size: tuple[int, int]
    animated: bool
    #: the image's rows and columns against the oriented original (block means of it)
    rows: ScaledAxis
    cols: ScaledAxis
    #: PDQ's 64x64 buffer of the full-size picture, when it was taken before a reduction
    pdq_buffer: np.ndarray | None = None

    def whole_pdq_plane(self, luma: np.ndarray) -> np.ndarray:
        """What PDQ hashes for the whole original, given the image's luma plane: the plane
        itself when the image is the full-size picture, else the reference's 64x64 buffer
        (a 64x64 plane hashes as itself)."""
        if self.pdq_buffer is not None:
            return self.pdq_buffer
        return _pdq_plane(luma, self.rows, self.cols)


def _pdq_plane(luma: np.ndarray, rows: ScaledAxis, cols: ScaledAxis) -> np.ndarray:
    if rows.scale == 1 and cols.scale == 1:
        return luma
    return downsample_64_scaled(luma, rows, cols)


def decode_picture(
    data: bytes, mime: str | None = None, *, draft_min_long_side: int | None = DRAFT_MIN_LONG_SIDE
) -> DecodedPicture:
    """Decode (first frame), honour EXIF orientation, convert to RGB.

    The image may be smaller than the original: a JPEG decoded at reduced DCT scale (see
    :func:`_draft_scale`; ``draft_min_long_side=None`` decodes at full size), or a bigger
    picture reduced to :data:`HASH_MAX_LONG_SIDE` by an integer box reduction, after its PDQ
    buffer was taken at full size. Raises UnreadableMedia or Pillow's errors."""
    # Image, not ImageFile: transpose below returns a plain Image.
    img: Image.Image = _open(data, mime)
    orig_w, orig_h = img.size
    animated = bool(getattr(img, "is_animated", False))
    if draft_min_long_side and img.format in ("JPEG", "MPO"):
        s = _draft_scale(orig_w, orig_h, draft_min_long_side)
        if s > 1:
            img.draft("RGB", (orig_w // s, orig_h // s))
    if animated:
        img.seek(0)
    img.load()
    scale = _decoded_scale(img.size, (orig_w, orig_h)) if img.size != (orig_w, orig_h) else 1
    rows, cols = ScaledAxis(orig_h, scale), ScaledAxis(orig_w, scale)
    method = _ORIENTATION_TRANSPOSE.get(_orientation(img))
    if method is not None:
        stored = img.size
        try:
            # The pixels of ImageOps.exif_transpose without its EXIF rewrite (a third of its
            # time; nothing here keeps the EXIF).
            img = img.transpose(method)
            rows, cols = _transposed_axes(method, rows, cols)
        except Exception:  # hash the picture as stored
            log.debug("EXIF orientation ignored", exc_info=True)
        if img.size != stored:  # a quarter turn or a diagonal flip was applied
            orig_w, orig_h = orig_h, orig_w
    rgb = to_rgb(img)
    buffer = None
    long_side = max(rgb.size)
    if long_side > HASH_MAX_LONG_SIDE:
        # The whole-picture PDQ from the full picture (the reference's hash), everything else
        # from the reduced one.
        pixels = np.asarray(rgb)
        if scale == 1:
            buffer = downsample_64_rgb(pixels)
        else:
            buffer = downsample_64_scaled(luma_from_rgb(pixels), rows, cols)
        factor = math.ceil(long_side / HASH_MAX_LONG_SIDE)
        rgb = rgb.reduce(factor)
        rows = ScaledAxis(rows.length, rows.scale * factor, rows.reversed)
        cols = ScaledAxis(cols.length, cols.scale * factor, cols.reversed)
    return DecodedPicture(rgb, (orig_w, orig_h), animated, rows, cols, buffer)


def _decodable_mimes() -> set[str]:
    Image.init()
    return set(Image.MIME.values())


def _reason(exc: BaseException, mime: str | None) -> str:
    name = format_name(mime)
    msg = str(exc).strip()
    if isinstance(exc, UnreadableMedia):
        return msg
    if isinstance(exc, UnidentifiedImageError):
        if mime in ("image/heic", "image/avif") and mime not in _decodable_mimes():
            return f"unsupported image format: {name} (no decoder installed)"
        return f"not a valid {name}: cannot identify image data"
    if isinstance(exc, Image.DecompressionBombError):
        return f"image too large: {msg}"
    low = msg.lower()
    if "truncated" in low or isinstance(exc, EOFError):
        return f"truncated {name} data"
    if "broken data stream" in low:
        return f"corrupt {name} data (broken data stream)"
    if isinstance(exc, MemoryError):
        return f"{name} too large to decode (out of memory)"
    if isinstance(exc, (OSError, SyntaxError, ValueError, struct.error, IndexError)):
        return f"not a valid {name}: {msg or type(exc).__name__}"
    return f"cannot decode {name}: {type(exc).__name__}: {msg}"


def byte_signals(sha256: str, md5: str) -> list[Signal]:
    return [Signal(Algorithm.MD5, md5), Signal(Algorithm.SHA256, sha256)]


def unreadable(
    sha256: str, md5: str, size: int, reason: str, mime: str | None = None
) -> MediaAnalysis:
    """An UNREADABLE analysis: only the byte hashes, and the reason."""
    return MediaAnalysis(
        sha256=sha256,
        md5=md5,
        size=size,
        kind=MediaKind.UNREADABLE,
        mime=mime,
        signals=byte_signals(sha256, md5),
        error=reason,
    )


def analyze_image_bytes(
    data: bytes,
    sha256: str,
    md5: str,
    *,
    mime: str | None = None,
    draft_min_long_side: int | None = DRAFT_MIN_LONG_SIDE,
) -> MediaAnalysis:
    """PDQ + pHash + byte hashes + preview of one image file's bytes. Never raises for bad
    media: returns an UNREADABLE analysis with the reason instead."""
    if mime is None:
        sniffed = sniff(data[:64])
        mime = sniffed[1] if sniffed else None
    try:
        pic = decode_picture(data, mime, draft_min_long_side=draft_min_long_side)
        rgb, (width, height) = pic.image, pic.size
        # Every PDQ from one luma plane of the one decode; pHash and preview from its pixels.
        arr = np.asarray(rgb)
        luma = luma_from_rgb(arr)
        # Rotations and mirrors hashed as the turned picture itself would be (query-only).
        pdq_signals = pdq_signals_with_dihedral(pic.whole_pdq_plane(luma), transformed=True)
        trimmed = trim_bars(arr)
        content = luma
        trimmed_turned: list[Signal] = []
        if trimmed is not None:  # letterbox/pillarbox bars: the content's hashes as well
            _, (top, bottom, left, right) = trimmed
            rows, cols = luma.shape
            content = luma[top : rows - bottom, left : cols - right]
            plane = _pdq_plane(
                content, pic.rows.crop(top, rows - bottom), pic.cols.crop(left, cols - right)
            )
            t_pdq, *trimmed_turned = pdq_signals_with_dihedral(plane, transformed=True, of=TRIMMED)
            t_phash = phash_hex(rgb.crop((left, top, rgb.width - right, rgb.height - bottom)))
            trimmed_signals = [t_pdq, Signal(Algorithm.PHASH, t_phash, variant=TRIMMED)]
        else:
            trimmed_signals = []
        # A logo over one corner leaves a half intact; a mirrored or turned copy's halves are
        # the original's, turned (dih:<code>:<half>, query-only).
        halves = region_signals_from_luma(content, dihedral=True)
        if trimmed is not None:  # what was trimmed may be a strip laid over the picture
            halves += [
                replace(s, variant=untrimmed_half_variant(s.variant[len(REGION_PREFIX) :]))
                for s in region_signals_from_luma(luma)
            ]
        # Views (query-only): the picture inside a frame, a band, an inset or a filmed screen,
        # and with a cut margin put back (app.core.hashing.views).
        views = picture_view_signals(luma)
        # Its centres (zoom:<percent>, stored): the reference side of deeper crops and zooms.
        zooms = zoom_signals(content)
        phash, *phash_turned = phash_dihedral_hexes(rgb)
        preview = make_preview_jpeg(rgb)
    except Exception as e:  # bad media must never escape (docs/ARCHITECTURE.md, "Bad input")
        return unreadable(sha256, md5, len(data), _reason(e, mime), mime)
    return MediaAnalysis(
        sha256=sha256,
        md5=md5,
        size=len(data),
        kind=MediaKind.IMAGE,
        mime=mime,
        width=width,
        height=height,
        signals=[
            pdq_signals[0],
            Signal(Algorithm.PHASH, phash),
            *trimmed_signals,
            *halves,
            *zooms,
            *pdq_signals[1:],
            *trimmed_turned,
            *views,
            *(
                Signal(Algorithm.PHASH, value, variant=dihedral_variant(name))
                for name, value in zip(DIHEDRAL_ORDER[1:], phash_turned, strict=True)
            ),
            *byte_signals(sha256, md5),
        ],
        preview=preview,
    )
