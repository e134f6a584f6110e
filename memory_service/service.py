"""The memory service: one object that wires the store, indexes, compressor and retriever.

The REST API, the CLI and (later) the integrations all call this; none of them talks
to a store directly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from compressors.base import Compressor, create_compressor
from memory_service.context import ContextFormat, PackedContext, pack
from memory_service.domain import DEFAULT_TENANT, Event, EventIn, MemoryUnit, Scope
from memory_service.embedding import Embedder, SentenceTransformerEmbedder
from memory_service.index_sync import IndexSync
from memory_service.ingestion import CompressionPipeline, CompressionStats, check_limits, to_events
from memory_service.jobs import InProcessJobs
from memory_service.retrieval import Candidate, HybridRetriever
from memory_service.settings import Settings
from stores.sql.store import SqlStore
from stores.vector_index import VectorIndexes

log = logging.getLogger(__name__)


@dataclass
class IngestResult:
    accepted: int
    event_ids: list[str]
    new_event_ids: list[str]


@dataclass
class ContextResult:
    context: str
    tokens: int
    chosen: list[Candidate]
    empty: bool
    candidates_considered: int
    timings_ms: dict[str, float] = field(default_factory=dict)


class MemoryService:
    def __init__(
        self,
        settings: Settings,
        store: SqlStore,
        embedder: Embedder,
        compressor: Compressor,
        indexes: VectorIndexes,
    ) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.compressor = compressor
        self.indexes = indexes
        self.index_sync = IndexSync(store, indexes, settings.index_save_seconds)
        self.pipeline = CompressionPipeline(
            store, compressor, embedder, settings.window_size, settings.window_overlap
        )
        self.retriever = HybridRetriever(
            store, embedder, indexes, self.index_sync, settings.candidates, settings.rrf_k, settings.min_relevance
        )
        self.jobs = InProcessJobs(self.compress_scopes)
        # Compression is CPU-bound: one round at a time in this process.
        self._compress_lock = asyncio.Lock()
        self._saver: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls,
        settings: Settings | None = None,
        *,
        embedder: Embedder | None = None,
        compressor: Compressor | None = None,
        run_jobs: bool = True,
    ) -> MemoryService:
        """Open the store (migrating it), load the models and bring the indexes up to date.

        With `run_jobs` the in-process job runner starts and picks up any events left
        uncompressed by an earlier crash.
        """
        settings = settings or Settings()
        store = await SqlStore.open(settings.sql_url)
        if embedder is None:
            embedder = await asyncio.to_thread(
                SentenceTransformerEmbedder, settings.embedding_model, settings.embedding_device
            )
        compressor = compressor or create_compressor(settings.compressor)
        service = cls(settings, store, embedder, compressor, VectorIndexes(embedder.dim, settings.index_dir))
        await service.index_sync.start()
        if run_jobs:
            service.jobs.start()
            service._saver = asyncio.create_task(service._save_periodically())
            for scope in await store.pending_scopes():
                service.jobs.submit(scope)
        return service

    async def close(self) -> None:
        if self._saver is not None:
            self._saver.cancel()
        await self.jobs.stop()
        await self.index_sync.catch_up()
        await self.index_sync.save_if_due(force=True)
        await self.store.close()

    async def _save_periodically(self) -> None:
        while True:
            await asyncio.sleep(max(1.0, self.settings.index_save_seconds / 2))
            try:
                await self.index_sync.catch_up()
                await self.index_sync.save_if_due()
            except Exception:
                log.exception("saving the FAISS indexes failed; will retry")

    # -- ingest ----------------------------------------------------------------

    async def ingest(self, events: Sequence[EventIn], tenant: str = DEFAULT_TENANT, wait: bool = False) -> IngestResult:
        """Store events (atomically, idempotent per event_id) and schedule their compression.

        With `wait` it returns once the events are compressed and indexed.
        """
        check_limits(events, self.settings.max_batch_events, self.settings.max_event_bytes)
        stored = to_events(tenant, events)
        new_ids = await self.store.insert_events(stored)
        scopes = list(dict.fromkeys(e.scope for e in stored))
        if wait:
            await self.compress_scopes(scopes)
            await self.index_sync.catch_up()
        elif self.jobs.running:
            for scope in scopes:
                self.jobs.submit(scope)
        return IngestResult(len(stored), [e.event_id for e in stored], new_ids)

    async def compress_scopes(
        self, scopes: Sequence[Scope], on_progress: Callable[[int], None] | None = None
    ) -> CompressionStats:
        async with self._compress_lock:
            return await self.pipeline.compress_scopes(scopes, on_progress)

    async def compress_pending(self, on_progress: Callable[[int], None] | None = None) -> CompressionStats:
        stats = await self.compress_scopes(await self.store.pending_scopes(), on_progress)
        await self.index_sync.catch_up()
        return stats

    # -- query -----------------------------------------------------------------

    async def context(
        self, scope: Scope, query: str, budget_tokens: int | None = None, fmt: ContextFormat = "text"
    ) -> ContextResult:
        budget = budget_tokens if budget_tokens is not None else self.settings.default_budget_tokens
        result = await self.retriever.retrieve(scope, query)
        started = time.perf_counter()
        packed: PackedContext = pack(result.candidates, budget, fmt, self.settings.tokenizer)
        timings = dict(result.timings_ms, pack_ms=(time.perf_counter() - started) * 1000)
        return ContextResult(
            context=packed.context,
            tokens=packed.tokens,
            chosen=packed.chosen,
            empty=not packed.chosen,
            candidates_considered=result.considered,
            timings_ms=timings,
        )

    # -- browse and delete -----------------------------------------------------

    async def list_memories(self, scope: Scope, limit: int = 100, offset: int = 0) -> list[MemoryUnit]:
        return await self.store.list_units(scope, limit, offset)

    async def get_memory(self, unit_id: int, tenant: str = DEFAULT_TENANT) -> MemoryUnit | None:
        return await self.store.get_unit(tenant, unit_id)

    async def delete_memory(self, unit_id: int, tenant: str = DEFAULT_TENANT) -> bool:
        deleted = await self.store.delete_unit(tenant, unit_id)
        if deleted:
            await self.index_sync.catch_up()
        return deleted

    async def list_events(self, scope: Scope, limit: int = 100, offset: int = 0) -> list[Event]:
        return await self.store.list_events(scope, limit, offset)
