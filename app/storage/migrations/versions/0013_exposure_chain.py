"""exposure_events on a chain of their own: prev_hash and entry_hash, as decisions and audit
events have (app.core.model.chain.exposure_chain_fields names what the hash covers), so
`audit verify` names an exposure record altered, deleted or planted by hand. Rows recorded
before this revision have none and are not on the chain.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("exposure_events") as batch:
        batch.add_column(sa.Column("prev_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("entry_hash", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("exposure_events") as batch:
        batch.drop_column("entry_hash")
        batch.drop_column("prev_hash")
