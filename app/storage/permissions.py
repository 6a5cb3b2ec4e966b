"""The one place a service asks whether someone may do something.

Judged by the database's current record of the account, inside the caller's transaction: a
disabled account, or a role changed since sign-in, counts at once, in a window opened long
before. Every service path that changes or reads guarded data goes through :func:`authorize`
(or :func:`authorize_or_system` where ingest or set-up code acts with no person behind it).
Which role may do what is :mod:`app.core.model.roles`.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.core.model.domain import UserInfo
from app.core.model.roles import Permission, PermissionDenied, require
from app.storage.models import User


def authorize(s: Session, who: int | UserInfo | None, permission: Permission) -> User:
    """The account of ``who`` if it exists, is active and its role allows ``permission``;
    PermissionDenied otherwise (the message names who, what, and which role may)."""
    user_id = who.id if isinstance(who, UserInfo) else who
    row = s.get(User, user_id) if user_id is not None else None
    if row is None or not row.active:
        name = who.username if isinstance(who, UserInfo) else f"user #{user_id}"
        raise PermissionDenied(f"{name}'s account is disabled or does not exist")
    require(row.role, permission, row.username)
    return row


def authorize_or_system(
    s: Session, who: int | UserInfo | None, permission: Permission
) -> User | None:
    """As :func:`authorize`, but ``None`` is the system (auto-match at ingest, the first admin,
    the demo, tests) and passes."""
    if who is None:
        return None
    return authorize(s, who, permission)
