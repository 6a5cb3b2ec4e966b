"""The vPDQ reference's frame lists: one text file per video, one line per sampled frame,
``frame_number,quality,pdq_hex,timestamp_seconds``. A folder holds many videos; the file's
name (without ``.txt``) names the video, so frames of one video match together (by the vPDQ
rule already used for our own videos)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from app.core.exchange.entries import ExchangeEntry, ExchangeError, ParsedList, check_hex
from app.core.model.domain import Algorithm


def _frame_lines(text: str) -> Iterator[tuple[int, str]]:
    """The frame lines of a list, with their line numbers: blank lines and ``#`` comments
    skipped, each line stripped."""
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        yield n, line


def _fields(line: str) -> tuple[str, int, str, float]:
    """A frame line's fields: the frame number as written, the quality, the hash (checked,
    lowercase) and the time in seconds. ValueError saying what is wrong."""
    parts = [p.strip() for p in line.split(",")]
    if len(parts) != 4:
        raise ValueError(f"expected frame,quality,hex,seconds, got {line[:80]!r}")
    value = check_hex(Algorithm.PDQ_FRAME, parts[2])
    quality, ts = int(parts[1]), float(parts[3])
    if not 0 <= quality <= 100 or ts < 0:
        raise ValueError(f"quality {quality} or time {ts} out of range")
    return parts[0], quality, value, ts


def read_frames(path: Path) -> list[tuple[int, int, str, float]]:
    """One video's frame list as ``(frame_number, quality, hex, seconds)`` rows, in file order
    (the reference's output, compared frame by frame). ValueError at the first bad line."""
    rows: list[tuple[int, int, str, float]] = []
    for _n, line in _frame_lines(path.read_text(encoding="utf-8-sig")):
        frame, quality, value, ts = _fields(line)
        rows.append((int(frame), quality, value, ts))
    return rows


def read_text(text: str, video: str, out: ParsedList, where: str = "") -> None:
    for n, line in _frame_lines(text):
        out.lines += 1
        try:
            _frame, quality, value, ts = _fields(line)
        except ValueError as exc:
            out.problems.append((n, f"{where}{exc}"))
            continue
        out.entries.append(
            ExchangeEntry(
                Algorithm.PDQ_FRAME,
                value,
                quality=quality,
                frame_ts=ts,
                video=video,
                external_id=video,
                line=n,
            )
        )


def read_path(path: Path) -> ParsedList:
    out = ParsedList("vpdq")
    files = sorted(p for p in path.glob("*.txt") if p.is_file()) if path.is_dir() else [path]
    if not files:
        raise ExchangeError(f"{path}: no vPDQ frame lists (*.txt) in the folder")
    for p in files:
        try:
            text = p.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            out.problems.append((0, f"{p.name}: not UTF-8 text"))
            continue
        read_text(text, p.stem, out, f"{p.name}: " if path.is_dir() else "")
    return out


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "video"


def write_folder(path: Path, entries: Iterable[ExchangeEntry]) -> tuple[int, Counter[str]]:
    skipped: Counter[str] = Counter()
    videos: dict[str, list[ExchangeEntry]] = {}
    for e in entries:
        if e.algorithm is not Algorithm.PDQ_FRAME:
            skipped[e.algorithm.value] += 1
            continue
        videos.setdefault(e.video or e.external_id or "video", []).append(e)
    path.mkdir(parents=True, exist_ok=True)
    n = 0
    for video, frames in videos.items():
        frames.sort(key=lambda e: e.frame_ts or 0.0)
        with (path / f"{_safe(video)}.txt").open("w", encoding="utf-8") as f:
            for i, e in enumerate(frames):
                q = e.quality if e.quality is not None else 100
                f.write(f"{i},{q},{e.value},{e.frame_ts or 0.0:.3f}\n")
                n += 1
    return n, skipped
