"""Rows <-> domain objects: events and units read from rows, new events and units written as rows."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from memory_service.domain import Event, MemoryUnit, MemoryUnitDraft, Scope, ToolCall, as_utc
from stores.sql.tables import EventRow, MemoryUnitRow

T = TypeVar("T")


@dataclass(frozen=True)
class NewUnit:
    """A draft ready to be stored: its scope, embedding and the compressor that made it."""

    draft: MemoryUnitDraft
    scope: Scope
    embedding: bytes
    compressor: str
    compressor_version: str
    level: int = 0
    child_unit_ids: tuple[int, ...] = ()


def _opt_utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def event_from_row(row: EventRow) -> Event:
    return Event(
        tenant=row.tenant,
        event_id=row.event_id,
        user_id=row.user_id,
        agent_id=row.agent_id,
        session_id=row.session_id,
        role=row.role,  # type: ignore[arg-type]
        speaker=row.speaker,
        content=row.content,
        timestamp=as_utc(row.timestamp),
        received_at=as_utc(row.received_at),
        tool=ToolCall.model_validate(row.tool) if row.tool else None,
        metadata=row.meta or {},
    )


def event_values(e: Event, content_tokens: int) -> dict[str, Any]:
    """The column values of a new `events` row (`content_tokens`: predictor tokens of its content)."""
    return {
        "tenant": e.tenant,
        "event_id": e.event_id,
        "user_id": e.user_id,
        "agent_id": e.agent_id,
        "session_id": e.session_id,
        "role": e.role,
        "speaker": e.speaker,
        "content": e.content,
        "tool": e.tool.model_dump(mode="json") if e.tool else None,
        "timestamp": e.timestamp,
        "received_at": e.received_at,
        "metadata": e.metadata,
        "content_tokens": content_tokens,
    }


def unit_from_row(row: MemoryUnitRow) -> MemoryUnit:
    return MemoryUnit(
        id=row.id,
        tenant=row.tenant,
        user_id=row.user_id,
        agent_id=row.agent_id,
        session_id=row.session_id,
        text=row.text,
        kind=row.kind,  # type: ignore[arg-type]
        keywords=row.keywords,
        persons=row.persons,
        entities=row.entities,
        location=row.location,
        topic=row.topic,
        event_time=_opt_utc(row.event_time),
        valid_from=as_utc(row.valid_from),
        valid_to=_opt_utc(row.valid_to),
        source_event_ids=row.source_event_ids,
        level=row.level,
        child_unit_ids=row.child_unit_ids,
        importance=row.importance,
        compressor=row.compressor,
        compressor_version=row.compressor_version,
        hash=row.hash,
        superseded_by=row.superseded_by,
        history=row.history or [],
        access_count=row.access_count or 0,
        last_accessed_at=_opt_utc(row.last_accessed_at),
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


def search_text_of(draft: MemoryUnitDraft) -> str:
    return " ".join([draft.text, *draft.keywords, *draft.persons, *draft.entities, draft.topic or "", draft.location or ""])


def _unit_values(tenant: str, u: NewUnit, now: datetime, consolidated: bool) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "user_id": u.scope.user_id,
        "agent_id": u.scope.agent_id,
        "session_id": u.scope.session_id,
        "text": u.draft.text,
        "kind": u.draft.kind,
        "keywords": u.draft.keywords,
        "persons": u.draft.persons,
        "entities": u.draft.entities,
        "location": u.draft.location,
        "topic": u.draft.topic,
        "event_time": u.draft.event_time,
        "valid_from": u.draft.event_time or now,
        "valid_to": None,
        "source_event_ids": u.draft.source_event_ids,
        "level": u.level,
        "child_unit_ids": list(u.child_unit_ids),
        "importance": u.draft.importance,
        "access_count": 0,
        "compressor": u.compressor,
        "compressor_version": u.compressor_version,
        "hash": u.draft.content_hash(),
        "embedding": u.embedding,
        "search_text": search_text_of(u.draft),
        "history": [{"at": now.isoformat(), "op": "created", "by": u.compressor}],
        "consolidated_at": now if consolidated else None,
        "created_at": now,
        "updated_at": now,
    }


async def insert_units(
    session: AsyncSession, tenant: str, units: Sequence[NewUnit], now: datetime, consolidated: bool = False
) -> list[MemoryUnit]:
    """Bulk insert (multi-row statements, ids matched to `units` in order); the caller writes the change log."""
    rows = [_unit_values(tenant, u, now, consolidated) for u in units]
    if not rows:
        return []
    table = MemoryUnitRow.__table__
    if session.bind.dialect.name == "sqlite":
        ids = await _sqlite_insert_ids(session, table, rows)
    else:
        result = await session.execute(table.insert().returning(table.c.id, sort_by_parameter_order=True), rows)
        ids = [unit_id for (unit_id,) in result.all()]
    for row, unit_id in zip(rows, ids, strict=True):
        row["id"] = unit_id
    return [MemoryUnit.model_validate(r) for r in rows]


async def _sqlite_insert_ids(session: AsyncSession, table: Any, rows: list[dict[str, Any]]) -> list[int]:
    """Insert `rows` in multi-row statements; their ids in the order of `rows`.

    SQLAlchemy cannot promise RETURNING order on SQLite, so `sort_by_parameter_order` there
    runs one INSERT per row (half of ingest's time once embedding is taken out). SQLite does
    give an AUTOINCREMENT table's rows of one write transaction consecutive ids, assigned in
    VALUES order (the transaction holds the write lock from its first statement), so the
    returned ids, sorted, are the rows' ids in order; anything else is an error, never a guess.
    """
    result = await session.execute(table.insert().returning(table.c.id), rows)
    ids = sorted(unit_id for (unit_id,) in result.all())
    if len(ids) != len(rows) or ids[-1] - ids[0] != len(rows) - 1:
        raise RuntimeError(f"SQLite gave {len(rows)} inserted units non-consecutive ids {ids[:3]}...{ids[-3:]}")
    return ids


def chunks(items: Sequence[T], size: int = 5000) -> Iterator[Sequence[T]]:
    """Slices small enough for one IN (...) list (SQLite caps bound parameters)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
