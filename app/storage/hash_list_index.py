"""The hash list in memory: loading the active entries into a HashIndex, in bulk, and the facts
behind a match. Kept current by :mod:`app.storage.hash_list_watcher`; saved between runs by
:mod:`app.storage.hash_index_snapshot`.

``local`` entries live in the index's root, every other list's in its own space
(:func:`app.core.matching.hash_lists.list_space`); an active entry is neither retracted nor
disabled.
An entry's ``ref`` is its item; an imported entry has none, so its ref is the negative of its
own id, or for the frames of one imported video (one external id) the negative of the first
frame's id: :func:`entry_for` reads it back. The watermark (:class:`Watermark`) says how far
the database's hash list has come: the highest id, and the highest ``change_seq`` of the
entries and of the lists (a counter the database sets on every insert and update, migration
0012: no client clock can move it), each read off the end of its index.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import BigInteger, String, and_, case, cast, func, or_, select
from sqlalchemy.orm import Session

from app.core.hashing.regions import REGIONS
from app.core.matching.hash_index import NO_REF, HashIndex, hex_block_to_words
from app.core.matching.hash_lists import LOCAL_LIST, ListPolicy, ListRule, list_space
from app.core.matching.match_rules import MatchPolicy, indexable, signal_space
from app.core.matching.signal_types import (
    DIHEDRAL_PREFIX,
    REGION_PREFIX,
    SIGNAL_TYPES,
    SPEED_PREFIX,
    region_variant,
    signal_type,
)
from app.core.model.domain import Algorithm, Signal
from app.storage.db import Database
from app.storage.models import HashList, HashListEntry, User

log = logging.getLogger(__name__)


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


#: Hash-list rows per bulk-load query. 256k PDQ hashes are 16 MB of hex in one string.
LOAD_BATCH = 1 << 18
#: Ids per query when the rows are named by id (bound parameters, within every driver's limit).
IDS_BATCH = 1000
_ALG_CODES = {a.value: i for i, a in enumerate(Algorithm)}
_ALGS = tuple(Algorithm)
_REGION_CODES = {region_variant(r): i + 1 for i, r in enumerate(REGIONS)}  # 0: whole picture
_REGION_NAMES = ("", *_REGION_CODES)
_EXACT = tuple(a.value for a, t in SIGNAL_TYPES.items() if not t.near)
_GATED = tuple(a.value for a, t in SIGNAL_TYPES.items() if t.min_quality_applies)
_FRAME_CODES = [i for i, a in enumerate(_ALGS) if signal_type(a).video_frames]


def joined_column(s: Session, column, sep: str):
    """The aggregate joining ``column``'s non-NULL values with ``sep``, in row order."""
    if s.get_bind().dialect.name == "postgresql":
        return func.string_agg(cast(column, String), sep)
    return func.group_concat(column, sep)


def joined_ints(joined: str | None) -> np.ndarray:
    return np.fromstring(joined or "", dtype=np.int64, sep=",") if joined else np.empty(0, np.int64)


def _indexable_where(policy: MatchPolicy) -> tuple:
    """:func:`app.core.matching.match_rules.indexable` as SQL: not query-only, not of too low
    quality."""
    h = HashListEntry
    return (
        or_(
            h.variant.is_(None),
            and_(h.variant.not_like(DIHEDRAL_PREFIX + "%"), h.variant.not_like(SPEED_PREFIX + "%")),
        ),
        or_(h.quality.is_(None), h.quality >= policy.min_quality, h.algorithm.not_in(_GATED)),
    )


def add_hash_list_rows(
    s: Session, index: HashIndex, policy: MatchPolicy, *where, ids: Sequence[int] | None = None
) -> int:
    """Index the active hash-list entries (keyed by row id, ref = their item, see the module
    docstring) that satisfy ``where`` (and are among ``ids``, when given) and are not in
    ``index`` yet, each in its list's space. Returns how many were indexed (low-quality PDQ and
    query-only variants are not).

    In bulk: one query per :data:`LOAD_BATCH` ids, read by keyset (the batch ends at the last
    of a subquery's ``WHERE id > last ORDER BY id LIMIT n``, however far apart the ids are), the
    database joining each column of the batch into one string (ids, refs, algorithm and space
    codes as decimal lists, the hashes end to end), turned into arrays in one step each (no
    Python object per entry: 1M entries load in about a second; row by row they took 11 s and
    590 bytes an entry). ``ids``: the same, :data:`IDS_BATCH` of them a query. Rows the codes
    cannot say (an imported video's frames, whose ref is their first frame's id; a list or a
    half not known here) are read row by row."""
    h = HashListEntry
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
    # A video frame's time in milliseconds (-1: none).
    ts_ms = func.coalesce(cast(func.round(h.frame_ts * 1000), BigInteger), -1)
    cols = [
        joined_column(s, h.id, ","),
        joined_column(s, func.coalesce(h.item_id, 0), ","),
        joined_column(s, code, ","),
        joined_column(s, ts_ms, ","),
    ] + [
        joined_column(s, case((h.algorithm == alg.value, h.value)), "" if t.near else ",")
        for alg, t in SIGNAL_TYPES.items()
    ]
    rows_where = (
        *where,
        # Active, as one expression: an index on either column would only slow the scan down
        # (nearly every row is active).
        func.coalesce(h.retracted_at, h.disabled_at).is_(None),
        *_indexable_where(policy),
    )
    n = 0
    videos: dict[tuple[str, str], int] = {}  # (list, external id) -> first frame id
    if ids is not None:
        todo = sorted(set(ids))
        for i in range(0, len(todo), IDS_BATCH):
            chunk = todo[i : i + IDS_BATCH]
            row = s.execute(select(*cols).where(h.id.in_(chunk), *rows_where)).one()
            n += _add_batch(s, index, policy, row, names, videos)
        return n
    last: int | None = None
    while True:
        after = (h.id > last,) if last is not None else ()
        # The batch: the next LOAD_BATCH ids after the last one read (only ``where`` checked:
        # a walk along the primary key), up to the last of which the rows are aggregated.
        window = select(h.id).where(*after, *where).order_by(h.id).limit(LOAD_BATCH).subquery()
        upto = select(func.max(window.c.id)).scalar_subquery()
        row = s.execute(select(*cols, upto).where(*after, h.id <= upto, *rows_where)).one()
        if row[-1] is None:  # nothing after the last id
            return n
        n += _add_batch(s, index, policy, row[:-1], names, videos)
        last = row[-1]


def _add_batch(s, index, policy, row, names, videos) -> int:
    ids, refs, codes, ts_ms = (joined_ints(v) for v in row[:4])
    if ids.size == 0:
        return 0
    if not ids.size == refs.size == codes.size == ts_ms.size:
        raise ValueError("hash-list bulk load: the joined columns disagree")  # a NULL in one
    algs, spaces = codes % 8, codes // 8  # floor: a negative code stays a negative space
    if np.any(algs >= len(_ALGS)):
        raise ValueError(f"unknown hash algorithm in hash-list rows {ids[algs >= len(_ALGS)]}")
    # No item: an imported entry's ref is minus its own id; a local one has none.
    no_item = refs == 0
    refs[no_item] = np.where(spaces[no_item] // 8 == 0, NO_REF, -ids[no_item])
    # An imported video's frames (ref: the first frame's id) are read row by row.
    spaces[no_item & np.isin(algs, _FRAME_CODES) & (spaces // 8 > 0)] = -1
    order = np.argsort(ids, kind="stable")
    sorted_already = bool(np.all(order[1:] > order[:-1]))
    times = np.where(ts_ms >= 0, ts_ms / 1000.0, np.nan).astype(np.float32)
    values = dict(zip(SIGNAL_TYPES, row[4:], strict=True))
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
                target.add_words(alg.value, g_ids, words[:, pick], g_refs, times[rows[pick]])
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
    batches: dict[tuple[str, str], list[tuple[int, str, str, int | None, float | None]]] = {}
    for i in range(0, len(ids), 1000):
        rows = s.execute(
            select(
                h.id, h.algorithm, h.value, h.quality, h.variant, h.item_id, h.list_name,
                h.external_id, h.frame_ts,
            )
            .where(h.id.in_(ids[i : i + 1000]))
            .order_by(h.id)
        )  # fmt: skip
        for row in rows:
            row_id, algo, value, quality, variant, item_id, list_name, external_id, ts = row
            sig = None  # a plain hash without a quality (most imported ones) always may match
            if variant or quality is not None:
                sig = Signal(Algorithm(algo), value, quality, variant=variant or "")
                if not indexable(sig, policy):
                    continue
            ref = item_id
            if ref is None and list_name != LOCAL_LIST:
                ref = -row_id
                if signal_type(algo).video_frames and external_id:
                    ref = -videos.setdefault((list_name, external_id), row_id)
            key = (list_space(list_name), signal_space(sig) if sig is not None else "")
            batches.setdefault(key, []).append((row_id, algo, value, ref, ts))
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
    """How far the hash list has come: its highest id, and the highest change_seq of its
    entries (``max_seq``) and of the lists (``lists_seq``). Only ever moves forward, unless the
    database was restored or edited by hand (the watcher then loads the list again)."""

    max_id: int = 0
    max_seq: int = 0
    lists_seq: int = 0

    def behind(self, other: Watermark) -> bool:
        """Whether any part of this watermark is behind ``other``'s."""
        return (
            self.max_id < other.max_id
            or self.max_seq < other.max_seq
            or self.lists_seq < other.lists_seq
        )


def read_watermark(s: Session) -> Watermark:
    # One scalar subquery per column: each is then read off the end of its index (as several
    # aggregates of one SELECT, SQLite scans the whole table instead: 0.45 s at 1M entries, at
    # every poll). One statement: one snapshot on PostgreSQL.
    h = HashListEntry
    max_id, max_seq, lists_seq = s.execute(
        select(
            select(func.max(h.id)).scalar_subquery(),
            select(func.max(h.change_seq)).scalar_subquery(),
            select(func.max(HashList.change_seq)).scalar_subquery(),
        )
    ).one()
    return Watermark(max_id or 0, max_seq or 0, lists_seq or 0)


def indexable_count(s: Session, policy: MatchPolicy) -> int:
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
