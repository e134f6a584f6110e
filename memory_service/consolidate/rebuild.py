"""Re-deriving the statement keys of stored units with today's rules (`statements.STATEMENT_KEYS_VERSION`).

Consolidation writes a unit's `subject|attribute` keys once, when it first examines the unit,
and later finds the units a new one updates by those keys. Units consolidated before the keys
existed (migration 0007), or before the derivation last changed, are found by no key, so an
update today cannot close their stale value. The rebuild reads each keyed unit (valid, level
0, consolidated: `stores/sql/statement_keys.py`) of an owner, a tenant or every tenant, a page
of ids at a time, derives its keys as the consolidator does (`StatementReader`, with the
configured embedder for favourites) and swaps its rows. It changes nothing else: no unit, no
merge, no closure; running it again writes the same rows. After a whole tenant (or all of
them) it records the version for the tenant; an owner's rebuild records none.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from memory_service.consolidate.reading import StatementReader
from memory_service.consolidate.statements import STATEMENT_KEYS_VERSION
from memory_service.domain import Scope
from memory_service.index.embedding import SentenceTransformerEmbedder
from memory_service.settings import Settings
from stores.sql.statement_keys import StatementKeyTable
from stores.sql.store import SqlStore

BATCH = 1000

Progress = Callable[[int, int], None]  # (units done, units in all)


class NothingToRebuild(ValueError):
    """The tenant or owner named has no memory units at all (a typo, most likely)."""


@dataclass
class RebuildReport:
    units: int = 0  # units whose rows were rewritten
    keys: int = 0  # rows written
    version: int = STATEMENT_KEYS_VERSION
    tenants_marked: list[str] = field(default_factory=list)  # tenants now recorded at `version`


async def check_target(store: SqlStore, tenant: str | None, owner: Scope | None) -> tuple[str | None, Scope | None]:
    """The (tenant, owner) a rebuild covers: the owner (all its sessions) when given, else the tenant,
    else everything. Raises `NothingToRebuild` when the tenant or owner has no units at all."""
    table = StatementKeyTable(store)
    if owner is not None:
        owner = Scope(tenant=owner.tenant, user_id=owner.user_id, agent_id=owner.agent_id)
        if tenant is not None and tenant != owner.tenant:
            raise ValueError(f"owner {owner.label()} is not of tenant {tenant!r}")
        if not await table.has_units(owner.tenant, owner):
            raise NothingToRebuild(f"no memory units for {owner.label()}")
        return None, owner
    if tenant is not None and not await table.has_units(tenant):
        raise NothingToRebuild(f"unknown tenant {tenant!r}: it has no memory units")
    return tenant, None


async def rebuild_statement_keys(
    store: SqlStore,
    reader: StatementReader,
    *,
    tenant: str | None = None,
    owner: Scope | None = None,
    batch_size: int = BATCH,
    on_progress: Progress | None = None,
) -> RebuildReport:
    """Rebuild the keys of an owner's units (`owner`), a tenant's (`tenant`) or every tenant's (neither).

    Raises `NothingToRebuild` when the owner or tenant has no units at all."""
    tenant, owner = await check_target(store, tenant, owner)
    table = StatementKeyTable(store)
    total = await table.count_keyed_units(tenant, owner)
    report = RebuildReport()
    if on_progress is not None:
        on_progress(0, total)
    after = 0
    seen = 0
    while units := await table.keyed_units(after, batch_size, tenant, owner):
        # CPU-bound (the rules, an embedding per new favourite value): off the event loop.
        keys = await asyncio.to_thread(lambda: {u.id: (u.tenant, reader.keys(u)) for u in units})
        by_tenant: dict[str, dict[int, list[str]]] = {}
        for unit_id, (unit_tenant, unit_keys) in keys.items():
            by_tenant.setdefault(unit_tenant, {})[unit_id] = unit_keys
        for unit_tenant, keys_of in sorted(by_tenant.items()):
            rewritten, rows = await table.replace(unit_tenant, keys_of)
            report.units += rewritten
            report.keys += rows
        after = units[-1].id
        seen += len(units)
        if on_progress is not None:
            on_progress(seen, max(total, seen))
    if owner is None:
        report.tenants_marked = await table.mark_version(STATEMENT_KEYS_VERSION, tenant)
    return report


async def rebuild_with_settings(
    settings: Settings,
    *,
    tenant: str | None = None,
    owner: Scope | None = None,
    batch_size: int = BATCH,
    on_progress: Progress | None = None,
) -> RebuildReport:
    """`rebuild_statement_keys` on the configured database (migrated first) with the configured embedder."""
    store = await SqlStore.open(settings.sql_url)
    try:
        await check_target(store, tenant, owner)  # a typo fails before the model loads
        embedder = await asyncio.to_thread(SentenceTransformerEmbedder, settings.embedding_model, settings.embedding_device)
        return await rebuild_statement_keys(
            store, StatementReader(embedder), tenant=tenant, owner=owner, batch_size=batch_size, on_progress=on_progress
        )
    finally:
        await store.close()
