"""Async SQL store for events, memory units and the unit change log (SQLite or PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

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

T = TypeVar("T")

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


class StaleConsolidation(RuntimeError):
    """The units a consolidation plan was computed from changed meanwhile; nothing was saved."""


@dataclass(frozen=True)
class UnitClosure:
    """Close a unit: it stays stored and reachable through history, but is no longer valid.

    `valid_to=None` closes it at its own `valid_from` (a duplicate or a replaced abstraction:
    it was never a separate truth), otherwise at that time (a fact updated then).
    `superseded_by` is a unit id, or `replaced_by_new` an index into the new units saved
    in the same call.
    """

    unit_id: int
    note: dict[str, Any]
    valid_to: datetime | None = None
    superseded_by: int | None = None
    replaced_by_new: int | None = None


@dataclass(frozen=True)
class ProvenanceMerge:
    unit_id: int
    event_ids: tuple[str, ...]
    note: dict[str, Any]


@dataclass(frozen=True)
class ErasedEvent:
    event: Event
    unit_ids: list[int]
    recompress: list[str]


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
        superseded_by=row.superseded_by,
        history=row.history or [],
        access_count=row.access_count or 0,
        last_accessed_at=_opt_utc(row.last_accessed_at),
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


def search_text_of(draft: MemoryUnitDraft) -> str:
    return " ".join([draft.text, *draft.keywords, *draft.persons, *draft.entities, draft.topic or "", draft.location or ""])


def in_scope(stmt: Select[Any], model: type[EventRow | MemoryUnitRow], scope: Scope) -> Select[Any]:
    """Query-scope semantics: fields given must match, fields not given match anything."""
    stmt = stmt.where(model.tenant == scope.tenant)
    for field in ("user_id", "agent_id", "session_id"):
        value = getattr(scope, field)
        if value is not None:
            stmt = stmt.where(getattr(model, field) == value)
    return stmt


def owner_of_event(event: Event) -> Scope:
    return Scope(tenant=event.tenant, user_id=event.user_id, agent_id=event.agent_id)


def owned_by(stmt: Select[Any], owner: Scope) -> Select[Any]:
    """Units of exactly this user/agent pair, in any session."""
    stmt = stmt.where(MemoryUnitRow.tenant == owner.tenant)
    for field in ("user_id", "agent_id"):
        value = getattr(owner, field)
        column = getattr(MemoryUnitRow, field)
        stmt = stmt.where(column.is_(None) if value is None else column == value)
    return stmt


def chunks(items: Sequence[T], size: int = 5000) -> Iterator[Sequence[T]]:
    """Slices small enough for one IN (...) list (SQLite caps bound parameters)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def delete_units_logged(session: AsyncSession, tenant: str, unit_ids: Sequence[int], at: datetime) -> None:
    """Delete units and log each deletion in the same transaction (FAISS and caches follow the log)."""
    for chunk in chunks(unit_ids):
        await session.execute(delete(MemoryUnitRow).where(MemoryUnitRow.id.in_(chunk)))
    if unit_ids:
        await session.execute(
            UnitChangeRow.__table__.insert(),
            [{"tenant": tenant, "unit_id": i, "op": "delete", "at": at} for i in unit_ids],
        )


def _valid_at(stmt: Select[Any], as_of: datetime | None) -> Select[Any]:
    """Units valid now (not closed), or valid at `as_of` in event time."""
    if as_of is None:
        return stmt.where(MemoryUnitRow.valid_to.is_(None))
    return stmt.where(
        MemoryUnitRow.valid_from <= as_of,
        (MemoryUnitRow.valid_to.is_(None)) | (MemoryUnitRow.valid_to > as_of),
    )


def _id_prefixed(stmt: Select[Any], prefix: str) -> Select[Any]:
    # LIKE is case-insensitive on SQLite: it narrows, the substring comparison decides.
    return stmt.where(
        EventRow.event_id.startswith(prefix, autoescape=True),
        func.substr(EventRow.event_id, 1, len(prefix)) == prefix,
    )


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

    async def list_events(
        self, scope: Scope, limit: int = 100, offset: int = 0, *, id_prefix: str | None = None
    ) -> list[Event]:
        stmt = in_scope(select(EventRow), EventRow, scope)
        if id_prefix:
            stmt = _id_prefixed(stmt, id_prefix)
        stmt = stmt.order_by(EventRow.timestamp, EventRow.id)
        async with self.session() as session:
            rows = await session.scalars(stmt.limit(limit).offset(offset))
            return [event_from_row(r) for r in rows]

    async def list_tenant_events(self, tenant: str, id_prefix: str, limit: int = 100, offset: int = 0) -> list[Event]:
        """Events of every scope of a tenant whose event_id starts with `id_prefix`, oldest first."""
        stmt = _id_prefixed(select(EventRow).where(EventRow.tenant == tenant), id_prefix)
        stmt = stmt.order_by(EventRow.timestamp, EventRow.id).limit(limit).offset(offset)
        async with self.session() as session:
            return [event_from_row(r) for r in await session.scalars(stmt)]

    async def erase_event(self, tenant: str, event_id: str) -> ErasedEvent | None:
        """Delete an event and every unit that cites it, in one transaction (None: no such event).

        Units are looked for among the event owner's (same user and agent, any session). Other
        events those units also cited are marked uncompressed again, so that what they said is
        restated without the erased event; the caller compresses their scopes.
        """
        async with self.session() as session, session.begin():
            row = await session.scalar(
                select(EventRow).where(EventRow.tenant == tenant, EventRow.event_id == event_id).with_for_update()
            )
            if row is None:
                return None
            event = event_from_row(row)
            # Units of the same owner, any session: consolidation may cite events across sessions.
            cited = await session.execute(
                owned_by(select(MemoryUnitRow.id, MemoryUnitRow.source_event_ids), owner_of_event(event))
            )
            unit_ids: list[int] = []
            others: set[str] = set()
            for unit_id, sources in cited.all():
                if event_id in (sources or []):
                    unit_ids.append(unit_id)
                    others.update(s for s in sources if s != event_id)
            await delete_units_logged(session, tenant, unit_ids, utc_now())
            if others:
                await session.execute(
                    update(EventRow)
                    .where(EventRow.tenant == tenant, EventRow.event_id.in_(sorted(others)))
                    .values(compressed_at=None)
                )
            await session.execute(delete(EventRow).where(EventRow.id == row.id))
        return ErasedEvent(event=event, unit_ids=sorted(unit_ids), recompress=sorted(others))

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

    async def event_timestamps(self, tenant: str, event_ids: Sequence[str]) -> dict[str, datetime]:
        out: dict[str, datetime] = {}
        ids = list(dict.fromkeys(event_ids))
        async with self.session() as session:
            for start in range(0, len(ids), 5000):
                rows = await session.execute(
                    select(EventRow.event_id, EventRow.timestamp).where(
                        EventRow.tenant == tenant, EventRow.event_id.in_(ids[start : start + 5000])
                    )
                )
                out.update({event_id: as_utc(ts) for event_id, ts in rows})
        return out

    async def count_uncompressed(self, tenant: str, event_ids: Sequence[str]) -> int:
        if not event_ids:
            return 0
        stmt = (
            select(func.count())
            .select_from(EventRow)
            .where(EventRow.tenant == tenant, EventRow.event_id.in_(list(event_ids)), EventRow.compressed_at.is_(None))
        )
        async with self.session() as session:
            return int(await session.scalar(stmt) or 0)

    async def count_pending_events(self) -> int:
        stmt = select(func.count()).select_from(EventRow).where(EventRow.compressed_at.is_(None))
        async with self.session() as session:
            return int(await session.scalar(stmt) or 0)

    async def count_events(self, scope: Scope | None = None) -> int:
        stmt = select(func.count()).select_from(EventRow)
        if scope is not None:
            stmt = in_scope(stmt, EventRow, scope)
        async with self.session() as session:
            return int(await session.scalar(stmt) or 0)

    # -- memory units ---------------------------------------------------------

    async def save_compression(
        self,
        tenant: str,
        units: Sequence[NewUnit],
        compressed_event_ids: Sequence[str],
        retry_event_ids: Sequence[str] = (),
        retry_compressor: str | None = None,
    ) -> list[MemoryUnit]:
        """Store units, log each in the change log and mark the events compressed, in one transaction.

        The events are claimed first: if another process compressed any of them
        meanwhile, nothing is written and `AlreadyCompressed` is raised.
        `retry_event_ids` (a subset) get `retry_compressor`: an LM compressor failed on
        them and the extractive stand-in wrote their units.
        """
        now = utc_now()
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
                    .values(compressed_at=now, retry_compressor=None)
                )
                if claimed.rowcount != len(ids):
                    # Another process compressed (some of) these events first: keep its units.
                    raise AlreadyCompressed(f"{len(ids) - claimed.rowcount} of {len(ids)} events already compressed")
                if retry_event_ids and retry_compressor:
                    await session.execute(
                        update(EventRow)
                        .where(EventRow.tenant == tenant, EventRow.event_id.in_(sorted(set(retry_event_ids))))
                        .values(retry_compressor=retry_compressor)
                    )
            created = await self._insert_units(session, tenant, units, now)
            if created:
                await session.execute(
                    UnitChangeRow.__table__.insert(),
                    [{"tenant": tenant, "unit_id": u.id, "op": "upsert", "at": now} for u in created],
                )
        return created

    async def _insert_units(
        self, session: AsyncSession, tenant: str, units: Sequence[NewUnit], now: datetime, consolidated: bool = False
    ) -> list[MemoryUnit]:
        """Bulk insert (one statement, ids returned in order); the caller writes the change log."""
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
                "consolidated_at": now if consolidated else None,
                "created_at": now,
                "updated_at": now,
            }
            for u in units
        ]
        if not rows:
            return []
        table = MemoryUnitRow.__table__
        result = await session.execute(table.insert().returning(table.c.id, sort_by_parameter_order=True), rows)
        for row, (unit_id,) in zip(rows, result.all(), strict=True):
            row["id"] = unit_id
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
        stmt = in_scope(select(MemoryUnitRow), MemoryUnitRow, scope)
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
            stmt = in_scope(stmt, MemoryUnitRow, scope)
        async with self.session() as session:
            return int(await session.scalar(stmt) or 0)

    async def unit_ids_in_scope(self, scope: Scope, as_of: datetime | None = None) -> list[int]:
        """Ids of the units a query scope may see: valid now, or valid at `as_of`."""
        stmt = _valid_at(in_scope(select(MemoryUnitRow.id), MemoryUnitRow, scope), as_of)
        async with self.session() as session:
            return list(await session.scalars(stmt))

    # -- symbolic lookups for query analysis (tenant + scope filtered) ---------

    async def unit_ids_in_time_range(
        self, scope: Scope, start: datetime | None, end: datetime | None, as_of: datetime | None = None
    ) -> list[int]:
        """Visible units whose event time (or, lacking one, valid_from) is in [start, end)."""
        when = func.coalesce(MemoryUnitRow.event_time, MemoryUnitRow.valid_from)
        stmt = _valid_at(in_scope(select(MemoryUnitRow.id), MemoryUnitRow, scope), as_of)
        if start is not None:
            stmt = stmt.where(when >= start)
        if end is not None:
            stmt = stmt.where(when < end)
        async with self.session() as session:
            return list(await session.scalars(stmt))

    async def unit_ids_mentioning(self, scope: Scope, names: Sequence[str], as_of: datetime | None = None) -> list[int]:
        """Visible units whose persons or entities include one of `names` (case-insensitive)."""
        wanted = sorted({n.strip().lower() for n in names if n.strip()})
        if not wanted:
            return []
        params = {f"n{i}": name for i, name in enumerate(wanted)}
        names_sql = ", ".join(f":{key}" for key in params)
        if self.dialect == "sqlite":
            mention = "EXISTS (SELECT 1 FROM json_each(memory_units.{col}) j WHERE lower(j.value) IN ({names}))"
        else:
            mention = (
                "EXISTS (SELECT 1 FROM json_array_elements_text(memory_units.{col}::json) j(v) "
                "WHERE lower(j.v) IN ({names}))"
            )
        matched = " OR ".join(mention.format(col=col, names=names_sql) for col in ("persons", "entities"))
        stmt = _valid_at(in_scope(select(MemoryUnitRow.id), MemoryUnitRow, scope), as_of)
        stmt = stmt.where(text(f"({matched})").bindparams(**params))
        async with self.session() as session:
            return list(await session.scalars(stmt))

    async def unit_timeline(self, scope: Scope, as_of: datetime | None = None) -> list[tuple[int, str | None]]:
        """Visible units as (id, session_id), ordered by session, then time: who is next to whom."""
        when = func.coalesce(MemoryUnitRow.event_time, MemoryUnitRow.valid_from)
        stmt = _valid_at(
            in_scope(select(MemoryUnitRow.id, MemoryUnitRow.session_id), MemoryUnitRow, scope), as_of
        ).where(MemoryUnitRow.level == 0).order_by(MemoryUnitRow.session_id, when, MemoryUnitRow.id)
        async with self.session() as session:
            return [(int(r[0]), r[1]) for r in await session.execute(stmt)]

    async def scope_event_contents(self, scope: Scope) -> list[str]:
        """The raw text of every event in the scope (for the history size a context is compared with)."""
        stmt = in_scope(select(EventRow.content), EventRow, scope)
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

    async def record_access(self, tenant: str, counts: Mapping[int, int], at: datetime) -> int:
        """Add to units' access counts and stamp when they were last returned; returns rows updated.

        No change-log row: access statistics are not content, so neither FAISS nor the
        unit caches need to follow them (a cached count may lag; ranking tolerates that).
        """
        if not counts:
            return 0
        by_increment: dict[int, list[int]] = {}
        for unit_id, n in counts.items():
            by_increment.setdefault(n, []).append(unit_id)
        updated = 0
        async with self.session() as session, session.begin():
            for n, ids in by_increment.items():
                result = await session.execute(
                    update(MemoryUnitRow)
                    .where(MemoryUnitRow.tenant == tenant, MemoryUnitRow.id.in_(ids))
                    .values(access_count=MemoryUnitRow.access_count + n, last_accessed_at=at)
                )
                updated += result.rowcount or 0
        return updated

    async def lexical_search(
        self, scope: Scope, query: str, k: int, include_closed: bool = False
    ) -> list[tuple[int, float]]:
        """Full-text search over the scope's units: (unit id, score), best first.

        Only currently valid units unless `include_closed` (the caller then filters by
        validity at its own time). SQLite uses FTS5's BM25; PostgreSQL uses ts_rank_cd
        over a generated tsvector. Terms are OR-ed so a unit matching any query word is a
        candidate.
        """
        terms = lexical_terms(query)
        if not terms:
            return []
        params: dict[str, Any] = {"tenant": scope.tenant, "k": k}
        where = ["u.tenant = :tenant"] if include_closed else ["u.tenant = :tenant", "u.valid_to IS NULL"]
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

    # -- consolidation --------------------------------------------------------

    async def owner_units(self, owner: Scope) -> list[tuple[MemoryUnit, bytes, bool]]:
        """Currently valid units of an owner: (unit, embedding, already consolidated)."""
        stmt = owned_by(select(MemoryUnitRow), owner).where(MemoryUnitRow.valid_to.is_(None))
        async with self.session() as session:
            rows = await session.scalars(stmt.order_by(MemoryUnitRow.valid_from, MemoryUnitRow.id))
            return [(unit_from_row(r), r.embedding, r.consolidated_at is not None) for r in rows]

    async def unconsolidated_owners(self) -> list[Scope]:
        stmt = (
            select(MemoryUnitRow.tenant, MemoryUnitRow.user_id, MemoryUnitRow.agent_id)
            .where(MemoryUnitRow.consolidated_at.is_(None), MemoryUnitRow.valid_to.is_(None))
            .distinct()
        )
        async with self.session() as session:
            rows = (await session.execute(stmt)).all()
        return [Scope(tenant=t, user_id=u, agent_id=a) for t, u, a in rows]

    async def apply_consolidation(
        self,
        tenant: str,
        claim_ids: Sequence[int],
        merges: Sequence[ProvenanceMerge] = (),
        closures: Sequence[UnitClosure] = (),
        new_units: Sequence[NewUnit] = (),
    ) -> list[MemoryUnit]:
        """Apply one consolidation step atomically; returns the new units.

        `claim_ids` (the units this step examined for the first time) must all still be
        unconsolidated, and every unit it merges into or closes must still be valid;
        otherwise another worker got there first and `StaleConsolidation` is raised with
        nothing written. This is what keeps two workers from merging twice.
        """
        now = utc_now()
        touched = {m.unit_id for m in merges} | {c.unit_id for c in closures}
        async with self.session() as session, session.begin():
            if claim_ids:
                ids = sorted(set(claim_ids))
                claimed = await session.execute(
                    update(MemoryUnitRow)
                    .where(
                        MemoryUnitRow.tenant == tenant,
                        MemoryUnitRow.id.in_(ids),
                        MemoryUnitRow.consolidated_at.is_(None),
                        MemoryUnitRow.valid_to.is_(None),
                    )
                    .values(consolidated_at=now)
                )
                if claimed.rowcount != len(ids):
                    raise StaleConsolidation(f"{len(ids) - claimed.rowcount} of {len(ids)} units already consolidated")
            rows: dict[int, MemoryUnitRow] = {}
            if touched:
                found = await session.scalars(
                    select(MemoryUnitRow)
                    .where(MemoryUnitRow.tenant == tenant, MemoryUnitRow.id.in_(sorted(touched)))
                    .with_for_update()
                )
                rows = {r.id: r for r in found}
                stale = [i for i in touched if i not in rows or rows[i].valid_to is not None]
                if stale:
                    raise StaleConsolidation(f"units {sorted(stale)} changed meanwhile")
            created = await self._insert_units(session, tenant, new_units, now, consolidated=True)
            for merge in merges:
                row = rows[merge.unit_id]
                row.source_event_ids = list(dict.fromkeys([*row.source_event_ids, *merge.event_ids]))
                row.history = [*row.history, {"at": now.isoformat(), **merge.note}]
                row.updated_at = now
            for closure in closures:
                row = rows[closure.unit_id]
                row.valid_to = closure.valid_to or row.valid_from
                if closure.replaced_by_new is not None:
                    row.superseded_by = created[closure.replaced_by_new].id
                else:
                    row.superseded_by = closure.superseded_by
                row.history = [*row.history, {"at": now.isoformat(), **closure.note, "superseded_by": row.superseded_by}]
                row.updated_at = now
            await session.flush()
            changed = sorted(touched) + [u.id for u in created]
            if changed:
                await session.execute(
                    UnitChangeRow.__table__.insert(),
                    [{"tenant": tenant, "unit_id": i, "op": "upsert", "at": now} for i in changed],
                )
        return created

    async def unit_history(self, tenant: str, unit_id: int) -> list[MemoryUnit]:
        """The unit, the units it replaced (closed with superseded_by pointing at it, recursively)
        and the units that replaced it, oldest first."""
        seen: dict[int, MemoryUnit] = {}
        frontier = [unit_id]
        async with self.session() as session:
            while frontier:
                rows = list(
                    await session.scalars(
                        select(MemoryUnitRow).where(
                            MemoryUnitRow.tenant == tenant,
                            (MemoryUnitRow.id.in_(frontier)) | (MemoryUnitRow.superseded_by.in_(frontier)),
                        )
                    )
                )
                frontier = []
                for row in rows:
                    if row.id not in seen:
                        seen[row.id] = unit_from_row(row)
                        frontier.append(row.id)
                        if row.superseded_by is not None and row.superseded_by not in seen:
                            frontier.append(row.superseded_by)
        if unit_id not in seen:
            return []
        return sorted(seen.values(), key=lambda u: (u.valid_from, u.id))

    # -- change log -----------------------------------------------------------

    async def changes_since(self, seq: int, limit: int = 100_000) -> list[UnitChange]:
        stmt = select(UnitChangeRow).where(UnitChangeRow.seq > seq).order_by(UnitChangeRow.seq).limit(limit)
        async with self.session() as session:
            return [UnitChange(r.seq, r.tenant, r.unit_id, r.op) for r in await session.scalars(stmt)]

    async def last_change_seq(self) -> int:
        async with self.session() as session:
            return int(await session.scalar(select(func.max(UnitChangeRow.seq))) or 0)

    async def embeddings(self, ids: Sequence[int]) -> dict[int, tuple[str, bytes]]:
        """(tenant, embedding bytes) of each existing unit among `ids`.

        Closed units stay in the vector index: SQL decides per query what is visible.
        """
        if not ids:
            return {}
        out: dict[int, tuple[str, bytes]] = {}
        ids = list(ids)
        async with self.session() as session:
            for start in range(0, len(ids), 5000):
                chunk = ids[start : start + 5000]
                rows = await session.execute(
                    select(MemoryUnitRow.id, MemoryUnitRow.tenant, MemoryUnitRow.embedding).where(
                        MemoryUnitRow.id.in_(chunk)
                    )
                )
                out.update({r[0]: (r[1], r[2]) for r in rows})
        return out

    async def all_unit_ids(self) -> list[int]:
        async with self.session() as session:
            return list(await session.scalars(select(MemoryUnitRow.id)))
