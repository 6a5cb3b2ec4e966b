"""The names of a team server's roles, and which user names may become one.

Each Hashdesk account is its own PostgreSQL login role, ``<prefix>u_<username>``, a member of
one group role per Hashdesk role (``<prefix>moderator``, ``<prefix>lead``, ``<prefix>admin``).
PostgreSQL roles belong to the whole server, so the prefix is derived from the database and the
schema (:func:`role_prefix`): production, staging and the test suite's many schemas share one
server without colliding.

A user name becomes part of a role name, so it is held to a small alphabet
(:data:`USERNAME_ALPHABET`, 1 to :data:`MAX_USERNAME` bytes): checked here for every new account,
by the team server's own account functions, and by a CHECK constraint on ``users.username``
(migration 0011). Role names are only ever quoted by the driver or the server (``%I``), never
put together into SQL text here.
"""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qs, unquote, urlsplit

from app.core.model.domain import Role

#: The characters of a user name: PostgreSQL identifiers without quoting trouble, and the same
#: set the server checks (app/storage/sql/roles.sql, hd_valid_username; migration 0011).
USERNAME_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789_.-"
#: PostgreSQL identifiers are at most 63 bytes; the prefix and "u_" take 13.
MAX_USERNAME = 50
#: The rule in words, for the messages that refuse a name.
USERNAME_RULE = (
    f"1 to {MAX_USERNAME} characters, each a lower-case letter a-z, a digit, '.', '_' or '-'"
)


def username_problem(username: str) -> str | None:
    """Why ``username`` cannot be a Hashdesk user name, or None if it can."""
    if not 1 <= len(username.encode()) <= MAX_USERNAME or username.strip(USERNAME_ALPHABET):
        return f"user name {username!r} is not allowed: {USERNAME_RULE}"
    return None


def role_prefix(database: str, schema: str) -> str:
    """``hd<8 hex>_``: the same for every workstation of one Hashdesk database."""
    return "hd" + hashlib.sha256(f"{database}/{schema}".encode()).hexdigest()[:8] + "_"


def schema_of_url(url: str) -> str:
    """The schema a PostgreSQL URL's ``options=-csearch_path=...`` names (else ``public``)."""
    query = parse_qs(urlsplit(url).query)
    for opt in query.get("options", []):
        for part in unquote(opt).split():
            if part.startswith("-csearch_path="):
                return part.split("=", 1)[1].split(",")[0].strip() or "public"
    return "public"


def prefix_for_url(url: str) -> str:
    parts = urlsplit(url)
    return role_prefix(parts.path.lstrip("/"), schema_of_url(url))


def person_role(prefix: str, username: str) -> str:
    return f"{prefix}u_{username}"


def group_role(prefix: str, role: Role | str) -> str:
    return f"{prefix}{Role(role).value}"
