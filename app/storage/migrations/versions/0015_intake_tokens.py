"""The HTTP intake's per-source tokens (intake_tokens: a name, the SHA-256 of the token, who
made and who revoked it, when) and the reports that came without a file (intake_reports: the
sidecar's facts, the URL as text only, kept open for the leads until one closes it).

The token itself is never stored: it is printed once when made. On a team server people read
neither table's token_hash column (grants.sql); the server's functions alone
(app/storage/sql/api_tokens.sql) compare a presented token's hash with it.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "intake_tokens",
        sa.Column("id", PK, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_by_id", PK, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("revoked_by_id", PK, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("revoked_at", sa.DateTime, nullable=True),
    )
    op.create_table(
        "intake_reports",
        sa.Column("id", PK, primary_key=True),
        sa.Column("token_id", PK, sa.ForeignKey("intake_tokens.id"), nullable=True),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("external_id", sa.String(256), nullable=True),
        sa.Column("source_url", sa.Text, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("reporter", sa.Text, nullable=True),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("received_at", sa.DateTime, nullable=False),
        sa.Column("deadline", sa.DateTime, nullable=True),
        sa.Column("closed_by_id", PK, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("closed_at", sa.DateTime, nullable=True),
        sa.Column("closed_note", sa.Text, nullable=True),
    )
    op.create_index("ix_intake_reports_open", "intake_reports", ["closed_at", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_intake_reports_open", table_name="intake_reports")
    op.drop_table("intake_reports")
    op.drop_table("intake_tokens")
