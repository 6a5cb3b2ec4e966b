"""Two `hashdesk intake watch` processes on one drop folder, on SQLite (no queue: each watcher
records what it takes in its own process), one SIGKILLed mid-way and started again: every file
taken once, recorded once, moved aside. (On PostgreSQL with workers: test_intake_drill.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from app.storage.db import open_database
from app.storage.models import IntakeReceipt, Item, Sighting
from app.tools.intake_bench import make_images

ROOT = Path(__file__).resolve().parents[2]


def _watch(env: dict[str, str], drop: Path, log: Path) -> subprocess.Popen:
    args = ["intake", "watch", str(drop), "--settle", "0.2", "--stale", "3", "--poll", "0.2"]
    return subprocess.Popen(
        [sys.executable, "-m", "app", *args],
        env=env,
        cwd=ROOT,
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
    )


def test_two_watcher_processes_take_each_file_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    db = open_database(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HASHDESK_")}
    env.update(
        HASHDESK_DATABASE_URL=url,
        HASHDESK_MEDIA_ROOT=str(tmp_path / "media"),
        HASHDESK_INDEX_SNAPSHOT="off",
        HASHDESK_NO_KEYRING="1",
        PYTHONPATH=str(ROOT),
    )
    drop = tmp_path / "drop"
    drop.mkdir()
    files = make_images(tmp_path / "staged", 30)
    watchers = [_watch(env, drop, tmp_path / f"w{i}.log") for i in range(2)]

    def received() -> int:
        with db.session() as s:
            return int(s.scalar(select(func.count()).select_from(IntakeReceipt)))

    def wait(cond, what: str, timeout: float = 240.0) -> None:
        end = time.monotonic() + timeout
        while not cond():
            assert time.monotonic() < end, f"not within {timeout} s: {what}"
            time.sleep(0.2)

    try:
        for f in files[:15]:
            os.replace(f, drop / f.name)
        wait(lambda: received() >= 3, "the first files received")
        watchers[0].send_signal(signal.SIGKILL)  # mid-way: it may hold claims
        watchers[0].wait()
        for f in files[15:]:
            os.replace(f, drop / f.name)
        watchers[0] = _watch(env, drop, tmp_path / "w0.log")
        taken = drop / "taken"
        wait(lambda: len(list(taken.glob("*__*.jpg"))) == 30, "all 30 files moved aside")

        def done() -> int:
            with db.session() as s:
                return int(
                    s.scalar(
                        select(func.count())
                        .select_from(IntakeReceipt)
                        .where(IntakeReceipt.state == "done")
                    )
                )

        # Every arrival recorded, a job that did not finish the first time (the two watchers
        # write one SQLite file) included: it is run again by a watcher.
        wait(lambda: done() == 30, "all 30 arrivals recorded")
    finally:
        for w in watchers:
            w.send_signal(signal.SIGTERM)
        for w in watchers:
            w.wait(60)
    with db.session() as s:
        names = list(s.scalars(select(IntakeReceipt.original_name)))
        items = s.scalar(select(func.count()).select_from(Item))
        sightings = s.scalar(select(func.count()).select_from(Sighting))
    db.dispose()
    assert sorted(names) == sorted(f.name for f in files)  # each once
    assert items == sightings == 30
    assert [p.name for p in drop.iterdir() if p.is_file()] == []
    assert list((drop / ".claimed").rglob("*__*")) == []
