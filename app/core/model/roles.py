"""Who may do what. Enforced by the services where data changes, not only by menus."""

from __future__ import annotations

from enum import StrEnum

from app.core.errors import Refusal
from app.core.model.domain import Role


class Permission(StrEnum):
    REVIEW = "review"  # decide items in the moderation queue, undo one's own decisions
    SECOND_REVIEW = "second_review"
    VIEW_HISTORY = "view_history"
    OVERTURN = "overturn"
    RETRACT = "retract"
    HANDLE_ESCALATIONS = "handle_escalations"
    VIEW_STATS = "view_stats"
    EXPORT = "export"
    MANAGE_USERS = "manage_users"
    IMPORT_HASHES = "import_hashes"
    INGEST = "ingest"  # add flagged files to the queue (and record their auto-matches)
    MANAGE_INCIDENTS = "manage_incidents"  # declare, conclude, move people onto incidents


_LEAD = {
    Permission.REVIEW,
    Permission.SECOND_REVIEW,
    Permission.VIEW_HISTORY,
    Permission.OVERTURN,
    Permission.RETRACT,
    Permission.HANDLE_ESCALATIONS,
    Permission.VIEW_STATS,
    Permission.EXPORT,
    Permission.MANAGE_INCIDENTS,
}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.MODERATOR: frozenset({Permission.REVIEW, Permission.SECOND_REVIEW}),
    Role.LEAD: frozenset(_LEAD),
    Role.ADMIN: frozenset(Permission),
}


class PermissionDenied(Refusal, PermissionError):
    """A role tried something it may not do. The message says who, what, and which role may."""


def allowed(role: Role | str, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[Role(role)]


def require(role: Role | str, permission: Permission, username: str = "this user") -> None:
    if not allowed(role, permission):
        may = sorted(r.value for r, perms in ROLE_PERMISSIONS.items() if permission in perms)
        raise PermissionDenied(
            f"{username} ({Role(role).value}) may not {permission.value.replace('_', ' ')}: "
            f"that needs the role {' or '.join(may)}"
        )
