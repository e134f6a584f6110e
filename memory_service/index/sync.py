"""Keeps the in-process FAISS indexes in step with SQL by following the unit change log."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from memory_service import tracing
from memory_service.index.embedding import from_bytes
from stores.sql.changes import UnitChange
from stores.sql.store import SqlStore
from stores.vector_index import VectorIndexes

log = logging.getLogger(__name__)


class IndexSync:
    def __init__(self, store: SqlStore, indexes: VectorIndexes, save_every_s: float = 30.0) -> None:
        self.store = store
        self.indexes = indexes
        self.save_every_s = save_every_s
        self._lock = asyncio.Lock()
        self._last_save = time.monotonic()
        # Called with the changes applied (None after a rebuild): caches of unit data subscribe here.
        self.listeners: list[Callable[[list[UnitChange] | None], None]] = []

    def _notify(self, changes: list[UnitChange] | None) -> None:
        for listener in self.listeners:
            listener(changes)

    async def start(self) -> None:
        """Load the saved indexes and catch up from their watermark, or rebuild from SQL."""
        loaded = await asyncio.to_thread(self.indexes.load)
        if loaded and self.indexes.watermark > await self.store.changes.last_seq():
            # The database is older than the index (restored, or recreated): trust SQL.
            log.warning("FAISS watermark is ahead of the change log: rebuilding")
            loaded = False
        if not loaded:
            await self.rebuild()
        else:
            await self.catch_up()

    async def rebuild(self) -> None:
        async with self._lock:
            last = await self.store.changes.last_seq()
            self.indexes.clear()
            ids = await self.store.changes.all_unit_ids()
            await self._apply_upserts(ids, last)
            self.indexes.advance(last)
            self._notify(None)
            log.info("rebuilt FAISS indexes from SQL: %d units, watermark %d", len(ids), last)

    async def catch_up(self) -> int:
        """Apply change-log rows past the watermark; returns how many were applied."""
        async with self._lock:
            changes = await self.store.changes.since(self.indexes.watermark)
            if not changes:
                return 0
            with tracing.span("index.sync", attributes={"changes": len(changes)}):
                latest: dict[int, str] = {}
                for change in changes:
                    latest[change.unit_id] = change.op
                deletes_by_tenant: dict[str, list[int]] = {}
                for change in changes:
                    if latest[change.unit_id] == "delete":
                        deletes_by_tenant.setdefault(change.tenant, []).append(change.unit_id)
                upsert_ids = [uid for uid, op in latest.items() if op == "upsert"]
                watermark = changes[-1].seq
                for tenant, ids in deletes_by_tenant.items():
                    self.indexes.apply(tenant, {}, ids, watermark)
                await self._apply_upserts(upsert_ids, watermark)
                self.indexes.advance(watermark)
                await asyncio.to_thread(self.indexes.make_approximate_where_due)
            self._notify(changes)
            return len(changes)

    async def _apply_upserts(self, ids: list[int], watermark: int) -> None:
        rows = await self.store.changes.embeddings(ids)
        by_tenant: dict[str, dict[int, object]] = {}
        for unit_id, (tenant, blob) in rows.items():
            by_tenant.setdefault(tenant, {})[unit_id] = from_bytes(blob)
        # A unit that is gone or no longer valid by now must leave the index too.
        gone = [i for i in ids if i not in rows]
        for tenant, vectors in by_tenant.items():
            self.indexes.apply(tenant, vectors, (), watermark)  # type: ignore[arg-type]
        if gone:
            for tenant in self.indexes.tenants():
                self.indexes.apply(tenant, {}, gone, watermark)

    async def save_if_due(self, force: bool = False) -> None:
        if self.indexes.dirty and (force or time.monotonic() - self._last_save >= self.save_every_s):
            async with self._lock:
                await asyncio.to_thread(self.indexes.save)
            self._last_save = time.monotonic()
