"""`hashdesk bench ingest`'s PDQ fidelity figures: the whole-picture PDQ that image ingest
stores, against the reference's hash of the same file at full size.

* the corpus photos against ``pdq-reference.csv`` (the C++ reference's hashes);
* large photos (2400-4032 px JPEGs and PNGs, made here from the corpus and the bench's
  synthetic photo) against the ``pdqhash`` binding on the full-size decode, when it is
  installed (imported here only, lazily: the bench runs without it);
* what each JPEG DCT scale costs: decode time, and the bits the whole-picture PDQ moves when
  the small picture is hashed as it is and when the full-size hash is estimated from it
  (:mod:`app.core.hashing.pdq_scaled`);
* the time from a file's bytes to its whole-picture PDQ and 7 dihedral hashes, ours against
  the full-size decode + ``pdqhash``.

Nothing is asserted; the figures are printed (tests/unit/test_pdq_scaled.py checks the
bounds).
"""

from __future__ import annotations

import csv
import io
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from app.core.hashing.pdq import hamming_hex, pdq_hex

#: The reference photos (ThreatExchange PDQ samples), where the tests find them: ``../shared``
#: next to the repository (absent in a frozen build or a bare checkout: that set is skipped).
#: app/tools/bench.py uses it too (it imports this module, not the reverse).
CORPUS_IMAGES = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "pdq-images"

#: Draft scales measured (1 = full size).
SCALES = (1, 2, 4, 8)


def _stored_pdq(data: bytes) -> tuple[list[str], int]:
    """The whole-picture PDQ as ingest stores it, with the reference's 7 dihedral hashes
    (``compute_dihedral``) computed by our PDQ from the same decode, and the quality. (Ingest's
    own ``dih:*`` query signals hash each turned picture as itself, on purpose not the
    reference's: :func:`app.core.hashing.pdq.pdq_transformed_from_luma`.)"""
    from app.core.hashing.imaging import analyze_image_bytes, decode_picture
    from app.core.hashing.pdq import luma_from_rgb, pdq_dihedral_from_luma
    from app.core.model.domain import Algorithm

    a = analyze_image_bytes(data, "sha256", "md5")
    if a.error:
        raise ValueError(a.error)
    stored = next(s for s in a.signals if s.algorithm == Algorithm.PDQ and not s.variant)
    pic = decode_picture(data)
    hashes, quality = pdq_dihedral_from_luma(
        pic.whole_pdq_plane(luma_from_rgb(np.asarray(pic.image)))
    )
    if (hashes[0], quality) != (stored.value, stored.quality):
        raise ValueError("the stored PDQ is not that of the decode")
    return hashes, quality


def corpus_fidelity(folder: Path = CORPUS_IMAGES) -> dict | None:
    """Ingest's whole-picture PDQ of each corpus photo against ``pdq-reference.csv``."""
    table = folder.parent / "pdq-reference.csv"
    if not table.is_file():
        return None
    with table.open(newline="") as f:
        rows = list(csv.DictReader(f))
    equal, worst, worst_quality, worst_dihedral = 0, 0, 0, 0
    for row in rows:
        hashes, quality = _stored_pdq((folder / row["file"]).read_bytes())
        refs = [row["pdq_hex"]]
        refs += row["dihedral_hex_rot90_rot180_rot270_flipx_flipy_flipplus1_flipminus1"].split()
        d = [hamming_hex(ours, ref) for ours, ref in zip(hashes, refs, strict=True)]
        equal += d[0] == 0
        worst, worst_dihedral = max(worst, d[0]), max(worst_dihedral, *d[1:])
        worst_quality = max(worst_quality, abs(quality - int(row["quality"])))
    return {
        "photos": len(rows),
        "equal": equal,
        "worst": worst,
        "worst_quality": worst_quality,
        "worst_dihedral": worst_dihedral,
    }


def make_large_photos(
    folder: Path, synthetic_jpeg: Path, corpus: Path = CORPUS_IMAGES
) -> list[Path]:
    """Large photos, deterministically: ``synthetic_jpeg`` (the bench's 2400x1600 photo) and a
    3200 px PNG of it; from the corpus when present, two real 4032x3024 camera JPEGs (one
    EXIF-rotated) and the bridge photo upscaled with grain to 2400 and 3600 px (JPEG q85/q92)
    and 3000 px (PNG)."""
    from PIL import Image, ImageFilter

    paths = [synthetic_jpeg]
    synthetic = Image.open(synthetic_jpeg).convert("RGB")
    png = folder / "synthetic-3200.png"
    synthetic.resize((3200, 2133), Image.Resampling.BICUBIC).save(png, compress_level=1)
    paths.append(png)
    if not corpus.is_dir():
        return paths
    for name in ("exif-rotn__exif-rotn-1.jpg", "exif-rotn__exif-rotn-6.jpg"):
        if (corpus / name).is_file():
            paths.append(folder / name)
            paths[-1].write_bytes((corpus / name).read_bytes())
    bridge_file = corpus / "bridge-mods__aaa-orig.jpg"
    if not bridge_file.is_file():
        return paths
    rng = np.random.default_rng(15)
    bridge = Image.open(bridge_file).convert("RGB")
    for long_side, fmt, quality in ((2400, "JPEG", 85), (3600, "JPEG", 92), (3000, "PNG", 0)):
        size = (long_side, round(long_side * bridge.height / bridge.width))
        big = np.asarray(bridge.resize(size, Image.Resampling.BICUBIC), dtype=np.float32)
        big = big + rng.normal(0, 5, big.shape)
        photo = Image.fromarray(np.clip(big, 0, 255).astype(np.uint8))
        photo = photo.filter(ImageFilter.UnsharpMask(2, 80))
        path = folder / f"bridge-{long_side}.{fmt.lower().replace('jpeg', 'jpg')}"
        if fmt == "JPEG":
            photo.save(path, fmt, quality=quality)
        else:
            photo.save(path, fmt, compress_level=1)
        paths.append(path)
    return paths


def _full_size_rgb(data: bytes) -> np.ndarray:
    """What the reference hashes: the full-size decode, EXIF orientation applied."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


def large_fidelity(paths: list[Path], pdqhash: Any) -> dict:
    """Ingest's whole-picture PDQ of each file against pdqhash on its full-size decode."""
    equal, worst, worst_quality, worst_dihedral = 0, 0, 0, 0
    for path in paths:
        data = path.read_bytes()
        ref_bits, ref_quality = pdqhash.compute_dihedral(_full_size_rgb(data))
        hashes, quality = _stored_pdq(data)
        d = [hamming_hex(ours, pdq_hex(r)) for ours, r in zip(hashes, ref_bits, strict=True)]
        equal += d[0] == 0
        worst, worst_dihedral = max(worst, d[0]), max(worst_dihedral, *d[1:])
        worst_quality = max(worst_quality, abs(quality - int(ref_quality)))
    return {
        "files": len(paths),
        "jpeg": sum(p.suffix == ".jpg" for p in paths),
        "equal": equal,
        "worst": worst,
        "worst_quality": worst_quality,
        "worst_dihedral": worst_dihedral,
    }


def _decode_at(data: bytes, scale: int) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        if scale > 1:
            im.draft("RGB", (im.width // scale, im.height // scale))
        return np.asarray(im.convert("RGB"))


def scale_table(jpegs: list[Path], pdqhash: Any | None) -> list[dict]:
    """Per DCT scale: decode ms (each file's best of 3, mean over files) and, with pdqhash,
    the bits the whole-picture PDQ (and the worst dihedral hash) moves, hashed as decoded and
    estimated with the spline map. Files are hashed as stored (EXIF orientation ignored,
    here and in the reference)."""
    from PIL import Image

    from app.core.hashing.pdq import luma_from_rgb, pdq_dihedral_from_luma
    from app.core.hashing.pdq_scaled import ScaledAxis, downsample_64_scaled

    datas = [p.read_bytes() for p in jpegs]
    refs = []
    if pdqhash is not None:
        for data in datas:
            bits, _quality = pdqhash.compute_dihedral(_decode_at(data, 1))
            refs.append([pdq_hex(b) for b in bits])
    out = []
    for scale in SCALES:
        times, naive, mapped = [], [], []
        for i, data in enumerate(datas):
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                rgb = _decode_at(data, scale)
                best = min(best, time.perf_counter() - started)
            times.append(best)
            if not refs:
                continue
            with Image.open(io.BytesIO(data)) as im:  # the full size, from the header
                full_cols, full_rows = im.size
            luma = luma_from_rgb(rgb)
            plain, _ = pdq_dihedral_from_luma(luma)
            estimate, _ = pdq_dihedral_from_luma(
                downsample_64_scaled(
                    luma, ScaledAxis(full_rows, scale), ScaledAxis(full_cols, scale)
                )
            )
            naive.append([hamming_hex(a, b) for a, b in zip(plain, refs[i], strict=True)])
            mapped.append([hamming_hex(a, b) for a, b in zip(estimate, refs[i], strict=True)])
        row: dict[str, Any] = {"scale": scale, "decode_ms": statistics.mean(times) * 1e3}
        for name, dists in (("as_decoded", naive), ("spline", mapped)):
            if dists:
                row[name] = (
                    sum(d[0] == 0 for d in dists),
                    max(d[0] for d in dists),
                    max(max(d) for d in dists),
                )
        out.append(row)
    return out


def pdq_time_against_pdqhash(paths: list[Path], pdqhash: Any) -> tuple[float, float]:
    """Seconds from a file's bytes to its whole-picture PDQ and 7 dihedral hashes: ours (the
    decode ingest uses, the scaled map) and the full-size decode + ``pdqhash``; each file's
    best of 3, in turn."""
    from app.core.hashing.imaging import decode_picture
    from app.core.hashing.pdq import luma_from_rgb, pdq_dihedral_from_luma

    def ours(data: bytes) -> None:
        pic = decode_picture(data)
        pdq_dihedral_from_luma(pic.whole_pdq_plane(luma_from_rgb(np.asarray(pic.image))))

    def reference(data: bytes) -> None:
        pdqhash.compute_dihedral(_full_size_rgb(data))

    datas = [p.read_bytes() for p in paths]
    best = {ours: [float("inf")] * len(datas), reference: [float("inf")] * len(datas)}
    for _ in range(3):
        for i, data in enumerate(datas):
            for fn, times in best.items():
                started = time.perf_counter()
                fn(data)
                times[i] = min(times[i], time.perf_counter() - started)
    return statistics.mean(best[ours]), statistics.mean(best[reference])


def print_fidelity(synthetic_jpeg: Path, corpus: Path = CORPUS_IMAGES) -> None:
    """Print the figures; ``synthetic_jpeg`` is one of the bench's synthetic photos."""
    try:
        import pdqhash  # the C++ reference binding: a test oracle, not a dependency
    except ImportError:
        pdqhash = None
    c = corpus_fidelity(corpus)
    print("PDQ against the reference (the whole-picture hash ingest stores):")
    if c is None:
        print(f"  corpus: skipped ({corpus.parent / 'pdq-reference.csv'} not found)")
    else:
        print(
            f"  corpus, {c['photos']} photos vs pdq-reference.csv: {c['equal']} equal, worst "
            f"{c['worst']} bits, quality off by {c['worst_quality']} at most, dihedral worst "
            f"{c['worst_dihedral']} bits (target: >= 45 equal, all within 2)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        photos = make_large_photos(Path(tmp), synthetic_jpeg, corpus)
        jpegs = [p for p in photos if p.suffix == ".jpg" and "rotn-6" not in p.name]
        if pdqhash is None:
            print("  large photos: skipped (pdqhash, the reference binding, is not installed)")
        else:
            f = large_fidelity(photos, pdqhash)
            print(
                f"  large photos, {f['files']} files of 2400-4032 px ({f['jpeg']} JPEG, "
                f"{f['files'] - f['jpeg']} PNG) vs pdqhash on the full-size decode: "
                f"{f['equal']} equal, worst {f['worst']} bits, quality off by "
                f"{f['worst_quality']} at most, dihedral worst {f['worst_dihedral']} bits"
            )
        table = scale_table(jpegs, pdqhash)
        full_ms = table[0]["decode_ms"]
        print(
            f"  JPEG DCT scale, {len(jpegs)} JPEGs of 2400-4032 px: decode ms (of full size); "
            "whole-picture PDQ vs pdqhash at full size, equal/worst bits/worst dihedral bits,"
            " hashed as decoded | full-size hash estimated (app/core/hashing/pdq_scaled.py)"
        )
        for row in table:
            line = (
                f"    1/{row['scale']}: {row['decode_ms']:6.1f} ms "
                f"({row['decode_ms'] / full_ms:.2f})"
            )
            if "as_decoded" in row:
                eq, worst, dih = row["as_decoded"]
                line += f"   as decoded {eq}/{len(jpegs)}, {worst}, {dih}"
                eq, worst, dih = row["spline"]
                line += f"   | estimated {eq}/{len(jpegs)}, {worst}, {dih}"
            print(line)
        if pdqhash is not None:
            ours, reference = pdq_time_against_pdqhash(jpegs, pdqhash)
            print(
                f"  bytes to whole-picture PDQ + 7 dihedral, same JPEGs: ours {ours * 1e3:.1f} ms"
                f" (decode at the scale ingest uses), full-size decode + pdqhash "
                f"{reference * 1e3:.1f} ms ({reference / ours:.1f}x ours)"
            )
