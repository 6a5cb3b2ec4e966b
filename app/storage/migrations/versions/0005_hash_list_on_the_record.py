"""hash list on the record: a decision's chain entry covers the hashes it added

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        # SHA-256 of the hash-list rows the decision added (app.core.model.chain.hash_rows_digest),
        # covered by the chain hash: `audit verify` recomputes the active list from it.
        batch.add_column(sa.Column("hashes_digest", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("hashes_digest")
