"""Async SQL store for events, memory units and the unit change log (SQLite or PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from memory_service.domain import (
    Event,
    MemoryUnit,
    MemoryUnitDraft,
    Scope,
    ToolCall,
    as_utc,
    utc_now,
)
from stores.sql.engine import create_engine, migrate
from stores.sql.tables import EventRow, MemoryUnitRow, UnitChangeRow

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


class AlreadyCompressed(RuntimeError):
    """The events of a compression were compressed meanwhile by someone else; nothing was saved."""


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


@dataclass(frozen=True)
class UnitChange:
    seq: int
    tenant: str
    unit_id: int
    op: str


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
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


def search_text_of(draft: MemoryUnitDraft) -> str:
    return " ".join([draft.text, *draft.keywords, *draft.persons, *draft.entities, draft.topic or "", draft.location or ""])


def _scoped(stmt: Select[Any], model: type[EventRow | MemoryUnitRow], scope: Scope) -> Select[Any]:
    stmt = stmt.where(model.tenant == scope.tenant)
    for field in ("user_id", "agent_id", "session_id"):
        value = getattr(scope, field)
        if value is not None:
            stmt = stmt.where(getattr(model, field) == value)
    return stmt


def lexical_terms(query: str, limit: int = 32) -> list[str]:
    terms: list[str] = []
    for word in _WORD.findall(query.lower()):
        if word not in terms:
            terms.append(word)
    return terms[:limit]


class SqlStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    @classmethod
    async def open(cls, url: str, run_migrations: bool = True) -> SqlStore:
        engine = create_engine(url)
        if run_migrations:
            await migrate(engine)
        return cls(engine)

    async def close(self) -> None:
        await self.engine.dispose()

    def session(self) -> AsyncSession:
        return self._sessions()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    # -- events ---------------------------------------------------------------

    def _insert(self, table: Any) -> Any:
        return (pg_insert if self.dialect == "postgresql" else sqlite_insert)(table)

    async def insert_events(self, events: Sequence[Event]) -> list[str]:
        """Store events; an event_id already stored for the tenant is skipped (idempotent re-send).

        Returns the ids that were new.
        """
        if not events:
            return []
        rows = [
            {
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
            }
            for e in events
        ]
        stmt = self._insert(EventRow.__table__).on_conflict_do_nothing(index_elements=["tenant", "event_id"])
        by_tenant: dict[str, list[str]] = {}
        for e in events:
            by_tenant.setdefault(e.tenant, []).append(e.event_id)
        async with self.session() as session, session.begin():
            known: set[tuple[str, str]] = set()
            for tenant, ids in by_tenant.items():
                found = await session.scalars(
                    select(EventRow.event_id).where(EventRow.tenant == tenant, EventRow.event_id.in_(ids))
                )
                known.update((tenant, i) for i in found)
            await session.execute(stmt, rows)
        new: list[str] = []
        for e in events:
            if (e.tenant, e.event_id) not in known:
                known.add((e.tenant, e.event_id))
                new.append(e.event_id)
        return new

    async def get_events(self, tenant: str, event_ids: Sequence[str]) -> list[Event]:
        if not event_ids:
            return []
        async with self.session() as session:
            rows = await session.scalars(
                select(EventRow).where(EventRow.tenant == tenant, EventRow.event_id.in_(list(event_ids)))
            )
            return [event_from_row(r) for r in rows]

    async def list_events(self, scope: Scope, limit: int = 100, offset: int = 0) -> list[Event]:
        stmt = _scoped(select(EventRow), EventRow, scope).order_by(EventRow.timestamp, EventRow.id)
        async with self.session() as session:
            rows = await session.scalars(stmt.limit(limit).offset(offset))
            return [event_from_row(r) for r in rows]

    async def pending_scopes(self, tenant: str | None = None) -> list[Scope]:
        """Scopes (tenant, user, agent, session) that have events not yet compressed."""
        stmt = select(EventRow.tenant, EventRow.user_id, EventRow.agent_id, EventRow.session_id).where(
            EventRow.compressed_at.is_(None)
        )
        if tenant is not None:
            stmt = stmt.where(EventRow.tenant == tenant)
        async with self.session() as session:
            rows = (await session.execute(stmt.distinct())).all()
        return [Scope(tenant=t, user_id=u, agent_id=a, session_id=s) for t, u, a, s in rows]

    def _exact_scope(self, stmt: Select[Any], model: Any, scope: Scope) -> Select[Any]:
        stmt = stmt.where(model.tenant == scope.tenant)
        for field in ("user_id", "agent_id", "session_id"):
            value = getattr(scope, field)
            column = getattr(model, field)
            stmt = stmt.where(column.is_(None) if value is None else column == value)
        return stmt

    async def pending_events(self, scope: Scope, limit: int = 10_000) -> list[Event]:
        """Uncompressed events of exactly this scope, oldest first."""
        stmt = self._exact_scope(select(EventRow), EventRow, scope).where(EventRow.compressed_at.is_(None))
        async with self.session() as session:
            rows = await session.scalars(stmt.order_by(EventRow.timestamp, EventRow.id).limit(limit))
            return [event_from_row(r) for r in rows]

    async def events_before(self, scope: Scope, before: Event, count: int) -> list[Event]:
        """The `count` compressed events of exactly this scope that came just before `before`."""
        if count <= 0:
            return []
        stmt = (
            self._exact_scope(select(EventRow), EventRow, scope)
            .where(EventRow.compressed_at.is_not(None), EventRow.timestamp <= before.timestamp)
            .where(EventRow.event_id != before.event_id)
            .order_by(EventRow.timestamp.desc(), EventRow.id.desc())
            .limit(count)
        )
        async with self.session() as session:
            rows = list(await session.scalars(stmt))
        return [event_from_row(r) for r in reversed(rows)]

    async def count_pending_events(self) -> int:
        stmt = select(func.count()).select_from(EventRow).where(EventRow.compressed_at.is_(None))
        async with self.session() as session:
            return int(await session.scalar(stmt) or 0)

    async def count_events(self, scope: Scope | None = None) -> int:
        stmt = select(func.count()).select_from(EventRow)
        if scope is not None:
            stmt = _scoped(stmt, EventRow, scope)
        async with self.session() as session:
            return int(await session.scalar(stmt) or 0)

    # -- memory units ---------------------------------------------------------

    async def save_compression(
        self, tenant: str, units: Sequence[NewUnit], compressed_event_ids: Sequence[str]
    ) -> list[MemoryUnit]:
        """Store units, log each in the change log and mark the events compressed, in one transaction.

        The events are claimed first: if another process compressed any of them
        meanwhile, nothing is written and `AlreadyCompressed` is raised.
        """
        now = utc_now()
        rows = [
            {
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
                "created_at": now,
                "updated_at": now,
            }
            for u in units
        ]
        async with self.session() as session, session.begin():
            if compressed_event_ids:
                ids = sorted(set(compressed_event_ids))
                claimed = await session.execute(
                    update(EventRow)
                    .where(
                        EventRow.tenant == tenant,
                        EventRow.event_id.in_(ids),
                        EventRow.compressed_at.is_(None),
                    )
                    .values(compressed_at=now)
                )
                if claimed.rowcount != len(ids):
                    # Another process compressed (some of) these events first: keep its units.
                    raise AlreadyCompressed(f"{len(ids) - claimed.rowcount} of {len(ids)} events already compressed")
            if rows:
                table = MemoryUnitRow.__table__
                result = await session.execute(
                    table.insert().returning(table.c.id, sort_by_parameter_order=True), rows
                )
                for row, (unit_id,) in zip(rows, result.all(), strict=True):
                    row["id"] = unit_id
                await session.execute(
                    UnitChangeRow.__table__.insert(),
                    [{"tenant": tenant, "unit_id": r["id"], "op": "upsert", "at": now} for r in rows],
                )
        return [MemoryUnit.model_validate(r) for r in rows]

    async def get_unit(self, tenant: str, unit_id: int) -> MemoryUnit | None:
        async with self.session() as session:
            row = await session.scalar(
                select(MemoryUnitRow).where(MemoryUnitRow.tenant == tenant, MemoryUnitRow.id == unit_id)
            )
            return unit_from_row(row) if row else None

    async def units_by_ids(self, tenant: str, ids: Sequence[int]) -> dict[int, MemoryUnit]:
        if not ids:
            return {}
        async with self.session() as session:
            rows = await session.scalars(
                select(MemoryUnitRow).where(MemoryUnitRow.tenant == tenant, MemoryUnitRow.id.in_(list(ids)))
            )
            return {r.id: unit_from_row(r) for r in rows}

    async def list_units(
        self, scope: Scope, limit: int = 100, offset: int = 0, include_invalid: bool = False
    ) -> list[MemoryUnit]:
        stmt = _scoped(select(MemoryUnitRow), MemoryUnitRow, scope)
        if not include_invalid:
            stmt = stmt.where(MemoryUnitRow.valid_to.is_(None))
        stmt = stmt.order_by(MemoryUnitRow.id).limit(limit).offset(offset)
        async with self.session() as session:
            return [unit_from_row(r) for r in await session.scalars(stmt)]

    async def recent_units(self, scope: Scope, count: int) -> list[MemoryUnit]:
        stmt = (
            self._exact_scope(select(MemoryUnitRow), MemoryUnitRow, scope)
            .where(MemoryUnitRow.valid_to.is_(None))
            .order_by(MemoryUnitRow.id.desc())
            .limit(count)
        )
        async with self.session() as session:
            rows = list(await session.scalars(stmt))
        return [unit_from_row(r) for r in reversed(rows)]

    async def count_units(self, scope: Scope | None = None) -> int:
        stmt = select(func.count()).select_from(MemoryUnitRow)
        if scope is not None:
            stmt = _scoped(stmt, MemoryUnitRow, scope)
        async with self.session() as session:
            return int(await session.scalar(stmt) or 0)

    async def unit_ids_in_scope(self, scope: Scope) -> list[int]:
        """Ids of the currently valid units a query scope may see."""
        stmt = _scoped(select(MemoryUnitRow.id), MemoryUnitRow, scope).where(MemoryUnitRow.valid_to.is_(None))
        async with self.session() as session:
            return list(await session.scalars(stmt))

    async def delete_unit(self, tenant: str, unit_id: int) -> bool:
        async with self.session() as session, session.begin():
            result = await session.execute(
                delete(MemoryUnitRow).where(MemoryUnitRow.tenant == tenant, MemoryUnitRow.id == unit_id)
            )
            if not result.rowcount:
                return False
            session.add(UnitChangeRow(tenant=tenant, unit_id=unit_id, op="delete", at=utc_now()))
            return True

    async def lexical_search(self, scope: Scope, query: str, k: int) -> list[tuple[int, float]]:
        """Full-text search over the scope's valid units: (unit id, score), best first.

        SQLite uses FTS5's BM25; PostgreSQL uses ts_rank_cd over a generated tsvector.
        Terms are OR-ed so a unit matching any query word is a candidate.
        """
        terms = lexical_terms(query)
        if not terms:
            return []
        params: dict[str, Any] = {"tenant": scope.tenant, "k": k}
        where = ["u.tenant = :tenant", "u.valid_to IS NULL"]
        for field in ("user_id", "agent_id", "session_id"):
            value = getattr(scope, field)
            if value is not None:
                where.append(f"u.{field} = :{field}")
                params[field] = value
        if self.dialect == "sqlite":
            params["q"] = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
            sql = (
                "SELECT u.id, -bm25(memory_units_fts) AS score FROM memory_units_fts "
                "JOIN memory_units u ON u.id = memory_units_fts.rowid "
                f"WHERE memory_units_fts MATCH :q AND {' AND '.join(where)} "
                "ORDER BY bm25(memory_units_fts) LIMIT :k"
            )
        else:
            params["q"] = " or ".join(terms)
            sql = (
                "SELECT u.id, ts_rank_cd(u.search_tsv, q) AS score "
                "FROM memory_units u, websearch_to_tsquery('english', :q) q "
                f"WHERE u.search_tsv @@ q AND {' AND '.join(where)} "
                "ORDER BY score DESC LIMIT :k"
            )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(sql), params)).all()
        return [(int(r[0]), float(r[1])) for r in rows]

    # -- change log -----------------------------------------------------------

    async def changes_since(self, seq: int, limit: int = 100_000) -> list[UnitChange]:
        stmt = select(UnitChangeRow).where(UnitChangeRow.seq > seq).order_by(UnitChangeRow.seq).limit(limit)
        async with self.session() as session:
            return [UnitChange(r.seq, r.tenant, r.unit_id, r.op) for r in await session.scalars(stmt)]

    async def last_change_seq(self) -> int:
        async with self.session() as session:
            return int(await session.scalar(select(func.max(UnitChangeRow.seq))) or 0)

    async def embeddings(self, ids: Sequence[int]) -> dict[int, tuple[str, bytes]]:
        """(tenant, embedding bytes) of each existing, currently valid unit among `ids`."""
        if not ids:
            return {}
        out: dict[int, tuple[str, bytes]] = {}
        ids = list(ids)
        async with self.session() as session:
            for start in range(0, len(ids), 5000):
                chunk = ids[start : start + 5000]
                rows = await session.execute(
                    select(MemoryUnitRow.id, MemoryUnitRow.tenant, MemoryUnitRow.embedding).where(
                        MemoryUnitRow.id.in_(chunk), MemoryUnitRow.valid_to.is_(None)
                    )
                )
                out.update({r[0]: (r[1], r[2]) for r in rows})
        return out

    async def all_unit_ids(self) -> list[int]:
        async with self.session() as session:
            return list(await session.scalars(select(MemoryUnitRow.id).where(MemoryUnitRow.valid_to.is_(None))))
