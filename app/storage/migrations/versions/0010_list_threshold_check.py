"""hash_lists.pdq_threshold: the database refuses a threshold outside 0..64 (bits of 256), the
range every path that sets a list rule checks (app.core.matching.hash_lists.check_pdq_threshold)

A threshold already outside it (accepted by `lists import --threshold` before it was checked)
is cleared: the list falls back to the workstation's threshold rather than matching unrelated
pictures.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

CHECK = "ck_hash_lists_pdq_threshold"
RANGE = "pdq_threshold IS NULL OR (pdq_threshold >= 0 AND pdq_threshold <= 64)"


def upgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE hash_lists SET pdq_threshold = NULL "
            "WHERE pdq_threshold < 0 OR pdq_threshold > 64"
        )
    )
    with op.batch_alter_table("hash_lists", schema=None) as batch_op:
        batch_op.create_check_constraint(CHECK, RANGE)


def downgrade() -> None:
    with op.batch_alter_table("hash_lists", schema=None) as batch_op:
        batch_op.drop_constraint(CHECK, type_="check")
