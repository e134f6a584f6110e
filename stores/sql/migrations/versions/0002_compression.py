"""Compression cache and the per-event "retry with the LM" mark.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UtcDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "compression_cache",
        sa.Column("tenant", sa.String(128), primary_key=True),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("compressor", sa.String(64), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("prompt_version", sa.String(32), nullable=False),
        sa.Column("drafts", sa.JSON, nullable=False),
        sa.Column("rejected", sa.Integer, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    op.add_column("events", sa.Column("retry_compressor", sa.String(64)))
    op.create_index("ix_events_retry", "events", ["tenant", "retry_compressor"])


def downgrade() -> None:
    op.drop_index("ix_events_retry", table_name="events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("retry_compressor")
    op.drop_table("compression_cache")
