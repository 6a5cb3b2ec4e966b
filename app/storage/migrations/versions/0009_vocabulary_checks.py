"""vocabulary checks: every column that holds a word of the vocabulary (an item's status and
kind, a decision's verdict and method, a user's role, a list's policy, a second review's state
and verdicts, a feedback verdict, an exposure kind) refuses any other word (CHECK constraints
named ck_<table>_<column>, as the models declare them)

Rows that already hold another word stop the upgrade with their table, id and value named:
nothing is guessed or rewritten in the record (decisions are chained; a rewritten verdict
would break the chain). Correct or remove those rows, then upgrade again.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.storage.db import DatabaseError

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# The vocabulary as of this revision, written out: a migration must not change when the enums
# in app.core grow later (a later revision widens a constraint by dropping and re-adding it).
CHECKS: dict[tuple[str, str], tuple[str, ...]] = {
    ("users", "role"): ("moderator", "lead", "admin"),
    ("items", "kind"): ("image", "video", "animated", "unreadable"),
    ("items", "status"): (
        "queued",
        "claimed",
        "decided",
        "auto_matched",
        "escalated",
        "unreadable",
    ),
    ("decisions", "verdict"): ("confirm", "reject", "skip", "escalate", "undo", "overturn"),
    ("decisions", "method"): ("manual", "cluster", "auto_match", "second_review"),
    ("hash_lists", "policy"): ("resolve", "queue", "off"),
    ("hash_list_feedback", "verdict"): ("agree", "disagree"),
    ("second_reviews", "status"): ("pending", "claimed", "done"),
    ("second_reviews", "first_verdict"): (
        "confirm",
        "reject",
        "skip",
        "escalate",
        "undo",
        "overturn",
    ),
    ("second_reviews", "second_verdict"): (
        "confirm",
        "reject",
        "skip",
        "escalate",
        "undo",
        "overturn",
    ),
    ("exposure_events", "kind"): ("reveal", "region", "frame"),
}

_SHOWN = 10  # offending rows named per column; the count says how many there are in all


def _condition(column: str, words: tuple[str, ...]) -> str:
    # Words of our own vocabulary (lowercase letters and underscores), never data.
    assert all(w.replace("_", "").isalpha() and w.islower() for w in words), words
    return f"{column} IN ({', '.join(repr(w) for w in words)})"


def _offenders() -> list[str]:
    conn = op.get_bind()
    found = []
    for (table, column), words in CHECKS.items():
        t = sa.table(table, sa.column("id"), sa.column(column))
        bad = sa.and_(t.c[column].is_not(None), t.c[column].not_in(words))
        total = conn.scalar(sa.select(sa.func.count()).select_from(t).where(bad)) or 0
        if not total:
            continue
        rows = conn.execute(
            sa.select(t.c.id, t.c[column]).where(bad).order_by(t.c.id).limit(_SHOWN)
        )
        named = ", ".join(f"id {i} ({value!r})" for i, value in rows)
        more = f" and {total - _SHOWN} more" if total > _SHOWN else ""
        found.append(
            f"{table}.{column} holds {total} value(s) outside {', '.join(words)}: {named}{more}"
        )
    return found


def upgrade() -> None:
    offenders = _offenders()
    if offenders:
        raise DatabaseError(
            "cannot upgrade the database to revision 0009 (vocabulary checks): "
            + "; ".join(offenders)
            + ". Correct or remove these rows, then upgrade again"
        )
    tables: dict[str, list[str]] = {}
    for table, column in CHECKS:
        tables.setdefault(table, []).append(column)
    for table, columns in tables.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.create_check_constraint(
                    f"ck_{table}_{column}", _condition(column, CHECKS[table, column])
                )


def downgrade() -> None:
    tables: dict[str, list[str]] = {}
    for table, column in CHECKS:
        tables.setdefault(table, []).append(column)
    for table, columns in tables.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.drop_constraint(f"ck_{table}_{column}", type_="check")
