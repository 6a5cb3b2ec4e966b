"""`hashdesk bench`: performance figures, printed side by side with baselines.

Nothing here asserts; the figures go in notes and are compared as ratios within one run (the
machines are shared and noisy).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def _make_jpegs(folder: Path, n: int, size=(2400, 1600)) -> list[Path]:
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(1)
    paths = []
    base = rng.integers(0, 255, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    photo = Image.fromarray(base).resize(size, Image.Resampling.BICUBIC)
    photo = photo.filter(ImageFilter.GaussianBlur(2))
    for i in range(n):
        p = folder / f"photo-{i:03d}.jpg"
        photo.rotate(i * 7, expand=False).save(p, "JPEG", quality=88)
        paths.append(p)
    return paths


def _naive(path: Path) -> None:
    """What the libraries' docs show: full decode, then each hash on its own."""
    import imagehash
    import pdqhash
    from PIL import Image

    data = path.read_bytes()
    hashlib.md5(data).hexdigest()
    hashlib.sha256(data).hexdigest()
    with Image.open(path) as im:
        rgb = im.convert("RGB")
    pdqhash.compute(np.asarray(rgb))
    imagehash.phash(rgb)


def bench_ingest(n: int = 96) -> dict:
    from app.core.ingest import IngestJob, analyze_jobs
    from app.core.media import analyze_file
    from app.core.model import SightingInfo
    from app.storage.models import utcnow

    with tempfile.TemporaryDirectory() as tmp:
        paths = _make_jpegs(Path(tmp), n)
        _naive(paths[0])  # warm up: library imports are not per-image work
        analyze_file(paths[0])
        t = time.perf_counter()
        for p in paths:
            _naive(p)
        naive = n / (time.perf_counter() - t)
        t = time.perf_counter()
        for p in paths:
            analyze_file(p)
        ours_one = n / (time.perf_counter() - t)
        sighting = SightingInfo("bench", None, None, None, None, utcnow())
        jobs = [IngestJob(p, sighting) for p in paths]
        t = time.perf_counter()
        for _ in analyze_jobs(jobs):
            pass
        ours_pool = n / (time.perf_counter() - t)
    return {
        "images": n,
        "size": "2400x1600 JPEG",
        "naive_per_s": naive,
        "ours_one_core_per_s": ours_one,
        "ours_pool_per_s": ours_pool,
        "cores": os.cpu_count() or 1,
    }


def run_bench() -> int:
    from app.core.matching import bench_match
    from app.core.video import bench_video

    print("Hashdesk benchmark (figures, not pass/fail; compare ratios within one run)")
    ing = bench_ingest()
    print(
        f"ingest {ing['images']} x {ing['size']} (analysis: PDQ+pHash+MD5+SHA-256+preview):\n"
        f"  naive baseline (full decode, one core): {ing['naive_per_s']:7.1f} images/s\n"
        f"  ours, one core (draft decode):          {ing['ours_one_core_per_s']:7.1f} images/s"
        f"  ({ing['ours_one_core_per_s'] / ing['naive_per_s']:.1f}x)\n"
        f"  ours, process pool on {ing['cores']} cores:        {ing['ours_pool_per_s']:7.1f} "
        f"images/s"
    )
    for n in (100_000, 1_000_000):
        m = bench_match(n)
        print(
            f"PDQ match of one item against {n:>9,} hashes: median {m['median_ms']:.2f} ms, "
            f"p95 {m['p95_ms']:.2f} ms; plain Python loop {m['baseline_python_ms']:.0f} ms "
            f"({m['speedup']:.0f}x); index load {m['load_s']:.2f} s; "
            f"planted neighbours found: {m['planted_found']}"
        )
    from app.ui.bench_review import bench_review

    r = bench_review()
    print(
        f"review: key press to next blurred item painted, {r['queue']:,}-item queue, "
        f"{r['presses']} presses: median {r['median_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms, "
        f"max {r['max_ms']:.1f} ms; window open to first item {r['cold_start_s']:.2f} s"
    )
    v = bench_video(60, (1280, 720))
    print(
        f"video: {v['seconds_of_video']:.0f} s of {v.get('size', '1280x720')} "
        f"({v.get('codec', '?')}) hashed in {v['hash_seconds']:.2f} s, "
        f"{v['frames_hashed']} frames"
    )
    return 0
