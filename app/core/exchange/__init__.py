"""Hash-list exchange formats: reading a partner's list into plain entries, writing ours out.

One module per format, each with ``read(text) -> ParsedList`` and ``write(entries, ...)``:

=========== ================================================================================
``pytx``     python-threatexchange's local file: one ``<signal_type> <signal>`` a line
``pytx-csv`` ``threatexchange dataset --csv``: ``signal_type,signal_str,collab,category,tags``
``tat``      Tech Against Terrorism's hash-list records (``hash_digest, algorithm, ideology,
             file_type, deleted, updated_on, created_on, id``), JSON or CSV
``vics``     Project VIC VICS 2.0 JSON media records (``MD5``, ``SHA1``, ``Category``,
             ``AlternativeHashes`` for PDQ)
``vpdq``     the vPDQ reference's per-video frame lists (``frame,quality,hex,ts``)
=========== ================================================================================

Hash types are named through the signal-type registry (:mod:`app.core.matching.signal_types`), never
here. A bad line is reported with its number and the good ones still come through; a hash
type Hashdesk cannot match is counted by name, not dropped silently. Hashes only: no format
here carries media, and nothing fetches a URL. No Qt, no SQL.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from app.core.exchange import pytx, tat, vics, vpdq
from app.core.exchange.entries import (
    FORMATS,
    ExchangeEntry,
    ExchangeError,
    ParsedList,
)

__all__ = [
    "FORMATS",
    "ExchangeEntry",
    "ExchangeError",
    "ParsedList",
    "read_file",
    "read_text",
    "write_file",
    "write_text",
]


def detect_format(path: Path, head: str) -> str:
    """The format of a file from its first characters (and, for vPDQ, its shape)."""
    text = head.lstrip("\ufeff").lstrip()
    first = text.splitlines()[0].strip() if text else ""
    if path.is_dir():
        return "vpdq"
    if text.startswith(("{", "[")):
        if '"hash_digest"' in text[:4000]:
            return "tat"
        if "odata" in text[:400] or '"MediaID"' in text[:4000] or '"MD5"' in text[:4000]:
            return "vics"
        return "tat"
    low = first.lower().replace(" ", "")
    if low.startswith("signal_type,signal_str"):
        return "pytx-csv"
    if "hash_digest" in low and "algorithm" in low:
        return "tat-csv"
    parts = first.split(",")
    if len(parts) == 4 and parts[0].isdigit() and len(parts[2]) == 64:
        return "vpdq"
    if first:
        return "pytx"
    raise ExchangeError(f"{path}: empty file, nothing to import")


def read_file(path: Path, fmt: str | None = None) -> ParsedList:
    """Parse ``path`` (a folder of vPDQ frame lists too) in ``fmt`` (None: detected)."""
    if not path.exists():
        raise ExchangeError(f"no such file: {path}")
    if fmt is None:
        head = "" if path.is_dir() else _read_head(path)
        fmt = detect_format(path, head)
    if fmt not in FORMATS:
        raise ExchangeError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "vpdq":
        return vpdq.read_path(path)
    text = _read_text(path)
    if fmt == "pytx":
        return pytx.read_local(text)
    if fmt == "pytx-csv":
        return pytx.read_csv(text)
    if fmt in ("tat", "tat-csv"):
        return tat.read(text, csv_form=fmt == "tat-csv" or not text.lstrip().startswith(("{", "[")))
    return vics.read(text)


def write_file(
    path: Path, fmt: str, entries: Iterable[ExchangeEntry], *, collab: str = "hashdesk"
) -> tuple[int, Counter[str]]:
    """Write ``entries`` to ``path`` (vPDQ: a folder, one frame list per video). Returns how
    many were written and, by name, the hash types the format cannot carry."""
    if fmt not in FORMATS:
        raise ExchangeError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "vpdq":
        return vpdq.write_folder(path, entries)
    with path.open("w", encoding="utf-8", newline="") as f:
        if fmt == "pytx":
            return pytx.write_local(f, entries)
        if fmt == "pytx-csv":
            return pytx.write_csv(f, entries, collab)
        if fmt in ("tat", "tat-csv"):
            return tat.write(f, entries, csv_form=fmt == "tat-csv")
        return vics.write(f, entries)


def write_text(
    fmt: str, entries: Iterable[ExchangeEntry], *, collab: str = "hashdesk"
) -> tuple[str, int, Counter[str]]:
    """``entries`` in ``fmt`` as text (every format but vPDQ, a folder), with the count written
    and the types left out: the same writers as :func:`write_file`, for a caller that needs
    the bytes first (a delta's checksum)."""
    if fmt not in FORMATS or fmt == "vpdq":
        raise ExchangeError(f"format {fmt!r} cannot be written as one file")
    f = io.StringIO(newline="")
    if fmt == "pytx":
        n, skipped = pytx.write_local(f, entries)
    elif fmt == "pytx-csv":
        n, skipped = pytx.write_csv(f, entries, collab)
    elif fmt in ("tat", "tat-csv"):
        n, skipped = tat.write(f, entries, csv_form=fmt == "tat-csv")
    else:
        n, skipped = vics.write(f, entries)
    return f.getvalue(), n, skipped


def read_text(text: str, fmt: str) -> ParsedList:
    """Parse ``text`` already read (and checked) in ``fmt`` (not vPDQ)."""
    if fmt == "pytx":
        return pytx.read_local(text)
    if fmt == "pytx-csv":
        return pytx.read_csv(text)
    if fmt in ("tat", "tat-csv"):
        return tat.read(text, csv_form=fmt == "tat-csv")
    if fmt == "vics":
        return vics.read(text)
    raise ExchangeError(f"format {fmt!r} cannot be read from one text")


def _read_head(path: Path) -> str:
    with path.open("rb") as f:
        return f.read(4096).decode("utf-8", errors="replace")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ExchangeError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
