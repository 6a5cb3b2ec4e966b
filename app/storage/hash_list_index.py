"""The hash list in memory: loading the active entries into a HashIndex, keeping it current while
the program runs, and the facts behind a match.

Every workstation's index stays equal to the active hash list within seconds: on PostgreSQL
the watcher LISTENs for the notification app.storage.notify sends with every change; everywhere
(and as a safety net on PostgreSQL) it polls a cheap watermark, the highest hash-list id, the
latest retraction and the latest other change (disable, enable, flood guard), all indexed, and
the latest change to a list's rule.

``local`` entries live in the index's root, every other list's in its own space
(:func:`app.core.matching.hash_lists.list_space`); an active entry is neither retracted nor
disabled.
An entry's ``ref`` is its item; an imported entry has none, so its ref is the negative of its
own id, or for the frames of one imported video (one external id) the negative of the first
frame's id: :func:`entry_for` reads it back.

One process holds one index (app.compose.AppContext.watcher): loaded once, by the first ingest
or the watcher's thread, and refreshed by every ingest after. A large list's index is saved
between runs (the way HMA keeps its FAISS index): a snapshot file (``HashIndex.dump``'s arrays
in an uncompressed ``.npz``, each member CRC-checked as it is read, with the watermark it was
taken at) next to the SQLite file or in Settings.index_snapshot_dir. At start it is used only
when it was written for this database and quality gate, the database's watermark is not
behind it and a sample of its entries (16 a table) has the same hashes in the database; then
the watcher's own refresh brings it up to date (rows added since, retractions, disables and
enables: the same lookbacks as a running watcher), and after that it must hold as many
entries as the database counts (a file with entries dropped, by hand or by a change older than
the lookbacks, is not used). The file is a cache, trusted no further than the workstation's
own code: the checks catch damage, staleness and a thinned file, not a forged hash under an
existing id outside the sample. Anything else (no file, a damaged or stale
one, another database's) is logged and the list loaded from the database. 1M entries: 0.1-0.2
s from the snapshot, 1.4 s CPU from SQLite.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import String, case, cast, func, or_, select
from sqlalchemy.orm import Session

from app.core.hashing.regions import REGIONS
from app.core.matching.hash_index import NO_REF, HashIndex, hex_block_to_words
from app.core.matching.hash_lists import LOCAL_LIST, ListPolicy, ListRule, list_space
from app.core.matching.match_rules import MatchPolicy, indexable, signal_space
from app.core.matching.signal_types import (
    DIHEDRAL_PREFIX,
    REGION_PREFIX,
    SIGNAL_TYPES,
    region_variant,
)
from app.core.model.domain import Algorithm, Signal
from app.core.settings.config import redact_url
from app.storage.db import Database
from app.storage.models import HashList, HashListEntry, User
from app.storage.notify import listen_statement

log = logging.getLogger(__name__)

# Rows can commit slightly out of id order, and clocks differ between workstations: each
# refresh looks back this far and skips what it already has.
ID_LOOKBACK = 1000
TIME_LOOKBACK = timedelta(minutes=5)


@dataclass(frozen=True)
class EntryFacts:
    id: int
    algorithm: str
    category: str | None
    list_name: str
    item_id: int | None
    decision_uuid: str | None
    added_by: str | None
    labels: str = ""
    flood_guarded: bool = False


def active_entry():
    """The condition of an entry that may match: neither retracted nor disabled."""
    return (HashListEntry.retracted_at.is_(None), HashListEntry.disabled_at.is_(None))


#: Hash-list ids per bulk-load query. 256k PDQ hashes are 16 MB of hex in one string.
LOAD_BATCH = 1 << 18
_ALG_CODES = {a.value: i for i, a in enumerate(Algorithm)}
_ALGS = tuple(Algorithm)
_REGION_CODES = {region_variant(r): i + 1 for i, r in enumerate(REGIONS)}  # 0: whole picture
_REGION_NAMES = ("", *_REGION_CODES)
_EXACT = tuple(a.value for a, t in SIGNAL_TYPES.items() if not t.near)
_GATED = tuple(a.value for a, t in SIGNAL_TYPES.items() if t.min_quality_applies)


def _joined(s: Session, column, sep: str):
    """The aggregate joining ``column``'s non-NULL values with ``sep``, in row order."""
    if s.get_bind().dialect.name == "postgresql":
        return func.string_agg(cast(column, String), sep)
    return func.group_concat(column, sep)


def _ints(joined: str | None) -> np.ndarray:
    return np.fromstring(joined or "", dtype=np.int64, sep=",") if joined else np.empty(0, np.int64)


def _indexable_where(policy: MatchPolicy) -> tuple:
    """:func:`app.core.matching.match_rules.indexable` as SQL: not query-only, not of too low
    quality."""
    h = HashListEntry
    return (
        or_(h.variant.is_(None), h.variant.not_like(DIHEDRAL_PREFIX + "%")),
        or_(h.quality.is_(None), h.quality >= policy.min_quality, h.algorithm.not_in(_GATED)),
    )


def add_hash_list_rows(s: Session, index: HashIndex, policy: MatchPolicy, *where) -> int:
    """Index the active hash-list entries (keyed by row id, ref = their item, see the module
    docstring) that satisfy ``where`` and are not in ``index`` yet, each in its list's space.
    Returns how many were indexed (low-quality PDQ and query-only variants are not).

    In bulk: one query per :data:`LOAD_BATCH` ids, the database joining each column of the
    batch into one string (ids, refs, algorithm and space codes as decimal lists, the hashes
    end to end), turned into arrays in one step each (no Python object per entry: 1M entries
    load in about a second; row by row they took 11 s and 590 bytes an entry). Rows the codes
    cannot say (an imported video's frames, whose ref is their first frame's id; a list or a
    half not known here) are read row by row."""
    h = HashListEntry
    lo, hi = s.execute(select(func.min(h.id), func.max(h.id)).where(*where)).one()
    if lo is None:
        return 0
    names = [LOCAL_LIST, *s.scalars(select(HashList.name).order_by(HashList.name))]
    list_codes = {name: i for i, name in enumerate(names)}
    # A space code per row: list * 8 + half (0: whole picture); negative for a list or a half
    # not known here (read row by row, as are an imported video's frames: see _add_batch).
    unknown = -8 * len(names)
    region = case(
        _REGION_CODES,
        value=h.variant,
        else_=case((h.variant.like(REGION_PREFIX + "%"), unknown), else_=0),
    )
    space = case(list_codes, value=h.list_name, else_=unknown) * 8 + region
    # One code per row: space * 8 + algorithm; the ref is the item (0: none, see _add_batch).
    code = space * 8 + case(_ALG_CODES, value=h.algorithm, else_=7)  # 7: none of ours
    cols = [
        _joined(s, h.id, ","),
        _joined(s, func.coalesce(h.item_id, 0), ","),
        _joined(s, code, ","),
    ] + [
        _joined(s, case((h.algorithm == alg.value, h.value)), "" if t.near else ",")
        for alg, t in SIGNAL_TYPES.items()
    ]
    n = 0
    videos: dict[tuple[str, str], int] = {}  # (list, external id) -> first frame id
    for start in range(lo - 1, hi, LOAD_BATCH):
        row = s.execute(
            select(*cols).where(
                h.id > start,
                h.id <= start + LOAD_BATCH,
                *where,
                # Active, as one expression: an index on either column would only slow the
                # range scan down (nearly every row is active).
                func.coalesce(h.retracted_at, h.disabled_at).is_(None),
                *_indexable_where(policy),
            )
        ).one()
        n += _add_batch(s, index, policy, row, names, videos)
    return n


def _add_batch(s, index, policy, row, names, videos) -> int:
    ids, refs, codes = (_ints(v) for v in row[:3])
    if ids.size == 0:
        return 0
    if not ids.size == refs.size == codes.size:
        raise ValueError("hash-list bulk load: the joined columns disagree")  # a NULL in one
    algs, spaces = codes % 8, codes // 8  # floor: a negative code stays a negative space
    if np.any(algs >= len(_ALGS)):
        raise ValueError(f"unknown hash algorithm in hash-list rows {ids[algs >= len(_ALGS)]}")
    # No item: an imported entry's ref is minus its own id; a local one has none.
    no_item = refs == 0
    refs[no_item] = np.where(spaces[no_item] // 8 == 0, NO_REF, -ids[no_item])
    # An imported video's frames (ref: the first frame's id) are read row by row.
    spaces[no_item & (algs == _ALGS.index(Algorithm.PDQ_FRAME)) & (spaces // 8 > 0)] = -1
    order = np.argsort(ids, kind="stable")
    sorted_already = bool(np.all(order[1:] > order[:-1]))
    values = dict(zip(SIGNAL_TYPES, row[3:], strict=True))
    new = ~index.contains_many(ids)
    n = 0
    for code, alg in enumerate(_ALGS):
        rows = np.flatnonzero(algs == code)  # in the order of the joined values
        if rows.size == 0:
            continue
        t = SIGNAL_TYPES[alg]
        joined = values[alg] or ""
        words = hex_block_to_words(joined, rows.size, t.bits) if t.near else None
        hexes = joined.split(",") if not t.near else None
        if not sorted_already:
            by_id = np.argsort(ids[rows], kind="stable")
            rows = rows[by_id]
            words = words[:, by_id] if words is not None else None
            hexes = [hexes[i] for i in by_id.tolist()] if hexes is not None else None
        for sp in np.unique(spaces[rows]).tolist():
            if sp < 0:
                continue
            pick = np.flatnonzero((spaces[rows] == sp) & new[rows])
            if pick.size == 0:
                continue
            target = index.space(list_space(names[sp // 8])).space(_REGION_NAMES[sp % 8])
            g_ids, g_refs = ids[rows[pick]], refs[rows[pick]]
            if words is not None:
                target.add_words(alg.value, g_ids, words[:, pick], g_refs)
            else:
                assert hexes is not None
                target.add_many(
                    (i, alg.value, hexes[j], None if r == NO_REF else r)
                    for i, j, r in zip(g_ids.tolist(), pick.tolist(), g_refs.tolist(), strict=True)
                )
            n += pick.size
    slow_ids = ids[(spaces < 0) & new]
    if slow_ids.size:
        n += _add_rows_one_by_one(s, index, policy, np.sort(slow_ids).tolist(), videos)
    return n


def _add_rows_one_by_one(
    s: Session, index: HashIndex, policy: MatchPolicy, ids: list[int], videos: dict
) -> int:
    """The rows of ``ids`` read whole, each indexed by the rules of the module docstring."""
    h = HashListEntry
    batches: dict[tuple[str, str], list[tuple[int, str, str, int | None]]] = {}
    frame = Algorithm.PDQ_FRAME.value
    for i in range(0, len(ids), 1000):
        rows = s.execute(
            select(
                h.id, h.algorithm, h.value, h.quality, h.variant, h.item_id, h.list_name,
                h.external_id,
            )
            .where(h.id.in_(ids[i : i + 1000]))
            .order_by(h.id)
        )  # fmt: skip
        for row_id, algo, value, quality, variant, item_id, list_name, external_id in rows:
            sig = None  # a plain hash without a quality (most imported ones) always may match
            if variant or quality is not None:
                sig = Signal(Algorithm(algo), value, quality, variant=variant or "")
                if not indexable(sig, policy):
                    continue
            ref = item_id
            if ref is None and list_name != LOCAL_LIST:
                ref = -row_id
                if algo == frame and external_id:
                    ref = -videos.setdefault((list_name, external_id), row_id)
            key = (list_space(list_name), signal_space(sig) if sig is not None else "")
            batches.setdefault(key, []).append((row_id, algo, value, ref))
    n = 0
    for (space, region), batch in batches.items():
        index.space(space).space(region).add_many(batch)
        n += len(batch)
    return n


def release_freed_memory() -> None:
    """Hand the bulk load's freed buffers back to the system (glibc keeps them otherwise: a
    1M-entry load measured 117 bytes an entry of resident memory before, 56 after)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def load_list_rules(s: Session) -> tuple[ListRule, ...]:
    """Every list's rule (policy, threshold, allow) but ``local``'s (the settings' own)."""
    return tuple(
        ListRule(r.name, ListPolicy(r.policy), r.pdq_threshold, bool(r.allow))
        for r in s.scalars(select(HashList).order_by(HashList.name))
    )


def load_hash_index(db: Database, policy: MatchPolicy) -> HashIndex:
    """Every active (not retracted) hash-list entry, keyed by row id, ref = its item."""
    index = HashIndex()
    with db.session() as s:
        add_hash_list_rows(s, index, policy)
    release_freed_memory()
    return index


def entry_for(db: Database, entry_id: int | None, item_id: int | None) -> EntryFacts | None:
    """The hash-list entry behind a match: the named one, or any active one of the item (a
    negative ``item_id`` is an imported entry's ref: the entry itself or its video's first
    frame)."""
    if entry_id is None and item_id is not None and item_id < 0:
        entry_id, item_id = -item_id, None
    with db.session() as s:
        q = select(HashListEntry, User.username).outerjoin(User, User.id == HashListEntry.added_by)
        if entry_id is not None:
            q = q.where(HashListEntry.id == entry_id)
        elif item_id is not None:
            q = q.where(
                HashListEntry.item_id == item_id, HashListEntry.retracted_at.is_(None)
            ).order_by(HashListEntry.id)
        else:
            return None
        row = s.execute(q.limit(1)).first()
        if row is None:
            return None
        e, username = row
        return EntryFacts(
            e.id,
            e.algorithm,
            e.category,
            e.list_name,
            e.item_id,
            e.decision_uuid,
            username,
            e.labels or "",
            e.flood_guarded_at is not None,
        )


@dataclass
class Watermark:
    max_id: int = 0
    max_retracted: datetime | None = None
    max_changed: datetime | None = None
    lists_changed: datetime | None = None


def _watermark(s: Session) -> Watermark:
    # One scalar subquery per column: each is then read off the end of its index. As three
    # aggregates of one SELECT, SQLite scans the whole table instead (0.45 s at 1M entries,
    # at every poll).
    h = HashListEntry
    max_id, max_ret, max_changed = s.execute(
        select(
            select(func.max(h.id)).scalar_subquery(),
            select(func.max(h.retracted_at)).scalar_subquery(),
            select(func.max(h.changed_at)).scalar_subquery(),
        )
    ).one()
    lists_changed = s.scalar(select(func.max(HashList.updated_at)))
    return Watermark(max_id or 0, max_ret, max_changed, lists_changed)


@dataclass(frozen=True)
class WatchReport:
    added: int
    retracted: int


# ---------------------------------------------------------------------------------------------
# the index snapshot

#: Lists smaller than this are loaded from the database each time (a fraction of a second).
SNAPSHOT_MIN_ENTRIES = 1 << 16
_SNAPSHOT_FORMAT = 1
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


def _stamp(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _mark_meta(mark: Watermark) -> dict:
    return {k: (v if isinstance(v, int) else _stamp(v)) for k, v in asdict(mark).items()}


def _mark_from_meta(meta: dict) -> Watermark:
    def when(v: str | None) -> datetime | None:
        return datetime.fromisoformat(v) if v is not None else None

    return Watermark(
        int(meta["max_id"]),
        when(meta["max_retracted"]),
        when(meta["max_changed"]),
        when(meta["lists_changed"]),
    )


def _snapshot_key(database_url: str, policy: MatchPolicy) -> dict:
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
    for k, v in key.items():
        if meta.get(k) != v:
            raise ValueError(f"written for another {k}")
    return arrays, _mark_from_meta(meta["mark"])


def _indexable_count(s: Session, policy: MatchPolicy) -> int:
    """How many active hash-list entries :func:`add_hash_list_rows` indexes (one full count:
    0.1 s at 1M entries on SQLite)."""
    h = HashListEntry
    return int(
        s.scalar(
            select(func.count()).where(
                func.coalesce(h.retracted_at, h.disabled_at).is_(None),
                *_indexable_where(policy),
            )
        )
        or 0
    )


def _check_against_database(s: Session, arrays: dict[str, np.ndarray], mark: Watermark) -> None:
    """ValueError unless the snapshot's database is this one: the watermark not behind it,
    and a sample of its entries (spread over every table) present with the same hash."""
    now = _watermark(s)
    if now.max_id < mark.max_id:
        raise ValueError(f"the database ends at id {now.max_id}, the snapshot at {mark.max_id}")
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


class HashListWatcher:
    """Keeps ``index`` equal to the active hash list, within ``poll_seconds`` (or at once on
    PostgreSQL). Call ``start()`` for a background thread, or ``refresh()`` yourself."""

    def __init__(
        self,
        db: Database,
        index: HashIndex,
        policy: MatchPolicy | None = None,
        poll_seconds: float = 2.0,
        on_change: Callable[[WatchReport], None] | None = None,
        snapshot: Path | None = None,
        snapshot_min_entries: int = SNAPSHOT_MIN_ENTRIES,
    ) -> None:
        self.db = db
        self.index = index
        # Where the index is saved between runs (None: always loaded from the database).
        self.snapshot = snapshot
        self.snapshot_min_entries = snapshot_min_entries
        self.restored = False  # whether the load came from the snapshot
        self._snapshot_stale = False  # the index has moved well past the snapshot file
        self.policy = policy or MatchPolicy()
        self.poll_seconds = poll_seconds
        self.on_change = on_change
        self.mark = Watermark()
        self.lists: tuple[ListRule, ...] = ()  # every list's rule but local's
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._refresh_lock = threading.Lock()
        self.loaded = threading.Event()  # set once the index holds the whole list
        self.loads = 0  # full loads done (one per process is the point of sharing it)

    # -- one refresh ---------------------------------------------------------------------

    def load_all(self) -> WatchReport:
        """Fill the index from scratch and set the watermark (at start)."""
        with self._refresh_lock:
            return self._load_locked()

    def _load_locked(self) -> WatchReport:
        report = self._restore_locked() if self.snapshot is not None else None
        if report is None:
            # From scratch: whatever the index holds (a snapshot restored before its update
            # failed) would otherwise stay, retracted entries with it.
            self.index.clear()
            with self.db.session() as s:
                mark = _watermark(s)
                added = add_hash_list_rows(
                    s, self.index, self.policy, HashListEntry.id <= mark.max_id
                )
                self.lists = load_list_rules(s)
                self.mark = mark
            if self.db.dialect == "postgresql" and added >= LOAD_BATCH:
                # libpq keeps its input buffer as large as the largest result (a batch's 16 MB
                # of joined hashes) for the connection's life: close the idle connections (the
                # load's among them; those in use elsewhere are left alone).
                self.db.engine.pool.dispose()
            report = WatchReport(added, 0)
            self._snapshot_stale = True
        self.loads += 1
        release_freed_memory()
        self.loaded.set()
        return report

    def _restore_locked(self) -> WatchReport | None:
        """The index from the snapshot file, checked against the database and brought up to
        date (rows added, retracted, disabled or enabled since: the refresh a running watcher
        does), or None (logged: absent, damaged, stale or another database's) to load it from
        the database."""
        assert self.snapshot is not None
        key = _snapshot_key(self.db.engine.url.render_as_string(), self.policy)
        try:
            if not self.snapshot.is_file():
                return None
            arrays, mark = read_snapshot(self.snapshot, key)
            with self.db.session() as s:
                _check_against_database(s, arrays, mark)
            self.index.restore(arrays)
        except Exception as exc:  # a damaged file can raise anything: load from the database
            log.warning("hash-list snapshot %s not used (%s): loading the list", self.snapshot, exc)
            return None
        del arrays
        n = len(self.index)
        self.mark = mark
        self.lists = ()  # read again by the refresh (its lists_changed differs from None)
        self.mark.lists_changed = None
        # Not on the start's path: the multi-index (built after the load by the watcher's
        # thread, or by the searches) would hold the first match back.
        since = self._refresh_locked(force=True, prepare=False)
        with self.db.session() as s:
            expected = _indexable_count(s, self.policy)
        if expected != len(self.index):
            # Entries missing from the file (or extra in it) that no lookback explains: a file
            # edited by hand, or a change older than the lookbacks. The database decides.
            log.warning(
                "hash-list snapshot %s not used (%d entries after the update, the database "
                "has %d): loading the list", self.snapshot, len(self.index), expected,
            )  # fmt: skip
            self.index.clear()
            return None
        self.restored = True
        self._snapshot_stale = (since.added + since.retracted) * 16 > max(n, 1)
        log.info(
            "hash list from %s: %d entries, then %d added and %d retracted since",
            self.snapshot, n, since.added, since.retracted,
        )  # fmt: skip
        return WatchReport(len(self.index), since.retracted)

    def save_snapshot(self, force: bool = False) -> bool:
        """Write the index to the snapshot file when it is large enough and the file is
        missing or well behind it (``force``: whenever large enough). Never raises: a file
        that cannot be written is logged. Whether one was written."""
        if self.snapshot is None or not self.loaded.is_set():
            return False
        if len(self.index) < self.snapshot_min_entries or not (force or self._snapshot_stale):
            return False
        key = _snapshot_key(self.db.engine.url.render_as_string(), self.policy)
        try:
            with self._refresh_lock:  # the index and its watermark agree
                write_snapshot(self.snapshot, self.index, self.mark, key)
            self._snapshot_stale = False
            return True
        except OSError as exc:
            log.warning("hash-list snapshot %s not written: %s", self.snapshot, exc)
            return False
        finally:
            release_freed_memory()

    def ensure_loaded(self) -> bool:
        """Load the index unless it is (or, on another thread, is being) loaded already, and
        save a snapshot for next time when the load found none up to date. Whether this call
        loaded it: when not, :meth:`refresh` brings it up to date."""
        if self.loaded.is_set():
            return False
        with self._refresh_lock:
            if self.loaded.is_set():  # loaded meanwhile by the thread holding the lock
                return False
            self._load_locked()
        self.save_snapshot()
        return True

    def prepare(self) -> None:
        """Build the index's multi-index where it is worth it (:meth:`HashIndex.prepare`):
        a second or so a million entries, searches going on (scanning) meanwhile."""
        self.index.prepare()
        release_freed_memory()  # the build's sorting buffers

    def watermark(self) -> Watermark:
        with self.db.session() as s:
            return _watermark(s)

    def refresh(self, force: bool = False) -> WatchReport:
        with self._refresh_lock:
            report = self._refresh_locked(force)
        if (report.added or report.retracted) and self.on_change is not None:
            self.on_change(report)
        return report

    def _refresh_locked(self, force: bool, prepare: bool = True) -> WatchReport:
        now = self.watermark()
        if not force and now == self.mark:
            return WatchReport(0, 0)  # the cheap case: nothing changed
        with self.db.session() as s:
            added = add_hash_list_rows(
                s, self.index, self.policy, HashListEntry.id > self.mark.max_id - ID_LOOKBACK
            )
            retracted = 0
            if now.max_retracted is not None:
                since = (self.mark.max_retracted or datetime.min + TIME_LOOKBACK) - TIME_LOOKBACK
                gone = s.scalars(
                    select(HashListEntry.id).where(HashListEntry.retracted_at >= since)
                ).all()
                present = [i for i in gone if i in self.index]
                self.index.remove_many(present)
                retracted = len(present)
            if now.max_changed is not None and now.max_changed != self.mark.max_changed:
                # Disabled or enabled again: out of the index, or back in.
                since = (self.mark.max_changed or datetime.min + TIME_LOOKBACK) - TIME_LOOKBACK
                off = s.scalars(
                    select(HashListEntry.id).where(
                        HashListEntry.changed_at >= since,
                        HashListEntry.disabled_at.is_not(None),
                    )
                ).all()
                present = [i for i in off if i in self.index]
                self.index.remove_many(present)
                retracted += len(present)
                added += add_hash_list_rows(
                    s, self.index, self.policy, HashListEntry.changed_at >= since
                )
            if now.lists_changed != self.mark.lists_changed:
                self.lists = load_list_rules(s)
        self.mark = now
        if added and prepare:
            self.index.prepare()  # a no-op unless the list grew by a sixteenth since the last
        return WatchReport(added, retracted)

    # -- the background thread ------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="hash-list-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.ensure_loaded():  # on this thread: a large list takes a while
                    self.prepare()  # then the multi-index; searches scan until it is ready
                if self.db.dialect == "postgresql":
                    self._listen()
                else:
                    self._poll()
            except Exception as exc:  # the database went away: keep trying, quietly
                log.info("hash-list watcher: %s", exc)
                self._stop.wait(self.poll_seconds)

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            self._stop.wait(self.poll_seconds)

    def _listen(self) -> None:
        import psycopg

        url = self.db.engine.url.set(drivername="postgresql")
        params = url.render_as_string(hide_password=False)
        with psycopg.connect(params, autocommit=True, connect_timeout=5) as conn:
            conn.execute(listen_statement())
            self.refresh(force=True)  # anything that changed before LISTEN took hold
            last_poll = time.monotonic()
            while not self._stop.is_set():
                got = False
                for _n in conn.notifies(timeout=min(1.0, self.poll_seconds), stop_after=1):
                    got = True
                if got or time.monotonic() - last_poll >= 30:
                    self.refresh()  # the 30 s poll is a safety net for missed notifications
                    last_poll = time.monotonic()
