"""user names a team server can use: lower-case letters, digits, '.', '_', '-'; 1 to 50 bytes
(a CHECK on users.username, PostgreSQL only: there a user name becomes part of a login role's
name; on SQLite the rule applies to new accounts, app.storage.users)

An old database with names outside the rule stops here, naming them: they are renamed by the
schema owner (an account's name is its sign-in and, on a team server, its login role), never
silently mapped to something else.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.storage.db import DatabaseError

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

#: The same rule as app.storage.server_roles.username_problem and the server's
#: hd_valid_username (app/storage/sql/roles.sql).
VALID_USERNAME = (
    "ltrim(username, 'abcdefghijklmnopqrstuvwxyz0123456789_.-') = '' "
    "AND length(username) BETWEEN 1 AND 50"
)
OUTSIDE_THE_RULE = sa.text(
    "SELECT username FROM users WHERE NOT (ltrim(username, "
    "'abcdefghijklmnopqrstuvwxyz0123456789_.-') = '' AND length(username) BETWEEN 1 AND 50) "
    "ORDER BY username"
)
RULE = "A user name is 1 to 50 characters, each a lower-case letter a-z, a digit, '.', '_' or '-'"
REMEDY = (
    "Rename each as the schema owner (UPDATE users SET username = 'new' WHERE username = "
    "'old'; on a server with Hashdesk roles also ALTER ROLE \"<prefix>u_old\" RENAME TO "
    '"<prefix>u_new") and upgrade again'
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    bad = list(bind.execute(OUTSIDE_THE_RULE).scalars())
    if bad:
        names = ", ".join(repr(n) for n in bad)
        problem = f"cannot upgrade: user names a team server cannot use: {names}"
        raise DatabaseError(f"{problem}. {RULE}. {REMEDY}")
    op.create_check_constraint("ck_users_username", "users", VALID_USERNAME)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("ck_users_username", "users", type_="check")
