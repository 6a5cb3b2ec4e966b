"""lead workspace: second reviews, indexes for history and overturn look-ups

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "second_reviews",
        sa.Column("id", PK, nullable=False),
        sa.Column("item_id", PK, nullable=False),
        sa.Column("first_decision_uuid", sa.String(length=36), nullable=False),
        sa.Column("first_user_id", PK, nullable=True),
        sa.Column("first_verdict", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("claimed_by", PK, nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(), nullable=True),
        sa.Column("second_user_id", PK, nullable=True),
        sa.Column("second_decision_uuid", sa.String(length=36), nullable=True),
        sa.Column("second_verdict", sa.String(length=16), nullable=True),
        sa.Column("agreed", sa.Boolean(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("done_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"]),
        sa.ForeignKeyConstraint(["first_user_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["claimed_by"], ["users.id"]),
        sa.ForeignKeyConstraint(["second_user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("first_decision_uuid"),
    )
    op.create_index("ix_second_reviews_queue", "second_reviews", ["status", "created_at"])
    op.create_index("ix_second_reviews_item_id", "second_reviews", ["item_id"])
    op.create_index("ix_second_reviews_done_at", "second_reviews", ["done_at"])
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_decisions_supersedes",
            ["supersedes"],
            unique=False,
            sqlite_where=sa.text("supersedes IS NOT NULL"),
            postgresql_where=sa.text("supersedes IS NOT NULL"),
        )
        batch_op.create_index("ix_decisions_verdict_time", ["verdict", "decided_at"])
    with op.batch_alter_table("sightings", schema=None) as batch_op:
        batch_op.create_index("ix_sightings_external_id", ["external_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sightings", schema=None) as batch_op:
        batch_op.drop_index("ix_sightings_external_id")
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_index("ix_decisions_verdict_time")
        batch_op.drop_index("ix_decisions_supersedes")
    op.drop_index("ix_second_reviews_done_at", table_name="second_reviews")
    op.drop_index("ix_second_reviews_item_id", table_name="second_reviews")
    op.drop_index("ix_second_reviews_queue", table_name="second_reviews")
    op.drop_table("second_reviews")
