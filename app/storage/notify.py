"""PostgreSQL tells every workstation when the hash list changes: any transaction that adds or
retracts hash-list rows through the ORM also sends ``NOTIFY hashdesk_hash_list`` (delivered when,
and only if, it commits). The listening side is the watcher in app.storage.hash_list_watcher."""

from __future__ import annotations

from sqlalchemy import event, text
from sqlalchemy.orm import Session, sessionmaker

from app.storage.models import HashListEntry

CHANNEL = "hashdesk_hash_list"


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
