"""Measurements of the intake on a PostgreSQL job queue (`hashdesk bench --intake URL`):
throughput with 1 and 2 worker processes (images per second, minutes of video per second), and
the drill: worker processes SIGKILLed at random (and restarted) while files flow in through the
drop folder, then every file checked to be recorded exactly once.

Each run makes a throwaway schema on the server at URL (the role needs CREATE on the database)
and drops it afterwards. Everything runs as real processes: `hashdesk worker`, `hashdesk intake
watch`. Extra feeders (the HTTP intake) plug into :func:`run_drill` through :class:`Feeder`.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.tools.bench import _stops_cleanly

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def throwaway_schema(url: str) -> Iterator[str]:
    """A new schema on the server at ``url``: the URL that names it (search_path), dropped at
    the end."""
    schema = f"hd_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text("SELECT set_config('hashdesk.bench_schema', :s, false)"), {"s": schema})
        conn.execute(text("DO $$ BEGIN EXECUTE format('CREATE SCHEMA %I', "
                          "current_setting('hashdesk.bench_schema')); END $$"))  # fmt: skip
    u = make_url(url)
    q = dict(u.query)
    q["options"] = f"-csearch_path={schema}"
    try:
        yield u.set(query=q).render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(
                text("SELECT set_config('hashdesk.bench_schema', :s, false)"), {"s": schema}
            )
            conn.execute(text("DO $$ BEGIN EXECUTE format('DROP SCHEMA %I CASCADE', "
                              "current_setting('hashdesk.bench_schema')); END $$"))  # fmt: skip
        admin.dispose()


def process_env(url: str, work: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HASHDESK_")}
    for keep in ("HASHDESK_ALLOW_TRUST_AUTH",):
        if keep in os.environ:
            env[keep] = os.environ[keep]
    env.update(
        HASHDESK_DATABASE_URL=url,
        HASHDESK_MEDIA_ROOT=str(work / "media"),
        HASHDESK_INGEST_MODE="queue",
        HASHDESK_INDEX_SNAPSHOT="off",
        HASHDESK_NO_KEYRING="1",
        HASHDESK_WORKER_HEARTBEAT_SECONDS="1",
        HASHDESK_WORKER_STALLED_SECONDS="4",
        HASHDESK_INTAKE_RETRY_SECONDS="1",
        XDG_DATA_HOME=str(work / "xdg-data"),
        XDG_CONFIG_HOME=str(work / "xdg-config"),
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def hashdesk(env: dict[str, str], *args: str, log: Path | None = None) -> subprocess.Popen:
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - the child keeps it
    return subprocess.Popen(
        [sys.executable, "-m", "app", *args], env=env, cwd=ROOT, stdout=out, stderr=out
    )


def _stop(procs: Sequence[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _open(url: str):
    from app.storage.db import open_database

    return open_database(url)


def _counts(db) -> dict[str, int]:
    with db.engine.connect() as conn:
        return {
            k: int(conn.execute(text(q)).scalar() or 0)
            for k, q in {
                "receipts": "SELECT count(*) FROM intake_receipts",
                "waiting": "SELECT count(*) FROM intake_receipts WHERE state = 'waiting'",
                "refused": "SELECT count(*) FROM intake_receipts WHERE state = 'refused'",
                "items": "SELECT count(*) FROM items",
                "sightings": "SELECT count(*) FROM sightings",
                "videos": "SELECT count(*) FROM items WHERE kind = 'video'",
                "unreadable": "SELECT count(*) FROM items WHERE status = 'unreadable'",
            }.items()
        }


def make_images(folder: Path, n: int, size=(320, 240), start: int = 0) -> list[Path]:
    from app.tools.demo import sample_picture

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(start, start + n):
        p = folder / f"drill-{i:05d}.jpg"
        sample_picture(100_000 + i, size).save(p, "JPEG", quality=85)
        out.append(p)
    return out


def make_videos(folder: Path, n: int, seconds: int = 60) -> list[Path]:
    """``n`` distinct copies of a ``seconds`` 720p clip (distinct bytes appended after it)."""
    from app.tools.video_bench import write_synthetic_clip

    folder.mkdir(parents=True, exist_ok=True)
    base = folder / "base.mp4"
    write_synthetic_clip(base, seconds)
    data = base.read_bytes()
    base.unlink()
    out = []
    for i in range(n):
        p = folder / f"clip-{i:03d}.mp4"
        p.write_bytes(data + b"\0\0\0\x10free" + i.to_bytes(8, "big"))
        out.append(p)
    return out


# -- throughput -------------------------------------------------------------------------------


def throughput(url: str, files: list[Path], workers: int, work: Path) -> dict:
    """Seconds for ``workers`` worker processes (started and registered first) to record
    ``files``, from the first arrival to the last recorded."""
    from app.compose import open_context
    from app.core.ingest.sidecar import meta_from_fields
    from app.core.model.domain import utcnow
    from app.core.settings.config import load_settings

    with throwaway_schema(url) as schema_url:
        env = process_env(schema_url, work)
        ctx = open_context(load_settings(env))
        procs = [hashdesk(env, "worker", "--name", f"bench-{i}") for i in range(workers)]
        try:
            _wait(lambda: _named_workers(ctx.db) >= workers, 120, "the workers to start")
            meta = meta_from_fields(source="bench", received_at=utcnow())
            t0 = time.perf_counter()
            for f in files:
                ctx.intake.receive(path=f, meta=meta, via="cli")
            _wait(lambda: _counts(ctx.db)["waiting"] == 0, 3600, "the jobs to finish")
            seconds = time.perf_counter() - t0
            counts = _counts(ctx.db)
        finally:
            _stop(procs)
            ctx.close()
        shutil.rmtree(work / "media", ignore_errors=True)
    return {"files": len(files), "workers": workers, "seconds": seconds, **counts}


def _named_workers(db) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM intake_workers")).scalar() or 0)


def _wait(cond: Callable[[], bool], timeout: float, what: str, every: float = 0.2) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(every)


def bench_intake(url: str, images: int = 300, videos: int = 4, work: Path | None = None) -> dict:
    """Images per second and minutes of 720p video per second with 1 and 2 worker processes."""
    import tempfile

    own = work is None
    work = Path(tempfile.mkdtemp(prefix="hashdesk-intake-bench-")) if work is None else work
    try:
        imgs = make_images(work / "images", images, size=(1280, 720))
        clips = make_videos(work / "videos", videos, 60)
        out: dict = {"images": {}, "videos": {}}
        for n in (1, 2):
            r = throughput(url, imgs, n, work / f"i{n}")
            out["images"][n] = r | {"per_s": r["files"] / r["seconds"]}
            v = throughput(url, clips, n, work / f"v{n}")
            out["videos"][n] = v | {"minutes_per_s": v["files"] / v["seconds"]}
        return out
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)


@_stops_cleanly
def print_bench_intake(url: str, images: int = 300, videos: int = 4) -> dict:
    print(
        f"intake throughput: {images} JPEGs 1280x720 and {videos} one-minute 720p clips, "
        "1 and 2 `hashdesk worker` processes on the queue (a minute or two)…",
        flush=True,
    )
    r = bench_intake(url, images, videos)
    for n in (1, 2):
        i, v = r["images"][n], r["videos"][n]
        print(
            f"  {n} worker(s): {i['per_s']:.1f} images/s ({i['files']} in {i['seconds']:.1f} s), "
            f"{v['minutes_per_s']:.2f} minutes of video/s ({v['files']} in {v['seconds']:.1f} s)"
        )
    return r


# -- the drill ----------------------------------------------------------------------------------


class Feeder(Protocol):
    """One way in for the drill's files (the drop folder here; the HTTP intake later). Each file
    given to ``feed`` must reach the intake exactly once, under its own name."""

    name: str

    def feed(self, files: list[Path], stop: threading.Event) -> None: ...


@dataclass
class DropFeeder:
    """Moves files into the drop folder (a rename: they appear whole), a batch at a time."""

    drop: Path
    batch: int = 25
    pause_s: float = 0.05
    name: str = "drop folder"

    def feed(self, files: list[Path], stop: threading.Event) -> None:
        for i, f in enumerate(files):
            if stop.is_set():
                return
            os.replace(f, self.drop / f.name)
            if i % self.batch == self.batch - 1:
                time.sleep(self.pause_s)


@dataclass
class DrillResult:
    files: int
    workers: int
    watchers: int
    seconds: float
    worker_kills: int
    watcher_kills: int
    counts: dict[str, int]
    duplicates: list[str] = field(default_factory=list)  # names received more than once
    missing: list[str] = field(default_factory=list)  # names never received
    left_over: list[str] = field(default_factory=list)  # files still in the drop folder

    @property
    def exactly_once(self) -> bool:
        c = self.counts
        return (
            not self.duplicates
            and not self.missing
            and not self.left_over
            and c["receipts"] == c["items"] == c["sightings"] == self.files
            and c["waiting"] == 0
            and c["refused"] == 0
        )


def run_drill(
    url: str,
    work: Path,
    *,
    files: int = 2000,
    workers: int = 4,
    watchers: int = 2,
    kill_watchers: bool = True,
    mean_kill_s: float = 3.0,
    min_kills: int = 1,
    min_life_s: float = 8.0,
    drop_batch: int = 25,
    drop_pause_s: float = 0.05,
    extra_feeders: Sequence[tuple[Feeder, int]] = (),
    seed: int = 0,
    timeout: float = 1800.0,
    say: Callable[[str], None] = print,
) -> DrillResult:
    """``workers`` worker processes and ``watchers`` drop-folder watchers on a throwaway schema;
    ``files`` distinct pictures flow in through the drop folder (and each extra feeder its share,
    ``(feeder, how many)``) while a random worker is SIGKILLed and restarted every
    ``mean_kill_s`` seconds on average (and, with ``kill_watchers``, a watcher now and then);
    then every name is checked to be received once and recorded once. Only a worker that has
    been working (registered) for ``min_life_s`` is killed. The drill ends once
    every file is recorded and at least ``min_kills`` workers were killed."""
    rng = random.Random(seed)
    drop = work / "drop"
    drop.mkdir(parents=True, exist_ok=True)
    extra_total = sum(n for _f, n in extra_feeders)
    staged = make_images(work / "staged", files + extra_total)
    names = [p.name for p in staged]
    shares: list[tuple[Feeder, list[Path]]] = [
        (DropFeeder(drop, batch=drop_batch, pause_s=drop_pause_s), staged[:files])
    ]
    at = files
    for feeder, n in extra_feeders:
        shares.append((feeder, staged[at : at + n]))
        at += n
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    with throwaway_schema(url) as schema_url:
        env = process_env(schema_url, work)
        db = _open(schema_url)  # migrates the throwaway schema before anything starts
        opened: list = []
        for feeder, _share in shares[1:]:  # a feeder with a server of its own (HTTP) starts it
            if hasattr(feeder, "open"):
                feeder.open(env)
                opened.append(feeder)
        spawned = [0]

        def worker(i: int) -> tuple[str, subprocess.Popen]:
            spawned[0] += 1
            name = f"drill-w{i}-{spawned[0]}"
            log = logs / f"worker-{i}.log"
            return name, hashdesk(env, "worker", "--name", name, log=log)

        wnames, wprocs = (list(x) for x in zip(*(worker(i) for i in range(workers)), strict=True))
        watch_args = ("intake", "watch", str(drop), "--settle", "0.5", "--stale", "5")
        watch_args += ("--poll", "0.2")
        vprocs = [
            hashdesk(env, *watch_args, log=logs / f"watcher-{i}.log") for i in range(watchers)
        ]
        stop = threading.Event()
        kills = {"worker": 0, "watcher": 0}

        def killer() -> None:
            while not stop.wait(rng.expovariate(1 / mean_kill_s)):
                if kill_watchers and rng.random() < 0.15:
                    i = rng.randrange(len(vprocs))
                    vprocs[i].send_signal(signal.SIGKILL)
                    vprocs[i].wait()
                    kills["watcher"] += 1
                    log = logs / f"watcher-{i}.log"
                    vprocs[i] = hashdesk(env, *watch_args, log=log)
                else:
                    # a worker that has been working (registered) for min_life_s, so each gets
                    # to work between kills
                    with db.engine.connect() as conn:
                        up = set(
                            conn.execute(
                                text(
                                    "SELECT name FROM intake_workers WHERE started_at <= "
                                    "(now() AT TIME ZONE 'UTC') - make_interval(secs => :s)"
                                ),
                                {"s": min_life_s},
                            ).scalars()
                        )
                    ready = [i for i, n in enumerate(wnames) if n in up]
                    if not ready:
                        continue
                    i = rng.choice(ready)
                    wprocs[i].send_signal(signal.SIGKILL)
                    wprocs[i].wait()
                    kills["worker"] += 1
                    wnames[i], wprocs[i] = worker(i)

        t0 = time.perf_counter()
        threads = [threading.Thread(target=killer, name="killer", daemon=True)]
        threads += [
            threading.Thread(target=f.feed, args=(share, stop), name=f.name, daemon=True)
            for f, share in shares
        ]
        for t in threads:
            t.start()
        total = len(names)
        try:

            def all_in() -> bool:
                c = _counts(db)
                say(
                    f"  {c['receipts']}/{total} received, {c['waiting']} waiting, "
                    f"{c['items']} items; kills: {kills['worker']} workers, "
                    f"{kills['watcher']} watchers"
                )
                return c["receipts"] >= total and c["waiting"] == 0 and kills["worker"] >= min_kills

            _wait(all_in, timeout, "every file to be recorded", every=2.0)
            seconds = time.perf_counter() - t0
        finally:
            stop.set()
            for t in threads[1:]:
                t.join(60)
            threads[0].join(60)
            _stop(wprocs + vprocs)
            for feeder in opened:
                feeder.close()
        time.sleep(0.5)
        counts = _counts(db)
        with db.engine.connect() as conn:
            got = [r[0] for r in conn.execute(text("SELECT original_name FROM intake_receipts"))]
        db.dispose()
    seen: dict[str, int] = {}
    for n in got:
        seen[n] = seen.get(n, 0) + 1
    left = sorted(p.name for p in drop.iterdir() if p.is_file())
    return DrillResult(
        files=total,
        workers=workers,
        watchers=watchers,
        seconds=seconds,
        worker_kills=kills["worker"],
        watcher_kills=kills["watcher"],
        counts=counts,
        duplicates=sorted(n for n, k in seen.items() if k > 1),
        missing=sorted(set(names) - set(seen)),
        left_over=left,
    )


@_stops_cleanly
def print_drill(
    url: str,
    files: int = 2000,
    workers: int = 4,
    kill_every: float = 3.0,
    extra_feeders: Sequence[tuple[Feeder, int]] = (),
) -> int:
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="hashdesk-intake-drill-"))
    print(
        f"intake drill: {files} files through the drop folder (2 watchers)"
        + "".join(f" and {n} through the {f.name}" for f, n in extra_feeders)
        + f", {workers} workers SIGKILLed at random and restarted…",
        flush=True,
    )
    try:
        r = run_drill(
            url,
            work,
            files=files,
            workers=workers,
            mean_kill_s=kill_every,
            extra_feeders=extra_feeders,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"  {r.files} files in {r.seconds:.1f} s ({r.files / r.seconds:.1f}/s); "
        f"{r.worker_kills} worker kills, {r.watcher_kills} watcher kills; "
        f"received {r.counts['receipts']}, items {r.counts['items']}, "
        f"sightings {r.counts['sightings']}, waiting {r.counts['waiting']}, "
        f"duplicates {len(r.duplicates)}, missing {len(r.missing)}, "
        f"left in the folder {len(r.left_over)}, unreadable {r.counts['unreadable']}: "
        + ("every file exactly once" if r.exactly_once else "NOT exactly once")
    )
    return 0 if r.exactly_once else 1
