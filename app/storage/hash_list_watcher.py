"""Keeping the hash-list index current while the program runs: every workstation's index
stays equal to the active hash list within seconds. On PostgreSQL the watcher LISTENs for
the notification :mod:`app.storage.notify` sends with every change; everywhere (and as a
safety net on PostgreSQL) it polls the cheap watermark (:class:`Watermark`).

The watermark is the database's own change counter (``change_seq``, set on every insert and
update of an entry or a list, migration 0012), never a client's clock. A refresh reads the
entries whose change_seq is above the last watermark less :data:`SEQ_LOOKBACK` (PostgreSQL
hands the numbers out when a row is written, and the transactions commit in any order) and
reconciles each: active and indexable, added when absent; retracted or disabled, removed when
present. A notification (or the safety-net poll) always reads them: a transaction committing
late with a lower number leaves the highest number as it was. A watermark that went back (a
database restored, edited by hand) loads the list again.

One process holds one index (app.compose.AppContext.watcher): loaded once, by the first
ingest or the watcher's thread (from the snapshot, :mod:`app.storage.hash_index_snapshot`,
when one is usable: brought up to date by the watcher's own refresh, and then holding as many
entries as the database counts), and refreshed by every ingest after. Anything else (no file,
a damaged, stale or older-format one, another database's) is logged and the list loaded from
the database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

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
    IDS_BATCH,
    LOAD_BATCH,
    Watermark,
    add_hash_list_rows,
    indexable_count,
    load_list_rules,
    read_watermark,
    release_freed_memory,
)
from app.storage.models import HashListEntry
from app.storage.notify import listen_statement

log = logging.getLogger(__name__)

#: change_seq numbers are taken when a row is written and can commit out of order: each
#: refresh reads this many numbers back and skips what it already has.
SEQ_LOOKBACK = 1000
#: New entries a refresh names by id (IDS_BATCH a query); more (an import) are read in bulk.
REFRESH_BY_ID = 8 * IDS_BATCH


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
            report = WatchReport(self._load_from_database_locked(), 0)
        self.loads += 1
        release_freed_memory()
        self.loaded.set()
        return report

    def _load_from_database_locked(self) -> int:
        """The index from scratch, and the watermark read before it (what changes meanwhile,
        the next refresh reconciles)."""
        # Whatever the index holds (a snapshot restored before its update failed, or a list
        # since restored to an older state) would otherwise stay, retracted entries with it.
        self.index.clear()
        with self.db.session() as s:
            mark = read_watermark(s)
            added = add_hash_list_rows(s, self.index, self.policy)
            self.lists = load_list_rules(s)
        self.mark = mark
        if self.db.dialect == "postgresql" and added >= LOAD_BATCH:
            # libpq keeps its input buffer as large as the largest result (a batch's 16 MB of
            # joined hashes) for the connection's life: close the idle connections (the
            # load's among them; those in use elsewhere are left alone).
            self.db.engine.pool.dispose()
        self._snapshot_stale = True
        return added

    def _restore_locked(self) -> WatchReport | None:
        """The index from the snapshot file, checked against the database and brought up to
        date (every entry changed since: the refresh a running watcher does), or None (logged:
        absent, damaged, stale, of an older format or another database's) to load it from the
        database."""
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
        # Not on the start's path: the multi-index (built after the load by the watcher's
        # thread, or by the searches) would hold the first match back.
        since = self._refresh_locked(force=True, prepare=False)
        with self.db.session() as s:
            expected = indexable_count(s, self.policy)
            self.lists = load_list_rules(s)
        if expected != len(self.index):
            # Entries missing from the file (or extra in it) that the update does not explain:
            # a file edited by hand, or a change committed further back than the lookback.
            # The database decides.
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
        """Bring the index up to date. ``force``: read the entries changed since the watermark
        even when it has not moved (after a notification: a late commit with a lower
        change_seq leaves the highest as it was)."""
        with self.db.session() as s:
            # The watermark first, then the rows, in one transaction: every change at or below
            # the watermark is in what is read after it (READ COMMITTED: each statement sees
            # all that committed before it began); later ones are read again next time.
            now = read_watermark(s)
            if not force and now == self.mark:
                return WatchReport(0, 0)  # the cheap case: nothing changed
            went_back = now.behind(self.mark)
            if not went_back:
                added, retracted = self._reconcile(s, self.mark.max_seq - SEQ_LOOKBACK)
                if now.lists_seq != self.mark.lists_seq:
                    self.lists = load_list_rules(s)
                self.mark = now
        if went_back:
            log.warning(
                "hash-list watermark went back (the database restored or edited by hand: %s, "
                "was %s): loading the list again", now, self.mark,
            )  # fmt: skip
            before = len(self.index)
            added, retracted = self._load_from_database_locked(), before
        if added and prepare:
            self.index.prepare()  # a no-op unless the list grew by a sixteenth since the last
        return WatchReport(added, retracted)

    def _reconcile(self, s, since: int) -> tuple[int, int]:
        """Every entry whose change_seq is above ``since``, made to agree with the index:
        active (and indexable) ones added when absent, retracted or disabled ones removed
        when present. (added, removed)."""
        h = HashListEntry
        active = func.coalesce(h.retracted_at, h.disabled_at).is_(None)
        changed = s.execute(select(h.id, active).where(h.change_seq > since)).all()
        if not changed:
            return 0, 0
        ids = np.fromiter((r[0] for r in changed), np.int64, len(changed))
        on = np.fromiter((bool(r[1]) for r in changed), bool, len(changed))
        present = self.index.contains_many(ids)
        gone = ids[~on & present].tolist()
        self.index.remove_many(gone)
        new = ids[on & ~present]
        if new.size == 0:
            added = 0
        elif new.size <= REFRESH_BY_ID:
            added = add_hash_list_rows(s, self.index, self.policy, ids=new.tolist())
        else:  # an import: its rows in bulk
            added = add_hash_list_rows(
                s, self.index, self.policy, h.change_seq > since, h.id >= int(new.min())
            )
        return added, len(gone)

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
            last_poll = last_check = time.monotonic()
            while not self._stop.is_set():
                got = False
                for _n in conn.notifies(timeout=min(1.0, self.poll_seconds), stop_after=1):
                    got = True
                if got or time.monotonic() - last_poll >= 30:
                    # Forced: a notification says something committed, even when the highest
                    # change_seq did not move. The 30 s poll is a safety net for missed ones.
                    self.refresh(force=True)
                    last_poll = last_check = time.monotonic()
                elif time.monotonic() - last_check >= self.poll_seconds:
                    # And the cheap watermark every poll, as on SQLite: a change whose
                    # notification never came (a writer that sent none, a connection that
                    # dropped its LISTEN) still reaches the index within seconds.
                    self.refresh()
                    last_check = time.monotonic()
