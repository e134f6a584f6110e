"""Events, memory units, the unit change log and the lexical index.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UtcDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("event_id", sa.String(256), nullable=False),
        sa.Column("user_id", sa.String(256)),
        sa.Column("agent_id", sa.String(256)),
        sa.Column("session_id", sa.String(256)),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("speaker", sa.String(256)),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("tool", sa.JSON),
        sa.Column("timestamp", UtcDateTime, nullable=False),
        sa.Column("received_at", UtcDateTime, nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("compressed_at", UtcDateTime),
        sa.UniqueConstraint("tenant", "event_id", name="uq_events_tenant_event_id"),
    )
    op.create_index("ix_events_scope", "events", ["tenant", "user_id", "agent_id", "session_id", "timestamp"])
    op.create_index("ix_events_pending", "events", ["tenant", "compressed_at"])

    op.create_table(
        "memory_units",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("user_id", sa.String(256)),
        sa.Column("agent_id", sa.String(256)),
        sa.Column("session_id", sa.String(256)),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("keywords", sa.JSON, nullable=False),
        sa.Column("persons", sa.JSON, nullable=False),
        sa.Column("entities", sa.JSON, nullable=False),
        sa.Column("location", sa.String(256)),
        sa.Column("topic", sa.String(256)),
        sa.Column("event_time", UtcDateTime),
        sa.Column("valid_from", UtcDateTime, nullable=False),
        sa.Column("valid_to", UtcDateTime),
        sa.Column("source_event_ids", sa.JSON, nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("child_unit_ids", sa.JSON, nullable=False),
        sa.Column("importance", sa.Float, nullable=False),
        sa.Column("access_count", sa.Integer, nullable=False),
        sa.Column("compressor", sa.String(64), nullable=False),
        sa.Column("compressor_version", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("embedding", sa.LargeBinary, nullable=False),
        sa.Column("search_text", sa.Text, nullable=False),
        sa.Column("history", sa.JSON, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        # Never reuse the id of a deleted unit: it is also the FAISS id and the change-log key.
        sqlite_autoincrement=True,
    )
    op.create_index("ix_units_scope", "memory_units", ["tenant", "user_id", "agent_id", "session_id"])
    op.create_index("ix_units_agent", "memory_units", ["tenant", "agent_id"])
    op.create_index("ix_units_hash", "memory_units", ["tenant", "hash"])

    op.create_table(
        "unit_changes",
        sa.Column("seq", BigId, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("unit_id", sa.BigInteger, nullable=False),
        sa.Column("op", sa.String(16), nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_unit_changes_tenant_seq", "unit_changes", ["tenant", "seq"])

    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        # FTS5 external-content table kept in step with memory_units by triggers.
        op.execute(
            "CREATE VIRTUAL TABLE memory_units_fts USING fts5("
            "search_text, content='memory_units', content_rowid='id', tokenize='porter unicode61')"
        )
        op.execute(
            "CREATE TRIGGER memory_units_fts_ai AFTER INSERT ON memory_units BEGIN "
            "INSERT INTO memory_units_fts(rowid, search_text) VALUES (new.id, new.search_text); END"
        )
        op.execute(
            "CREATE TRIGGER memory_units_fts_ad AFTER DELETE ON memory_units BEGIN "
            "INSERT INTO memory_units_fts(memory_units_fts, rowid, search_text) "
            "VALUES ('delete', old.id, old.search_text); END"
        )
        op.execute(
            "CREATE TRIGGER memory_units_fts_au AFTER UPDATE OF search_text ON memory_units BEGIN "
            "INSERT INTO memory_units_fts(memory_units_fts, rowid, search_text) "
            "VALUES ('delete', old.id, old.search_text); "
            "INSERT INTO memory_units_fts(rowid, search_text) VALUES (new.id, new.search_text); END"
        )
    elif dialect == "postgresql":
        op.execute(
            "ALTER TABLE memory_units ADD COLUMN search_tsv tsvector "
            "GENERATED ALWAYS AS (to_tsvector('english', search_text)) STORED"
        )
        op.execute("CREATE INDEX ix_units_search_tsv ON memory_units USING GIN (search_tsv)")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in ("memory_units_fts_ai", "memory_units_fts_ad", "memory_units_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS memory_units_fts")
    op.drop_table("unit_changes")
    op.drop_table("memory_units")
    op.drop_table("events")
