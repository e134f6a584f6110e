"""Which statement-key derivation wrote each tenant's `unit_statements` rows; those rows by unit.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03

Consolidation finds the units a new one updates by `subject|attribute` key (0007), and keys are
written once, when a unit is first consolidated. Units consolidated before 0007 have none, and
units consolidated before a later change of the derivation (alias and canonical keys) have old
ones: an update today cannot find them. One row per tenant records the oldest derivation
(`memory_service.consolidate.statements.STATEMENT_KEYS_VERSION`) that may have written its
keys, so `memory-service doctor` can tell, and `memory-service consolidate --rebuild-statements`
raises it after re-deriving them. What wrote the keys of a tenant that already has consolidated
units is not known here: those tenants get version 0.

`ix_unit_statements_unit` (tenant, unit_id) finds a unit's rows: the primary key leads with the
key, so deleting the rows of a batch of units (the rebuild, an erasure) read all of the tenant's.
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_unit_statements_unit", "unit_statements", ["tenant", "unit_id"])
    versions = op.create_table(
        "statement_key_versions",
        sa.Column("tenant", sa.String(128), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    units = sa.table("memory_units", sa.column("tenant", sa.String), sa.column("consolidated_at", sa.DateTime))
    now = datetime.now(UTC)
    op.get_bind().execute(
        versions.insert().from_select(
            ["tenant", "version", "updated_at"],
            sa.select(units.c.tenant, sa.literal(0), sa.literal(now, sa.DateTime(timezone=True)))
            .where(units.c.consolidated_at.is_not(None))
            .distinct(),
        )
    )


def downgrade() -> None:
    op.drop_table("statement_key_versions")
    op.drop_index("ix_unit_statements_unit", table_name="unit_statements")
