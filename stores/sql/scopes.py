"""The scopes a tenant has: each exact (user, agent, session) with its event and unit counts."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select

from stores.sql.store import SqlStore
from stores.sql.tables import EventRow, MemoryUnitRow

ScopeKey = tuple[str | None, str | None, str | None]


@dataclass(frozen=True)
class ScopeCounts:
    user_id: str | None
    agent_id: str | None
    session_id: str | None
    events: int
    units: int
    valid_units: int


async def scope_counts(store: SqlStore, tenant: str, limit: int = 1000) -> list[ScopeCounts]:
    """Every exact scope holding events or units, sorted by (user, agent, session); at most `limit`."""
    events = (
        select(EventRow.user_id, EventRow.agent_id, EventRow.session_id, func.count())
        .where(EventRow.tenant == tenant)
        .group_by(EventRow.user_id, EventRow.agent_id, EventRow.session_id)
    )
    units = (
        select(
            MemoryUnitRow.user_id,
            MemoryUnitRow.agent_id,
            MemoryUnitRow.session_id,
            func.count(),
            func.sum(case((MemoryUnitRow.valid_to.is_(None), 1), else_=0)),
        )
        .where(MemoryUnitRow.tenant == tenant)
        .group_by(MemoryUnitRow.user_id, MemoryUnitRow.agent_id, MemoryUnitRow.session_id)
    )
    counts: dict[ScopeKey, list[int]] = {}
    async with store.session() as session:
        for user, agent, sess, n in await session.execute(events):
            counts.setdefault((user, agent, sess), [0, 0, 0])[0] = int(n)
        for user, agent, sess, n, valid in await session.execute(units):
            row = counts.setdefault((user, agent, sess), [0, 0, 0])
            row[1], row[2] = int(n), int(valid or 0)
    keys = sorted(counts, key=lambda k: tuple(v or "" for v in k))[:limit]
    return [ScopeCounts(*key, *counts[key]) for key in keys]
