"""change_seq on hash_list and hash_lists: a counter the database itself sets on every INSERT
and UPDATE of a row, the watermark the hash-list watcher follows (instead of the latest
retracted_at / changed_at / updated_at, which any client clock, or a hand edit to year 9999,
could push out of reach and so freeze every running watcher).

PostgreSQL: one sequence, hash_list_change_seq, and a BEFORE INSERT OR UPDATE trigger on each
table taking its next value. The trigger function is SECURITY DEFINER (the schema owner's) with
the catalog first on its path, so a person who may only insert or update hash-list rows fires it
without any right on the sequence. It is created inside a DO block: the schema's name (whatever
the connection's current schema is) is quoted by the server.

SQLite: AFTER INSERT and AFTER UPDATE triggers setting the row's change_seq to one more than the
table's highest (a single writer: these commit in order). The AFTER UPDATE one fires only when
the statement left change_seq as it was, so its own UPDATE does not start it again. A later
migration that rebuilds either table in batch mode (copy and rename) drops these triggers and
must create them again.

Existing rows: change_seq = id (in id order, below every later value).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TABLES = ("hash_list", "hash_lists")

#: Written out whole (no SQL is put together from names in Python).
_BACKFILL = (
    "UPDATE hash_list SET change_seq = id",
    "UPDATE hash_lists SET change_seq = id",
)
_PG_SEQUENCE = (
    "CREATE SEQUENCE hash_list_change_seq",
    "SELECT setval('hash_list_change_seq', GREATEST(1, (SELECT MAX(id) FROM hash_list), "
    "(SELECT MAX(id) FROM hash_lists)))",
)
_PG_FUNCTION = """
DO $do$
DECLARE
  s text := current_schema();
BEGIN
  EXECUTE format(
    'CREATE OR REPLACE FUNCTION %I.hash_list_change_seq_next() RETURNS trigger '
    'LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, %I, pg_temp AS '
    '$f$ BEGIN NEW.change_seq := nextval(%L::regclass); RETURN NEW; END $f$',
    s, s, format('%I.hash_list_change_seq', s));
END $do$
"""
_PG_TRIGGERS = (
    "CREATE TRIGGER hash_list_change_seq BEFORE INSERT OR UPDATE ON hash_list "
    "FOR EACH ROW EXECUTE FUNCTION hash_list_change_seq_next()",
    "CREATE TRIGGER hash_lists_change_seq BEFORE INSERT OR UPDATE ON hash_lists "
    "FOR EACH ROW EXECUTE FUNCTION hash_list_change_seq_next()",
)
_PG_DROP = (
    "DROP TRIGGER IF EXISTS hash_list_change_seq ON hash_list",
    "DROP TRIGGER IF EXISTS hash_lists_change_seq ON hash_lists",
    "DROP FUNCTION IF EXISTS hash_list_change_seq_next()",
    "DROP SEQUENCE IF EXISTS hash_list_change_seq",
)
_SQLITE_TRIGGERS = (
    "CREATE TRIGGER hash_list_change_seq_insert AFTER INSERT ON hash_list BEGIN "
    "UPDATE hash_list SET change_seq = "
    "(SELECT COALESCE(MAX(change_seq), 0) + 1 FROM hash_list) WHERE id = NEW.id; END",
    "CREATE TRIGGER hash_list_change_seq_update AFTER UPDATE ON hash_list "
    "WHEN NEW.change_seq IS OLD.change_seq BEGIN "
    "UPDATE hash_list SET change_seq = "
    "(SELECT COALESCE(MAX(change_seq), 0) + 1 FROM hash_list) WHERE id = NEW.id; END",
    "CREATE TRIGGER hash_lists_change_seq_insert AFTER INSERT ON hash_lists BEGIN "
    "UPDATE hash_lists SET change_seq = "
    "(SELECT COALESCE(MAX(change_seq), 0) + 1 FROM hash_lists) WHERE id = NEW.id; END",
    "CREATE TRIGGER hash_lists_change_seq_update AFTER UPDATE ON hash_lists "
    "WHEN NEW.change_seq IS OLD.change_seq BEGIN "
    "UPDATE hash_lists SET change_seq = "
    "(SELECT COALESCE(MAX(change_seq), 0) + 1 FROM hash_lists) WHERE id = NEW.id; END",
)
_SQLITE_DROP = (
    "DROP TRIGGER IF EXISTS hash_list_change_seq_insert",
    "DROP TRIGGER IF EXISTS hash_list_change_seq_update",
    "DROP TRIGGER IF EXISTS hash_lists_change_seq_insert",
    "DROP TRIGGER IF EXISTS hash_lists_change_seq_update",
)


def _run(statements) -> None:
    for statement in statements:
        op.execute(sa.text(statement))


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("change_seq", sa.BigInteger(), nullable=True))
    _run(_BACKFILL)  # before the triggers exist: the backfill is not itself a change
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(f"ix_{table}_change_seq", ["change_seq"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        _run(_PG_SEQUENCE)
        _run((_PG_FUNCTION,))
        _run(_PG_TRIGGERS)
    else:
        _run(_SQLITE_TRIGGERS)


def downgrade() -> None:
    _run(_PG_DROP if op.get_bind().dialect.name == "postgresql" else _SQLITE_DROP)
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{table}_change_seq")
            batch_op.drop_column("change_seq")
