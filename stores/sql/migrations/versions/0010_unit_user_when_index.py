"""An index on a user's units by time: (tenant, user_id, coalesce(event_time, valid_from)).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

0008's (tenant, time) index serves a time-range question over a whole tenant or agent,
but a user's scope then reads every unit of the tenant in that range and drops the other
users' (`UnitSearch.unit_ids_in_time_range`): at 3x10^5 units a user's 30-day range took
twice as long as the whole tenant's (20 vs 11 ms, `benchmarks/scale.py`), and it grows
with the tenant, not the user. Most context queries ask a user's scope.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_units_user_when", "memory_units", ["tenant", "user_id", sa.text("coalesce(event_time, valid_from)")]
    )


def downgrade() -> None:
    op.drop_index("ix_units_user_when", table_name="memory_units")
