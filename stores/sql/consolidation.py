"""Consolidation's reads and writes: an owner's units, one atomic step of merges and closures, and history.

The consolidator (memory_service) decides; this module claims and applies. A step is one
transaction that claims the units it examined (`consolidated_at`), checks that every unit
it merges into or closes is still valid, writes, and logs every changed unit, so two
workers never merge the same units twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from memory_service.domain import MemoryUnit, Scope, utc_now
from stores.sql.changes import log_upserts
from stores.sql.engine import session_factory
from stores.sql.rows import NewUnit, chunks, insert_units, unit_from_row
from stores.sql.scoping import owned_by
from stores.sql.statement_keys import keep_first_version
from stores.sql.tables import MemoryUnitRow, UnitStatementRow


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


class Consolidation:
    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = session_factory(engine)

    async def fresh_units(self, owner: Scope) -> list[tuple[MemoryUnit, bytes]]:
        """Valid units of an owner never consolidated yet, with their embeddings."""
        stmt = owned_by(select(MemoryUnitRow), owner).where(
            MemoryUnitRow.valid_to.is_(None), MemoryUnitRow.consolidated_at.is_(None)
        )
        async with self._sessions() as session:
            rows = await session.scalars(stmt.order_by(MemoryUnitRow.valid_from, MemoryUnitRow.id))
            return [(unit_from_row(r), r.embedding) for r in rows]

    async def owner_base_units(self, owner: Scope, ids: Sequence[int]) -> dict[int, MemoryUnit]:
        """Of `ids`, the owner's valid level-0 units (what merge and supersession compare with)."""
        out: dict[int, MemoryUnit] = {}
        async with self._sessions() as session:
            for chunk in chunks(sorted(set(ids))):
                stmt = owned_by(select(MemoryUnitRow), owner).where(
                    MemoryUnitRow.id.in_(chunk), MemoryUnitRow.valid_to.is_(None), MemoryUnitRow.level == 0
                )
                out.update((r.id, unit_from_row(r)) for r in await session.scalars(stmt))
        return out

    async def stating(self, owner: Scope, keys: Sequence[str]) -> list[tuple[MemoryUnit, bytes]]:
        """The owner's valid level-0 units recorded as stating any of these `subject|attribute`
        keys (`unit_statements`, written by `apply`), with their embeddings."""
        out: dict[int, tuple[MemoryUnit, bytes]] = {}
        async with self._sessions() as session:
            for chunk in chunks(sorted(set(keys))):
                ids = select(UnitStatementRow.unit_id).where(
                    UnitStatementRow.tenant == owner.tenant, UnitStatementRow.key.in_(chunk)
                )
                stmt = owned_by(select(MemoryUnitRow), owner).where(
                    MemoryUnitRow.id.in_(ids), MemoryUnitRow.valid_to.is_(None), MemoryUnitRow.level == 0
                )
                out.update((r.id, (unit_from_row(r), r.embedding)) for r in await session.scalars(stmt))
        return [out[i] for i in sorted(out)]

    async def cluster_members(
        self, owner: Scope, periods: Sequence[tuple[datetime, datetime]], subjects: Sequence[str], levels: Sequence[int]
    ) -> list[MemoryUnit]:
        """Valid units of an owner at these levels whose subject (first person, else first entity)
        is one of `subjects` and whose time (event_time, else valid_from) falls in one of the
        half-open `periods`: the members and abstractions of the clusters a run touched.

        Found through `ix_units_owner_time`, so the cost follows the periods, not the owner's size.
        """
        if not periods or not subjects:
            return []
        t = MemoryUnitRow
        subject = func.coalesce(t.persons[0].as_string(), t.entities[0].as_string())
        base = owned_by(select(t), owner).where(
            t.valid_to.is_(None), t.level.in_(list(levels)), subject.in_(sorted(set(subjects)))
        )
        # Two statements, not one OR: SQLite searches the index by event_time range only when
        # every branch of the OR is a range on that column.
        timed = base.where(or_(*(and_(t.event_time >= start, t.event_time < end) for start, end in periods)))
        untimed = base.where(
            t.event_time.is_(None), or_(*(and_(t.valid_from >= start, t.valid_from < end) for start, end in periods))
        )
        async with self._sessions() as session:
            rows = [*await session.scalars(timed), *await session.scalars(untimed)]
        return [unit_from_row(r) for r in sorted(rows, key=lambda r: (r.valid_from, r.id))]

    async def unconsolidated_owners(self) -> list[Scope]:
        stmt = (
            select(MemoryUnitRow.tenant, MemoryUnitRow.user_id, MemoryUnitRow.agent_id)
            .where(MemoryUnitRow.consolidated_at.is_(None), MemoryUnitRow.valid_to.is_(None))
            .distinct()
        )
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).all()
        return [Scope(tenant=t, user_id=u, agent_id=a) for t, u, a in rows]

    async def apply(
        self,
        tenant: str,
        claim_ids: Sequence[int],
        merges: Sequence[ProvenanceMerge] = (),
        closures: Sequence[UnitClosure] = (),
        new_units: Sequence[NewUnit] = (),
        statements: Sequence[tuple[int, str]] = (),
        statements_version: int | None = None,
    ) -> list[MemoryUnit]:
        """Apply one consolidation step atomically; returns the new units.

        `statements` are `(unit id, subject|attribute key)` rows of the claimed units, for
        `stating` to find them later; `statements_version` is the derivation that made them,
        recorded for a tenant that has no version yet (`statement_keys.keep_first_version`).

        `claim_ids` (the units this step examined for the first time) must all still be
        unconsolidated, and every unit it merges into or closes must still be valid;
        otherwise another worker got there first and `StaleConsolidation` is raised with
        nothing written. This is what keeps two workers from merging twice.
        """
        now = utc_now()
        touched = {m.unit_id for m in merges} | {c.unit_id for c in closures}
        async with self._sessions() as session, session.begin():
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
            created = await insert_units(session, tenant, new_units, now, consolidated=True)
            rows_of_keys = sorted({(unit_id, key) for unit_id, key in statements})
            if rows_of_keys:
                await session.execute(
                    UnitStatementRow.__table__.insert(),
                    [{"tenant": tenant, "key": key, "unit_id": unit_id} for unit_id, key in rows_of_keys],
                )
            if claim_ids and statements_version is not None:
                await keep_first_version(session, tenant, statements_version)
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
            await log_upserts(session, tenant, sorted(touched) + [u.id for u in created], now)
        return created

    async def unit_history(self, tenant: str, unit_id: int) -> list[MemoryUnit]:
        """The unit, the units it replaced (closed with superseded_by pointing at it, recursively)
        and the units that replaced it, oldest first."""
        seen: dict[int, MemoryUnit] = {}
        frontier = [unit_id]
        async with self._sessions() as session:
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
