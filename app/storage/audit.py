"""The tamper-evident record: administrative events in a hash chain, and verification of both
chains (decisions and audit events).

Each entry carries the hash of the entry before it and a hash of its own fields
(app.core.model.security.chain_hash). Appending takes a PostgreSQL advisory lock (one per chain)
so that
many workstations writing at once still build one unbroken chain; on SQLite the write lock taken
at BEGIN does the same. Verification walks a chain in id order and names every entry whose
fields were altered or whose link to the previous entry is broken (an entry deleted or reordered).
"""

from __future__ import annotations

import json
import uuid as uuidlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.core.model.chain import GENESIS_HASH, audit_fields_of, chain_hash, decision_fields_of
from app.core.model.domain import utcnow
from app.storage.chain import AUDIT_CHAIN_LOCK, chain_head, server_appends
from app.storage.db import Database
from app.storage.models import AuditEvent, Decision

_AUDIT_LOCK_ID = AUDIT_CHAIN_LOCK  # "AUDT": serialises the audit chain on PostgreSQL
_SERVER_APPEND = text("SELECT (hd_append_audit(:kind, :subject, CAST(:detail AS jsonb))).id")


class AuditKind(StrEnum):
    USER_ADDED = "user_added"
    USER_DISABLED = "user_disabled"
    USER_ENABLED = "user_enabled"
    PASSWORD_CHANGED = "password_changed"
    LOGIN_FAILED = "login_failed"
    LOGIN_LOCKED = "login_locked"
    RETRACTION = "retraction"
    OVERTURN = "overturn"
    EXPORT = "export"
    IMPORT = "import"
    LIST_CHANGED = "list_changed"
    ENTRY_DISABLED = "entry_disabled"
    ENTRY_ENABLED = "entry_enabled"
    FLOOD_GUARD = "flood_guard"
    INTAKE_TOKEN_CREATED = "intake_token_created"
    INTAKE_TOKEN_REVOKED = "intake_token_revoked"
    INTAKE_REPORT_CLOSED = "intake_report_closed"
    DELTA = "delta"  # a hash delta planned: its number, window and entries
    DELTA_WRITTEN = "delta_written"  # ... delivered: its manifest's SHA-256, where
    DELTA_FAILED = "delta_failed"  # ... not delivered this time: why (retried)
    DELTA_IMPORTED = "delta_imported"  # a partner's delta imported into a list, in order
    INCIDENT_DECLARED = "incident_declared"
    INCIDENT_CONCLUDED = "incident_concluded"
    INCIDENT_ASSIGNED = "incident_assigned"
    RESCAN = "rescan"
    MISS_CLEARED = "miss_cleared"
    DENSE_FRAMES = "dense_frames"  # a confirmed video's dense frames added (app.storage.dense)


def _canonical(detail: dict[str, Any] | None) -> str | None:
    if detail is None:
        return None
    return json.dumps(detail, sort_keys=True, separators=(",", ":"), default=str)


def append_event(
    s: Session,
    kind: AuditKind | str,
    *,
    actor_id: int | None = None,
    actor_name: str | None = None,
    subject: str | None = None,
    detail: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> AuditEvent:
    """Append one event to the audit chain inside the caller's transaction, so the event and
    the change it records commit together or not at all. On a team server the server appends
    it: its time, and whose event it is (the session's), are the server's."""
    if server_appends(s):
        detail_json = None if detail is None else json.dumps(detail, default=str)
        new_id = s.execute(
            _SERVER_APPEND,
            {"kind": str(AuditKind(kind).value), "subject": subject, "detail": detail_json},
        ).scalar_one()
        row = s.get(AuditEvent, new_id)
        assert row is not None
        return row
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _AUDIT_LOCK_ID})
    prev = chain_head(s, "audit events") or GENESIS_HASH
    row = AuditEvent(
        uuid=str(uuidlib.uuid4()),
        kind=str(AuditKind(kind).value),
        actor_id=actor_id,
        actor_name=actor_name,
        subject=subject,
        detail=_canonical(detail),
        occurred_at=occurred_at or utcnow(),
        prev_hash=prev,
    )
    row.entry_hash = chain_hash(prev, audit_fields_of(row))  # chain.py names the fields
    s.add(row)
    s.flush()
    return row


# -- verification ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainProblem:
    chain: str  # "decisions" or "audit events"
    entry_id: int
    entry_uuid: str
    what: str

    def __str__(self) -> str:
        return f"{self.chain}: entry #{self.entry_id} ({self.entry_uuid}) {self.what}"


@dataclass(frozen=True)
class ChainReport:
    chain: str
    entries: int
    head: str  # the last entry's hash (GENESIS_HASH for an empty chain)
    problems: tuple[ChainProblem, ...] = ()

    @property
    def problem(self) -> ChainProblem | None:
        """The first problem (the walk goes on past it and names every one)."""
        return self.problems[0] if self.problems else None

    @property
    def ok(self) -> bool:
        return not self.problems


def _walk(
    chain: str,
    rows: Iterator[tuple[int, str, str, str, dict[str, Any]]],
    at: dict[int, str] | None = None,
) -> tuple[int, str, list[ChainProblem]]:
    """Walk a whole chain in order, naming every entry that was altered or does not follow the
    one before it; ``at``: positions (1-based) whose entry hash to fill in.

    The walk goes on from an entry's stored hash after a problem, so one edited entry is named
    alone: the entries after it still follow it, the length and head stay what they are, and
    nothing is mistaken for a truncated chain."""
    expected_prev = GENESIS_HASH
    n = 0
    problems: list[ChainProblem] = []
    for entry_id, uuid, prev_hash, entry_hash, fields in rows:
        n += 1
        if at is not None and n in at:
            at[n] = entry_hash
        if prev_hash != expected_prev:
            problems.append(
                ChainProblem(
                    chain,
                    entry_id,
                    uuid,
                    "does not follow the entry before it: an entry before it was deleted, "
                    "reordered or rewritten",
                )
            )
        elif chain_hash(prev_hash, fields) != entry_hash:
            problems.append(
                ChainProblem(chain, entry_id, uuid, "was altered: its fields do not match its hash")
            )
        expected_prev = entry_hash
    return n, expected_prev, problems


def _decision_rows(s: Session) -> Iterator[tuple[int, str, str, str, dict[str, Any]]]:
    for d in s.scalars(select(Decision).order_by(Decision.id).execution_options(yield_per=2000)):
        yield (
            d.id,
            d.uuid,
            d.prev_hash,
            d.entry_hash,
            decision_fields_of(d),
        )


def _audit_rows(s: Session) -> Iterator[tuple[int, str, str, str, dict[str, Any]]]:
    for e in s.scalars(
        select(AuditEvent).order_by(AuditEvent.id).execution_options(yield_per=2000)
    ):
        yield (
            e.id,
            e.uuid,
            e.prev_hash,
            e.entry_hash,
            audit_fields_of(e),
        )


CHAINS = ("decisions", "audit events")


def verify_chains(
    db: Database, positions: dict[str, dict[int, str]] | None = None
) -> list[ChainReport]:
    """Recompute both chains from their first entry. Read-only. ``positions``: per chain, the
    positions whose entry hash to report (filled in place; checkpoints use it)."""
    reports = []
    with db.session() as s:
        for chain, rows in (("decisions", _decision_rows(s)), ("audit events", _audit_rows(s))):
            n, head, problems = _walk(chain, rows, (positions or {}).get(chain))
            reports.append(ChainReport(chain, n, head, tuple(problems)))
    return reports


def recent_events(
    db: Database, kind: AuditKind | str | None = None, limit: int = 100
) -> list[AuditEvent]:
    with db.session() as s:
        q = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
        if kind is not None:
            q = q.where(AuditEvent.kind == AuditKind(kind).value)
        return list(s.scalars(q))


def count_events(s: Session, kind: AuditKind, subject: str, since: datetime) -> int:
    return int(
        s.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.kind == kind.value,
                AuditEvent.subject == subject,
                AuditEvent.occurred_at >= since,
            )
        )
        or 0
    )


def lock_audit_chain(s: Session) -> None:
    """Serialise with every other writer of the audit chain for the rest of this transaction."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _AUDIT_LOCK_ID})
