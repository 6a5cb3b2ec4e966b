"""Keeping the hash-list index current while the program runs: every workstation's index
stays equal to the active hash list within seconds. On PostgreSQL the watcher LISTENs for
the notification :mod:`app.storage.notify` sends with every change; everywhere (and as a
safety net on PostgreSQL) it polls the cheap watermark (:class:`Watermark`).

One process holds one index (app.compose.AppContext.watcher): loaded once, by the first
ingest or the watcher's thread (from the snapshot, :mod:`app.storage.hash_index_snapshot`,
when one is usable: brought up to date by the watcher's own refresh, rows added since,
retractions, disables and enables, with the same lookbacks as a running watcher, and then
holding as many entries as the database counts), and refreshed by every ingest after.
Anything else (no file, a damaged or stale one, another database's) is logged and the list
loaded from the database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from app.core.matching.hash_index import HashIndex
from app.core.matching.hash_lists import ListRule
from app.core.matching.match_rules import MatchPolicy
from app.storage.db import Database
from app.storage.hash_index_snapshot import (
    SNAPSHOT_MIN_ENTRIES,
    check_against_database,
    read_snapshot,
    snapshot_key,
    write_snapshot,
)
from app.storage.hash_list_index import (
    LOAD_BATCH,
    Watermark,
    add_hash_list_rows,
    indexable_count,
    load_list_rules,
    read_watermark,
    release_freed_memory,
)
from app.storage.models import HashListEntry
from app.storage.notify import CHANNEL

log = logging.getLogger(__name__)

# Rows can commit slightly out of id order, and clocks differ between workstations: each
# refresh looks back this far and skips what it already has.
ID_LOOKBACK = 1000
TIME_LOOKBACK = timedelta(minutes=5)


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
                mark = read_watermark(s)
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
        key = snapshot_key(self.db.engine.url.render_as_string(), self.policy)
        try:
            if not self.snapshot.is_file():
                return None
            arrays, mark = read_snapshot(self.snapshot, key)
            with self.db.session() as s:
                check_against_database(s, arrays, mark)
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
            expected = indexable_count(s, self.policy)
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
        key = snapshot_key(self.db.engine.url.render_as_string(), self.policy)
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
            return read_watermark(s)

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
