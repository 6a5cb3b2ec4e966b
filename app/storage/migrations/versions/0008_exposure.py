"""exposure: every unblurred moment (who, item, kind, when, how long, how much); a person's
comfort defaults (greyscale, blur level)

Revision ID: 0008
Revises: 0006 (0007 is added in parallel; the chain is fixed at merge)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "exposure_events",
        sa.Column("id", PK, nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("user_id", PK, nullable=False),
        sa.Column("item_id", PK, nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("area", sa.Float(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uuid"),
    )
    with op.batch_alter_table("exposure_events", schema=None) as batch_op:
        batch_op.create_index("ix_exposure_user_started", ["user_id", "started_at"])
        batch_op.create_index("ix_exposure_events_item_id", ["item_id"])
    op.create_table(
        "comfort_preferences",
        sa.Column("user_id", PK, nullable=False),
        sa.Column("greyscale", sa.Boolean(), nullable=False),
        sa.Column("blur_level", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("user_id"),
    )


def downgrade() -> None:
    op.drop_table("comfort_preferences")
    with op.batch_alter_table("exposure_events", schema=None) as batch_op:
        batch_op.drop_index("ix_exposure_events_item_id")
        batch_op.drop_index("ix_exposure_user_started")
    op.drop_table("exposure_events")
