"""intake: one row per arrival (intake_receipts: the drop folder, the HTTP intake, `hashdesk
ingest` on a queue), and sightings.receipt_id (unique): the sighting that records an arrival,
so a retried job never records it twice; the role "worker" (an ingest worker's account: ingest
only); intake_workers (who each queue worker is); and on PostgreSQL the job queue's own tables
(procrastinate's schema, of the version pyproject.toml pins, in the database's schema).

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


ROLES_BEFORE = ("moderator", "lead", "admin")
ROLES_AFTER = ("moderator", "lead", "admin", "worker")


def _roles(words: tuple[str, ...]) -> str:
    return f"role IN ({', '.join(repr(w) for w in words)})"


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("ck_users_role", type_="check")
        batch.create_check_constraint("ck_users_role", _roles(ROLES_AFTER))
    op.create_table(
        "intake_workers",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id")),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("last_job_at", sa.DateTime),
    )
    op.create_table(
        "intake_receipts",
        sa.Column("id", PK, primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False, index=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("original_name", sa.Text),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("external_id", sa.String(256)),
        sa.Column("source_url", sa.Text),
        sa.Column("reason", sa.Text),
        sa.Column("reporter", sa.String(256)),
        sa.Column("score", sa.Float),
        sa.Column("received_at", sa.DateTime, nullable=False),
        sa.Column("deadline", sa.DateTime),
        sa.Column("intake_source_id", sa.BigInteger),
        sa.Column("received_by_id", sa.BigInteger, sa.ForeignKey("users.id")),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("runs", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text),
        sa.Column("item_id", sa.BigInteger, sa.ForeignKey("items.id")),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("worker", sa.String(128)),
        # The arrival's own key (a drop folder's claim, an HTTP Idempotency-Key): an arrival
        # given again under the same key is the same arrival.
        sa.Column("intake_key", sa.String(128), unique=True),
        sa.CheckConstraint(
            "state IN ('waiting', 'done', 'refused')", name="ck_intake_receipts_state"
        ),
        sa.CheckConstraint("via IN ('cli', 'drop', 'http')", name="ck_intake_receipts_via"),
    )
    with op.batch_alter_table("sightings") as batch:
        batch.add_column(sa.Column("receipt_id", sa.BigInteger, nullable=True))
        batch.create_unique_constraint("uq_sightings_receipt_id", ["receipt_id"])
    if op.get_bind().dialect.name == "postgresql":
        from app.storage.jobqueue import queue_schema_sql

        driver = op.get_bind().connection.driver_connection
        assert driver is not None
        driver.execute(queue_schema_sql())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # procrastinate's tables, functions and types (all named procrastinate_*)
        op.execute(
            "DO $$ DECLARE r record; BEGIN "
            "FOR r IN SELECT c.relname FROM pg_class c WHERE c.relkind = 'r' "
            "AND c.relnamespace = current_schema()::regnamespace "
            "AND c.relname LIKE 'procrastinate\\_%' LOOP "
            "EXECUTE format('DROP TABLE %I CASCADE', r.relname); END LOOP; "
            "FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p "
            "WHERE p.pronamespace = current_schema()::regnamespace "
            "AND p.proname LIKE 'procrastinate\\_%' LOOP "
            "EXECUTE format('DROP FUNCTION %s CASCADE', r.f); END LOOP; "
            "FOR r IN SELECT t.typname FROM pg_type t "
            "WHERE t.typnamespace = current_schema()::regnamespace AND t.typtype IN ('e', 'c') "
            "AND t.typname LIKE 'procrastinate\\_%' LOOP "
            "EXECUTE format('DROP TYPE %I CASCADE', r.typname); END LOOP; END $$"
        )
    op.drop_table("intake_workers")
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("ck_users_role", type_="check")
        batch.create_check_constraint("ck_users_role", _roles(ROLES_BEFORE))
    with op.batch_alter_table("sightings") as batch:
        batch.drop_constraint("uq_sightings_receipt_id", type_="unique")
        batch.drop_column("receipt_id")
    op.drop_table("intake_receipts")
