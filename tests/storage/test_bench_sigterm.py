"""Issue 25 (17): `hashdesk bench` stopped with SIGTERM cleans up its temporary folders as
Ctrl+C does. A fresh process with its own TMPDIR; waits are bounded (no timed assert)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sigterm_leaves_nothing_in_tmp(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {
        **os.environ,
        "TMPDIR": str(tmp),
        "HASHDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "HASHDESK_MEDIA_ROOT": str(tmp_path / "media"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "bench", "ingest"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        give_up = time.monotonic() + 240
        while not any(p.is_dir() for p in tmp.iterdir()) and time.monotonic() < give_up:
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.2)
        made = [p for p in tmp.iterdir() if p.is_dir()]
        assert made, "the bench made no temporary folder"
        time.sleep(1.0)  # let it write some pictures into it
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert [p.name for p in tmp.iterdir()] == []
