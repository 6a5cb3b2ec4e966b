"""The two chains as stored: which lock serialises each, and its newest entry (its head).

The chain hash itself, and what it covers, is app.core.model.chain; the record
(app.storage.record) and the audit trail (app.storage.audit) append to their chains here.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.storage.server_security import enforced

Chain = Literal["decisions", "audit events"]

#: The chains' advisory locks on PostgreSQL ("HASH", "AUDT"), for a database without the server
#: program (with it, the server appends under its own row lock: app/storage/sql/chain.sql).
DECISION_CHAIN_LOCK = 0x48415348
AUDIT_CHAIN_LOCK = 0x41554454


_MAY_APPEND = text("SELECT has_function_privilege('hd_append_audit(text, text, jsonb)', 'EXECUTE')")


def server_appends(s: Session) -> bool:
    """Whether this session appends through the server's own functions (hd_append_decision,
    hd_append_audit: an enforced database, connected as its owner). People on a team server
    never append themselves: their writes are the server's API (app.storage.server_api)."""
    bind = s.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    return enforced(engine) and bool(s.execute(_MAY_APPEND).scalar())


def chain_head(s: Session, chain: Chain) -> str | None:
    """The newest entry hash of a chain. On an enforced database a person may not see every
    decision (blind second review), so the server says."""
    bind = s.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    if enforced(engine):
        return s.execute(text("SELECT hd_chain_head(:c)"), {"c": chain}).scalar()
    return s.execute(_HEAD[chain]).scalar()


_HEAD = {
    "decisions": text("SELECT entry_hash FROM decisions ORDER BY id DESC LIMIT 1"),
    "audit events": text("SELECT entry_hash FROM audit_events ORDER BY id DESC LIMIT 1"),
}
