"""The unit change log (`unit_changes`): written with every unit write, read by whatever follows SQL.

Every insert, update or delete of a unit adds a row in the same transaction; the FAISS
indexes and every in-process cache follow this log and nothing else. `ChangeLog` is what
the index sync reads: the log since a watermark, and the embeddings of the units it names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from stores.sql.engine import session_factory
from stores.sql.rows import chunks
from stores.sql.tables import MemoryUnitRow, UnitChangeRow, UnitStatementRow


@dataclass(frozen=True)
class UnitChange:
    seq: int
    tenant: str
    unit_id: int
    op: str


async def _log(session: AsyncSession, tenant: str, unit_ids: Sequence[int], op: str, at: datetime) -> None:
    if unit_ids:
        await session.execute(
            UnitChangeRow.__table__.insert(),
            [{"tenant": tenant, "unit_id": i, "op": op, "at": at} for i in unit_ids],
        )


async def log_upserts(session: AsyncSession, tenant: str, unit_ids: Sequence[int], at: datetime) -> None:
    """Log units inserted or changed in this transaction."""
    await _log(session, tenant, unit_ids, "upsert", at)


async def delete_units_logged(session: AsyncSession, tenant: str, unit_ids: Sequence[int], at: datetime) -> None:
    """Delete units and log each deletion in the same transaction (FAISS and caches follow the log)."""
    for chunk in chunks(unit_ids):
        await session.execute(delete(MemoryUnitRow).where(MemoryUnitRow.id.in_(chunk)))
        await session.execute(
            delete(UnitStatementRow).where(UnitStatementRow.tenant == tenant, UnitStatementRow.unit_id.in_(chunk))
        )
    await _log(session, tenant, unit_ids, "delete", at)


class ChangeLog:
    """Reads for the vector index: the log since a watermark and the embeddings it needs."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = session_factory(engine)

    async def since(self, seq: int, limit: int = 100_000) -> list[UnitChange]:
        stmt = select(UnitChangeRow).where(UnitChangeRow.seq > seq).order_by(UnitChangeRow.seq).limit(limit)
        async with self._sessions() as session:
            return [UnitChange(r.seq, r.tenant, r.unit_id, r.op) for r in await session.scalars(stmt)]

    async def last_seq(self) -> int:
        async with self._sessions() as session:
            return int(await session.scalar(select(func.max(UnitChangeRow.seq))) or 0)

    async def embeddings(self, ids: Sequence[int]) -> dict[int, tuple[str, bytes]]:
        """(tenant, embedding bytes) of each existing unit among `ids`.

        Closed units stay in the vector index: SQL decides per query what is visible.
        """
        if not ids:
            return {}
        out: dict[int, tuple[str, bytes]] = {}
        async with self._sessions() as session:
            for chunk in chunks(list(ids)):
                rows = await session.execute(
                    select(MemoryUnitRow.id, MemoryUnitRow.tenant, MemoryUnitRow.embedding).where(
                        MemoryUnitRow.id.in_(chunk)
                    )
                )
                out.update({r[0]: (r[1], r[2]) for r in rows})
        return out

    async def all_unit_ids(self) -> list[int]:
        """Every stored unit, closed ones included: what a rebuilt index holds."""
        async with self._sessions() as session:
            return list(await session.scalars(select(MemoryUnitRow.id)))
