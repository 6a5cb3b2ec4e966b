"""User accounts: creation, listing, authentication.

On a team server (app.storage.server_security) every change is one call of the server's
account functions (app/storage/sql/api_accounts.sql): they check the admin, the name, the role
and the password, make the person's PostgreSQL login, and write the audit event themselves.
On SQLite (and PostgreSQL without the server program) this module does the same in Python."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.core.errors import Refusal, first_line
from app.core.model.domain import Role, UserInfo, utcnow
from app.core.model.roles import Permission, PermissionDenied
from app.core.model.security import hash_password, verify_password
from app.storage.audit import AuditKind, append_event, count_events, lock_audit_chain
from app.storage.db import Database
from app.storage.models import User
from app.storage.permissions import authorize_or_system
from app.storage.server_api import on_server
from app.storage.server_roles import username_problem

# Failed sign-ins: after this many for one user name within the window, refuse further attempts
# (without checking the password) until the window has passed.
MAX_FAILED_LOGINS = 5
FAILED_LOGIN_WINDOW = timedelta(minutes=10)
#: A display name's length at most (users.display_name; the server checks the same).
MAX_DISPLAY_NAME = 128


class UserError(Refusal, ValueError):
    pass


class LoginLocked(UserError):
    """Too many failed sign-ins for this user name: refused without checking the password."""


def _info(u: User) -> UserInfo:
    return UserInfo(u.id, u.username, u.display_name, Role(u.role), u.active)


def _validate(username: str, role: Role | str) -> tuple[str, Role]:
    username = username.strip()
    problem = username_problem(username)  # it becomes part of a role name on a team server
    if problem is not None:
        raise UserError(problem)
    try:
        role = Role(role)
    except ValueError:
        raise UserError(
            f"role {role!r} is not one of: {', '.join(r.value for r in Role)}"
        ) from None
    return username, role


def _hash(password: str) -> str:
    try:
        return hash_password(password)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _display(username: str, display_name: str | None) -> str:
    display = (display_name or "").strip() or username
    if len(display) > MAX_DISPLAY_NAME:
        raise UserError(
            f"a display name may have at most {MAX_DISPLAY_NAME} characters "
            f"({display[:20]!r}... has {len(display)})"
        )
    return display


def _on_server(s: Session, statement: str, params: dict[str, Any]) -> Any:
    """One call of the server's account functions; its first value. A value the server refuses
    (SQLSTATE 22023: a name, a role, a password, the last admin) is a UserError with the
    server's reason; a refusal of who may (42501) is PermissionDenied (Database.session)."""
    try:
        return s.execute(text(statement), params).scalar()
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == "22023":
            raise UserError(first_line(str(exc.orig)).removeprefix("hashdesk: ")) from None
        raise


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
        username, role = _validate(username, role)
        display = _display(username, display_name)
        with self.db.session() as s:
            authorize_or_system(s, actor, Permission.MANAGE_USERS)
            return self._insert(s, username, password, role, display, actor)

    def create_first_admin(
        self, username: str, password: str, display_name: str | None = None
    ) -> UserInfo:
        """The first account of an empty database: an admin, created without signing in.
        Refused once any account exists."""
        username, role = _validate(username, Role.ADMIN)
        display = _display(username, display_name)
        with self.db.session() as s:
            lock_audit_chain(s)  # two workstations starting at once create one first admin
            if s.scalar(select(func.count()).select_from(User)):
                raise PermissionDenied(
                    "this database already has users: an admin must sign in to add more"
                )
            return self._insert(s, username, password, role, display, None)

    def _insert(
        self,
        s: Session,
        username: str,
        password: str,
        role: Role,
        display: str,
        actor: UserInfo | None,
    ) -> UserInfo:
        if s.scalar(select(User.id).where(User.username == username)) is not None:
            raise UserError(f"user {username!r} already exists")
        if on_server(s):
            # The server makes the login role and the row, and records the event.
            new_id = _on_server(
                s,
                "SELECT hd_api_account_create(:u, :d, :r, :p)",
                {"u": username, "d": display, "r": role.value, "p": password},
            )
            user = s.get(User, new_id)
            assert user is not None
            return _info(user)
        user = User(
            username=username,
            display_name=display,
            role=role,
            password_hash=_hash(password),
            active=True,
        )
        s.add(user)
        s.flush()
        append_event(
            s,
            AuditKind.USER_ADDED,
            actor_id=actor.id if actor else None,
            actor_name=actor.username if actor else None,
            subject=username,
            detail={"role": role.value, "display_name": display},
        )
        return _info(user)

    def set_active(self, username: str, active: bool, *, actor: UserInfo | None = None) -> UserInfo:
        with self.db.session() as s:
            authorize_or_system(s, actor, Permission.MANAGE_USERS)
            if on_server(s):
                # The server checks it all (not oneself, not the last admin), sets LOGIN or
                # NOLOGIN, ends the person's open sessions and records the event.
                name = username.strip()
                call = (
                    "SELECT hd_api_account_enable(:u)"
                    if active
                    else "SELECT hd_api_account_disable(:u)"
                )
                _on_server(s, call, {"u": name})
                return _info(self._existing(s, name, lock=False))
            u = self._existing(s, username)
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
            u.active = active
            return _info(u)

    def disable(self, username: str, *, actor: UserInfo | None = None) -> UserInfo:
        return self.set_active(username, False, actor=actor)

    def set_password(
        self, username: str, password: str, *, actor: UserInfo | None = None
    ) -> UserInfo:
        """Change a password: an admin for anyone, or a user for their own account."""
        with self.db.session() as s:
            server = on_server(s)
            u = self._existing(s, username, lock=not server)
            if actor is None or actor.id != u.id:
                authorize_or_system(s, actor, Permission.MANAGE_USERS)
            if server:  # the PostgreSQL login's own password (SCRAM), the event by the server
                _on_server(
                    s,
                    "SELECT hd_api_account_set_password(:u, :p)",
                    {"u": u.username, "p": password},
                )
                return _info(u)
            u.password_hash = _hash(password)
            append_event(
                s,
                AuditKind.PASSWORD_CHANGED,
                actor_id=actor.id if actor else None,
                actor_name=actor.username if actor else None,
                subject=u.username,
            )
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
                # On a team server no Hashdesk password is kept (people may not even read the
                # column): the server's login is the password (app.compose.sign_in).
                if (
                    u is not None
                    and u.active
                    and not on_server(s)
                    and verify_password(u.password_hash, password)
                ):
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
