"""An index on an owner's units by event time: consolidation reads only the clusters it touched.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Abstractions cluster an owner's units by subject and month (`memory_service.consolidate`);
a run rebuilds only the clusters its new or closed units belong to, and reads their
members by (owner, event_time) range instead of reading all of the owner's units.
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_units_owner_time", "memory_units", ["tenant", "user_id", "agent_id", "event_time"])


def downgrade() -> None:
    op.drop_index("ix_units_owner_time", table_name="memory_units")
