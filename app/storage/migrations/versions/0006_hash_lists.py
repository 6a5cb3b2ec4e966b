"""hash lists that travel: lists with provenance and policy, entry provenance, disable,
flood guard, feedback

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "hash_lists",
        sa.Column("id", PK, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=True),
        sa.Column("policy", sa.String(length=16), nullable=False),
        sa.Column("pdq_threshold", sa.Integer(), nullable=True),
        sa.Column("allow", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("last_import_at", sa.DateTime(), nullable=True),
        sa.Column("last_import_note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    with op.batch_alter_table("hash_list", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_id", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("labels", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("meta", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("first_seen", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("last_seen", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("disabled_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("disabled_by", PK, nullable=True))
        batch_op.add_column(sa.Column("disabled_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("flood_guarded_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("changed_at", sa.DateTime(), nullable=True))
        batch_op.create_foreign_key(
            "fk_hash_list_disabled_by_users", "users", ["disabled_by"], ["id"]
        )
        batch_op.create_index("ix_hash_list_list_name", ["list_name"])
        batch_op.create_index("ix_hash_list_changed_at", ["changed_at"])
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("known_entry_id", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_items_known_entry", ["known_entry_id", "created_at"])
    op.create_table(
        "hash_list_feedback",
        sa.Column("id", PK, nullable=False),
        sa.Column("entry_id", PK, nullable=False),
        sa.Column("item_id", PK, nullable=True),
        sa.Column("user_id", PK, nullable=True),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["hash_list.id"]),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_hash_list_feedback_entry_id", "hash_list_feedback", ["entry_id"])


def downgrade() -> None:
    op.drop_index("ix_hash_list_feedback_entry_id", table_name="hash_list_feedback")
    op.drop_table("hash_list_feedback")
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_index("ix_items_known_entry")
        batch_op.drop_column("known_entry_id")
    with op.batch_alter_table("hash_list", schema=None) as batch_op:
        batch_op.drop_index("ix_hash_list_changed_at")
        batch_op.drop_index("ix_hash_list_list_name")
        batch_op.drop_constraint("fk_hash_list_disabled_by_users", type_="foreignkey")
        for name in (
            "changed_at",
            "flood_guarded_at",
            "disabled_reason",
            "disabled_by",
            "disabled_at",
            "last_seen",
            "first_seen",
            "meta",
            "labels",
            "external_id",
        ):
            batch_op.drop_column(name)
    op.drop_table("hash_lists")
