"""The HTTP intake's per-source tokens, and the reports that come without a file.

A token is made by an admin for one source (``hashdesk intake token create NAME``): a random
secret (``secrets.token_urlsafe(32)`` behind the prefix ``hdi_``), printed once; the database
keeps only its SHA-256. Revoked tokens stay on the record, refused from the moment they are
revoked. Each change is an audit event. On a team server every write and every comparison of a
presented token is one of the server's functions (app/storage/sql/api_tokens.sql): people read
no token hash at all; elsewhere this module does the same in Python with the same checks.

A report without a file (a partner's URL, the entity, the platform: nothing to hash) is kept
in ``intake_reports`` for the leads: listed by ``hashdesk intake reports``, counted in the
intake's status, closed by a lead with a note. Its URL is text: nothing here fetches it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, aliased

from app.core.errors import Refusal
from app.core.model.domain import UserInfo, utcnow
from app.core.model.roles import Permission
from app.storage.audit import AuditKind, append_event
from app.storage.db import Database
from app.storage.models import IntakeReceipt, IntakeReport, IntakeToken, Item, User
from app.storage.permissions import authorize, authorize_or_system
from app.storage.server_api import call_checked, on_server

TOKEN_PREFIX = "hdi_"
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.-")
MAX_NAME = 64


class TokenError(Refusal, ValueError):
    """A token cannot be made or revoked as asked (the message names the name)."""


class TokenRefused(Refusal, PermissionError):
    """A presented token does not open the intake: unknown (``revoked`` False) or revoked."""

    def __init__(self, message: str, *, revoked: bool) -> None:
        super().__init__(message)
        self.revoked = revoked


class ReportError(Refusal, ValueError):
    """A report cannot be recorded or closed as asked."""


@dataclass(frozen=True)
class IntakeTokenInfo:
    id: int
    name: str
    created_at: datetime
    created_by: str | None
    revoked_at: datetime | None
    revoked_by: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class IntakeSource:
    """The source a presented token stands for (the token passed the check)."""

    token_id: int
    name: str


@dataclass(frozen=True)
class ReportInfo:
    id: int
    source: str
    token: str | None
    external_id: str | None
    source_url: str | None
    reason: str | None
    reporter: str | None
    score: float | None
    received_at: datetime
    deadline: datetime | None
    closed_at: datetime | None
    closed_by: str | None
    closed_note: str | None


@dataclass(frozen=True)
class ReceiptView:
    """Where one arrival stands, as its source may see it."""

    receipt_id: int
    intake_source_id: int | None
    sha256: str
    status: str  # "queued" (waiting for its job), "done", "refused"
    item_id: int | None
    item_status: str | None
    error: str | None
    received_at: datetime
    deadline: datetime | None


def receipt_view(db: Database, receipt_id: int) -> ReceiptView | None:
    """The arrival ``receipt_id`` and its item's status (None: no such arrival)."""
    with db.session() as s:
        row = s.execute(
            select(
                IntakeReceipt.id,
                IntakeReceipt.intake_source_id,
                IntakeReceipt.sha256,
                IntakeReceipt.state,
                IntakeReceipt.item_id,
                Item.status,
                IntakeReceipt.error,
                IntakeReceipt.received_at,
                IntakeReceipt.deadline,
            )
            .outerjoin(Item, Item.id == IntakeReceipt.item_id)
            .where(IntakeReceipt.id == receipt_id)
        ).first()
    if row is None:
        return None
    state = "queued" if row[3] == "waiting" else str(row[3])
    status = None if row[5] is None else str(getattr(row[5], "value", row[5]))
    return ReceiptView(int(row[0]), row[1], row[2], state, row[4], status, row[6], row[7], row[8])


def new_token() -> str:
    """A fresh token: 32 random bytes, URL-safe, behind a prefix that says what it is."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the database keeps of a token: its SHA-256, lower-case hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a token (the server's hd_check_token_name: the same rule)."""
    if not 1 <= len(name) <= MAX_NAME or not set(name) <= _NAME_CHARS:
        return (
            f"token name {name[:80]!r} is not 1 to {MAX_NAME} characters of a-z, 0-9, '.', '_', '-'"
        )
    return None


def _server_error(message: str) -> Exception:
    return TokenError(message)


class IntakeTokenService:
    """Tokens: made and revoked by an admin (``manage_intake``), checked by the intake."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, name: str, *, actor: UserInfo | None) -> tuple[IntakeTokenInfo, str]:
        """A new token for the source ``name``: its record and the token itself, which is
        shown to the admin once and kept nowhere."""
        name = name.strip()
        problem = token_name_problem(name)
        if problem:
            raise TokenError(problem)
        token = new_token()
        with self.db.session() as s:
            if on_server(s):
                (row,) = call_checked(
                    s,
                    text("SELECT hd_api_intake_token_create(:n, :h)"),
                    {"n": name, "h": token_hash(token)},
                    _server_error,
                )
                return self._info(s, int(row[0])), token
            who = authorize(s, actor, Permission.MANAGE_INTAKE)
            taken = s.scalar(
                select(IntakeToken.id).where(IntakeToken.name == name).with_for_update()
            )
            if taken is not None:
                raise TokenError(
                    f"there is already a token named {name!r} (revoked ones stay on the "
                    "record: give the new one another name)"
                )
            made = IntakeToken(
                name=name, token_hash=token_hash(token), created_by_id=who.id, created_at=utcnow()
            )
            s.add(made)
            s.flush()
            append_event(
                s,
                AuditKind.INTAKE_TOKEN_CREATED,
                actor_id=who.id,
                actor_name=who.username,
                subject=name,
            )
            return self._info(s, made.id), token

    def revoke(self, name: str, *, actor: UserInfo | None) -> IntakeTokenInfo:
        """Revoke the token ``name``: refused from now on, also an upload under way."""
        name = name.strip()
        with self.db.session() as s:
            if on_server(s):
                call_checked(
                    s, text("SELECT hd_api_intake_token_revoke(:n)"), {"n": name}, _server_error
                )
                row_id = s.scalar(select(IntakeToken.id).where(IntakeToken.name == name))
                assert row_id is not None
                return self._info(s, row_id)
            who = authorize(s, actor, Permission.MANAGE_INTAKE)
            row = s.scalar(select(IntakeToken).where(IntakeToken.name == name).with_for_update())
            if row is None:
                raise TokenError(f"there is no token named {name!r}")
            if row.revoked_at is not None:
                raise TokenError(f"the token {name!r} is already revoked")
            row.revoked_at = utcnow()
            row.revoked_by_id = who.id
            append_event(
                s,
                AuditKind.INTAKE_TOKEN_REVOKED,
                actor_id=who.id,
                actor_name=who.username,
                subject=name,
            )
            s.flush()
            return self._info(s, row.id)

    def list(self) -> list[IntakeTokenInfo]:
        """Every token made, revoked ones too, oldest first (never a hash)."""
        with self.db.session() as s:
            ids = s.scalars(select(IntakeToken.id).order_by(IntakeToken.id)).all()
            return [self._info(s, i) for i in ids]

    def check(self, token: str | None) -> IntakeSource:
        """The source ``token`` stands for; TokenRefused if it is unknown or revoked. Read
        afresh on every call: a revocation counts at once."""
        if not token:
            raise TokenRefused("no token: send Authorization: Bearer <token>", revoked=False)
        digest = token_hash(token)
        with self.db.session() as s:
            if on_server(s):
                found = s.execute(
                    text("SELECT id, name, revoked FROM hd_api_intake_token_check(:h)"),
                    {"h": digest},
                ).first()
                ident, name, revoked = found if found else (None, None, False)
            else:
                row = s.execute(
                    select(IntakeToken.id, IntakeToken.name, IntakeToken.revoked_at).where(
                        IntakeToken.token_hash == digest
                    )
                ).first()
                ident, name, revoked = (
                    (row[0], row[1], row[2] is not None)
                    if row
                    else (
                        None,
                        None,
                        False,
                    )
                )
        if ident is None:
            raise TokenRefused("unknown token", revoked=False)
        if revoked:
            raise TokenRefused(f"the token {name!r} is revoked", revoked=True)
        return IntakeSource(int(ident), str(name))

    def receipt(self, receipt_id: int) -> ReceiptView | None:
        """An arrival's status (the HTTP intake shows it to the token that sent it)."""
        return receipt_view(self.db, receipt_id)

    def _info(self, s: Session, token_id: int) -> IntakeTokenInfo:
        made, gone = aliased(User), aliased(User)
        row = s.execute(
            select(
                IntakeToken.id,
                IntakeToken.name,
                IntakeToken.created_at,
                made.username,
                IntakeToken.revoked_at,
                gone.username,
            )
            .outerjoin(made, made.id == IntakeToken.created_by_id)
            .outerjoin(gone, gone.id == IntakeToken.revoked_by_id)
            .where(IntakeToken.id == token_id)
        ).one()
        values: tuple[Any, ...] = tuple(row)
        return IntakeTokenInfo(*values)


def _report_error(message: str) -> Exception:
    if message.startswith("the token ") and message.endswith(" is revoked"):
        return TokenRefused(message, revoked=True)
    return ReportError(message)


class IntakeReportService:
    """Reports that came without a file: recorded by the intake, read and closed by leads."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(
        self,
        *,
        source: str,
        external_id: str | None,
        source_url: str | None,
        reason: str | None,
        reporter: str | None,
        score: float | None,
        received_at: datetime,
        deadline: datetime | None,
        deadline_after: timedelta | None,
        token: IntakeSource | None,
        actor: UserInfo | None = None,
    ) -> ReportInfo:
        """Record one report. ``deadline``: explicit; otherwise ``deadline_after`` (the
        source's setting) from its receipt. Refused (TokenRefused) if ``token`` was revoked
        meanwhile: read in the same transaction, under a lock a revocation waits for. On a
        team server the server's clock gives the received time."""
        with self.db.session() as s:
            if on_server(s):
                (row,) = call_checked(
                    s,
                    text(
                        "SELECT id, received_at, deadline FROM hd_api_intake_report(:t, :src, "
                        ":ext, :url, :why, :who, :score, :deadline, :after)"
                    ),
                    {
                        "t": token.token_id if token else None,
                        "src": source,
                        "ext": external_id,
                        "url": source_url,
                        "why": reason,
                        "who": reporter,
                        "score": score,
                        "deadline": deadline,
                        "after": int(deadline_after.total_seconds()) if deadline_after else None,
                    },
                    _report_error,
                )
                # Built from what was sent: the intake's account need not read the table.
                return ReportInfo(
                    int(row[0]), source, token.name if token else None, external_id,
                    source_url, reason, reporter, score, row[1], row[2], None, None, None,
                )  # fmt: skip
            else:
                authorize_or_system(s, actor, Permission.INGEST)
                if token is not None:
                    revoked = s.scalar(
                        select(IntakeToken.revoked_at)
                        .where(IntakeToken.id == token.token_id)
                        .with_for_update()
                    )
                    if revoked is not None:
                        raise TokenRefused(f"the token {token.name!r} is revoked", revoked=True)
                if deadline is None and deadline_after is not None:
                    deadline = received_at + deadline_after
                report = IntakeReport(
                    token_id=token.token_id if token else None,
                    source=source,
                    external_id=external_id,
                    source_url=source_url,
                    reason=reason,
                    reporter=reporter,
                    score=score,
                    received_at=received_at,
                    deadline=deadline,
                )
                s.add(report)
                s.flush()
                new_id = report.id
            return self._info(s, new_id)

    def get(self, report_id: int) -> ReportInfo | None:
        with self.db.session() as s:
            exists = s.scalar(select(IntakeReport.id).where(IntakeReport.id == report_id))
            return self._info(s, report_id) if exists is not None else None

    def open_count(self) -> tuple[int, datetime | None]:
        """How many reports wait for a lead, and when the oldest came in."""
        with self.db.session() as s:
            n, oldest = s.execute(
                select(func.count(), func.min(IntakeReport.received_at)).where(
                    IntakeReport.closed_at.is_(None)
                )
            ).one()
            return int(n or 0), oldest

    def list(self, *, open_only: bool = True, limit: int = 100) -> list[ReportInfo]:
        """Reports, the nearest deadline first (then the oldest), open ones only by default."""
        with self.db.session() as s:
            q = select(IntakeReport.id)
            if open_only:
                q = q.where(IntakeReport.closed_at.is_(None))
            q = q.order_by(
                IntakeReport.deadline.is_(None), IntakeReport.deadline, IntakeReport.received_at
            ).limit(limit)
            return [self._info(s, i) for i in s.scalars(q).all()]

    def close(self, report_id: int, note: str | None, *, actor: UserInfo | None) -> ReportInfo:
        """A lead closes a report (what was done with it, in ``note``); audited."""
        with self.db.session() as s:
            if on_server(s):
                call_checked(
                    s,
                    text("SELECT hd_api_intake_report_close(:i, :n)"),
                    {"i": report_id, "n": note},
                    _report_error,
                )
                return self._info(s, report_id)
            who = authorize(s, actor, Permission.HANDLE_REPORTS)
            row = s.scalar(
                select(IntakeReport).where(IntakeReport.id == report_id).with_for_update()
            )
            if row is None:
                raise ReportError(f"there is no report {report_id}")
            if row.closed_at is not None:
                raise ReportError(f"report {report_id} is already closed")
            note = (note or "").strip() or None
            row.closed_at = utcnow()
            row.closed_by_id = who.id
            row.closed_note = note
            append_event(
                s,
                AuditKind.INTAKE_REPORT_CLOSED,
                actor_id=who.id,
                actor_name=who.username,
                subject=str(report_id),
                detail={"note": note},
            )
            s.flush()
            return self._info(s, report_id)

    def _info(self, s: Session, report_id: int) -> ReportInfo:
        closer = aliased(User)
        r = IntakeReport
        row = s.execute(
            select(
                r.id,
                r.source,
                IntakeToken.name,
                r.external_id,
                r.source_url,
                r.reason,
                r.reporter,
                r.score,
                r.received_at,
                r.deadline,
                r.closed_at,
                closer.username,
                r.closed_note,
            )
            .outerjoin(IntakeToken, IntakeToken.id == r.token_id)
            .outerjoin(closer, closer.id == r.closed_by_id)
            .where(r.id == report_id)
        ).one()
        values: tuple[Any, ...] = tuple(row)
        return ReportInfo(*values)
