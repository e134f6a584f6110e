"""Retrying windows an LM compressor failed on (events marked `retry_compressor`, migration 0002).

The extractive stand-in units are deleted and the events made pending again, in one
transaction, so the next compression round restates them with the LM (and, should it
fail again, marks them again). An event is only re-queued when every unit citing it is
such a stand-in: one that consolidation has merged into a unit citing other events stays.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update

from memory_service.domain import Scope, utc_now
from stores.sql.changes import delete_units_logged
from stores.sql.scoping import owned_by
from stores.sql.store import SqlStore
from stores.sql.tables import EventRow, MemoryUnitRow

EXTRACTIVE = "extractive"


@dataclass(frozen=True)
class Requeued:
    events: int
    units_deleted: int


async def count_marked(store: SqlStore, compressor: str | None = None) -> int:
    stmt = select(func.count()).select_from(EventRow).where(EventRow.retry_compressor.is_not(None))
    if compressor is not None:
        stmt = stmt.where(EventRow.retry_compressor == compressor)
    async with store.session() as session:
        return int(await session.scalar(stmt) or 0)


async def requeue_marked(store: SqlStore, compressor: str, limit: int = 10_000) -> Requeued:
    """Make up to `limit` events marked for `compressor` pending again, dropping their stand-in units."""
    async with store.session() as session, session.begin():
        marked_rows = (
            await session.execute(
                select(EventRow.tenant, EventRow.event_id, EventRow.user_id, EventRow.agent_id)
                .where(EventRow.retry_compressor == compressor, EventRow.compressed_at.is_not(None))
                .order_by(EventRow.id)
                .limit(limit)
                .with_for_update()
            )
        ).all()
        if not marked_rows:
            return Requeued(0, 0)
        requeued = deleted = 0
        now = utc_now()
        owners: dict[tuple[str, str | None, str | None], set[str]] = {}
        for tenant, event_id, user_id, agent_id in marked_rows:
            owners.setdefault((tenant, user_id, agent_id), set()).add(event_id)
        for (tenant, user_id, agent_id), marked in owners.items():
            units = (
                await session.execute(
                    owned_by(
                        select(MemoryUnitRow.id, MemoryUnitRow.source_event_ids, MemoryUnitRow.compressor, MemoryUnitRow.level),
                        Scope(tenant=tenant, user_id=user_id, agent_id=agent_id),
                    )
                )
            ).all()
            blocked: set[str] = set()
            stand_ins: list[tuple[int, set[str]]] = []
            for unit_id, sources, name, level in units:
                cited = set(sources or []) & marked
                if not cited:
                    continue
                if name == EXTRACTIVE and level == 0 and set(sources) <= marked:
                    stand_ins.append((unit_id, set(sources)))
                else:
                    blocked.update(cited)
            ready = marked - blocked
            # a stand-in citing a blocked event stays, and so do the events it cites
            kept_sources = set().union(*(s for _, s in stand_ins if not s <= ready)) if stand_ins else set()
            ready -= kept_sources
            doomed = [unit_id for unit_id, sources in stand_ins if sources <= ready]
            await delete_units_logged(session, tenant, doomed, now)
            if ready:
                await session.execute(
                    update(EventRow)
                    .where(EventRow.tenant == tenant, EventRow.event_id.in_(sorted(ready)))
                    .values(compressed_at=None, retry_compressor=None)
                )
            requeued += len(ready)
            deleted += len(doomed)
        return Requeued(requeued, deleted)
