"""`hashdesk self-test` from source: the same end-to-end check the frozen bundle runs in
packaging/build.py (ingest, the review window driven by keys, the hash list)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

STEPS = (
    "resources",
    "database",
    "media",
    "ingest",
    "process pool",
    "user",
    "review window",
    "confirm",
    "reject",
    "hash list",
    "close",
    "cleanup",
)


def test_self_test_passes_from_source(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", TMPDIR=str(tmp_path))
    env.pop("HASHDESK_DATABASE_URL", None)  # the self-test must not touch a configured database
    proc = subprocess.run(
        [sys.executable, "-m", "app", "self-test"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [line.split(":", 1)[0] for line in lines if line.startswith(("ok ", "FAIL"))] == [
        f"ok   {step}" for step in STEPS
    ]
    assert "ok   ingest: 2 items (image, video)" in lines
    assert any(line.startswith("ok   hash list: ") and ", none for item" in line for line in lines)
    assert lines[-1].startswith("self-test passed")
    assert list(tmp_path.iterdir()) == []  # its temporary folder is gone
