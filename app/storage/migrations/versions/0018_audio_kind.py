"""items of sound alone: the vocabulary check on items.kind (ck_items_kind, migration 0009)
takes "audio" (a file of sound without a picture, fingerprinted and never played). The
sound's fingerprint itself needs no schema change: its blocks are signals and hash-list rows
of algorithm "audio" (64 hex digits, like PDQ's).

Downgrading refuses while items of kind audio exist, naming them: nothing is rewritten in the
record.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.storage.db import DatabaseError

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

# The vocabulary as of this revision, written out (a migration must not change when the enum
# grows later).
BEFORE = ("image", "video", "animated", "unreadable")
AFTER = ("image", "video", "animated", "audio", "unreadable")


def _condition(words: tuple[str, ...]) -> str:
    assert all(w.isalpha() and w.islower() for w in words), words
    return f"kind IN ({', '.join(repr(w) for w in words)})"


def _replace(words: tuple[str, ...]) -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_constraint("ck_items_kind", type_="check")
        batch_op.create_check_constraint("ck_items_kind", _condition(words))


def upgrade() -> None:
    _replace(AFTER)


def downgrade() -> None:
    t = sa.table("items", sa.column("id"), sa.column("kind"))
    ids = op.get_bind().scalars(sa.select(t.c.id).where(t.c.kind == "audio").limit(11)).all()
    if ids:
        shown = ", ".join(str(i) for i in ids[:10]) + (" and more" if len(ids) > 10 else "")
        raise DatabaseError(
            "cannot downgrade below revision 0018: items of kind audio exist (ids "
            f"{shown}); remove them first"
        )
    _replace(BEFORE)
