"""Where a rendered delta goes: a folder (often a share partners read), or a command a team
runs (an upload script), which gets the path of a folder holding the delta's files as its last
argument. Never a shell: the command is an argument list, the folder path one more argument.

A folder is never created here: one that is missing is a share that went away (unmounted, a
network drive down), and writing into an empty mount point would hide that. Each file is
written beside its final name, flushed to disk, then renamed over it, the manifest last; a
file already there with the same bytes is left as it is (a delta written again is the same).
A failure (folder gone, disk full, the command failing) is :class:`DeltaWriteError`, one line
naming the delta, the place and the cause; what was half written is removed.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import tempfile
from pathlib import Path

from app.core.errors import Unavailable
from app.core.exchange.deltas import RenderedDelta

#: How long a delivery command may run before it counts as failed.
COMMAND_TIMEOUT = 300.0


class DeltaWriteError(Unavailable, OSError):
    """A delta that could not be delivered this time (retried, never skipped)."""


def describe_destination(folder: Path | None, command: str | None) -> str:
    if command:
        return f"command {shlex.split(command)[0]}"
    return f"folder {folder}"


def write_folder(delta: RenderedDelta, folder: Path) -> list[Path]:
    """Write the delta's files into ``folder`` (which must exist), the manifest last."""
    if not folder.is_dir():
        why = "is not a folder" if folder.exists() else "does not exist (gone, or not mounted)"
        raise DeltaWriteError(f"delta {delta.seq} not written: the delta folder {folder} {why}")
    written: list[Path] = []
    made: list[Path] = []  # by this attempt: removed again if it fails
    for name, data in delta.all_files():
        target = folder / name
        try:
            if target.is_file() and target.read_bytes() == data:
                written.append(target)
                continue
            _write_atomic(target, data)
        except OSError as exc:
            for p in made:
                with contextlib.suppress(OSError):
                    p.unlink()
            raise DeltaWriteError(
                f"delta {delta.seq} not written to {folder}: {name}: {exc.strerror or exc}"
            ) from None
        made.append(target)
        written.append(target)
    return written


def _write_atomic(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def run_command(delta: RenderedDelta, command: str, timeout: float = COMMAND_TIMEOUT) -> str:
    """Write the delta into a fresh folder and run ``command`` (an argument list in shell
    syntax, from the team's settings, never from data) with that folder's path appended.
    Returns the command's last line of output; a failure raises DeltaWriteError."""
    argv = shlex.split(command)
    if not argv:
        raise DeltaWriteError(f"delta {delta.seq} not delivered: the delta command is empty")
    with tempfile.TemporaryDirectory(prefix=f"hashdesk-delta-{delta.seq:06d}-") as tmp:
        try:
            write_folder(delta, Path(tmp))
            done = subprocess.run(  # an argument list, no shell
                [*argv, tmp],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise DeltaWriteError(
                f"delta {delta.seq} not delivered: {argv[0]} ran longer than {timeout:.0f} s"
            ) from None
        except OSError as exc:
            raise DeltaWriteError(
                f"delta {delta.seq} not delivered: cannot run {argv[0]}: {exc.strerror or exc}"
            ) from None
    out = (done.stdout or "").strip().splitlines()
    if done.returncode != 0:
        err = (done.stderr or "").strip().splitlines()
        last = err[-1] if err else (out[-1] if out else "no output")
        raise DeltaWriteError(
            f"delta {delta.seq} not delivered: {argv[0]} exited with {done.returncode}: {last}"
        )
    return out[-1] if out else ""
