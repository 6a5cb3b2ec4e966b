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


def bench_history(url: str, decisions: int = 1_000_000, repeats: int = 5) -> dict:
    """First-page time of the lead's history (100 rows, newest first) under typical filters,
    on a database holding at least ``decisions`` decisions (generated and bulk-inserted first
    when it holds fewer). Prints and returns the figures (median of ``repeats`` runs, and the
    first, cold run)."""
    from datetime import timedelta

    from sqlalchemy import func, select

    from app.core.history import HistoryFilter
    from app.core.model import DecisionMethod, Role, Verdict
    from app.storage.benchdata import ensure_users, generate
    from app.storage.db import open_database
    from app.storage.history import HistoryService
    from app.storage.models import Decision, Item
    from app.storage.users import UserInfo

    db = open_database(url)
    try:
        with db.session() as s:
            have = int(s.scalar(select(func.count()).select_from(Decision)) or 0)
        if have < decisions:
            t = time.perf_counter()
            have = generate(db, decisions - have, progress=lambda m: print(m, flush=True))
            print(f"generated in {time.perf_counter() - t:.1f} s")
        users = ensure_users(db)
        lead = UserInfo(users["benchlead"], "benchlead", "Bench Lead", Role.LEAD, True)
        with db.session() as s:
            newest_item = s.scalar(
                select(Decision.item_id).order_by(Decision.decided_at.desc()).limit(1000)
            )
            sha = s.scalar(select(Item.sha256).where(Item.id == newest_item)) or "00"
            ext_id = f"EXT-{newest_item}"
            newest = s.scalar(select(func.max(Decision.decided_at)))
        history = HistoryService(db)
        week = newest - timedelta(days=7)
        cases = {
            "no filter": HistoryFilter(),
            "moderator": HistoryFilter(usernames=("mod07",)),
            "verdict + category": HistoryFilter(
                verdicts=(Verdict.CONFIRM,), categories=("manifesto",)
            ),
            "source removal_order": HistoryFilter(sources=("removal_order",)),
            "method auto-match": HistoryFilter(methods=(DecisionMethod.AUTO_MATCH,)),
            "last 7 days, reject, moderator": HistoryFilter(
                since=week, verdicts=(Verdict.REJECT,), usernames=("mod03",)
            ),
            "escalations (5%)": HistoryFilter(verdicts=(Verdict.ESCALATE,)),
            "overturns (none: whole scan)": HistoryFilter(verdicts=(Verdict.OVERTURN,)),
            "text in note": HistoryFilter(text="satire"),
            "text = external id": HistoryFilter(text=ext_id),
            "text = SHA-256 prefix": HistoryFilter(text=sha[:12]),
        }
        print(f"history on {db.dialect} ({have:,} decisions), first page of 100, newest first:")
        out: dict = {"dialect": db.dialect, "decisions": have, "cases": {}}
        for name, f in cases.items():
            times = []
            rows = 0
            for _ in range(repeats):
                t = time.perf_counter()
                page = history.page(lead, f)
                times.append((time.perf_counter() - t) * 1000)
                rows = len(page.rows)
            med = sorted(times)[len(times) // 2]
            out["cases"][name] = {"median_ms": med, "cold_ms": times[0], "rows": rows}
            print(f"  {name:34} {med:8.1f} ms median  ({times[0]:7.1f} ms first run, {rows} rows)")
        # Deep paging: the 50th page costs what the first does (keyset, no OFFSET).
        f = HistoryFilter(usernames=("mod07",))
        cursor = None
        for _ in range(49):
            cursor = history.page(lead, f, cursor).next_cursor
        t = time.perf_counter()
        history.page(lead, f, cursor)
        deep = (time.perf_counter() - t) * 1000
        out["page_50_ms"] = deep
        print(f"  {'moderator, page 50 (keyset)':34} {deep:8.1f} ms")
        return out
    finally:
        db.dispose()
