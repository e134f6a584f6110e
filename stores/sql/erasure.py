"""Erasure: one event (`DELETE /v1/events/{id}`), or a whole scope (`DELETE /v1/scopes`) with
every event, every unit and what was derived from them.

Erasing an event deletes it and every unit of its owner that cites it; erasing a scope,
in one transaction, deletes the scope's events and units, and also the units *outside* the
scope that cite one of its events (consolidation gives a survivor or an abstraction the
provenance of several sessions); events those units also cited are marked uncompressed
so the caller restates them without the erased ones (as `erase_event` does).
Every deleted unit gets a `delete` row in the change log, so FAISS and the in-process
caches follow, and a restart (catch-up or rebuild from SQL) cannot bring anything back.
LM compression-cache entries whose drafts became an erased unit are deleted as well.
Jobs need nothing here: their work is derived from these rows, so a queued job of an
erased scope finds none (the service also removes such jobs from a Redis queue).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, update

from memory_service.domain import Event, Scope, utc_now
from stores.sql.changes import delete_units_logged
from stores.sql.rows import chunks, event_from_row
from stores.sql.scoping import in_scope, owned_by, owner_of_event
from stores.sql.store import SqlStore
from stores.sql.tables import CompressionCacheRow, EventRow, MemoryUnitRow


@dataclass(frozen=True)
class ErasedEvent:
    event: Event
    unit_ids: list[int]
    recompress: list[str]


@dataclass(frozen=True)
class ErasedScope:
    scope: Scope
    event_ids: list[str]
    unit_ids: list[int]
    # Events outside the scope that shared a deleted unit: compressed again by the caller.
    recompress: list[str]
    # Exact (user, agent, session) scopes that had events or units: whose queued jobs to drop.
    exact_scopes: list[Scope]
    cache_entries: int
    jobs_cancelled: int = field(default=0)


async def erase_event(store: SqlStore, tenant: str, event_id: str) -> ErasedEvent | None:
    """Delete an event and every unit that cites it, in one transaction (None: no such event).

    Units are looked for among the event owner's (same user and agent, any session). Other
    events those units also cited are marked uncompressed again, so that what they said is
    restated without the erased event; the caller compresses their scopes.
    """
    async with store.session() as session, session.begin():
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


async def erase_scope(store: SqlStore, scope: Scope) -> ErasedScope:
    tenant = scope.tenant
    async with store.session() as session, session.begin():
        event_rows = (
            await session.execute(
                in_scope(
                    select(EventRow.id, EventRow.event_id, EventRow.user_id, EventRow.agent_id, EventRow.session_id),
                    EventRow,
                    scope,
                ).with_for_update()
            )
        ).all()
        erased_events = {r.event_id for r in event_rows}
        unit_rows = list(
            (
                await session.execute(
                    in_scope(
                        select(
                            MemoryUnitRow.id, MemoryUnitRow.user_id, MemoryUnitRow.agent_id, MemoryUnitRow.session_id,
                            MemoryUnitRow.text, MemoryUnitRow.source_event_ids,
                        ),
                        MemoryUnitRow,
                        scope,
                    )
                )
            ).all()
        )
        unit_ids = {r.id for r in unit_rows}
        exact = {(r.user_id, r.agent_id, r.session_id) for r in event_rows} | {
            (r.user_id, r.agent_id, r.session_id) for r in unit_rows
        }
        if scope.session_id is not None and erased_events:
            # A session is part of an owner: the owner's other units may cite its events.
            owners = {(user, agent) for user, agent, _ in exact}
            for user, agent in owners:
                rows = await session.execute(
                    owned_by(
                        select(
                            MemoryUnitRow.id, MemoryUnitRow.user_id, MemoryUnitRow.agent_id, MemoryUnitRow.session_id,
                            MemoryUnitRow.text, MemoryUnitRow.source_event_ids,
                        ),
                        Scope(tenant=tenant, user_id=user, agent_id=agent),
                    )
                )
                for row in rows.all():
                    if row.id not in unit_ids and erased_events.intersection(row.source_event_ids or []):
                        unit_ids.add(row.id)
                        unit_rows.append(row)
        recompress = sorted(
            {s for r in unit_rows for s in (r.source_event_ids or []) if s not in erased_events}
        )
        now = utc_now()
        ordered_units = sorted(unit_ids)
        await delete_units_logged(session, tenant, ordered_units, now)
        for chunk in chunks(recompress):
            await session.execute(
                update(EventRow)
                .where(EventRow.tenant == tenant, EventRow.event_id.in_(chunk))
                .values(compressed_at=None)
            )
        for chunk in chunks([r.id for r in event_rows]):
            await session.execute(delete(EventRow).where(EventRow.id.in_(chunk)))
        cache_entries = await _erase_cache_entries(session, tenant, {r.text for r in unit_rows})
    return ErasedScope(
        scope=scope,
        event_ids=sorted(erased_events),
        unit_ids=ordered_units,
        recompress=recompress,
        exact_scopes=[Scope(tenant=tenant, user_id=u, agent_id=a, session_id=s) for u, a, s in sorted(exact, key=str)],
        cache_entries=cache_entries,
    )


async def _erase_cache_entries(session: Any, tenant: str, texts: set[str]) -> int:
    """Delete the tenant's LM cache entries that produced one of `texts`.

    Entries are keyed by a hash of window content, not by scope (the same content in
    another scope reuses them), so the link back is the draft text, which a unit made from
    an entry carries unchanged. Scans the tenant's entries: O(cache size), fine for a rare
    erasure. Losing an entry another scope shares only costs a recompression.
    """
    if not texts:
        return 0
    rows = await session.execute(
        select(CompressionCacheRow.key, CompressionCacheRow.drafts).where(CompressionCacheRow.tenant == tenant)
    )
    keys = [key for key, drafts in rows.all() if any(_draft_text(d) in texts for d in drafts or [])]
    for chunk in chunks(keys):
        await session.execute(
            delete(CompressionCacheRow).where(CompressionCacheRow.tenant == tenant, CompressionCacheRow.key.in_(chunk))
        )
    return len(keys)


def _draft_text(item: Any) -> str | None:
    """The unit text of one cached draft (`compressors.cache_key.encode` nests it under "draft")."""
    if not isinstance(item, dict):
        return None
    draft = item.get("draft", item)
    return draft.get("text") if isinstance(draft, dict) else None
