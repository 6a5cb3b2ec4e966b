"""python-threatexchange's two plain formats.

The local file (``LocalFileSignalExchangeAPI``): one ``<signal_type> <signal>`` a line, e.g.
``pdq <64 hex>`` or ``video_md5 <32 hex>``; a ``vpdq`` signal is a JSON list of
``"<hex>,<quality>,<seconds>"`` frames. ``threatexchange dataset --csv``: a header, then
``signal_type,signal_str,collab,category,tags`` (category an opinion such as
``POSITIVE_CLASS``; tags separated by spaces). A ``NEGATIVE_CLASS`` row says the collaboration
holds the content benign: it counts as a deletion.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections import Counter
from collections.abc import Iterable
from typing import TextIO

from app.core.exchange.entries import ExchangeEntry, ParsedList, check_hex
from app.core.matching.signal_types import SIGNAL_TYPES, SignalType, signal_type

FMT = "pytx"
_HEX = re.compile(r"[0-9a-f]+")
NEGATIVE = "NEGATIVE_CLASS"


def _types() -> dict[str, SignalType]:
    """Every pytx name Hashdesk reads, lowercased, with its type."""
    return {n.lower(): t for t in SIGNAL_TYPES.values() for f, n in t.exchange_names if f == FMT}


def _frames(t: SignalType, signal: str, video: str, line: int) -> list[ExchangeEntry]:
    """A pytx video-frames signal (``vpdq``: a JSON list of "hex,quality,seconds") as frame
    entries of type ``t``."""
    try:
        raw = json.loads(signal)
    except json.JSONDecodeError as exc:
        raise ValueError(f"vpdq signal is not a JSON list: {exc.msg}") from None
    if not isinstance(raw, list):
        raise ValueError("vpdq signal is not a JSON list")
    out = []
    for k, feature in enumerate(raw, 1):
        parts = str(feature).split(",")
        if len(parts) != 3:
            raise ValueError(f"vpdq frame {k}: expected hex,quality,seconds")
        value = check_hex(t.algorithm, parts[0])
        out.append(
            ExchangeEntry(
                t.algorithm,
                value,
                quality=int(parts[1]),
                frame_ts=float(parts[2]),
                video=video,
                external_id=video,
                line=line,
            )
        )
    return out


def _video_id(signal: str) -> str:
    return "vpdq-" + hashlib.sha256(signal.encode()).hexdigest()[:16]


def read_local(text: str) -> ParsedList:
    out = ParsedList("pytx")
    names = _types()
    entries = out.entries
    append = entries.append
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        out.lines += 1
        name, _, signal = line.partition(" ")
        signal = signal.strip()
        t = names.get(name.lower())
        if t is None:
            if not signal or " " in signal:  # only a vpdq signal (JSON) holds spaces
                out.problems.append((n, f"expected '<signal_type> <signal>', got {line[:80]!r}"))
            else:
                out.unsupported[name] += 1
            continue
        if t.video_frames:
            try:
                entries.extend(_frames(t, signal, _video_id(signal), n))
            except ValueError as exc:
                out.problems.append((n, str(exc)))
            continue
        value = signal.lower()
        if len(value) == t.hex_len and _HEX.fullmatch(value):
            append(ExchangeEntry(t.algorithm, value, line=n))
            continue
        try:
            check_hex(t.algorithm, signal)
        except ValueError as exc:
            out.problems.append((n, str(exc)))
    return out


def read_csv(text: str) -> ParsedList:
    out = ParsedList("pytx-csv")
    names = _types()
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip() for f in reader.fieldnames or []]
    missing = {"signal_type", "signal_str"} - set(fields)
    if missing:
        out.problems.append((1, f"header lacks {', '.join(sorted(missing))}"))
        return out
    for row in reader:
        n = reader.line_num
        out.lines += 1
        row = {(k or "").strip(): (v or "") for k, v in row.items()}
        name, signal = row.get("signal_type", "").strip(), row.get("signal_str", "").strip()
        t = names.get(name.lower())
        if not name or not signal:
            out.problems.append((n, "signal_type or signal_str is empty"))
            continue
        if t is None:
            out.unsupported[name] += 1
            continue
        category = row.get("category", "").strip()
        tags = tuple(t for t in row.get("tags", "").split() if t)
        meta = tuple(
            (k, v)
            for k, v in (("collab", row.get("collab", "").strip()), ("opinion", category))
            if v
        )
        try:
            if t.video_frames:
                frames = _frames(t, signal, _video_id(signal), n)
            else:
                frames = [ExchangeEntry(t.algorithm, check_hex(t.algorithm, signal), line=n)]
        except ValueError as exc:
            out.problems.append((n, str(exc)))
            continue
        for e in frames:
            e.labels, e.meta, e.deleted = tags, meta, category == NEGATIVE
            out.entries.append(e)
    return out


def _grouped_frames(entries: list[ExchangeEntry]) -> dict[str, list[ExchangeEntry]]:
    videos: dict[str, list[ExchangeEntry]] = {}
    for e in entries:
        videos.setdefault(e.video or e.external_id or "", []).append(e)
    for frames in videos.values():
        frames.sort(key=lambda e: e.frame_ts or 0.0)
    return videos


def _vpdq_signal(frames: list[ExchangeEntry]) -> str:
    return json.dumps(
        [
            f"{e.value},{e.quality if e.quality is not None else 100},{e.frame_ts or 0.0:.3f}"
            for e in frames
        ]
    )


def _split(entries: Iterable[ExchangeEntry]) -> tuple[list, dict[str, list], Counter[str]]:
    """The entries written one a line, the video frames by their type's pytx name (one signal
    per video), and how many of each type pytx cannot carry."""
    plain: list[ExchangeEntry] = []
    frames: dict[str, list[ExchangeEntry]] = {}
    skipped: Counter[str] = Counter()
    for e in entries:
        t = signal_type(e.algorithm)
        name = t.exchange_name(FMT)
        if name is None:
            skipped[e.algorithm.value] += 1
        elif t.video_frames:
            frames.setdefault(name, []).append(e)
        else:
            plain.append(e)
    return plain, frames, skipped


def write_local(f: TextIO, entries: Iterable[ExchangeEntry]) -> tuple[int, Counter[str]]:
    plain, frames, skipped = _split(entries)
    n = 0
    for e in plain:
        f.write(f"{signal_type(e.algorithm).exchange_name(FMT)} {e.value}\n")
        n += 1
    for name, of_type in frames.items():
        for video in _grouped_frames(of_type).values():
            f.write(f"{name} {_vpdq_signal(video)}\n")
            n += len(video)
    return n, skipped


def write_csv(f: TextIO, entries: Iterable[ExchangeEntry], collab: str) -> tuple[int, Counter[str]]:
    plain, frames, skipped = _split(entries)
    w = csv.DictWriter(f, ["signal_type", "signal_str", "collab", "category", "tags"])
    w.writeheader()
    n = 0

    def row(name: str, signal: str, e: ExchangeEntry) -> None:
        tags = [*e.labels, *([e.category] if e.category and e.category not in e.labels else [])]
        w.writerow(
            {
                "signal_type": name,
                "signal_str": signal,
                "collab": collab,
                "category": dict(e.meta).get("opinion", "POSITIVE_CLASS"),
                "tags": " ".join(tags),
            }
        )

    for e in plain:
        row(signal_type(e.algorithm).exchange_name(FMT) or "", e.value, e)
        n += 1
    for name, of_type in frames.items():
        for video in _grouped_frames(of_type).values():
            row(name, _vpdq_signal(video), video[0])
            n += len(video)
    return n, skipped
