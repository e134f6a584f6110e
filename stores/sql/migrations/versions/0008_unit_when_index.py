"""An index on a unit's time for time-range questions: (tenant, coalesce(event_time, valid_from)).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

Context queries that name a time ("in May 2023") look up the scope's units in that range
(`stores.sql.search.UnitSearch.unit_ids_in_time_range`). Without this index that lookup
reads every unit of the tenant: 0.1-0.7 s at 10^5 units (`benchmarks/scale.py`).
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_units_tenant_when", "memory_units", ["tenant", sa.text("coalesce(event_time, valid_from)")])


def downgrade() -> None:
    op.drop_index("ix_units_tenant_when", table_name="memory_units")
