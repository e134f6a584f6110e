"""Erasing a whole scope (`DELETE /v1/scopes`): every event, every unit and what was derived from them.

One transaction deletes the scope's events and units, and also the units *outside* the
scope that cite one of its events (consolidation gives a survivor or an abstraction the
provenance of several sessions); events those units also cited are marked uncompressed
so the caller restates them without the erased ones (as `SqlStore.erase_event` does).
Every deleted unit gets a `delete` row in the change log, so FAISS and the in-process
caches follow, and a restart (catch-up or rebuild from SQL) cannot bring anything back.
LM compression-cache entries whose drafts became an erased unit are deleted as well.
Jobs need nothing here: their work is derived from these rows, so a queued job of an
erased scope finds none (the service also removes such jobs from a Redis queue).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Select, delete, select, update

from memory_service.domain import Scope, utc_now
from stores.sql.store import SqlStore
from stores.sql.tables import CompressionCacheRow, EventRow, MemoryUnitRow, UnitChangeRow

T = TypeVar("T")
_CHUNK = 5000


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


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


def _in_scope(stmt: Select[Any], model: type[EventRow | MemoryUnitRow], scope: Scope) -> Select[Any]:
    """Query-scope semantics: fields given must match, fields not given match anything."""
    stmt = stmt.where(model.tenant == scope.tenant)
    for name in ("user_id", "agent_id", "session_id"):
        value = getattr(scope, name)
        if value is not None:
            stmt = stmt.where(getattr(model, name) == value)
    return stmt


async def erase_scope(store: SqlStore, scope: Scope) -> ErasedScope:
    tenant = scope.tenant
    async with store.session() as session, session.begin():
        event_rows = (
            await session.execute(
                _in_scope(
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
                    _in_scope(
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
                    select(
                        MemoryUnitRow.id, MemoryUnitRow.user_id, MemoryUnitRow.agent_id, MemoryUnitRow.session_id,
                        MemoryUnitRow.text, MemoryUnitRow.source_event_ids,
                    ).where(
                        MemoryUnitRow.tenant == tenant,
                        MemoryUnitRow.user_id.is_(None) if user is None else MemoryUnitRow.user_id == user,
                        MemoryUnitRow.agent_id.is_(None) if agent is None else MemoryUnitRow.agent_id == agent,
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
        for chunk in _chunks(ordered_units):
            await session.execute(delete(MemoryUnitRow).where(MemoryUnitRow.id.in_(chunk)))
        if ordered_units:
            await session.execute(
                UnitChangeRow.__table__.insert(),
                [{"tenant": tenant, "unit_id": i, "op": "delete", "at": now} for i in ordered_units],
            )
        for chunk in _chunks(recompress):
            await session.execute(
                update(EventRow)
                .where(EventRow.tenant == tenant, EventRow.event_id.in_(chunk))
                .values(compressed_at=None)
            )
        for chunk in _chunks([r.id for r in event_rows]):
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
    for chunk in _chunks(keys):
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
