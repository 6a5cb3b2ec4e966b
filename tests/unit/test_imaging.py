"""Image decoding and hashing (app.core.hashing.imaging) and file analysis (app.core.ingest.media).

Tests marked ``corpus`` use the reference media in ``../shared/corpus`` (ThreatExchange PDQ and
vPDQ samples) and skip when it is absent. Everything else generates its input in ``tmp_path``.
"""

from __future__ import annotations

import hashlib
import io
import struct
import sys
import types
import zlib
from contextlib import nullcontext
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image, ImageFile, features

from app.core.hashing import imaging
from app.core.hashing.imaging import (
    analyze_image_bytes,
    decode_picture,
    looks_like_text,
    make_preview_jpeg,
    sniff,
    video_mime,
)
from app.core.hashing.pdq import (
    DIHEDRAL_ORDER,
    hamming_hex,
    hex_to_bits,
    pdq_dihedral_from_rgb,
    pdq_from_rgb,
    pdq_hex,
)
from app.core.ingest import media
from app.core.model.domain import Algorithm, MediaAnalysis, MediaKind
from tests.conftest import CORPUS, corpus_mark
from tests.helpers import EXIF_STORED_AS

IMAGES = CORPUS / "pdq-images"
PDQ_MATCH = 31  # DESIGN: PDQ distance <= 31 is a match


def needs_corpus(fn):
    fn = corpus_mark()(fn)
    return pytest.mark.corpus(fn)


# --------------------------------------------------------------------------------------------
# helpers


def analyze(path: Path, **kw) -> MediaAnalysis:
    data = path.read_bytes()
    return analyze_image_bytes(
        data, hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest(), **kw
    )


def signal(a: MediaAnalysis, algorithm: Algorithm) -> str:
    """The plain (as decoded) signal of ``algorithm``: trimmed and dih: variants left out."""
    values = [s.value for s in a.signals if s.algorithm == algorithm and not s.variant]
    assert len(values) == 1, (algorithm, a.signals, a.error)
    return values[0]


def pdq_of(path: Path, **kw) -> str:
    a = analyze(path, **kw)
    assert a.kind == MediaKind.IMAGE, (path.name, a.error)
    return signal(a, Algorithm.PDQ)


def reference_hex(bits) -> str:
    """The python-threatexchange conversion: bit string in pdqhash order, 4 bits per digit."""
    bin_str = "".join(str(int(x)) for x in bits)
    return "".join(f"{int(bin_str[i : i + 4], 2):x}" for i in range(0, len(bin_str), 4))


def picture(width: int = 320, height: int = 240) -> Image.Image:
    """A deterministic RGB test picture: random blobs at several scales, like a soft photo
    (PDQ quality 100, a hash that survives re-encoding)."""
    rng = np.random.default_rng(20240601)
    acc = np.zeros((height, width))
    for cells, weight in ((4, 1.0), (8, 0.6), (16, 0.35), (32, 0.2)):
        small = Image.fromarray(rng.normal(0, 1, (cells * 3 // 4, cells)).astype(np.float32))
        acc += weight * np.asarray(small.resize((width, height), Image.Resampling.BICUBIC))
    acc = (acc - acc.min()) / (acc.max() - acc.min())
    rgb = np.stack([acc, acc**2, 1 - acc], axis=2) * 255
    return Image.fromarray(rgb.astype(np.uint8))


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR declares ``width`` x ``height`` (a decompression bomb header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small real JPEG whose SOF header is patched to declare ``width`` x ``height``."""
    data = bytearray(encode(picture(64, 48), "JPEG", quality=80))
    i = 2
    while i < len(data):
        assert data[i] == 0xFF
        marker = data[i + 1]
        (length,) = struct.unpack_from(">H", data, i + 2)
        if marker in (0xC0, 0xC1, 0xC2):
            struct.pack_into(">HH", data, i + 5, height, width)
            return bytes(data)
        i += 2 + length
    raise AssertionError("no SOF marker")


@pytest.fixture
def no_pixel_decoding(monkeypatch):
    """Fail the test if any pixel data is decoded (bombs must be refused from the header)."""
    calls: list[str] = []
    original = ImageFile.ImageFile.load

    def load(self):
        calls.append(f"{self.format} {self.size}")
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return calls


# --------------------------------------------------------------------------------------------
# PDQ hex, helpers


def test_pdq_hex_is_msb_first_like_the_reference():
    bits = np.zeros(256, dtype=np.int64)
    bits[0] = 1  # pdqhash puts hash bit 255 (the most significant) first
    assert pdq_hex(bits) == "8" + "0" * 63
    bits[:] = 0
    bits[255] = 1
    assert pdq_hex(bits) == "0" * 63 + "1"
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2, 256)
    assert pdq_hex(bits) == reference_hex(bits)
    assert hex_to_bits(pdq_hex(bits)).tolist() == bits.tolist()
    with pytest.raises(ValueError):
        pdq_hex(np.zeros(255))


def test_pdq_from_rgb_equals_pdqhash_compute_converted_the_reference_way():
    pdqhash = pytest.importorskip("pdqhash", reason="the reference binding is not installed")
    arr = np.asarray(picture())
    bits, quality = pdqhash.compute(arr)
    hex_, q = pdq_from_rgb(arr)
    assert hex_ == reference_hex(bits)
    assert len(hex_) == 64 and hex_ == hex_.lower()
    assert q == quality == 100
    # grey and RGBA arrays are accepted: grey is replicated, alpha is dropped
    assert pdq_from_rgb(np.dstack([arr, np.full(arr.shape[:2], 7, np.uint8)]))[0] == hex_
    grey = np.asarray(picture().convert("L"))
    assert pdq_from_rgb(grey)[0] == pdq_from_rgb(np.dstack([grey] * 3))[0]


def test_hamming_hex():
    assert hamming_hex("00", "00") == 0
    assert hamming_hex("0f", "f0") == 8
    assert hamming_hex("8" + "0" * 63, "0" * 64) == 1
    assert hamming_hex("f" * 64, "0" * 64) == 256
    with pytest.raises(ValueError):
        hamming_hex("00", "000")


def test_dihedral_order_matches_numpy_transforms():
    a = np.asarray(picture(300, 200))
    hashes, _quality = pdq_dihedral_from_rgb(a)
    assert len(hashes) == 8 == len(DIHEDRAL_ORDER)
    assert hashes[0] == pdq_from_rgb(a)[0]
    transforms = {
        "rotate90": np.rot90(a, 1),
        "rotate180": np.rot90(a, 2),
        "rotate270": np.rot90(a, -1),
        "flipx": a[::-1],
        "flipy": a[:, ::-1],
        "flip_plus1": a.transpose(1, 0, 2),
        "flip_minus1": np.rot90(a, 2).transpose(1, 0, 2),
    }
    for name, t in transforms.items():
        plain, _ = pdq_from_rgb(np.ascontiguousarray(t))
        distances = [hamming_hex(h, plain) for h in hashes]
        # the transform's own slot is the nearest of the eight, and a match
        assert int(np.argmin(distances)) == DIHEDRAL_ORDER.index(name), (name, distances)
        assert min(distances) <= PDQ_MATCH, (name, distances)


def test_trim_bars_quick_rejection_agrees_with_the_full_scan():
    """trim_bars first looks at one line per side; it must answer as the full border scan does,
    bars or not: noisy bars, an odd line at the very edge, any colour, tiny pictures."""
    from app.core.hashing import bars as sv

    def full_scan(a):
        scan = sv.scan_borders(a)
        return None if scan.uniform else sv.bars_from_runs(scan.height, scan.width, scan.runs)

    rng = np.random.default_rng(3)
    content = np.asarray(picture(320, 240))
    cases = [content, np.full((30, 40, 3), 9, np.uint8), np.zeros((1, 5, 3), np.uint8)]
    for _ in range(120):
        top, bottom, left, right = (int(x) for x in rng.integers(0, 50, 4) * rng.integers(0, 2, 4))
        a = np.empty((240 + top + bottom, 320 + left + right, 3), np.uint8)
        a[:] = rng.integers(0, 256, 3)
        a[top : top + 240, left : left + 320] = content
        if rng.random() < 0.3:
            a[0] = rng.integers(0, 256, (a.shape[1], 3))  # an odd line at the very edge
        noise = rng.random(a.shape[:2]) < rng.choice([0.0, 0.01, 0.03, 0.05])
        a[noise] = rng.integers(0, 256, (int(noise.sum()), 3))
        cases.append(a)
    cases += [
        rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in rng.integers(1, 9, (20, 2))
    ]
    found = 0
    for a in cases:
        out = sv.trim_bars(a)
        assert (out[1] if out else None) == full_scan(a)
        found += out is not None
    assert 30 < found < len(cases) - 30  # both answers were exercised


# --------------------------------------------------------------------------------------------
# Reference corpus


@needs_corpus
def test_analysis_pdq_is_pdqhash_of_the_decoded_picture():
    pdqhash = pytest.importorskip("pdqhash", reason="the reference binding is not installed")
    path = IMAGES / "bridge-mods__aaa-orig.jpg"
    for draft in (None, imaging.DRAFT_MIN_LONG_SIDE):
        rgb = decode_picture(path.read_bytes(), "image/jpeg", draft_min_long_side=draft).image
        bits, quality = pdqhash.compute(np.asarray(rgb))
        a = analyze(path, draft_min_long_side=draft)
        assert signal(a, Algorithm.PDQ) == reference_hex(bits)
        assert a.signals[0].quality == quality == 100


@needs_corpus
def test_phash_is_imagehash_of_the_decoded_picture_on_the_corpus():
    """pHash is computed from a box-then-Lanczos reduction (imaging.PHASH_REDUCING_GAP), not
    imagehash's whole-picture Lanczos: on the reference photos the hash is the same."""
    files = sorted(IMAGES.iterdir())
    assert len(files) >= 40
    for path in files:
        rgb = decode_picture(path.read_bytes()).image
        assert imaging.phash_hex(rgb) == str(imagehash.phash(rgb)), path.name


@needs_corpus
def test_vpdq_frame0_bit_order():
    cv2 = pytest.importorskip("cv2")
    video = CORPUS / "videos" / "chair-orig-22-sd-bar.mp4"
    first = (CORPUS / "vpdq-hashes" / "chair-orig-22-sd-bar.txt").read_text().splitlines()[0]
    frame, quality, ref_hex, ts = first.split(",")
    assert (frame, float(ts)) == ("0", 0.0)
    cap = cv2.VideoCapture(str(video))
    try:
        ok, bgr = cap.read()
    finally:
        cap.release()
    assert ok
    ours, q = pdq_from_rgb(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    d = hamming_hex(ours, ref_hex)
    assert d <= 8, (ours, ref_hex, d)  # measured: 2
    assert q == int(quality) == 100
    # the other bit order would be unrelated (about half the bits differ)
    bits = hex_to_bits(ours)
    assert hamming_hex(pdq_hex(bits[::-1]), ref_hex) > 64


@needs_corpus
def test_bridge_edits_match_the_original():
    orig = pdq_of(IMAGES / "bridge-mods__aaa-orig.jpg")
    edits = sorted(IMAGES.glob("bridge-mods__*"))
    assert len(edits) >= 10
    distances = {p.name: hamming_hex(orig, pdq_of(p)) for p in edits}
    assert all(d <= PDQ_MATCH for d in distances.values()), distances  # measured max: 16


@needs_corpus
def test_unrelated_photos_do_not_match_the_bridge():
    orig = pdq_of(IMAGES / "bridge-mods__aaa-orig.jpg")
    others = sorted(IMAGES.glob("labelme-subset__*"))
    assert len(others) >= 5
    distances = {p.name: hamming_hex(orig, pdq_of(p)) for p in others}
    assert all(d > PDQ_MATCH for d in distances.values()), distances  # measured min: 114


@needs_corpus
def test_dihedral_corpus_files_match_the_dihedral_hashes():
    orig = IMAGES / "dih__bridge-1-original.jpg"
    rgb = decode_picture(orig.read_bytes(), "image/jpeg").image
    hashes, _quality = pdq_dihedral_from_rgb(np.asarray(rgb))
    files = sorted(IMAGES.glob("dih__bridge-*"))  # 1-original .. 8-flip-minus-1: same order
    assert len(files) == 8
    for i, path in enumerate(files):
        d = hamming_hex(hashes[i], pdq_of(path))
        assert d <= 16, (path.name, DIHEDRAL_ORDER[i], d)
        # and the plain hash does not match rotated/flipped copies
        if i:
            assert hamming_hex(hashes[0], pdq_of(path)) > PDQ_MATCH


@needs_corpus
def test_exif_orientation_is_honoured_on_corpus_photos():
    """The four exif-rotn files are four different photographs of one desk (their PDQ
    distances, even over all eight dihedral alignments, are > 100), each stored sideways or
    upside down with the EXIF tag saying how to show it. Honouring the tag must give exactly
    the stored pixels turned the way the tag says, and the oriented size."""
    turns = {1: 0, 3: 2, 6: -1, 8: 1}  # np.rot90 k: 6 = turn clockwise, 8 = counter-clockwise
    for tag, k in turns.items():
        path = IMAGES / f"exif-rotn__exif-rotn-{tag}.jpg"
        a = analyze(path)
        assert a.kind == MediaKind.IMAGE
        assert (a.width, a.height) == ((4032, 3024) if k % 2 == 0 else (3024, 4032))
        stored = np.asarray(Image.open(path).convert("RGB"))  # full size, as stored
        expected, _ = pdq_from_rgb(np.rot90(stored, k))
        # analyze decodes at 1/4 scale and estimates the full-size hash (measured: equal)
        assert hamming_hex(signal(a, Algorithm.PDQ), expected) <= 2, tag
        preview = Image.open(io.BytesIO(a.preview))
        assert (preview.width > preview.height) == (k % 2 == 0)


def test_exif_orientation_all_eight_tags(tmp_path):
    """One upright picture stored in each of the 8 EXIF orientations decodes to the same hash."""
    upright = picture(320, 200)
    upright_pdq = pdq_of_bytes(encode(upright, "JPEG", quality=95))
    # the transform that turns the upright picture into what is stored for each tag
    stored_as = EXIF_STORED_AS
    distances = {}
    for tag, method in stored_as.items():
        stored = upright if method is None else upright.transpose(method)
        exif = Image.Exif()
        exif[0x0112] = tag
        path = tmp_path / f"o{tag}.jpg"
        path.write_bytes(encode(stored, "JPEG", quality=95, exif=exif.tobytes()))
        a = media.analyze_file(path)
        assert a.kind == MediaKind.IMAGE, a.error
        assert (a.width, a.height) == (320, 200), tag
        distances[tag] = hamming_hex(upright_pdq, signal(a, Algorithm.PDQ))
    assert all(d <= 8 for d in distances.values()), distances


def pdq_of_bytes(data: bytes) -> str:
    a = analyze_image_bytes(data, "s", "m")
    assert a.kind == MediaKind.IMAGE, a.error
    return signal(a, Algorithm.PDQ)


@needs_corpus
def test_every_mode_file_matches_the_original():
    orig = pdq_of(IMAGES / "misc-images__modes__original.jpg")
    files = sorted(IMAGES.glob("misc-images__modes__*"))
    assert len(files) >= 13
    distances = {}
    for path in files:
        a = analyze(path)
        assert a.kind == MediaKind.IMAGE, (path.name, a.error)
        assert (a.width, a.height) == (1600, 1004)
        distances[path.name] = hamming_hex(orig, signal(a, Algorithm.PDQ))
    assert all(d <= PDQ_MATCH for d in distances.values()), distances  # measured max: 2


@needs_corpus
def test_draft_decoding_keeps_the_full_size_hash():
    path = IMAGES / "exif-rotn__exif-rotn-1.jpg"  # 4032x3024: decoded at 1/4
    data = path.read_bytes()
    pic = decode_picture(data, "image/jpeg")
    small, dims = pic.image, pic.size
    assert dims == (4032, 3024)
    assert small.size == (1008, 756)
    full = Image.open(io.BytesIO(data)).convert("RGB")  # orientation tag 1: nothing to turn
    assert full.size == (4032, 3024)
    full_hex = pdq_from_rgb(np.asarray(full))[0]
    # the small picture hashed as it is drifts 2 bits from the full-size hash; the analysis
    # estimates the full-size hash from it (measured: equal)
    assert hamming_hex(pdq_of_bytes(data), full_hex) <= 2
    # the bridge (1600x1004, under DRAFT_MIN_ORIGINAL_LONG_SIDE) is decoded at full size
    bridge = (IMAGES / "bridge-mods__aaa-orig.jpg").read_bytes()
    assert decode_picture(bridge, "image/jpeg").image.size == (1600, 1004)
    assert hamming_hex(pdq_of_bytes(bridge), pdq_of(IMAGES / "bridge-mods__aaa-orig.jpg")) == 0


@needs_corpus
def test_analyze_file_on_a_corpus_photo():
    path = IMAGES / "bridge-mods__aaa-orig.jpg"
    data = path.read_bytes()
    a = media.analyze_file(path)
    assert a.kind == MediaKind.IMAGE
    assert a.mime == "image/jpeg"
    assert a.size == len(data)
    assert a.sha256 == hashlib.sha256(data).hexdigest()
    assert a.md5 == hashlib.md5(data).hexdigest()
    assert signal(a, Algorithm.SHA256) == a.sha256
    assert signal(a, Algorithm.MD5) == a.md5
    assert (a.width, a.height) == (1600, 1004)
    assert len(signal(a, Algorithm.PHASH)) == 16
    assert a.error is None
    preview = Image.open(io.BytesIO(a.preview))
    assert preview.format == "JPEG" and preview.mode == "RGB"
    assert max(preview.size) <= 1024


# --------------------------------------------------------------------------------------------
# Modes, formats, animation (generated)


def test_high_bit_depth_and_float_modes_are_scaled(tmp_path):
    grey = np.asarray(picture().convert("L")).astype(np.float64)
    base = pdq_of_bytes(encode(Image.fromarray(grey.astype(np.uint8)), "PNG"))
    variants = {
        "I;16": Image.fromarray((grey * 257).astype(np.uint16)),
        "I": Image.fromarray((grey * 1000).astype(np.int32)),
        "I-small": Image.fromarray(grey.astype(np.int32)),
        "F-unit": Image.fromarray((grey / 255).astype(np.float32)),
        "F-255": Image.fromarray(grey.astype(np.float32)),
        "F-wide": Image.fromarray((grey * 40 - 5000).astype(np.float32)),
    }
    modes = {name: img.mode for name, img in variants.items()}
    assert modes == {
        "I;16": "I;16",
        "I": "I",
        "I-small": "I",
        "F-unit": "F",
        "F-255": "F",
        "F-wide": "F",
    }
    # without scaling, 32-bit values would clip to white: the picture would be lost
    clipped = np.asarray(variants["I"].convert("L"))
    assert (clipped == 255).mean() > 0.9
    for name, img in variants.items():
        data = encode(img, "TIFF")
        assert Image.open(io.BytesIO(data)).mode == img.mode, name
        a = analyze_image_bytes(data, "s", "m")
        assert a.kind == MediaKind.IMAGE, (name, a.error)
        assert a.mime == "image/tiff"
        d = hamming_hex(base, signal(a, Algorithm.PDQ))
        assert d <= 8, (name, img.mode, d)
        assert a.signals[0].quality == 100, name


def test_alpha_is_dropped_not_composited():
    rgb = picture()
    rgba = rgb.copy()
    alpha = np.full((rgb.height, rgb.width), 255, np.uint8)
    alpha[:, : rgb.width // 2] = 0  # left half fully transparent
    rgba.putalpha(Image.fromarray(alpha))
    assert pdq_of_bytes(encode(rgba, "PNG")) == pdq_of_bytes(encode(rgb, "PNG"))
    la = rgb.convert("L").convert("LA")
    assert pdq_of_bytes(encode(la, "PNG")) == pdq_of_bytes(encode(rgb.convert("L"), "PNG"))


def test_palette_with_transparency_and_bilevel():
    p = picture().convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    p.info["transparency"] = 0
    a = analyze_image_bytes(encode(p, "PNG", transparency=0), "s", "m")
    assert a.kind == MediaKind.IMAGE, a.error
    assert hamming_hex(signal(a, Algorithm.PDQ), pdq_of_bytes(encode(picture(), "PNG"))) <= 31
    bilevel = analyze_image_bytes(encode(picture().convert("1"), "PNG"), "s", "m")
    assert bilevel.kind == MediaKind.IMAGE, bilevel.error


@pytest.mark.parametrize(
    ("fmt", "kw", "mime"),
    [
        ("JPEG", {"quality": 90}, "image/jpeg"),
        ("PNG", {}, "image/png"),
        ("WEBP", {"quality": 90}, "image/webp"),
        ("GIF", {}, "image/gif"),
        ("BMP", {}, "image/bmp"),
        ("TIFF", {}, "image/tiff"),
        pytest.param(
            "AVIF",
            {"quality": 90},
            "image/avif",
            marks=pytest.mark.skipif(not features.check("avif"), reason="no AVIF codec"),
        ),
    ],
)
def test_each_image_format_is_sniffed_and_hashed(fmt, kw, mime):
    img = picture()
    data = encode(img, fmt, **kw)
    assert sniff(data[:32]) == ("image", mime)
    a = analyze_image_bytes(data, "s", "m")
    assert a.kind == MediaKind.IMAGE, a.error
    assert a.mime == mime
    assert (a.width, a.height) == (320, 240)
    assert hamming_hex(signal(a, Algorithm.PDQ), pdq_from_rgb(np.asarray(img))[0]) <= 24


def test_animated_gif_hashes_the_first_frame():
    first = picture()
    second = Image.fromarray(255 - np.asarray(picture()))
    data = encode(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)
    a = analyze_image_bytes(data, "s", "m")
    assert a.kind == MediaKind.IMAGE, a.error
    assert signal(a, Algorithm.PDQ) == pdq_of_bytes(encode(first, "GIF"))
    assert hamming_hex(signal(a, Algorithm.PDQ), pdq_of_bytes(encode(second, "GIF"))) > 64


def test_animated_webp_hashes_the_first_frame():
    first = picture()
    second = Image.fromarray(255 - np.asarray(picture()))
    data = encode(first, "WEBP", save_all=True, append_images=[second], lossless=True)
    a = analyze_image_bytes(data, "s", "m")
    assert a.kind == MediaKind.IMAGE, a.error
    assert signal(a, Algorithm.PDQ) == pdq_from_rgb(np.asarray(first))[0]


def test_big_non_jpeg_is_reduced_before_hashing():
    img = picture(3000, 2000)
    data = encode(img, "PNG")
    pic = decode_picture(data, "image/png")
    rgb, dims = pic.image, pic.size
    assert dims == (3000, 2000)
    assert rgb.size == (1500, 1000)
    a = analyze_image_bytes(data, "s", "m")
    assert (a.width, a.height) == (3000, 2000)
    # the whole-picture PDQ is taken from the full-size picture, before the reduction
    assert signal(a, Algorithm.PDQ) == pdq_from_rgb(np.asarray(img))[0]


def test_heic_without_decoder_says_unsupported():
    data = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 200
    assert sniff(data) == ("image", "image/heic")
    a = analyze_image_bytes(data, "s", "m")
    assert a.kind == MediaKind.UNREADABLE
    assert a.error == "unsupported image format: HEIC (no decoder installed)"


def test_tiny_and_flat_images_hash_with_low_quality():
    flat = analyze_image_bytes(encode(Image.new("RGB", (64, 64), (90, 90, 90)), "PNG"), "s", "m")
    assert flat.kind == MediaKind.IMAGE, flat.error
    assert flat.signals[0].quality < 50
    one = analyze_image_bytes(encode(Image.new("RGB", (1, 1), (1, 2, 3)), "PNG"), "s", "m")
    assert one.kind == MediaKind.IMAGE, one.error
    assert (one.width, one.height) == (1, 1)


def test_make_preview_jpeg_limits_the_long_side():
    big = picture(2000, 900)
    out = Image.open(io.BytesIO(make_preview_jpeg(big)))
    assert out.format == "JPEG" and out.mode == "RGB"
    assert out.size == (1024, 461)
    small = Image.open(io.BytesIO(make_preview_jpeg(picture(300, 200).convert("LA"))))
    assert small.size == (300, 200) and small.mode == "RGB"
    custom = Image.open(io.BytesIO(make_preview_jpeg(big, long_side=256)))
    assert max(custom.size) == 256


# --------------------------------------------------------------------------------------------
# Bad input


def assert_unreadable(a: MediaAnalysis, data: bytes, reason_start: str) -> None:
    assert a.kind == MediaKind.UNREADABLE
    assert a.error is not None and a.error.startswith(reason_start), a.error
    assert a.size == len(data)
    assert a.sha256 == hashlib.sha256(data).hexdigest()
    assert a.md5 == hashlib.md5(data).hexdigest()
    assert {s.algorithm for s in a.signals} == {Algorithm.MD5, Algorithm.SHA256}
    assert a.preview is None


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    a = media.analyze_file(path)
    assert_unreadable(a, b"", "empty file (0 bytes)")
    assert a.error == "empty file (0 bytes)"


def test_truncated_jpeg(tmp_path):
    whole = encode(picture(640, 480), "JPEG", quality=90)
    data = whole[: len(whole) // 2]
    path = tmp_path / "half.jpg"
    path.write_bytes(data)
    a = media.analyze_file(path)
    assert_unreadable(a, data, "truncated JPEG data")
    assert a.mime == "image/jpeg"
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_truncated_and_corrupt_png(tmp_path):
    whole = encode(picture(640, 480), "PNG")
    half = whole[: len(whole) // 2]
    a = analyze_image_bytes(half, hashlib.sha256(half).hexdigest(), hashlib.md5(half).hexdigest())
    assert_unreadable(a, half, "truncated PNG data")
    # Seeded: about one random tail in 300 happens to start with a well-formed chunk header and
    # then reads as truncated instead (a different, also correct, reason).
    garbage = whole[:8] + np.random.default_rng(2).bytes(200)
    b = analyze_image_bytes(
        garbage, hashlib.sha256(garbage).hexdigest(), hashlib.md5(garbage).hexdigest()
    )
    assert_unreadable(b, garbage, "not a valid PNG")


def test_random_bytes_named_jpg(tmp_path):
    data = b"\x13\x37\xbe\xef" + np.random.default_rng(3).bytes(4096)
    path = tmp_path / "photo.jpg"
    path.write_bytes(data)
    a = media.analyze_file(path)
    assert_unreadable(a, data, "not a supported image, video or sound")
    assert "13 37 be ef" in a.error
    assert a.mime is None


def test_text_file_is_not_media(tmp_path):
    data = b"hello, this is not a picture\n" * 10
    path = tmp_path / "note.png"
    path.write_bytes(data)
    a = media.analyze_file(path)
    assert_unreadable(
        a, data, "not a supported image, video or sound (content starts with 68 65 6c 6c"
    )


def test_png_bytes_named_jpg_work_by_content(tmp_path):
    data = encode(picture(), "PNG")
    path = tmp_path / "lies.jpg"
    path.write_bytes(data)
    a = media.analyze_file(path)
    assert a.kind == MediaKind.IMAGE, a.error
    assert a.mime == "image/png"
    assert (a.width, a.height) == (320, 240)
    assert a.sha256 == hashlib.sha256(data).hexdigest()
    assert signal(a, Algorithm.PDQ) == pdq_from_rgb(np.asarray(picture()))[0]


@pytest.mark.parametrize(
    ("make", "dims"),
    [
        (lambda: png_declaring(50_000, 50_000), "50000x50000"),  # above Pillow's hard limit
        (lambda: png_declaring(10_000, 10_000), "10000x10000"),  # above ours, Pillow only warns
        (lambda: jpeg_declaring(60_000, 60_000), "60000x60000"),
    ],
)
def test_decompression_bomb_is_refused_from_the_header(tmp_path, no_pixel_decoding, make, dims):
    data = make()
    assert len(data) < 10_000
    path = tmp_path / "bomb.png"
    path.write_bytes(data)
    expect_warning = dims == "10000x10000"
    with pytest.warns(Image.DecompressionBombWarning) if expect_warning else nullcontext():
        a = media.analyze_file(path)
    assert_unreadable(a, data, f"image too large: {dims} pixels")
    assert no_pixel_decoding == []  # refused before any pixel was decoded or allocated


def test_pixel_limit_is_configurable(monkeypatch):
    data = encode(picture(320, 240), "PNG")
    monkeypatch.setattr(imaging, "MAX_IMAGE_PIXELS", 320 * 240 - 1)
    a = analyze_image_bytes(data, "s", "m")
    assert a.kind == MediaKind.UNREADABLE
    assert a.error == "image too large: 320x240 pixels"


def test_unexpected_decoder_exception_becomes_unreadable(monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("decoder exploded")

    monkeypatch.setattr(imaging, "decode_picture", boom)
    a = analyze_image_bytes(b"\xff\xd8\xff\xe0junk", "s", "m")
    assert a.kind == MediaKind.UNREADABLE
    assert a.error == "cannot decode JPEG: RuntimeError: decoder exploded"


def test_unreadable_paths(tmp_path):
    missing = media.analyze_file(tmp_path / "nope.jpg")
    assert missing.kind == MediaKind.UNREADABLE
    assert missing.error == "cannot read file: No such file or directory"
    assert missing.signals == []
    directory = media.analyze_file(tmp_path)
    assert directory.kind == MediaKind.UNREADABLE
    assert directory.error == "not a regular file (folder): skipped"
    assert directory.sha256 == ""  # no content identity: reported, never an item


# --------------------------------------------------------------------------------------------
# Video routing (app.core.video.analysis is another module: replaced here by a stub)


@pytest.fixture
def video_stub(monkeypatch):
    calls: list[tuple] = []
    stub = types.ModuleType("app.core.video.analysis")

    def analyze_video(path, sha256, md5, size):
        calls.append((Path(path), sha256, md5, size))
        return MediaAnalysis(sha256=sha256, md5=md5, size=size, kind=MediaKind.VIDEO)

    stub.analyze_video = analyze_video
    monkeypatch.setitem(sys.modules, "app.core.video.analysis", stub)
    import app.core.video

    monkeypatch.setattr(app.core.video, "analysis", stub, raising=False)
    return stub, calls


def test_video_content_goes_to_the_video_analyzer(tmp_path, video_stub):
    _stub, calls = video_stub
    data = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + np.random.default_rng(4).bytes(
        3 * media.CHUNK
    )
    path = tmp_path / "clip.jpg"  # the name lies; the content is MP4
    path.write_bytes(data)
    a = media.analyze_file(path)
    assert a.kind == MediaKind.VIDEO
    assert calls == [
        (path, hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest(), len(data))
    ]


def test_video_analyzer_failure_becomes_unreadable(tmp_path, video_stub):
    stub, _calls = video_stub

    def broken(*args):
        raise ValueError("codec missing")

    stub.analyze_video = broken
    data = b"\x1a\x45\xdf\xa3" + b"\x00" * 100
    path = tmp_path / "x.webm"
    path.write_bytes(data)
    a = media.analyze_file(path)
    assert_unreadable(a, data, "video analysis failed: ValueError: codec missing")


# --------------------------------------------------------------------------------------------
# sniff


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", ("image", "image/jpeg")),
        (b"\xff\xd8\xff\xe1\x00\x10Exif\x00", ("image", "image/jpeg")),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ("image", "image/png")),
        (b"GIF87a\x01\x00\x01\x00", ("image", "image/gif")),
        (b"GIF89a\x01\x00\x01\x00", ("image", "image/gif")),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", ("image", "image/webp")),
        (
            b"BM\x36\x00\x0c\x00\x00\x00\x00\x00\x36\x00\x00\x00\x28\x00\x00\x00",
            ("image", "image/bmp"),
        ),
        (b"II*\x00\x08\x00\x00\x00", ("image", "image/tiff")),
        (b"MM\x00*\x00\x00\x00\x08", ("image", "image/tiff")),
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", ("video", "video/mp4")),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", ("video", "video/quicktime")),
        (b"\x00\x00\x00\x08wide\x00\x00\x00\x00mdat", ("video", "video/quicktime")),
        (b"\x00\x00\x00\x1cftyp3gp4\x00\x00\x00\x00", ("video", "video/3gpp")),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", ("video", "video/webm")),
        (
            b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\x82\x88matroska",
            ("video", "video/x-matroska"),
        ),
        (b"RIFF\x00\x10\x00\x00AVI LIST", ("video", "video/x-msvideo")),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00", ("image", "image/avif")),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", ("image", "image/heic")),
        (b"", None),
        (b"\xff\xd8", None),
        (b"BMxx", None),  # "BM" alone is too weak
        (b"RIFF\x00\x10\x00\x00WAVEfmt ", ("audio", "audio/wav")),
        (b"fLaC\x00\x00\x00\x22", ("audio", "audio/flac")),
        (b"OggS\x00\x02\x00\x00", ("audio", "audio/ogg")),
        (b"ID3\x04\x00\x00\x00\x00", ("audio", "audio/mpeg")),
        (b"\xff\xfb\x90\x64\x00", ("audio", "audio/mpeg")),  # an MP3 frame, no tag
        (b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00", ("audio", "audio/mp4")),
        (b"%PDF-1.7\n", None),
        (b"<html><body>", None),
        (b"PK\x03\x04\x14\x00", None),
    ],
)
def test_sniff(head, expected):
    assert sniff(head) == expected


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "video/mp4"),
        (b"\x00\x00\x00\x1cftyp3gp4\x00\x00\x00\x00", "video/mp4"),  # sniff: video/3gpp
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", "video/quicktime"),
        (b"\x00\x00\x00\x08wide\x00\x00\x00\x00mdat", "application/octet-stream"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "video/webm"),
        (b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\x82\x88matroska", "video/x-matroska"),
        (b"RIFF\x00\x10\x00\x00AVI LIST", "video/x-msvideo"),
        (b"FLV\x01\x05", "video/x-flv"),
        (b"OggS\x00\x02", "video/ogg"),
        (b"\x00\x00\x01\xba\x44", "video/mpeg"),
        (b"\x47\x40\x00\x10", "video/mp2t"),
        (b"\x30\x26\xb2\x75\x8e\x66", "video/x-ms-asf"),
        (b"%PDF-1.7\n", "application/octet-stream"),
    ],
)
def test_video_mime(head, expected):
    # The MIME a video's analysis records: its own table, not sniff's routing.
    assert video_mime(head) == expected


@pytest.mark.parametrize(
    ("head", "text"),
    [
        (b"#EXTM3U\n#EXTINF:1,\n", True),
        (b"\xef\xbb\xbf  ffconcat version 1.0\n", True),  # BOM and spaces first
        (b"file 'a.mp4'\n", True),
        (b"<?xml version", True),
        (b"\x00\x00\x00\x20ftypisom", False),
        (b"", False),
    ],
)
def test_looks_like_text(head, text):
    assert looks_like_text(head) is text


@needs_corpus
def test_sniff_corpus_video():
    head = (CORPUS / "videos" / "chair-orig-22-sd-bar.mp4").read_bytes()[:64]
    assert sniff(head) == ("video", "video/mp4")
