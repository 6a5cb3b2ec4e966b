"""`hashdesk ingest` as a new user runs it (issue 14, item 13): totals that add up, clusters
said, a missing manifest file reported with a non-zero exit after the rest is ingested,
"unreadable" said once, and no FFmpeg chatter on the terminal. Real SQLite, real worker pool."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from app.cli import main
from app.tools.demo import write_sample_video
from tests.helpers import write_cluster, write_samples

ROOT = Path(__file__).resolve().parents[2]


def _damaged_clips(folder: Path) -> list[Path]:
    """A clip with a corrupted middle (the decoder complains but reads on) and one cut short
    (the container cannot be opened): FFmpeg prints about both."""
    clip = folder / "whole.mp4"
    write_sample_video(clip, 5)
    data = bytearray(clip.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 3000, 5):
        data[i] ^= 0x5A
    garbled, cut = folder / "garbled.mp4", folder / "cut.mp4"
    garbled.write_bytes(bytes(data))
    cut.write_bytes(clip.read_bytes()[: len(data) // 2])
    clip.unlink()
    return [garbled, cut]


def _env(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HASHDESK_DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite3'}")
    monkeypatch.setenv("HASHDESK_MEDIA_ROOT", str(tmp_path / "media"))


def test_ingest_totals_add_up_and_a_missing_file_fails_the_run(tmp_path, monkeypatch, capsys):
    _env(tmp_path, monkeypatch)
    inc = tmp_path / "incoming"
    files = write_samples(inc, range(3)) + write_cluster(inc, 88, size=3)
    copy = inc / "repost.jpg"
    copy.write_bytes(files[0].read_bytes())
    broken = inc / "broken.jpg"
    broken.write_bytes(files[1].read_bytes()[:300])
    files += [copy, broken, *_damaged_clips(inc)]
    rows = [{"path": p.name, "source": "partner_feed"} for p in files]
    rows.append({"path": "never-delivered.jpg", "source": "partner_feed"})
    manifest = inc / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")

    assert main(["ingest", "--manifest", str(manifest)]) == 1
    out, err = capsys.readouterr()
    first = out.splitlines()[0]
    m = re.fullmatch(
        r"ingested (\d+) files: (\d+) new, (\d+) exact cop(?:y|ies) "
        r"\(a sighting added to the item\), (\d+) unreadable, (\d+) missing",
        first,
    )
    assert m, first
    total, new, copies, unreadable, missing = map(int, m.groups())
    assert total == len(rows) == new + copies + unreadable + missing  # each file once
    assert (copies, missing) == (1, 1)
    assert unreadable == 2  # the cut JPEG and the clip that cannot be opened
    assert "  2 near-duplicates joined 1 cluster in the queue" in out
    assert "never-delivered.jpg (named in the manifest, not found)" in out
    assert "unreadable: unreadable" not in out
    assert "1 file named in the manifest not found" in err
    # Everything that exists was ingested all the same.
    assert main(["ingest", *map(str, files)]) == 0
    again = capsys.readouterr().out.splitlines()[0]
    n = len(files)
    copies = f"{n} exact copies (a sighting added to the item)"
    assert again == f"ingested {n} files: 0 new, {copies}, 0 unreadable"


def test_ffmpeg_chatter_stays_off_the_terminal(tmp_path):
    """In a fresh process, as a user runs it: nothing on stderr but our own progress lines."""
    inc = tmp_path / "incoming"
    inc.mkdir()
    clips = _damaged_clips(inc)
    env = {
        "HASHDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "HASHDESK_MEDIA_ROOT": str(tmp_path / "media"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "HASHDESK_NO_KEYRING": "1",
        "PATH": "/usr/bin:/bin",
    }
    run = subprocess.run(
        [sys.executable, "-m", "app", "ingest", *map(str, clips * 2)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(
        "ingested 4 files: 1 new, 2 exact copies (a sighting added to the item), 1 unreadable"
    )
    assert "cut.mp4: video could not be opened" in run.stdout  # our own error is still said
    assert run.stderr.splitlines() == ["ingesting 4 files…"], run.stderr


def test_special_files_are_skipped_and_an_unreadable_file_is_an_item(tmp_path):
    """Issue 25 (7, 11, 12): a named pipe is reported and skipped, never waited on, and the
    files after it are read; a broken link is called one; a regular file that cannot be read
    is an unreadable item like any other. Run as a user runs it, in a fresh process, with a
    timeout as the guard against a hang (no timed assert).

    The unreadable file: the tests run as root, for whom chmod 000 still reads, so the file is a
    link to /proc/sys/vm/compact_memory, a regular file no one may read (write-only, mode 0200:
    open() refuses it with EACCES even for root)."""
    import os
    import sqlite3

    inc = tmp_path / "incoming"
    write_samples(inc, [1, 9])  # sample-0001.jpg, sample-0009.jpg
    os.mkfifo(inc / "sample-0005.pipe")
    (inc / "sample-0006-gone.jpg").symlink_to(inc / "nowhere.jpg")
    unreadable = Path("/proc/sys/vm/compact_memory")
    if unreadable.is_file() and not os.access(unreadable, os.R_OK):
        (inc / "sample-0007-secret.jpg").symlink_to(unreadable)
    env = {
        "HASHDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "HASHDESK_MEDIA_ROOT": str(tmp_path / "media"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "HASHDESK_NO_KEYRING": "1",
        "PATH": "/usr/bin:/bin",
    }
    run = subprocess.run(
        [sys.executable, "-m", "app", "ingest", str(inc)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,  # a hang fails here, whatever the machine's speed
    )
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert f"skipped: {inc / 'sample-0005.pipe'}: not a regular file (named pipe): skipped" in out
    assert f"skipped: {inc / 'sample-0006-gone.jpg'}: broken link (points to " in out
    assert "named in the manifest" not in out
    with sqlite3.connect(tmp_path / "db.sqlite3") as conn:
        items = conn.execute("SELECT status, error FROM items ORDER BY id").fetchall()
    assert [s for s, _ in items].count("queued") == 2  # the file after the pipe was read
    if (inc / "sample-0007-secret.jpg").exists():
        assert out.startswith("ingested 5 files: 2 new, 0 exact copies")
        assert "1 unreadable, 2 skipped" in out.splitlines()[0]
        assert ("unreadable", "cannot read file: Permission denied (its content was not read)") in (
            items
        )
        assert "unreadable: " in out and "sample-0007-secret.jpg: cannot read file" in out


def test_a_name_too_long_is_one_line(tmp_path, monkeypatch, capsys):
    """Issue 25 (8): a file name over 255 bytes, given or named in a manifest: a clear line,
    no traceback."""
    _env(tmp_path, monkeypatch)
    long_name = tmp_path / ("x" * 300 + ".jpg")
    assert main(["ingest", str(long_name)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "File name too long" in err
    inc = write_samples(tmp_path / "in", [3])
    manifest = tmp_path / "m.jsonl"
    rows = [{"path": str(long_name)}, {"path": str(inc[0])}]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert main(["ingest", "--manifest", str(manifest)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ingested 2 files: 1 new")
    assert f"skipped: {long_name}: cannot read file: File name too long" in out
