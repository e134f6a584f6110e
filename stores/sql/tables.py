"""SQL tables. SQL is the source of truth; every index is rebuilt from here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")
UtcDateTime = DateTime(timezone=True)


class Base(DeclarativeBase):
    pass


class EventRow(Base):
    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("tenant", "event_id", name="uq_events_tenant_event_id"),
        Index("ix_events_scope", "tenant", "user_id", "agent_id", "session_id", "timestamp"),
        Index("ix_events_pending", "tenant", "compressed_at"),
        Index("ix_events_retry", "tenant", "retry_compressor"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(128))
    event_id: Mapped[str] = mapped_column(String(256))
    user_id: Mapped[str | None] = mapped_column(String(256))
    agent_id: Mapped[str | None] = mapped_column(String(256))
    session_id: Mapped[str | None] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    speaker: Mapped[str | None] = mapped_column(String(256))
    content: Mapped[str] = mapped_column(Text)
    tool: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    timestamp: Mapped[datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    # Processing state only: the event itself is never changed.
    compressed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Set when an LM compressor failed on the event's window and `extractive` stood in:
    # the name of the compressor that should try again (migration 0002).
    retry_compressor: Mapped[str | None] = mapped_column(String(64))
    # Predictor tokens of `content`, counted at ingest (migration 0005 backfilled older
    # rows): a scope's history size is a SUM, not a re-read and re-tokenisation.
    content_tokens: Mapped[int | None] = mapped_column(Integer)


class MemoryUnitRow(Base):
    __tablename__ = "memory_units"
    __table_args__ = (
        Index("ix_units_scope", "tenant", "user_id", "agent_id", "session_id"),
        Index("ix_units_agent", "tenant", "agent_id"),
        Index("ix_units_hash", "tenant", "hash"),
        Index("ix_units_unconsolidated", "tenant", "consolidated_at"),
        Index("ix_units_owner_time", "tenant", "user_id", "agent_id", "event_time"),  # migration 0006
        Index("ix_units_tenant_when", "tenant", text("coalesce(event_time, valid_from)")),  # migration 0008
        Index("ix_units_user_when", "tenant", "user_id", text("coalesce(event_time, valid_from)")),  # migration 0010
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[str | None] = mapped_column(String(256))
    agent_id: Mapped[str | None] = mapped_column(String(256))
    session_id: Mapped[str | None] = mapped_column(String(256))
    text: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    persons: Mapped[list[str]] = mapped_column(JSON, default=list)
    entities: Mapped[list[str]] = mapped_column(JSON, default=list)
    location: Mapped[str | None] = mapped_column(String(256))
    topic: Mapped[str | None] = mapped_column(String(256))
    event_time: Mapped[datetime | None] = mapped_column(UtcDateTime)
    valid_from: Mapped[datetime] = mapped_column(UtcDateTime)
    valid_to: Mapped[datetime | None] = mapped_column(UtcDateTime)
    source_event_ids: Mapped[list[str]] = mapped_column(JSON)
    level: Mapped[int] = mapped_column(Integer, default=0)
    child_unit_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    importance: Mapped[float] = mapped_column(Float, default=0.5)
    access_count: Mapped[int] = mapped_column(Integer, default=0)
    compressor: Mapped[str] = mapped_column(String(64))
    compressor_version: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    # Text the lexical index covers: unit text plus keywords, persons, entities.
    search_text: Mapped[str] = mapped_column(Text)
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Set when a unit is closed by a merge or an update: the unit that replaced it.
    superseded_by: Mapped[int | None] = mapped_column(BigInteger)
    # NULL until the consolidation worker has compared this unit with the rest of its scope.
    consolidated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_accessed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CompressionCacheRow(Base):
    """An LM compressor's result for one window, keyed by a hash of the window's content,
    the compressor, the model and the prompt version (migration 0002)."""

    __tablename__ = "compression_cache"

    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    compressor: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(256))
    prompt_version: Mapped[str] = mapped_column(String(32))
    # Drafts with `source_event_ids` as positions in the window, so the entry serves
    # the same content under other event ids.
    drafts: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class UnitStatementRow(Base):
    """The `subject|attribute` keys a unit states (migration 0007), written when consolidation
    first examines it: a new unit finds the units that state the same attribute of the same
    subject through this index, whatever their wording (`memory_service.consolidate.statements`).

    Only a candidate index: consolidation re-reads the statements from the units' text, so a
    row of a closed unit is filtered out, and one of an older extractor only costs a lookup.
    """

    __tablename__ = "unit_statements"
    # A unit's rows, for deleting them (a unit's erasure, a key rebuild): migration 0011.
    __table_args__ = (Index("ix_unit_statements_unit", "tenant", "unit_id"),)

    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    unit_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)


class StatementKeyVersionRow(Base):
    """Per tenant, the oldest statement-key derivation (`statements.STATEMENT_KEYS_VERSION`) that may
    have written its `unit_statements` rows (migration 0011; 0: written before versions were recorded).

    Consolidation records its version for a tenant that has no row yet; rebuilding a whole tenant's
    keys (`stores/sql/statement_keys.py`) sets it; `memory-service doctor` reports tenants below the code's.
    """

    __tablename__ = "statement_key_versions"

    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class UnitChangeRow(Base):
    """The change log: one row per unit write, in the same transaction.

    Indexes remember the last `seq` they applied and catch up from it.
    """

    __tablename__ = "unit_changes"
    __table_args__ = (Index("ix_unit_changes_tenant_seq", "tenant", "seq"), {"sqlite_autoincrement": True})

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(128))
    unit_id: Mapped[int] = mapped_column(BigInteger)
    op: Mapped[str] = mapped_column(String(16))  # "upsert" | "delete"
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class ApiKeyRow(Base):
    """A tenant's API key (migration 0004). Only a hash of the secret is stored; see `memory_service.auth`."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_tenant", "tenant"),)

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    name: Mapped[str | None] = mapped_column(String(256))
    secret_hash: Mapped[str] = mapped_column(String(64))
    # Requests per minute for this key; NULL = the service's default.
    rate_limit_per_minute: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
