"""Incidents (issue 23): an incident declared by a lead and concluded later, its seed hashes,
the people moved onto it, the items under it (items.incident_id), and the re-scans run on every
new hash with what each changed (rescans) and the rejected items they found matching
(rescan_misses, for a lead).

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", PK, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("label", sa.String(255), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("ended_at", sa.DateTime, nullable=True),
        sa.Column("declared_by", PK, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("concluded_by", PK, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("sources", sa.Text, nullable=False, server_default="[]"),
        sa.Column("categories", sa.Text, nullable=False, server_default="[]"),
        sa.Column("seed_items", sa.Text, nullable=False, server_default="[]"),
        sa.Column("delta_minutes", sa.Integer, nullable=False, server_default="5"),
        sa.Column("delta_formats", sa.Text, nullable=False, server_default='["pytx"]'),
    )
    op.create_index("ix_incidents_ended_at", "incidents", ["ended_at"])
    op.create_table(
        "incident_hashes",
        sa.Column("id", PK, primary_key=True),
        sa.Column("incident_id", PK, sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("value", sa.String(64), nullable=False),
        sa.Column("variant", sa.String(16), nullable=False, server_default=""),
        sa.Column("item_id", PK, sa.ForeignKey("items.id"), nullable=True),
    )
    op.create_index("ix_incident_hashes_incident", "incident_hashes", ["incident_id"])
    op.create_table(
        "incident_assignments",
        sa.Column("incident_id", PK, sa.ForeignKey("incidents.id"), primary_key=True),
        sa.Column("user_id", PK, sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("assigned_by", PK, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("assigned_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "rescans",
        sa.Column("id", PK, primary_key=True),
        sa.Column("incident_id", PK, sa.ForeignKey("incidents.id"), nullable=True),
        sa.Column("trigger", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime, nullable=False),
        sa.Column("searched_hashes", sa.Integer, nullable=False),
        sa.Column("items_scanned", sa.Integer, nullable=False),
        sa.Column("matched", sa.Integer, nullable=False),
        sa.Column("resolved", sa.Integer, nullable=False),
        sa.Column("badged", sa.Integer, nullable=False),
        sa.Column("tagged", sa.Integer, nullable=False),
        sa.Column("flagged_misses", sa.Integer, nullable=False),
        sa.Column("counted_decided", sa.Integer, nullable=False),
        sa.Column("run_by", PK, sa.ForeignKey("users.id"), nullable=True),
    )
    op.create_index("ix_rescans_incident", "rescans", ["incident_id", "started_at"])
    op.create_table(
        "rescan_misses",
        sa.Column("id", PK, primary_key=True),
        sa.Column("rescan_id", PK, sa.ForeignKey("rescans.id"), nullable=False),
        sa.Column("item_id", PK, sa.ForeignKey("items.id"), nullable=False),
        sa.Column("entry_id", PK, sa.ForeignKey("hash_list.id"), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("flagged_at", sa.DateTime, nullable=False),
        sa.Column("cleared_at", sa.DateTime, nullable=True),
        sa.Column("cleared_by", PK, sa.ForeignKey("users.id"), nullable=True),
    )
    op.create_index("ix_rescan_misses_open", "rescan_misses", ["cleared_at", "flagged_at"])
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("incident_id", sa.BigInteger, nullable=True))
        batch.create_index("ix_items_incident", ["incident_id", "status"])


def downgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.drop_index("ix_items_incident")
        batch.drop_column("incident_id")
    op.drop_table("rescan_misses")
    op.drop_table("rescans")
    op.drop_table("incident_assignments")
    op.drop_table("incident_hashes")
    op.drop_table("incidents")
