"""User accounts: creation, listing, authentication."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.core.errors import Refusal
from app.core.model.domain import Role, UserInfo, utcnow
from app.core.model.roles import Permission, PermissionDenied
from app.core.model.security import hash_password, verify_password
from app.storage import server_security
from app.storage.audit import AuditKind, append_event, count_events, lock_audit_chain
from app.storage.db import Database
from app.storage.models import User
from app.storage.permissions import authorize_or_system

# Failed sign-ins: after this many for one user name within the window, refuse further attempts
# (without checking the password) until the window has passed.
MAX_FAILED_LOGINS = 5
FAILED_LOGIN_WINDOW = timedelta(minutes=10)


class UserError(Refusal, ValueError):
    pass


class LoginLocked(UserError):
    """Too many failed sign-ins for this user name: refused without checking the password."""


def _info(u: User) -> UserInfo:
    return UserInfo(u.id, u.username, u.display_name, Role(u.role), u.active)


def _validate(username: str, password: str, role: Role | str) -> tuple[str, str, Role]:
    username = username.strip()
    if not username or len(username) > 64 or any(c.isspace() for c in username):
        raise UserError(f"user name {username!r} must be 1 to 64 characters without spaces")
    try:
        role = Role(role)
    except ValueError:
        raise UserError(
            f"role {role!r} is not one of: {', '.join(r.value for r in Role)}"
        ) from None
    try:
        pw_hash = hash_password(password)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return username, pw_hash, role


class UserService:
    """Accounts. Changes take the acting user (``actor``) and are refused unless that user may
    manage users; each change is recorded in the audit chain in the same transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def count(self) -> int:
        with self.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(User)) or 0)

    def add(
        self,
        username: str,
        password: str,
        role: Role | str,
        display_name: str | None = None,
        *,
        actor: UserInfo | None = None,
    ) -> UserInfo:
        username, pw_hash, role = _validate(username, password, role)
        with self.db.session() as s:
            authorize_or_system(s, actor, Permission.MANAGE_USERS)
            return self._insert(s, username, password, pw_hash, role, display_name, actor)

    def create_first_admin(
        self, username: str, password: str, display_name: str | None = None
    ) -> UserInfo:
        """The first account of an empty database: an admin, created without signing in.
        Refused once any account exists."""
        username, pw_hash, role = _validate(username, password, Role.ADMIN)
        with self.db.session() as s:
            lock_audit_chain(s)  # two workstations starting at once create one first admin
            if s.scalar(select(func.count()).select_from(User)):
                raise PermissionDenied(
                    "this database already has users: an admin must sign in to add more"
                )
            return self._insert(s, username, password, pw_hash, role, display_name, None)

    def _server_enforced(self) -> bool:
        return server_security.enforced(self.db.engine)

    def _insert(
        self,
        s: Session,
        username: str,
        password: str,
        pw_hash: str,
        role: Role,
        display_name: str | None,
        actor: UserInfo | None,
    ) -> UserInfo:
        if s.scalar(select(User.id).where(User.username == username)) is not None:
            raise UserError(f"user {username!r} already exists")
        display = display_name or username
        event: dict[str, Any] = {
            "actor_id": actor.id if actor else None,
            "actor_name": actor.username if actor else None,
            "subject": username,
            "detail": {"role": role.value, "display_name": display},
        }
        if self._server_enforced():
            if len(username.encode()) > server_security.MAX_TEAM_USERNAME:
                raise UserError(
                    f"user name {username!r} is too long for a PostgreSQL login: at most "
                    f"{server_security.MAX_TEAM_USERNAME} bytes"
                )
            # A PostgreSQL login role of its own; the server requires the event first.
            append_event(s, AuditKind.USER_ADDED, **event)
            new_id = s.execute(
                text("SELECT hd_account_create(:u, :d, :r, :p)"),
                {"u": username, "d": display, "r": role.value, "p": password},
            ).scalar_one()
            user = s.get(User, new_id)
            assert user is not None
            return _info(user)
        user = User(
            username=username,
            display_name=display,
            role=role,
            password_hash=pw_hash,
            active=True,
        )
        s.add(user)
        s.flush()
        append_event(s, AuditKind.USER_ADDED, **event)
        return _info(user)

    def set_active(self, username: str, active: bool, *, actor: UserInfo | None = None) -> UserInfo:
        with self.db.session() as s:
            authorize_or_system(s, actor, Permission.MANAGE_USERS)
            u = self._existing(s, username, lock=not self._server_enforced())
            if actor is not None and u.id == actor.id and not active:
                raise UserError("you cannot disable your own account")
            if not active and u.role == Role.ADMIN and u.active:
                admins = s.scalar(
                    select(func.count())
                    .select_from(User)
                    .where(User.role == Role.ADMIN, User.active.is_(True))
                )
                if (admins or 0) <= 1:
                    raise UserError(f"{username} is the last active admin: add another first")
            append_event(
                s,
                AuditKind.USER_ENABLED if active else AuditKind.USER_DISABLED,
                actor_id=actor.id if actor else None,
                actor_name=actor.username if actor else None,
                subject=u.username,
            )
            if self._server_enforced():
                # LOGIN/NOLOGIN on the server, open sessions ended, the flag every check reads.
                s.execute(
                    text("SELECT hd_account_set_active(:u, :a)"), {"u": u.username, "a": active}
                )
                s.refresh(u)
            else:
                u.active = active
            return _info(u)

    def disable(self, username: str, *, actor: UserInfo | None = None) -> UserInfo:
        return self.set_active(username, False, actor=actor)

    def set_password(
        self, username: str, password: str, *, actor: UserInfo | None = None
    ) -> UserInfo:
        """Change a password: an admin for anyone, or a user for their own account."""
        try:
            pw_hash = hash_password(password)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        with self.db.session() as s:
            u = self._existing(s, username, lock=not self._server_enforced())
            if actor is None or actor.id != u.id:
                authorize_or_system(s, actor, Permission.MANAGE_USERS)
            append_event(
                s,
                AuditKind.PASSWORD_CHANGED,
                actor_id=actor.id if actor else None,
                actor_name=actor.username if actor else None,
                subject=u.username,
            )
            if self._server_enforced():  # the PostgreSQL login's own password (SCRAM)
                s.execute(
                    text("SELECT hd_account_set_password(:u, :p)"),
                    {"u": u.username, "p": password},
                )
            else:
                u.password_hash = pw_hash
            return _info(u)

    @staticmethod
    def _existing(s: Session, username: str, lock: bool = True) -> User:
        q = select(User).where(User.username == username.strip())
        u = s.scalar(q.with_for_update() if lock else q)
        if u is None:
            raise UserError(f"there is no user {username!r}")
        return u

    def list(self) -> list[UserInfo]:
        with self.db.session() as s:
            return [_info(u) for u in s.scalars(select(User).order_by(User.username))]

    def get(self, username: str) -> UserInfo | None:
        with self.db.session() as s:
            u = s.scalar(select(User).where(User.username == username))
            return _info(u) if u else None

    def authenticate(self, username: str, password: str) -> UserInfo | None:
        """The account if the password is right and the account active, else None. Every
        failure is recorded; after MAX_FAILED_LOGINS within FAILED_LOGIN_WINDOW the name is
        locked (LoginLocked) until the window has passed."""
        username = username.strip()
        with self.db.session() as s:
            since = utcnow() - FAILED_LOGIN_WINDOW
            if count_events(s, AuditKind.LOGIN_FAILED, username, since) >= MAX_FAILED_LOGINS:
                append_event(s, AuditKind.LOGIN_LOCKED, subject=username)
                locked = True
            else:
                locked = False
                u = s.scalar(select(User).where(User.username == username))
                if u is not None and u.active and verify_password(u.password_hash, password):
                    return _info(u)
                why = "no such user" if u is None else "disabled" if not u.active else "password"
                append_event(s, AuditKind.LOGIN_FAILED, subject=username, detail={"why": why})
        if locked:
            minutes = int(FAILED_LOGIN_WINDOW.total_seconds() // 60)
            raise LoginLocked(
                f"too many failed sign-ins for {username}: wait {minutes} minutes, "
                "or ask an admin to check the account"
            )
        return None
