"""intake: one row per arrival (intake_receipts: the drop folder, the HTTP intake, `hashdesk
ingest` on a queue), and sightings.receipt_id (unique): the sighting that records an arrival,
so a retried job never records it twice.

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


def upgrade() -> None:
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
        sa.CheckConstraint(
            "state IN ('waiting', 'done', 'refused')", name="ck_intake_receipts_state"
        ),
        sa.CheckConstraint("via IN ('cli', 'drop', 'http')", name="ck_intake_receipts_via"),
    )
    with op.batch_alter_table("sightings") as batch:
        batch.add_column(sa.Column("receipt_id", sa.BigInteger, nullable=True))
        batch.create_unique_constraint("uq_sightings_receipt_id", ["receipt_id"])


def downgrade() -> None:
    with op.batch_alter_table("sightings") as batch:
        batch.drop_constraint("uq_sightings_receipt_id", type_="unique")
        batch.drop_column("receipt_id")
    op.drop_table("intake_receipts")
