"""The hash lists as a lead or admin handles them directly: retracting entries, exporting the active
list. Both are refused to roles that may not do them, and both are recorded in the audit chain
in the same transaction as the change."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import or_, select

from app.core.domain import UserInfo, utcnow
from app.core.roles import Permission
from app.core.signal_types import REGION_PREFIX
from app.storage.audit import AuditKind, append_event
from app.storage.db import Database
from app.storage.models import HashListEntry
from app.storage.permissions import authorize


class HashListError(ValueError):
    pass


@dataclass(frozen=True)
class ExportedHash:
    id: int
    algorithm: str
    value: str
    category: str | None
    list_name: str
    added_at: str
    variant: str = ""  # "" as decoded, "trimmed" bars removed, "region:<half>" a half picture


class HashListService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def retract(self, entry_ids: Collection[int], reason: str, *, actor: UserInfo) -> int:
        """Retract entries (kept, marked retracted, never deleted). Returns how many changed."""
        reason = reason.strip()
        if not reason:
            raise HashListError("a retraction needs a reason")
        with self.db.session() as s:
            authorize(s, actor, Permission.RETRACT)
            rows = s.scalars(
                select(HashListEntry)
                .where(HashListEntry.id.in_(list(entry_ids)), HashListEntry.retracted_at.is_(None))
                .with_for_update()
            ).all()
            now = utcnow()
            if rows:  # the event first: the server accepts a retraction only on the record
                append_event(
                    s,
                    AuditKind.RETRACTION,
                    actor_id=actor.id,
                    actor_name=actor.username,
                    subject=",".join(str(e.id) for e in rows)[:255],
                    detail={"entries": [e.id for e in rows], "reason": reason},
                    occurred_at=now,
                )
            for e in rows:
                e.retracted_at = now
                e.retracted_by = actor.id
                e.retraction_reason = reason
            return len(rows)

    def export_active(
        self,
        *,
        actor: UserInfo,
        list_name: str | None = None,
        purpose: str = "",
        include_halves: bool = False,
    ) -> list[ExportedHash]:
        """The active entries, for sharing with partners. Recorded: who exported what, when.

        Half-picture hashes (``region:*``) are left out unless ``include_halves``: a partner's
        PDQ matcher would compare them with whole pictures, where they mean nothing. Every row
        carries its variant, so a partner can tell a bar-trimmed hash from the plain one."""
        with self.db.session() as s:
            authorize(s, actor, Permission.EXPORT)
            q = select(HashListEntry).where(HashListEntry.retracted_at.is_(None))
            if list_name is not None:
                q = q.where(HashListEntry.list_name == list_name)
            if not include_halves:
                q = q.where(
                    or_(
                        HashListEntry.variant.is_(None),
                        ~HashListEntry.variant.startswith(REGION_PREFIX),
                    )
                )
            rows = [
                ExportedHash(
                    e.id,
                    e.algorithm,
                    e.value,
                    e.category,
                    e.list_name,
                    e.added_at.isoformat(),
                    e.variant or "",
                )
                for e in s.scalars(q.order_by(HashListEntry.id))
            ]
            append_event(
                s,
                AuditKind.EXPORT,
                actor_id=actor.id,
                actor_name=actor.username,
                subject=list_name or "all lists",
                detail={"entries": len(rows), "purpose": purpose},
            )
            return rows
