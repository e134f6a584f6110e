"""The compression cache table: an LM compressor's result per window content hash (migration 0002)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from memory_service.domain import utc_now
from stores.sql.engine import dialect_insert
from stores.sql.rows import chunks
from stores.sql.store import SqlStore
from stores.sql.tables import CompressionCacheRow


@dataclass(frozen=True)
class CacheEntry:
    key: str
    compressor: str
    model: str
    prompt_version: str
    drafts: list[dict[str, Any]]
    rejected: int = 0


class CompressionCache:
    """Per-tenant: a tenant never reuses (or learns about) another tenant's results."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    async def get_many(self, tenant: str, keys: Sequence[str]) -> dict[str, CacheEntry]:
        if not keys:
            return {}
        found: dict[str, CacheEntry] = {}
        unique = sorted(set(keys))
        async with self.store.session() as session:
            for chunk in chunks(unique, 500):
                rows = await session.scalars(
                    select(CompressionCacheRow).where(
                        CompressionCacheRow.tenant == tenant, CompressionCacheRow.key.in_(chunk)
                    )
                )
                for row in rows:
                    found[row.key] = CacheEntry(
                        row.key, row.compressor, row.model, row.prompt_version, row.drafts, row.rejected
                    )
        return found

    async def put_many(self, tenant: str, entries: Sequence[CacheEntry]) -> None:
        """Store entries; a key already stored keeps its first value."""
        if not entries:
            return
        now = utc_now()
        rows = {
            e.key: {
                "tenant": tenant,
                "key": e.key,
                "compressor": e.compressor,
                "model": e.model[:256],
                "prompt_version": e.prompt_version,
                "drafts": e.drafts,
                "rejected": e.rejected,
                "created_at": now,
            }
            for e in entries
        }
        stmt = dialect_insert(self.store.dialect, CompressionCacheRow.__table__).on_conflict_do_nothing(
            index_elements=["tenant", "key"]
        )
        async with self.store.session() as session, session.begin():
            await session.execute(stmt, list(rows.values()))

    async def count(self, tenant: str | None = None) -> int:
        stmt = select(func.count()).select_from(CompressionCacheRow)
        if tenant is not None:
            stmt = stmt.where(CompressionCacheRow.tenant == tenant)
        async with self.store.session() as session:
            return int(await session.scalar(stmt) or 0)
