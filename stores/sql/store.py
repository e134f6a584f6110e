"""The SQL store the service holds: events and units, and the per-aggregate parts beside them.

`SqlStore` opens the engine and owns its lifetime. Events and units (what every stage
reads and writes) are its own methods; what one stage alone uses is an attribute built
on the same engine: `search` (retrieval's lexical and symbolic candidates, `search.py`),
`consolidation` (claim and apply steps, unit history, `consolidation.py`) and `changes`
(the change log the vector index follows, `changes.py`). Erasure, LM retry, API keys and
the compression cache are modules that take the store (`erasure.py`, `retry.py`, ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import defer

from memory_service.domain import Event, MemoryUnit, Scope, as_utc, utc_now
from stores.sql.changes import ChangeLog, log_upserts
from stores.sql.consolidation import Consolidation
from stores.sql.engine import create_engine, dialect_insert, migrate, session_factory
from stores.sql.rows import NewUnit, chunks, event_from_row, event_values, insert_units, unit_from_row
from stores.sql.scoping import exact_scope, in_scope, valid_at
from stores.sql.search import UnitSearch
from stores.sql.tables import EventRow, MemoryUnitRow, UnitChangeRow, UnitStatementRow

# What `unit_from_row` reads: the embedding (1.5 KB a unit) and the search text stay in the database.
UNIT_ONLY = (defer(MemoryUnitRow.embedding), defer(MemoryUnitRow.search_text))


class AlreadyCompressed(RuntimeError):
    """The events of a compression were compressed meanwhile by someone else; nothing was saved."""


def _id_prefixed(stmt: Select[Any], prefix: str) -> Select[Any]:
    # LIKE is case-insensitive on SQLite: it narrows, the substring comparison decides.
    return stmt.where(
        EventRow.event_id.startswith(prefix, autoescape=True),
        func.substr(EventRow.event_id, 1, len(prefix)) == prefix,
    )


class SqlStore:
    """Events and units in SQL (SQLite or PostgreSQL), with `search`, `consolidation` and `changes`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._sessions = session_factory(engine)
        self.search = UnitSearch(engine)
        self.consolidation = Consolidation(engine)
        self.changes = ChangeLog(engine)

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

    async def insert_events(self, events: Sequence[Event], content_tokens: Sequence[int]) -> list[str]:
        """Store events; an event_id already stored for the tenant is skipped (idempotent re-send).

        `content_tokens[i]` is the predictor-token count of `events[i].content` (the ingest
        layer counts with the configured tokenizer; the store knows no tokenizer).
        Returns the ids that were new.
        """
        if not events:
            return []
        if len(content_tokens) != len(events):
            raise ValueError(f"{len(content_tokens)} token counts for {len(events)} events")
        rows = [event_values(e, n) for e, n in zip(events, content_tokens, strict=True)]
        stmt = dialect_insert(self.dialect, EventRow.__table__).on_conflict_do_nothing(
            index_elements=["tenant", "event_id"]
        )
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

    async def pending_events(self, scope: Scope, limit: int = 10_000) -> list[Event]:
        """Uncompressed events of exactly this scope, oldest first."""
        stmt = exact_scope(select(EventRow), EventRow, scope).where(EventRow.compressed_at.is_(None))
        async with self.session() as session:
            rows = await session.scalars(stmt.order_by(EventRow.timestamp, EventRow.id).limit(limit))
            return [event_from_row(r) for r in rows]

    async def events_before(self, scope: Scope, before: Event, count: int) -> list[Event]:
        """The `count` compressed events of exactly this scope that came just before `before`."""
        if count <= 0:
            return []
        stmt = (
            exact_scope(select(EventRow), EventRow, scope)
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
            for chunk in chunks(ids):
                rows = await session.execute(
                    select(EventRow.event_id, EventRow.timestamp).where(
                        EventRow.tenant == tenant, EventRow.event_id.in_(chunk)
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

    async def history_tokens(self, scope: Scope) -> int:
        """Predictor tokens of every raw event in the scope: what sending the whole history costs.

        A SUM over the counts stored at ingest (one index range scan), not a re-read of the text.
        """
        stmt = in_scope(select(func.coalesce(func.sum(EventRow.content_tokens), 0)), EventRow, scope)
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
            created = await insert_units(session, tenant, units, now)
            await log_upserts(session, tenant, [u.id for u in created], now)
        return created

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
                select(MemoryUnitRow)
                .options(*UNIT_ONLY)
                .where(MemoryUnitRow.tenant == tenant, MemoryUnitRow.id.in_(list(ids)))
            )
            return {r.id: unit_from_row(r) for r in rows}

    async def list_units(
        self,
        scope: Scope,
        limit: int = 100,
        offset: int = 0,
        include_invalid: bool = False,
        *,
        as_of: datetime | None = None,
        kind: str | None = None,
        contains: str | None = None,
        newest_first: bool = False,
    ) -> list[MemoryUnit]:
        """Units of the scope by id (oldest first unless `newest_first`): valid now (or at `as_of`) unless `include_invalid`;
        `kind` and `contains` (case-insensitive substring of the text) narrow them."""
        stmt = in_scope(select(MemoryUnitRow), MemoryUnitRow, scope)
        if not include_invalid:
            stmt = valid_at(stmt, as_of)
        if kind:
            stmt = stmt.where(MemoryUnitRow.kind == kind)
        if contains:
            stmt = stmt.where(func.lower(MemoryUnitRow.text).contains(contains.lower(), autoescape=True))
        order = MemoryUnitRow.id.desc() if newest_first else MemoryUnitRow.id
        stmt = stmt.order_by(order).limit(limit).offset(offset)
        async with self.session() as session:
            return [unit_from_row(r) for r in await session.scalars(stmt)]

    async def recent_units(self, scope: Scope, count: int) -> list[MemoryUnit]:
        stmt = (
            exact_scope(select(MemoryUnitRow), MemoryUnitRow, scope)
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

    async def delete_unit(self, tenant: str, unit_id: int) -> bool:
        async with self.session() as session, session.begin():
            result = await session.execute(
                delete(MemoryUnitRow).where(MemoryUnitRow.tenant == tenant, MemoryUnitRow.id == unit_id)
            )
            if not result.rowcount:
                return False
            await session.execute(
                delete(UnitStatementRow).where(UnitStatementRow.tenant == tenant, UnitStatementRow.unit_id == unit_id)
            )
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
