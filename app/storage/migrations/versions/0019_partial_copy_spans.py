"""A partial copy's match on the item (issue 22): a run of frames matching part of a known video
(app.core.matching.frame_runs) records where, besides the note that describes it: the query's
seconds (match_start, match_end), the reference's (match_ref_start, match_ref_end), and both
shares (match_query_share: the run's frames over the item's; match_ref_share: the reference's
frames the run covers). NULL for every other match and for items without one. The scrubber
marks the span; the record keeps both shares with the match.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

COLUMNS = (
    "match_start",
    "match_end",
    "match_ref_start",
    "match_ref_end",
    "match_query_share",
    "match_ref_share",
)


def upgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        for name in COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
