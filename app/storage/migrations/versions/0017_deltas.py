"""Hash deltas out (issue 23, 3): ``deltas`` (one row per numbered delta: the change_seq
window it covers, its time span, counts, the incident's label, whether and where it was
written, its last failure), ``delta_entries`` (which hash-list entries went into which delta,
added or retracted: the next delta starts where the last ended, and a re-run of one number
writes the same bytes) and ``delta_imports`` (on a partner's side: the deltas imported into a
list, in order). Written through hd_api_delta_* on a team server (app/storage/sql/api_deltas.sql).

Revision ID: 0017
Revises: 0016 (after the incident model)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "deltas",
        sa.Column("id", PK, primary_key=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("lower_seq", sa.BigInteger(), nullable=False),
        sa.Column("upper_seq", sa.BigInteger(), nullable=False),
        sa.Column("span_start", sa.DateTime(), nullable=True),
        sa.Column("span_end", sa.DateTime(), nullable=False),
        sa.Column("incident_id", sa.BigInteger(), nullable=True),
        sa.Column("label", sa.String(255), nullable=True),
        sa.Column("formats", sa.Text(), nullable=False),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("retracted", sa.Integer(), nullable=False),
        sa.Column("planned_by", PK, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("written_at", sa.DateTime(), nullable=True),
        sa.Column("written_by", PK, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("manifest_sha256", sa.String(64), nullable=True),
        sa.Column("destination", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("seq", name="uq_deltas_seq"),
        sa.CheckConstraint("seq > 0 AND lower_seq <= upper_seq", name="ck_deltas_window"),
    )
    op.create_table(
        "delta_entries",
        sa.Column("delta_seq", sa.BigInteger(), sa.ForeignKey("deltas.seq"), primary_key=True),
        sa.Column("entry_id", sa.BigInteger(), sa.ForeignKey("hash_list.id"), primary_key=True),
        sa.Column("op", sa.String(8), nullable=False),
        sa.CheckConstraint("op IN ('add', 'retract')", name="ck_delta_entries_op"),
    )
    op.create_index("ix_delta_entries_entry_id", "delta_entries", ["entry_id", "delta_seq"])
    op.create_table(
        "delta_imports",
        sa.Column("id", PK, primary_key=True),
        sa.Column("list_name", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("label", sa.String(255), nullable=True),
        sa.Column("import_uuid", sa.String(36), nullable=True),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.Column("imported_by", PK, sa.ForeignKey("users.id"), nullable=True),
        sa.UniqueConstraint("list_name", "seq", name="uq_delta_imports_list_seq"),
    )


def downgrade() -> None:
    op.drop_table("delta_imports")
    op.drop_index("ix_delta_entries_entry_id", table_name="delta_entries")
    op.drop_table("delta_entries")
    op.drop_table("deltas")
