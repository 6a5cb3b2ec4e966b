"""The hash list in memory: loading the active entries into a HashIndex, keeping it current while
the program runs, and the facts behind a match.

Every workstation's index stays equal to the active hash list within seconds: on PostgreSQL
the watcher LISTENs for the notification app.storage.notify sends with every change; everywhere
(and as a safety net on PostgreSQL) it polls a cheap watermark, the highest hash-list id and
the latest retraction time, both indexed.
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
from app.core.match_rules import MatchPolicy, index_signal
from app.storage.db import Database
from app.storage.models import HashListEntry, User
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


def add_hash_list_rows(s: Session, index: HashIndex, policy: MatchPolicy, *where) -> int:
    """Index the active hash-list entries (keyed by row id, ref = their item) that satisfy
    ``where`` and are not in ``index`` yet. Returns how many were indexed (low-quality PDQ and
    query-only variants are not)."""
    rows = s.execute(
        select(
            HashListEntry.id,
            HashListEntry.algorithm,
            HashListEntry.value,
            HashListEntry.quality,
            HashListEntry.variant,
            HashListEntry.item_id,
        ).where(*where, HashListEntry.retracted_at.is_(None))
    )
    n = 0
    for row_id, algo, value, quality, variant, item_id in rows:
        if row_id in index:
            continue
        sig = Signal(Algorithm(algo), value, quality, variant=variant or "")
        n += index_signal(index, row_id, sig, item_id, policy)
    return n


def load_hash_index(db: Database, policy: MatchPolicy) -> HashIndex:
    """Every active (not retracted) hash-list entry, keyed by row id, ref = its item."""
    index = HashIndex()
    with db.session() as s:
        add_hash_list_rows(s, index, policy)
    return index


def entry_for(db: Database, entry_id: int | None, item_id: int | None) -> EntryFacts | None:
    """The hash-list entry behind a match: the named one, or any active one of the item."""
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
            e.id, e.algorithm, e.category, e.list_name, e.item_id, e.decision_uuid, username
        )


@dataclass
class Watermark:
    max_id: int = 0
    max_retracted: datetime | None = None


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
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._refresh_lock = threading.Lock()
        self.loaded = threading.Event()  # set once the index holds the whole list

    # -- one refresh ---------------------------------------------------------------------

    def load_all(self) -> WatchReport:
        """Fill the index from scratch and set the watermark (at start)."""
        with self._refresh_lock, self.db.session() as s:
            max_id, max_ret = s.execute(
                select(func.max(HashListEntry.id), func.max(HashListEntry.retracted_at))
            ).one()
            added = add_hash_list_rows(
                s, self.index, self.policy, HashListEntry.id <= (max_id or 0)
            )
            self.mark = Watermark(max_id or 0, max_ret)
        self.loaded.set()
        return WatchReport(added, 0)

    def watermark(self) -> Watermark:
        with self.db.session() as s:
            max_id, max_ret = s.execute(
                select(func.max(HashListEntry.id), func.max(HashListEntry.retracted_at))
            ).one()
        return Watermark(max_id or 0, max_ret)

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
