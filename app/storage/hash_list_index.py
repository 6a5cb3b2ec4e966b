"""The hash list in memory: loading the active entries into a HashIndex, keeping it current while
the program runs, and the facts behind a match.

Every workstation's index stays equal to the active hash list within seconds: on PostgreSQL
the watcher LISTENs for the notification app.storage.notify sends with every change; everywhere
(and as a safety net on PostgreSQL) it polls a cheap watermark, the highest hash-list id, the
latest retraction and the latest other change (disable, enable, flood guard), all indexed, and
the latest change to a list's rule.

``local`` entries live in the index's root, every other list's in its own space
(:func:`app.core.hash_lists.list_space`); an active entry is neither retracted nor disabled.
An entry's ``ref`` is its item; an imported entry has none, so its ref is the negative of its
own id, or for the frames of one imported video (one external id) the negative of the first
frame's id: :func:`entry_for` reads it back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.domain import Algorithm, Signal
from app.core.hash_index import HashIndex
from app.core.hash_lists import LOCAL_LIST, ListPolicy, ListRule, list_space
from app.core.match_rules import MatchPolicy, indexable, signal_space
from app.storage.db import Database
from app.storage.models import HashList, HashListEntry, User
from app.storage.notify import CHANNEL

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


def add_hash_list_rows(s: Session, index: HashIndex, policy: MatchPolicy, *where) -> int:
    """Index the active hash-list entries (keyed by row id, ref = their item, see the module
    docstring) that satisfy ``where`` and are not in ``index`` yet, each in its list's space,
    one bulk add per space. Returns how many were indexed (low-quality PDQ and query-only
    variants are not)."""
    rows = s.execute(
        select(
            HashListEntry.id,
            HashListEntry.algorithm,
            HashListEntry.value,
            HashListEntry.quality,
            HashListEntry.variant,
            HashListEntry.item_id,
            HashListEntry.list_name,
            HashListEntry.external_id,
        )
        .where(*where, *active_entry())
        .order_by(HashListEntry.id)
    )
    batches: dict[tuple[str, str], list[tuple[int, str, str, int | None]]] = {}
    videos: dict[tuple[str, str], int] = {}  # (list, external id) -> first frame id
    frame = Algorithm.PDQ_FRAME.value
    for row_id, algo, value, quality, variant, item_id, list_name, external_id in rows:
        if row_id in index:
            continue
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
    max_id, max_ret, max_changed = s.execute(
        select(
            func.max(HashListEntry.id),
            func.max(HashListEntry.retracted_at),
            func.max(HashListEntry.changed_at),
        )
    ).one()
    lists_changed = s.scalar(select(func.max(HashList.updated_at)))
    return Watermark(max_id or 0, max_ret, max_changed, lists_changed)


@dataclass(frozen=True)
class WatchReport:
    added: int
    retracted: int


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
    ) -> None:
        self.db = db
        self.index = index
        self.policy = policy or MatchPolicy()
        self.poll_seconds = poll_seconds
        self.on_change = on_change
        self.mark = Watermark()
        self.lists: tuple[ListRule, ...] = ()  # every list's rule but local's
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._refresh_lock = threading.Lock()
        self.loaded = threading.Event()  # set once the index holds the whole list

    # -- one refresh ---------------------------------------------------------------------

    def load_all(self) -> WatchReport:
        """Fill the index from scratch and set the watermark (at start)."""
        with self._refresh_lock, self.db.session() as s:
            mark = _watermark(s)
            added = add_hash_list_rows(s, self.index, self.policy, HashListEntry.id <= mark.max_id)
            self.lists = load_list_rules(s)
            self.mark = mark
        self.loaded.set()
        return WatchReport(added, 0)

    def watermark(self) -> Watermark:
        with self.db.session() as s:
            return _watermark(s)

    def refresh(self, force: bool = False) -> WatchReport:
        with self._refresh_lock:
            now = self.watermark()
            if not force and now == self.mark:
                return WatchReport(0, 0)  # the cheap case: nothing changed
            with self.db.session() as s:
                added = add_hash_list_rows(
                    s, self.index, self.policy, HashListEntry.id > self.mark.max_id - ID_LOOKBACK
                )
                retracted = 0
                if now.max_retracted is not None:
                    since = (self.mark.max_retracted or datetime.min + TIME_LOOKBACK) - (
                        TIME_LOOKBACK
                    )
                    gone = s.scalars(
                        select(HashListEntry.id).where(HashListEntry.retracted_at >= since)
                    ).all()
                    present = [i for i in gone if i in self.index]
                    self.index.remove_many(present)
                    retracted = len(present)
                if now.max_changed is not None and now.max_changed != self.mark.max_changed:
                    # Disabled or enabled again: out of the index, or back in.
                    since = (self.mark.max_changed or datetime.min + TIME_LOOKBACK) - (
                        TIME_LOOKBACK
                    )
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
        report = WatchReport(added, retracted)
        if (added or retracted) and self.on_change is not None:
            self.on_change(report)
        return report

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
                if not self.loaded.is_set():
                    self.load_all()  # on this thread: a large list takes a while to load
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
            conn.execute(f"LISTEN {CHANNEL}")
            self.refresh(force=True)  # anything that changed before LISTEN took hold
            last_poll = time.monotonic()
            while not self._stop.is_set():
                got = False
                for _n in conn.notifies(timeout=min(1.0, self.poll_seconds), stop_after=1):
                    got = True
                if got or time.monotonic() - last_poll >= 30:
                    self.refresh()  # the 30 s poll is a safety net for missed notifications
                    last_poll = time.monotonic()
