"""Rebuilding `unit_statements` rows, and the derivation version that wrote them (`statement_key_versions`).

The keys themselves come from memory_service (`memory_service/consolidate/rebuild.py` derives
them from the units' text); this module streams the units whose keys can be rebuilt, swaps
their rows and records versions. Those units are the valid level-0 units consolidation has
claimed (`consolidated_at` set): a unit not consolidated yet gets its keys when it is (in
`Consolidation.apply`'s claiming transaction, which would collide with rows written here), and
neither closed units nor abstractions are ever looked up by key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from memory_service.domain import MemoryUnit, Scope, utc_now
from stores.sql.engine import dialect_insert
from stores.sql.rows import chunks, unit_from_row
from stores.sql.scoping import owned_by
from stores.sql.tables import MemoryUnitRow, StatementKeyVersionRow, UnitStatementRow

if TYPE_CHECKING:
    from stores.sql.store import SqlStore

_UNIT_ONLY = (defer(MemoryUnitRow.embedding), defer(MemoryUnitRow.search_text))


def _keyed(stmt: Select[Any]) -> Select[Any]:
    """Units whose keys consolidation looks up: valid, level 0, already consolidated."""
    return stmt.where(
        MemoryUnitRow.valid_to.is_(None), MemoryUnitRow.level == 0, MemoryUnitRow.consolidated_at.is_not(None)
    )


def _targeted(stmt: Select[Any], tenant: str | None, owner: Scope | None) -> Select[Any]:
    if owner is not None:
        return owned_by(stmt, owner)
    return stmt if tenant is None else stmt.where(MemoryUnitRow.tenant == tenant)


async def keep_first_version(session: AsyncSession, tenant: str, version: int) -> None:
    """Record `version` for a tenant that has no row yet (in the caller's transaction).

    A row already there stays: it is the oldest derivation that may have written the tenant's keys."""
    stmt = dialect_insert(session.bind.dialect.name, StatementKeyVersionRow.__table__).on_conflict_do_nothing(
        index_elements=["tenant"]
    )
    await session.execute(stmt, [{"tenant": tenant, "version": version, "updated_at": utc_now()}])


class StatementKeyTable:
    def __init__(self, store: SqlStore) -> None:
        self.store = store

    async def has_units(self, tenant: str, owner: Scope | None = None) -> bool:
        """Whether the tenant (the owner, exactly: `owned_by`) has any unit, valid or not."""
        stmt = _targeted(select(MemoryUnitRow.id), tenant, owner).limit(1)
        async with self.store.session() as session:
            return await session.scalar(stmt) is not None

    async def count_keyed_units(self, tenant: str | None = None, owner: Scope | None = None) -> int:
        """Units `keyed_units` will stream: of the owner, else of the tenant, else of every tenant."""
        stmt = _targeted(_keyed(select(func.count()).select_from(MemoryUnitRow)), tenant, owner)
        async with self.store.session() as session:
            return int(await session.scalar(stmt) or 0)

    async def keyed_units(
        self, after_id: int, limit: int, tenant: str | None = None, owner: Scope | None = None
    ) -> list[MemoryUnit]:
        """The next `limit` keyed units with ids above `after_id`, by id (a keyset page: 10^6 units are
        read a page at a time, and a unit added meanwhile is simply met or not)."""
        stmt = _targeted(_keyed(select(MemoryUnitRow).options(*_UNIT_ONLY)), tenant, owner)
        stmt = stmt.where(MemoryUnitRow.id > after_id).order_by(MemoryUnitRow.id).limit(limit)
        async with self.store.session() as session:
            return [unit_from_row(r) for r in await session.scalars(stmt)]

    async def replace(self, tenant: str, keys_of: Mapping[int, Sequence[str]]) -> tuple[int, int]:
        """Replace the rows of these units of one tenant by `keys_of[unit id]`, in one transaction;
        returns (units rewritten, rows written).

        Only units still keyed when the transaction runs are touched: one closed or deleted
        meanwhile keeps what it has (its rows are filtered out by `stating` or went with it).
        """
        ids = sorted(keys_of)
        units = rows = 0
        async with self.store.session() as session, session.begin():
            for chunk in chunks(ids, 1000):
                keyed = _keyed(select(MemoryUnitRow.id)).where(MemoryUnitRow.tenant == tenant, MemoryUnitRow.id.in_(chunk))
                # The DELETE first: on SQLite it takes the write lock, so nothing changes before the INSERT.
                await session.execute(
                    delete(UnitStatementRow).where(
                        UnitStatementRow.tenant == tenant, UnitStatementRow.unit_id.in_(keyed.scalar_subquery())
                    )
                )
                # On PostgreSQL the units are locked until commit: an erasure waits, then deletes the rows too.
                still = sorted(await session.scalars(keyed.with_for_update()))
                values = [
                    {"tenant": tenant, "key": key, "unit_id": unit_id}
                    for unit_id in still
                    for key in sorted(set(keys_of[unit_id]))
                ]
                if values:
                    await session.execute(UnitStatementRow.__table__.insert(), values)
                units += len(still)
                rows += len(values)
        return units, rows

    async def keys_of(self, tenant: str, unit_ids: Sequence[int]) -> dict[int, list[str]]:
        """The stored keys of these units (units without rows are left out)."""
        out: dict[int, list[str]] = {}
        async with self.store.session() as session:
            for chunk in chunks(sorted(set(unit_ids))):
                found = await session.execute(
                    select(UnitStatementRow.unit_id, UnitStatementRow.key)
                    .where(UnitStatementRow.tenant == tenant, UnitStatementRow.unit_id.in_(chunk))
                    .order_by(UnitStatementRow.unit_id, UnitStatementRow.key)
                )
                for unit_id, key in found:
                    out.setdefault(unit_id, []).append(key)
        return out

    async def mark_version(self, version: int, tenant: str | None = None) -> list[str]:
        """Record that `version` wrote every key of `tenant` (of every tenant when None): the tenant,
        or every tenant with a row or with consolidated units. Returns the tenants marked."""
        async with self.store.session() as session, session.begin():
            if tenant is not None:
                tenants = [tenant]
            else:
                consolidated = select(MemoryUnitRow.tenant).where(MemoryUnitRow.consolidated_at.is_not(None)).distinct()
                tenants = sorted({*await session.scalars(consolidated), *await session.scalars(select(StatementKeyVersionRow.tenant))})
            if tenants:
                now = utc_now()
                stmt = dialect_insert(session.bind.dialect.name, StatementKeyVersionRow.__table__)
                stmt = stmt.on_conflict_do_update(
                    index_elements=["tenant"], set_={"version": stmt.excluded.version, "updated_at": stmt.excluded.updated_at}
                )
                await session.execute(stmt, [{"tenant": t, "version": version, "updated_at": now} for t in tenants])
        return tenants

    async def versions(self) -> dict[str, int]:
        """The recorded version of each tenant."""
        async with self.store.session() as session:
            rows = await session.execute(select(StatementKeyVersionRow.tenant, StatementKeyVersionRow.version))
            return dict(rows.all())

    async def stale_tenants(self, version: int) -> dict[str, int]:
        """Tenants whose keys an older derivation than `version` may have written, with that version:
        those recorded lower, and (0) those with consolidated units and no record at all."""
        recorded = select(StatementKeyVersionRow.tenant)
        unrecorded = (
            select(MemoryUnitRow.tenant)
            .where(MemoryUnitRow.consolidated_at.is_not(None), MemoryUnitRow.tenant.not_in(recorded))
            .distinct()
        )
        lower = select(StatementKeyVersionRow.tenant, StatementKeyVersionRow.version).where(
            StatementKeyVersionRow.version < version
        )
        async with self.store.session() as session:
            out = dict((await session.execute(lower)).all())
            out.update({t: 0 for t in await session.scalars(unrecorded)})
        return dict(sorted(out.items()))
