"""User accounts: creation, listing, authentication."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from app.core.model import Role
from app.core.security import hash_password, verify_password
from app.storage.db import Database
from app.storage.models import User


class UserError(ValueError):
    pass


@dataclass(frozen=True)
class UserInfo:
    id: int
    username: str
    display_name: str
    role: Role
    active: bool


def _info(u: User) -> UserInfo:
    return UserInfo(u.id, u.username, u.display_name, Role(u.role), u.active)


class UserService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self, username: str, password: str, role: Role | str, display_name: str | None = None
    ) -> UserInfo:
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
        with self.db.session() as s:
            if s.scalar(select(User.id).where(User.username == username)) is not None:
                raise UserError(f"user {username!r} already exists")
            user = User(
                username=username,
                display_name=display_name or username,
                role=role.value,
                password_hash=pw_hash,
                active=True,
            )
            s.add(user)
            s.flush()
            return _info(user)

    def list(self) -> list[UserInfo]:
        with self.db.session() as s:
            return [_info(u) for u in s.scalars(select(User).order_by(User.username))]

    def get(self, username: str) -> UserInfo | None:
        with self.db.session() as s:
            u = s.scalar(select(User).where(User.username == username))
            return _info(u) if u else None

    def authenticate(self, username: str, password: str) -> UserInfo | None:
        with self.db.session() as s:
            u = s.scalar(select(User).where(User.username == username.strip()))
            if u is None or not u.active or not verify_password(u.password_hash, password):
                return None
            return _info(u)
