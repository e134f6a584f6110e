"""Statement keys: the (subject, attribute) pairs each unit states, for consolidation.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

Paraphrased restatements and updates of one fact sit far apart in embedding space
("I live in Lisbon" / "We finished moving into our place in Osaka": cosine ~0.4), so
consolidation also finds a new unit's candidates by the normalised `subject|attribute`
keys of the statements it makes (`memory_service.consolidate.statements`). The primary
key (tenant, key, unit_id) is the lookup index. Units consolidated before this revision
have no rows; they are still found by embedding similarity.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "unit_statements",
        sa.Column("tenant", sa.String(128), primary_key=True),
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("unit_id", sa.BigInteger(), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("unit_statements")
