"""New hashes reach every workstation: a notification when the hash list changes, and a watcher
that keeps a running workstation's in-memory HashIndex up to date.

On PostgreSQL any transaction that adds or retracts hash-list rows through the ORM also sends
``NOTIFY hashdesk_hash_list`` (delivered when, and only if, it commits), and the watcher LISTENs
on its own connection. Everywhere (and as a safety net on PostgreSQL) the watcher polls a cheap
watermark: the highest hash-list id and the latest retraction time, both indexed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import event, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from app.core.hash_index import HashIndex
from app.core.match_rules import MatchPolicy
from app.storage.db import Database
from app.storage.known import add_hash_list_rows
from app.storage.models import HashListEntry

log = logging.getLogger(__name__)

CHANNEL = "hashdesk_hash_list"
# Rows can commit slightly out of id order, and clocks differ between workstations: each
# refresh looks back this far and skips what it already has.
ID_LOOKBACK = 1000
TIME_LOOKBACK = timedelta(minutes=5)


def _after_flush(session: Session, _ctx) -> None:
    if session.info.get("hash_list_notified"):
        return
    touched = any(isinstance(o, HashListEntry) for o in (*session.new, *session.dirty))
    if touched and session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {CHANNEL}"))
        session.info["hash_list_notified"] = True


def _after_end(session: Session, *_args) -> None:
    session.info.pop("hash_list_notified", None)


def install_hash_list_notify(sessions: sessionmaker[Session]) -> None:
    """Send NOTIFY in every transaction of these sessions that changes the hash list."""
    if not event.contains(sessions, "after_flush", _after_flush):
        event.listen(sessions, "after_flush", _after_flush)
        event.listen(sessions, "after_commit", _after_end)
        event.listen(sessions, "after_rollback", _after_end)


def notify_hash_list_changed(s: Session) -> None:
    """For writers that change the hash list with bulk SQL the flush hook cannot see."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text(f"NOTIFY {CHANNEL}"))


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
