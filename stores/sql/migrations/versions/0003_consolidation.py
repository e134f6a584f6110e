"""Consolidation state on memory units: superseded_by, consolidated_at, last access.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UtcDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("memory_units") as batch:
        batch.add_column(sa.Column("superseded_by", sa.BigInteger))
        batch.add_column(sa.Column("consolidated_at", UtcDateTime))
        batch.add_column(sa.Column("last_accessed_at", UtcDateTime))
    op.create_index("ix_units_unconsolidated", "memory_units", ["tenant", "consolidated_at"])


def downgrade() -> None:
    op.drop_index("ix_units_unconsolidated", table_name="memory_units")
    with op.batch_alter_table("memory_units") as batch:
        batch.drop_column("last_accessed_at")
        batch.drop_column("consolidated_at")
        batch.drop_column("superseded_by")
