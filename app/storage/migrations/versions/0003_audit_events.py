"""audit events chain, hash-list retraction watermark index

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", PK, nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("actor_id", PK, nullable=True),
        sa.Column("actor_name", sa.String(length=64), nullable=True),
        sa.Column("subject", sa.String(length=255), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uuid"),
    )
    op.create_index(
        "ix_audit_events_kind_subject_time",
        "audit_events",
        ["kind", "subject", "occurred_at"],
        unique=False,
    )
    with op.batch_alter_table("hash_list", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_hash_list_retracted_at"), ["retracted_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("hash_list", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hash_list_retracted_at"))
    op.drop_index("ix_audit_events_kind_subject_time", table_name="audit_events")
    op.drop_table("audit_events")
