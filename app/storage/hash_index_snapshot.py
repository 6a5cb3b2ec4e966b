"""The hash-list index saved between runs (the way HMA keeps its FAISS index): a snapshot
file holding ``HashIndex.dump``'s arrays in an uncompressed ``.npz`` (each member CRC-checked
as it is read) with the watermark it was taken at, next to the SQLite file or in
Settings.index_snapshot_dir, written atomically.

A snapshot is used only when it was written for this database and quality gate
(:func:`snapshot_key`) in this format (format 2: the watermark of change_seq, migration 0012;
an older file is not used, and the list loaded from the database, logged), the database's
watermark is not behind it, and a sample of its
entries (16 a table) has the same hashes in the database (:func:`check_against_database`);
the watcher then brings it up to date and counts it against the database. The file is a
cache, trusted no further than the workstation's own code: the checks catch damage,
staleness and a thinned file, not a forged hash under an existing id outside the sample.
1M entries: 0.1-0.2 s from the snapshot, 1.4 s CPU from SQLite.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.matching.hash_index import HashIndex
from app.core.matching.match_rules import MatchPolicy
from app.core.settings.config import redact_url
from app.storage.hash_list_index import Watermark, read_watermark
from app.storage.models import HashListEntry

#: Lists smaller than this are loaded from the database each time (a fraction of a second).
SNAPSHOT_MIN_ENTRIES = 1 << 16
_SNAPSHOT_FORMAT = 3  # 3: frame times per entry; 2: the watermark is change_seq's (1: times)
_SNAPSHOT_SAMPLE = 16  # entries a table checked against the database before a snapshot is used


def snapshot_path(database_url: str, folder: Path | None) -> Path | None:
    """Where the index snapshot of the database at ``database_url`` lives: in ``folder``
    (Settings.index_snapshot_dir, or the data directory) under a name keyed to the URL without
    its password, or, without ``folder``, next to a SQLite file. None: nowhere (an in-memory
    SQLite database, or PostgreSQL without a folder)."""
    where = redact_url(database_url)
    if folder is not None:
        digest = hashlib.sha256(where.encode()).hexdigest()[:16]
        return folder / f"hash-index-{digest}.npz"
    if where.startswith("sqlite:///") and len(where) > len("sqlite:///"):
        db_file = where[len("sqlite:///") :].split("?", 1)[0]
        if db_file and db_file != ":memory:":
            return Path(f"{db_file}.index.npz")
    return None


def _mark_meta(mark: Watermark) -> dict:
    return {k: int(v) for k, v in asdict(mark).items()}


def _mark_from_meta(meta: dict) -> Watermark:
    return Watermark(int(meta["max_id"]), int(meta["max_seq"]), int(meta["lists_seq"]))


def snapshot_key(database_url: str, policy: MatchPolicy) -> dict:
    """What a snapshot must have been written for: this database, the same quality gate."""
    where = redact_url(database_url)
    return {
        "format": _SNAPSHOT_FORMAT,
        "database": hashlib.sha256(where.encode()).hexdigest(),
        "min_quality": policy.min_quality,
    }


def write_snapshot(path: Path, index: HashIndex, mark: Watermark, key: dict) -> None:
    """Save ``index`` (as of ``mark``) to ``path``, atomically: a reader sees the old file or
    the new one whole. OSError when it cannot be written."""
    arrays = index.dump()
    meta = {**key, "mark": _mark_meta(mark), "entries": len(index)}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            save: Callable[..., None] = np.savez  # (its stub types ** as its own flags)
            save(f, **arrays)  # a zip: each array's CRC-32 is checked when read back
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def read_snapshot(path: Path, key: dict) -> tuple[dict[str, np.ndarray], Watermark]:
    """The arrays and the watermark of the snapshot at ``path``. ValueError (or OSError, or
    whatever a damaged file raises) when it is unreadable or not written for ``key``."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {name: z[name] for name in z.files}  # reads (and CRC-checks) every member
    meta = json.loads(bytes(arrays.pop("meta")).decode())
    if meta.get("format") != key["format"]:
        raise ValueError(f"format {meta.get('format')}, this Hashdesk reads {key['format']}")
    for k, v in key.items():
        if meta.get(k) != v:
            raise ValueError(f"written for another {k}")
    return arrays, _mark_from_meta(meta["mark"])


def check_against_database(s: Session, arrays: dict[str, np.ndarray], mark: Watermark) -> None:
    """ValueError unless the snapshot's database is this one: the watermark not behind it,
    and a sample of its entries (spread over every table) present with the same hash."""
    now = read_watermark(s)
    if now.behind(mark):
        raise ValueError(f"the database's watermark {now} is behind the snapshot's {mark}")
    sample: dict[int, str] = {}
    for name, ids in arrays.items():
        if not name.endswith(".ids") or ids.size == 0:
            continue
        stem = name[: -len(".ids")]
        pick = np.unique(np.linspace(0, ids.size - 1, _SNAPSHOT_SAMPLE).astype(np.int64))
        if f"{stem}.cols" in arrays:
            cols = arrays[f"{stem}.cols"][:, pick]
            for j, i in enumerate(pick.tolist()):
                sample[int(ids[i])] = "".join(format(int(w), "016x") for w in cols[:, j])
        else:
            values = arrays[f"{stem}.values"]
            for i in pick.tolist():
                sample[int(ids[i])] = values[i].decode("ascii")
    if not sample:
        return
    h = HashListEntry
    found = {i: v for i, v in s.execute(select(h.id, h.value).where(h.id.in_(list(sample))))}
    for entry_id, value in sample.items():
        if (found.get(entry_id) or "").lower() != value:
            raise ValueError(f"entry {entry_id} differs from the database's")
