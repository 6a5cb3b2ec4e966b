"""`hashdesk bench`: performance figures, printed side by side with baselines.

Nothing here asserts; the figures go in notes and are compared as ratios within one run (the
machines are shared and noisy).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import signal
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from app.tools.bench_images import CORPUS_IMAGES

_F = TypeVar("_F", bound=Callable[..., Any])


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a `kill`, a stopped CI job) ends a run as Ctrl+C does: as KeyboardInterrupt,
    so every temporary folder of generated pictures, videos and databases is removed on the
    way out instead of staying behind in /tmp."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def _stops_cleanly(fn: _F) -> _F:
    @functools.wraps(fn)
    def run(*args, **kwargs):
        with _terminate_as_interrupt():
            return fn(*args, **kwargs)

    return run  # type: ignore[return-value]


#: Each figure is timed over at least this many analyses (a small set is run several times).
MIN_IMAGES = 96


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


def _corpus_jpegs(folder: Path = CORPUS_IMAGES) -> list[Path]:
    """The JPEG files (by content) of the reference photo folder; [] when it is absent."""
    if not folder.is_dir():
        return []
    out = []
    for p in sorted(folder.iterdir()):
        if p.is_file():
            with p.open("rb") as f:
                if f.read(3) == b"\xff\xd8\xff":
                    out.append(p)
    return out


def _naive(path: Path) -> None:
    """What the libraries' docs show: full decode, then each hash on its own."""
    import imagehash
    from PIL import Image

    from app.core.hashing.pdq import pdq_from_rgb

    data = path.read_bytes()
    hashlib.md5(data).hexdigest()
    hashlib.sha256(data).hexdigest()
    with Image.open(path) as im:
        rgb = im.convert("RGB")
    pdq_from_rgb(np.asarray(rgb))
    imagehash.phash(rgb)


def _draft_decode(data: bytes) -> None:
    """The decode limit: the JPEG decode alone, at the DCT scale ingest uses, from bytes in
    memory (no file read, no orientation, no hashing, no preview)."""
    from PIL import Image

    from app.core.hashing.imaging import DRAFT_MIN_LONG_SIDE, _draft_scale

    with Image.open(io.BytesIO(data)) as im:
        w, h = im.size
        s = _draft_scale(w, h, DRAFT_MIN_LONG_SIDE)
        if s > 1:
            im.draft("RGB", (w // s, h // s))
        im.load()


def _rate(fn, items: list) -> float:
    """Items per second of ``fn`` over ``items`` (one pass)."""
    t = time.perf_counter()
    for x in items:
        fn(x)
    return len(items) / (time.perf_counter() - t)


def _paired_rates(decode, analyze, datas: list, paths: list, passes: int = 3) -> tuple:
    """Images per second of ``decode(data)`` and of ``analyze(path)``, timed image by image in
    turn (both see the same load on a shared machine), each image's best of ``passes``."""
    best_decode = [float("inf")] * len(datas)
    best_analyze = [float("inf")] * len(paths)
    for _ in range(passes):
        for i, (data, path) in enumerate(zip(datas, paths, strict=True)):
            t0 = time.perf_counter()
            decode(data)
            t1 = time.perf_counter()
            analyze(path)
            t2 = time.perf_counter()
            best_decode[i] = min(best_decode[i], t1 - t0)
            best_analyze[i] = min(best_analyze[i], t2 - t1)
    return len(datas) / sum(best_decode), len(paths) / sum(best_analyze)


def _ingest_figures(paths: list[Path], label: str) -> dict:
    from app.core.ingest.jobs import IngestJob, analyze_jobs
    from app.core.ingest.media import analyze_file
    from app.core.model.domain import SightingInfo, utcnow

    repeat = max(1, -(-MIN_IMAGES // len(paths)))  # a small set runs several times
    runs = paths * repeat
    datas = [p.read_bytes() for p in runs]
    _naive(paths[0])  # warm up: library imports are not per-image work
    analyze_file(paths[0])
    _draft_decode(datas[0])
    naive = _rate(_naive, paths)
    # The ratio of ours to the decode limit is the figure that matters: paired, image by image.
    decode, ours_one = _paired_rates(_draft_decode, analyze_file, datas, runs)
    sighting = SightingInfo("bench", None, None, None, None, utcnow())
    jobs = [IngestJob(p, sighting) for p in runs]
    t = time.perf_counter()
    for _ in analyze_jobs(jobs):
        pass
    ours_pool = len(jobs) / (time.perf_counter() - t)
    return {
        "label": label,
        "files": len(paths),
        "images": len(runs),
        "mean_bytes": sum(len(d) for d in datas) / len(datas),
        "decode_limit_per_s": decode,
        "naive_per_s": naive,
        "ours_one_core_per_s": ours_one,
        "of_decode_limit": ours_one / decode,
        "ours_pool_per_s": ours_pool,
        "cores": os.cpu_count() or 1,
    }


def bench_ingest(n: int = 96, corpus: Path | None = CORPUS_IMAGES) -> dict:
    """Ingest figures on ``n`` synthetic 2400x1600 JPEGs and, when ``corpus`` is a folder, on
    its JPEG files (real photos, of many sizes). Returns the synthetic figures, with the real
    ones under ``"real"`` (None when there is no corpus)."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = _make_jpegs(Path(tmp), n)
        out = _ingest_figures(paths, "synthetic 2400x1600 JPEG q88 (high entropy)")
    out["size"] = "2400x1600 JPEG"
    real = _corpus_jpegs(corpus) if corpus is not None else []
    out["real"] = _ingest_figures(real, f"real JPEG photos in {corpus}") if real else None
    out["corpus"] = str(corpus)
    return out


def _print_ingest(f: dict) -> None:
    times = f["images"] // f["files"]
    runs = f" (each file {times}x)" if times > 1 else ""
    print(
        f"ingest, {f['label']}: {f['files']} files{runs}, {f['mean_bytes'] / 1e6:.2f} MB mean\n"
        f"  decode limit (JPEG draft decode alone, one core): {f['decode_limit_per_s']:7.1f} "
        "images/s\n"
        f"  naive baseline (full decode, one core):           {f['naive_per_s']:7.1f} images/s\n"
        f"  ours, one core (PDQ+pHash+MD5+SHA-256+preview):   {f['ours_one_core_per_s']:7.1f} "
        f"images/s  ({f['ours_one_core_per_s'] / f['naive_per_s']:.1f}x naive, "
        f"{f['of_decode_limit']:.2f} of the decode limit)\n"
        f"  ours, process pool on {f['cores']} cores:                 "
        f"{f['ours_pool_per_s']:7.1f} images/s  ({f['ours_pool_per_s'] / f['cores']:.1f} per core)"
    )


def print_bench_ingest() -> dict:
    from app.tools.bench_images import print_fidelity

    ing = bench_ingest()
    print(
        "ingest (target: >= 80 images/s on one core on the synthetic JPEGs). Decode limit and "
        "ours one core\n  are timed image by image in turn, each image's best of 3 passes; "
        "naive and pool: one pass"
    )
    _print_ingest(ing)
    if ing["real"] is not None:
        _print_ingest(ing["real"])
    else:
        print(f"ingest, real photos: skipped ({ing['corpus']} not found)")
    with tempfile.TemporaryDirectory() as tmp:
        print_fidelity(_make_jpegs(Path(tmp), 1)[0])
    return ing


def print_bench_match() -> None:
    from app.tools.bench_index import bench_match

    for n in (100_000, 1_000_000):
        m = bench_match(n)
        print(
            f"PDQ match of one item against {n:>9,} hashes: median {m['median_ms']:.2f} ms, "
            f"p95 {m['p95_ms']:.2f} ms; plain Python loop {m['baseline_python_ms']:.0f} ms "
            f"({m['speedup']:.0f}x); index load {m['load_s']:.2f} s; "
            f"planted neighbours found: {m['planted_found']}"
        )


def print_bench_review(team: str | None = None) -> None:
    from app.tools.bench_review import bench_review

    r = bench_review(team=team)
    print(
        f"review ({r['database']}): key press to next blurred item painted, "
        f"{r['queue']:,}-item queue, "
        f"{r['presses']} presses: median {r['median_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms, "
        f"max {r['max_ms']:.1f} ms; window open to first item {r['cold_start_s']:.2f} s"
    )


def print_bench_video() -> None:
    from app.tools.video_bench import bench_video

    v = bench_video(60, (1280, 720))
    print(
        f"video (target: a minute of 720p in <= 1 s): {v['duration']} s of {v['size']} "
        f"({v['codec']}, {v['frames']} frames) hashed in {v['hash_seconds']:.2f} s with "
        f"{v['segments']} parallel segments, {v['one_pass_seconds']:.2f} s in one pass; "
        f"{v['samples']} samples from {v['decoded']} frames decoded of {v['frames']} "
        f"({v['decoded'] / max(v['frames'], 1):.2f}); decoding them alone "
        f"{v['selective_seconds']:.2f} s; every frame decoded {v['floor_seconds']:.2f} s "
        f"(hashing / that floor: {v['hash_seconds'] / v['floor_seconds']:.2f})"
    )
    _print_h264_decode()
    _print_frame_pdq()
    print_bench_dense(1.0)


def print_bench_dense(minutes: float) -> None:
    """A confirmed video's dense hashing: ``minutes`` of the corpus's 720p H.264 clip copied
    end to end (`hashdesk bench video --dense-minutes 20` for the long one)."""
    from app.tools.video_bench import bench_dense

    corpus = CORPUS_IMAGES.parent  # beside the repository, or where the tests are told it is
    if not corpus.is_dir() and os.environ.get("HASHDESK_TEST_CORPUS", "").strip():
        corpus = Path(os.environ["HASHDESK_TEST_CORPUS"].strip())
    clip = corpus / "videos" / "doorknob-hd-no-bar.mp4"
    if not clip.is_file():
        print(f"dense frames: corpus clip not found at {clip}")
        return
    d = bench_dense(clip, minutes)
    print(
        f"dense frames of a confirmed video ({d['clip']} x{d['copies']}: {d['minutes']} min of "
        f"720p H.264, {d['frames']} frames): every frame hashed in {d['seconds']:.1f} s "
        f"({d['fps']:.0f} frames/s) on the {d['thread']!r} thread, not the main one; "
        f"{d['rows']} rows kept ({d['plain']} whole, {d['trimmed']} trimmed) = "
        f"{d['rows_per_minute']:.0f} a minute; the main thread meanwhile: longest gap between "
        f"its 10 ms ticks {d['max_tick_gap_ms']:.0f} ms (99th percentile "
        f"{d['p99_tick_gap_ms']:.0f} ms)",
        flush=True,
    )


def print_bench_evasion() -> None:
    from app.tools.evasion_set import report

    for line in report(CORPUS_IMAGES if CORPUS_IMAGES.is_dir() else None):
        print(line)


def print_bench_video_evasion(json_path: Path | None = None) -> None:
    from app.tools.video_evasion import corpus_root, report

    for line in report(corpus_root(), json_path, log=lambda s: print(s, flush=True)):
        print(line, flush=True)


def print_bench_views() -> None:
    from app.tools.view_set import report

    # the corpus beside the repository, or where the tests are told it is
    images = CORPUS_IMAGES
    if not images.is_dir() and os.environ.get("HASHDESK_TEST_CORPUS", "").strip():
        images = Path(os.environ["HASHDESK_TEST_CORPUS"].strip()) / "pdq-images"
    for line in report(images if images.is_dir() else None):
        print(line, flush=True)


def print_bench_audio() -> None:
    from app.tools.audio_bench import report

    # the corpus beside the repository, or where the tests are told it is
    corpus = CORPUS_IMAGES.parent
    if not corpus.is_dir() and os.environ.get("HASHDESK_TEST_CORPUS", "").strip():
        corpus = Path(os.environ["HASHDESK_TEST_CORPUS"].strip())
    for line in report(corpus / "videos"):
        print(line, flush=True)


def print_bench_runs() -> None:
    from app.tools.runs_bench import report

    corpus = CORPUS_IMAGES.parent
    if not corpus.is_dir() and os.environ.get("HASHDESK_TEST_CORPUS", "").strip():
        corpus = Path(os.environ["HASHDESK_TEST_CORPUS"].strip())
    for line in report(corpus / "videos", corpus / "pdq-images"):
        print(line, flush=True)


#: The parts of `hashdesk bench`, in the order plain `bench` runs them, with what each took on
#: the 2-core development VM (2026-11-30, shared with other work); said before a part starts.
PARTS: dict[str, tuple[str, float]] = {
    "ingest": (
        "images per second against the naive and decode-limit baselines; PDQ against the reference",
        80.0,
    ),
    "match": ("PDQ match against 100k and 1M hashes", 10.0),
    "review": ("key press to next blurred item, 100k-item queue", 22.0),
    "video": (
        "a minute of 720p and of H.264 hashed, beside their decode floors; a minute densely",
        100.0,
    ),
    "lists": ("a 1,000,000-line PDQ list imported, another workstation's index updated", 80.0),
    "evasion": ("recall by evasion edit kind once the original is confirmed, false matches", 60.0),
    "views": ("recall through the views of a picture (frame, band, inset, screen, crop)", 150.0),
    "incident": (
        "surge drill (10,000 arrivals, an incident), the re-scan of 100,000 open items",
        420.0,
    ),
    "audio": ("the sound's fingerprint: recall by edit, false matches, cost per minute", 300.0),
    "runs": ("partial copies: compilations found, sparse and dense references, false runs", 110.0),
}
_RUN = {
    "ingest": print_bench_ingest,
    "match": print_bench_match,
    "review": print_bench_review,
    "video": print_bench_video,
    "lists": lambda: bench_list_import(),
    "evasion": print_bench_evasion,
    "views": print_bench_views,
    "incident": lambda: _bench_incident(),
    "audio": print_bench_audio,
    "runs": print_bench_runs,
}


def _bench_incident(pg_url: str | None = None) -> None:
    from app.tools.bench_incident import run_bench_incident

    run_bench_incident(pg_url)


def estimate_seconds(part: str) -> float:
    return PARTS[part][1]


@_stops_cleanly
def run_bench(
    parts: list[str] | None = None, team: str | None = None, incident_pg: str | None = None
) -> int:
    """Run ``parts`` (every part when None), each announced with how long it should take
    (``team``: the review part on a throwaway team database on that PostgreSQL server)."""
    chosen = parts or list(PARTS)
    total = sum(estimate_seconds(p) for p in chosen)
    print(
        "Hashdesk benchmark (figures, not pass/fail; compare ratios within one run): "
        f"{', '.join(chosen)}, about {total:.0f} s in all on a 2-core machine",
        flush=True,
    )
    for part in chosen:
        what, _ = PARTS[part]
        print(f"[{part}] {what}: about {estimate_seconds(part):.0f} s…", flush=True)
        started = time.perf_counter()
        if part == "review":
            print_bench_review(team)
        elif part == "incident":
            _bench_incident(incident_pg)
        else:
            _RUN[part]()
        print(f"[{part}] took {time.perf_counter() - started:.0f} s", flush=True)
    return 0


def _print_h264_decode() -> None:
    """A minute of real H.264 hashed, beside the floor of decoding every frame of it: the
    corpus's 720p clip copied end to end (app.tools.video_bench.repeat_clip)."""
    from app.tools.video_bench import bench_corpus_minute

    clip = CORPUS_IMAGES.parent / "videos" / "doorknob-hd-no-bar.mp4"
    if not clip.is_file():
        print(f"H.264 minute: corpus clip not found at {clip}")
        return
    d = bench_corpus_minute(clip)
    print(
        f"H.264 minute ({d['clip']} x{d['copies']}, packets copied end to end: "
        f"{d['width']}x{d['height']}, {d['frames']} frames, B-frames, a keyframe every 2 s): "
        f"hashed in {d['hash_seconds']:.2f} s with {d['segments']} segments "
        f"({d['one_pass_seconds']:.2f} s in one pass), {d['samples']} samples from "
        f"{d['decoded']} frames decoded of {d['frames']} "
        f"({d['decoded'] / max(d['frames'], 1):.2f}); "
        f"H.264 decode floor (every frame, FFmpeg's threads) {d['floor_seconds']:.2f} s = "
        f"{1000 * d['floor_seconds'] / max(d['floor_frames'], 1):.2f} ms a frame; "
        f"hashing / floor {d['hash_seconds'] / d['floor_seconds']:.2f}"
    )
    print(
        f"H.264 minute as ingest takes it (target: <= 1.5 s), the picture and its sound "
        f"({d['sound_blocks']} sound blocks): {d['ingest_seconds']:.2f} s; the same without the "
        f"views and stored centres (as before them): {d['ingest_before_seconds']:.2f} s"
    )


def _print_frame_pdq() -> None:
    """Our PDQ of one 720p frame against pdqhash's, when the binding is installed."""
    from app.tools.video_bench import bench_frame_pdq

    clip = CORPUS_IMAGES.parent / "videos" / "doorknob-hd-no-bar.mp4"
    if clip.is_file():
        from app.core.video.decode import decode_samples

        rgb = next(iter(decode_samples(clip).samples.values()))
    else:
        rgb = np.random.default_rng(2).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    f = bench_frame_pdq(rgb)
    line = (
        f"PDQ of a {f['size']} frame: ours {f['ours_ms']:.2f} ms "
        f"({f['ours_dihedral_ms']:.2f} ms with the 7 dihedral hashes)"
    )
    if f["pdqhash_ms"] is None:
        print(f"{line}; pdqhash not installed")
        return
    print(
        f"{line}; pdqhash {f['pdqhash_ms']:.2f} ms ({f['pdqhash_dihedral_ms']:.2f} ms dihedral): "
        f"ours {f['pdqhash_ms'] / f['ours_ms']:.1f}x faster "
        f"({f['pdqhash_dihedral_ms'] / f['ours_dihedral_ms']:.1f}x dihedral)"
    )


@_stops_cleanly
def bench_history(url: str, decisions: int = 1_000_000, repeats: int = 5) -> dict:
    """First-page time of the lead's history (100 rows, newest first) under typical filters,
    on a database holding at least ``decisions`` decisions (generated and bulk-inserted first
    when it holds fewer). Prints and returns the figures (median of ``repeats`` runs, and the
    first, cold run)."""
    from datetime import timedelta

    from sqlalchemy import func, select

    from app.compose import open_context
    from app.core.model.domain import DecisionMethod, Role, UserInfo, Verdict
    from app.core.model.history_types import HistoryFilter
    from app.core.settings.config import load_settings
    from app.storage.models import Decision, Item
    from app.tools.benchdata import ensure_users, generate

    ctx = open_context(load_settings({"HASHDESK_DATABASE_URL": url}))
    db = ctx.db
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
        history = ctx.history
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


@_stops_cleanly
def bench_list_import(url: str | None = None, lines: int = 1_000_000) -> dict:
    """Import a ``lines``-line python-threatexchange PDQ list (random hashes) into a fresh list
    on the database at ``url`` (None: a throwaway SQLite file), with another workstation's
    watcher running: parse, write, the watcher's index update, and the same file again
    (idempotent: nothing written). Prints and returns the figures (seconds)."""
    from app.compose import open_context
    from app.core.exchange import read_file
    from app.core.matching.hash_index import HashIndex
    from app.core.model.domain import Role, UserInfo
    from app.core.settings.config import load_settings
    from app.storage.hash_list_watcher import HashListWatcher
    from app.storage.list_import import import_parsed

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = url or f"sqlite:///{(folder / 'bench.sqlite3').as_posix()}"
        env = {"HASHDESK_DATABASE_URL": url, "HASHDESK_MEDIA_ROOT": str(folder / "media")}
        ctx = open_context(load_settings(env))
        try:
            users = ctx.users
            admin = users.get("benchadmin")
            if admin is None:
                admin = users.add("benchadmin", "benchmark-password", Role.ADMIN)
            assert isinstance(admin, UserInfo)
            rng = np.random.default_rng(7)
            raw = rng.bytes(32 * lines).hex()
            path = folder / "list.txt"
            with path.open("w") as f:
                for i in range(0, len(raw), 64):
                    f.write(f"pdq {raw[i : i + 64]}\n")
            del raw
            watcher = HashListWatcher(ctx.db, HashIndex(), ctx.settings.match)
            watcher.load_all()
            before = len(watcher.index)
            name = f"bench-{int(time.time())}"
            t0 = time.perf_counter()
            parsed = read_file(path)
            t1 = time.perf_counter()
            summary = import_parsed(ctx.db, parsed, name, actor=admin, file_name=path.name)
            t2 = time.perf_counter()
            watcher.refresh()
            t3 = time.perf_counter()
            again = import_parsed(ctx.db, read_file(path), name, actor=admin)
            t4 = time.perf_counter()
        finally:
            ctx.close()
    out = {
        "dialect": ctx.db.dialect,
        "lines": lines,
        "added": summary.added,
        "parse_s": t1 - t0,
        "write_s": t2 - t1,
        "import_s": t2 - t0,
        "watcher_s": t3 - t2,
        "indexed": len(watcher.index) - before,
        "reimport_s": t4 - t3,
        "reimport_added": again.added,
    }
    print(
        f"list import on {out['dialect']}, {lines:,} PDQ lines (pytx local file; target "
        f"< 60 s): {out['import_s']:.1f} s (parse {out['parse_s']:.1f} s, write "
        f"{out['write_s']:.1f} s, {out['added']:,} added); another workstation's index "
        f"updated in {out['watcher_s']:.1f} s ({out['indexed']:,} entries); the same file "
        f"again: {out['reimport_s']:.1f} s, {out['reimport_added']} added"
    )
    return out


def _resident_bytes() -> int | None:
    """This process's resident memory now (Linux), or None where /proc is absent."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


@_stops_cleanly
def bench_index(url: str | None = None, entries: int = 1_000_000, repeats: int = 30) -> dict:
    """A hash list of ``entries`` random PDQ hashes (one imported list, policy resolve) in the
    database at ``url`` (None: a throwaway SQLite file; a database given keeps its entries, so
    a second run skips the fill), then, as a workstation starts: a cold
    ``HashListWatcher.load_all`` and the first item's full match (every variant it queries:
    whole, trimmed, 7 dihedral, 4 halves, pHash, MD5, SHA-256; its PDQ planted 5 bits away),
    resident memory per entry, and the median of ``repeats`` more matches, by the scan and, once
    ``watcher.prepare`` has built it, by the multi-index (app/core/matching/hash_index.py). Wall
    and CPU
    seconds (the machine is shared). Prints and returns the figures."""
    import gc
    from dataclasses import replace

    from sqlalchemy import select

    from app.compose import open_context
    from app.core.ingest.media import analyze_file
    from app.core.matching.hash_index import HashIndex
    from app.core.matching.hash_lists import list_space
    from app.core.matching.match_rules import find_known
    from app.core.matching.signal_types import is_region
    from app.core.settings.config import load_settings
    from app.storage.hash_list_index import release_freed_memory
    from app.storage.hash_list_watcher import HashListWatcher
    from app.storage.models import HashListEntry
    from app.tools.benchdata import fill_hash_list

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = url or f"sqlite:///{(folder / 'index.sqlite3').as_posix()}"
        env = {
            "HASHDESK_DATABASE_URL": url,
            "HASHDESK_MEDIA_ROOT": str(folder / "media"),
            "HASHDESK_INDEX_SNAPSHOT_DIR": str(folder),  # none yet: the first load is cold
        }
        ctx = open_context(load_settings(env))
        try:
            t = time.perf_counter()
            have = fill_hash_list(ctx.db, entries, progress=lambda m: print(m, flush=True))
            fill_s = time.perf_counter() - t
            item = analyze_file(_make_jpegs(folder, 1)[0])
            whole = next(s for s in item.signals if s.algorithm.value == "pdq" and not s.variant)
            planted = format(int(whole.value, 16) ^ 0b11111, "064x")  # 5 bits away
            with ctx.db.session() as s:  # once: a second run finds it there
                if s.scalar(select(HashListEntry.id).where(HashListEntry.value == planted)) is None:
                    s.add(
                        HashListEntry(algorithm="pdq", value=planted, list_name="bench", variant="")
                    )
            policy = ctx.settings.match
            gc.collect()
            release_freed_memory()  # what the fill and the analysis freed is not the index's
            rss0 = _resident_bytes()
            watcher = ctx.watcher  # the process's one index, as the GUI and ingest use it
            c0, t0 = time.process_time(), time.perf_counter()
            watcher.load_all()
            t1 = time.perf_counter()
            first = find_known(watcher.index, item.signals, item.kind, policy, watcher.lists)
            t2, c2 = time.perf_counter(), time.process_time()
            gc.collect()
            rss1 = _resident_bytes()

            def timed(n: int) -> tuple[float, float]:
                times, cpu = [], []
                for _ in range(n):
                    a, b = time.perf_counter(), time.process_time()
                    find_known(watcher.index, item.signals, item.kind, policy, watcher.lists)
                    times.append((time.perf_counter() - a) * 1000)
                    cpu.append((time.process_time() - b) * 1000)
                return statistics.median(times), statistics.median(cpu)

            # The scan first (few enough repeats, 5 x 29 queries, that the searches do not
            # build the multi-index themselves: AUTO_BUILD_SCANS), then the multi-index, built
            # as the watcher builds it after loading.
            # Sixteen whole-picture PDQs in one search, as an item with the trimmed picture's
            # rotations and mirrors too queries them: the item's own and, to make up the
            # number, each of them with a few bits flipped.
            own = [s.value for s in item.signals if s.algorithm.value == "pdq" and not s.variant]
            own += [s.value for s in item.signals if s.algorithm.value == "pdq" and s.variant]
            sixteen = [
                format(int(own[i % len(own)], 16) ^ (0 if i < len(own) else 0b111 << i), "064x")
                for i in range(16)
            ]
            bench_space = watcher.index.space(list_space("bench"))

            def timed16(n: int) -> float:
                cpu = []
                for _ in range(n):
                    b = time.process_time()
                    bench_space.search_many("pdq", sixteen, policy.pdq_threshold)
                    cpu.append((time.process_time() - b) * 1000)
                return statistics.median(cpu)

            scan_ms, scan_cpu_ms = timed(min(repeats, 5))
            scan16_cpu_ms = timed16(min(repeats, 5))
            c3, t3 = time.process_time(), time.perf_counter()
            watcher.prepare()
            prep_s, prep_cpu_s = time.perf_counter() - t3, time.process_time() - c3
            gc.collect()
            rss2 = _resident_bytes()
            match_ms, match_cpu_ms = timed(repeats)
            mih16_cpu_ms = timed16(repeats)
            # The same match with the halves searched too (they are only when nothing whole
            # matched): the worst case, an item that matches nothing.
            miss = [
                replace(s, value=format(int(s.value, 16) ^ (1 << 255) - 1, "064x"))
                if s.algorithm.value == "pdq"
                else s
                for s in item.signals
                if s.algorithm.value in ("pdq", "phash")
            ]
            miss_times = []
            for _ in range(repeats):
                a = time.perf_counter()
                find_known(watcher.index, miss, item.kind, policy, watcher.lists)
                miss_times.append((time.perf_counter() - a) * 1000)
            # The next start: the snapshot this one leaves, read back and checked against
            # the database, then the same first match.
            t4 = time.perf_counter()
            watcher.save_snapshot(force=True)
            save_s = time.perf_counter() - t4
            assert watcher.snapshot is not None
            snap_bytes = watcher.snapshot.stat().st_size if watcher.snapshot.is_file() else 0
            again = HashListWatcher(ctx.db, HashIndex(), policy, snapshot=watcher.snapshot)
            c5, t5 = time.process_time(), time.perf_counter()
            again.load_all()
            find_known(again.index, item.signals, item.kind, policy, again.lists)
            warm_s, warm_cpu_s = time.perf_counter() - t5, time.process_time() - c5
            restored = again.restored
            del again
        finally:
            ctx.close()
    n = len(watcher.index)
    out = {
        "dialect": ctx.db.dialect,
        "entries": have,
        "indexed": n,
        "fill_s": fill_s,
        "load_s": t1 - t0,
        "first_match_s": t2 - t0,
        "first_match_cpu_s": c2 - c0,
        "bytes_per_entry": (rss1 - rss0) / n if rss0 is not None and rss1 is not None else None,
        "bytes_per_entry_mih": (rss2 - rss0) / n if rss0 is not None and rss2 is not None else None,
        "matched": bool(first and first.evidence and first.evidence.distance == 5),
        "queries": sum(1 for s in item.signals if s.algorithm.value in ("pdq", "phash")),
        "whole_pdq_queries": sum(
            1 for s in item.signals if s.algorithm.value == "pdq" and not is_region(s.variant)
        ),
        "scan_ms": scan_ms,
        "scan_cpu_ms": scan_cpu_ms,
        "prepare_s": prep_s,
        "prepare_cpu_s": prep_cpu_s,
        "match_ms": match_ms,
        "scan16_cpu_ms": scan16_cpu_ms,
        "mih16_cpu_ms": mih16_cpu_ms,
        "match_cpu_ms": match_cpu_ms,
        "miss_ms": statistics.median(miss_times),
        "snapshot_save_s": save_s,
        "snapshot_bytes": snap_bytes,
        "snapshot_first_match_s": warm_s,
        "snapshot_first_match_cpu_s": warm_cpu_s,
        "snapshot_used": restored,
    }
    from app.tools.bench_index import bench_multi_index

    # In memory, beside it: random and clustered hashes (uneven buckets), at most 1M.
    side = bench_multi_index(min(entries, 1_000_000))
    out["in_memory"] = side
    per, per_mih = out["bytes_per_entry"], out["bytes_per_entry_mih"]
    print(
        f"hash list of {have:,} PDQ entries on {out['dialect']} (targets: 1M ready in 2 s, "
        f"< 64 B an entry, a match < 5 ms at 1M):\n"
        f"  start-up to first match (cold load_all + one item): {out['first_match_s']:.2f} s "
        f"wall, {out['first_match_cpu_s']:.2f} s CPU ({n:,} indexed); from the snapshot "
        f"({snap_bytes / 1e6:.0f} MB, written in {save_s:.2f} s, used: {restored}): "
        f"{warm_s:.2f} s wall, {warm_cpu_s:.2f} s CPU\n"
        f"  resident memory: {'n/a' if per is None else f'{per:.1f}'} bytes an entry "
        f"(table), {'n/a' if per_mih is None else f'{per_mih:.1f}'} with the multi-index\n"
        f"  multi-index built (watcher.prepare, after the first match) in "
        f"{out['prepare_s']:.2f} s wall, {out['prepare_cpu_s']:.2f} s CPU\n"
        f"  one item's full match ({out['queries']} PDQ/pHash queries, "
        f"{out['whole_pdq_queries']} of them whole-picture PDQ; matched the planted entry: "
        f"{out['matched']}): scan median {out['scan_ms']:.2f} ms ({out['scan_cpu_ms']:.2f} ms "
        f"CPU), multi-index {out['match_ms']:.2f} ms ({out['match_cpu_ms']:.2f} ms CPU, "
        f"{out['scan_cpu_ms'] / max(out['match_cpu_ms'], 1e-9):.1f}x less); an item matching "
        f"nothing (halves searched too): {out['miss_ms']:.2f} ms\n"
        f"  16 whole-picture PDQ queries in one search_many: scan {scan16_cpu_ms:.2f} ms CPU, "
        f"multi-index {mih16_cpu_ms:.2f} ms CPU"
    )
    for kind in ("random", "clustered"):
        k = side[kind]
        print(
            f"  in memory, {side['n_hashes']:,} {kind} hashes, 16 queries (half near an entry): "
            f"scan {k['scan_cpu_ms']:.2f} ms CPU, multi-index {k['mih_cpu_ms']:.2f} ms CPU "
            f"({k['candidates_per_query']:,} candidates a query, "
            f"{k['queries_scanned_instead']} crowded queries scanned, built in "
            f"{k['build_cpu_s']:.2f} s CPU), same {k['matches']} matches: {k['same_matches']}"
        )
    return out
