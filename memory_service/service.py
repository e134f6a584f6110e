"""The memory service: wiring only. It builds the parts from `Settings` (store, indexes,
compressor, the ingest pipeline, the consolidator, the context pipeline, the job queue)
and owns their lifetimes; each stage's logic lives in its own package.

The REST API, the CLI and the integrations all call this; none of them talks
to a store directly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from compressors.base import Compressor, create_compressor, is_native
from compressors.lm.client import TokenScorer
from compressors.lm.isolated import IsolatedScorer, isolate
from compressors.lm.process import LMProcessStatus
from compressors.lm.scoring import LlamaCppScorer
from memory_service import metrics, tracing
from memory_service.consolidate.consolidator import ConsolidationReport, Consolidator
from memory_service.consolidate.lm_judge import judge_factory
from memory_service.context.config import PruningConfig
from memory_service.context.importance import AccessRecorder, DecayPolicy
from memory_service.context.lm_analysis import LMQueryAnalyzer, query_analyzer
from memory_service.context.packing import ContextFormat
from memory_service.context.pipeline import ContextPipeline, ContextResult
from memory_service.context.pruning import TokenPruner
from memory_service.context.ranking import load_ranker
from memory_service.context.retrieval import HybridRetriever
from memory_service.domain import DEFAULT_TENANT, Event, EventIn, MemoryUnit, Scope
from memory_service.index.embedding import Embedder, SentenceTransformerEmbedder
from memory_service.index.sync import IndexSync
from memory_service.ingest.events import check_limits, to_events
from memory_service.ingest.pipeline import CompressionPipeline, CompressionStats
from memory_service.jobs import InProcessJobs
from memory_service.settings import Settings
from memory_service.tokens import count_tokens_many
from stores.job_queue import JobKind, JobQueue, QueueStats, RedisJobQueue
from stores.sql.consolidation import StaleConsolidation
from stores.sql.erasure import ErasedEvent, ErasedScope, erase_event, erase_scope
from stores.sql.retry import Requeued, requeue_marked
from stores.sql.scopes import ScopeCounts, scope_counts
from stores.sql.store import SqlStore
from stores.vector_index import AnnConfig, VectorIndexes

log = logging.getLogger(__name__)


@dataclass
class IngestResult:
    accepted: int
    event_ids: list[str]
    new_event_ids: list[str]


def open_compressor(settings: Settings, name: str | None = None) -> Compressor:
    """The configured compressor (or `name`); a native LM backend runs in a child process unless
    `lm_isolation` is inline. Loads the model, so call it off the event loop."""
    name = name or settings.compressor
    if settings.lm_isolation == "process" and is_native(name):
        return isolate(name, settings.compressor_options(), backoff_s=settings.lm_restart_backoff_s)
    return create_compressor(name, **settings.compressor_options())


def pruning_model(settings: Settings, config: PruningConfig) -> str | None:
    """The GGUF pruning scores with: its own, else the llama_cpp compressor's, else (None) the packaged SmolLM2."""
    return config.model or (settings.llm_model if settings.compressor == "llama_cpp" else None)


def token_pruner(settings: Settings, config: PruningConfig | None = None) -> TokenPruner:
    """The pruner for the settings; its GGUF loads on first use (see `context.pruning`)."""
    config = config or settings.context_config().pruning
    options = {"model": pruning_model(settings, config), "context_tokens": 2048, "threads": settings.llm_threads}

    def load() -> TokenScorer:
        if settings.lm_isolation == "process":
            return IsolatedScorer(options=options, timeout_s=settings.llm_timeout_s, backoff_s=settings.lm_restart_backoff_s)
        return LlamaCppScorer(**options)

    return TokenPruner(
        load,
        keep_ratio=config.keep_ratio,
        condition_on_query=config.condition_on_query,
        tokenizer=settings.tokenizer,
    )


def owner_of(scope: Scope) -> Scope:
    """Consolidation works per owner: a user/agent pair across all its sessions."""
    return Scope(tenant=scope.tenant, user_id=scope.user_id, agent_id=scope.agent_id)


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
            store,
            compressor,
            embedder,
            settings.window_size,
            settings.window_overlap,
            use_cache=settings.compression_cache,
        )
        context = settings.context_config()
        self.context_config = context
        self.decay = DecayPolicy(
            half_life_days=context.retrieval.decay_half_life_days, weight=context.retrieval.importance_weight
        )
        self.retriever = HybridRetriever(
            store, embedder, indexes, self.index_sync, context.retrieval, decay=self.decay,
            ranker=load_ranker(context.retrieval.ranker),
        )
        self.consolidator = Consolidator(
            store,
            embedder,
            self.index_sync,
            duplicate_threshold=settings.duplicate_threshold,
            supersede_threshold=settings.supersede_threshold,
            min_cluster=settings.abstraction_min_cluster,
            judge_factory=judge_factory(settings.supersession_judge, compressor),
        )
        self.pruner: TokenPruner | None = token_pruner(settings, context.pruning) if context.pruning.enabled else None
        self.access = AccessRecorder(store)
        self.context_pipeline = ContextPipeline(
            context,
            store,
            self.index_sync,
            self.retriever,
            self.access,
            analyzer=query_analyzer(context.analysis.mode, compressor, context.analysis.timeout_s),
            pruner=self.pruner,
        )
        self.in_process = InProcessJobs(self.compress_scopes, self.consolidate)
        self.jobs: JobQueue = (
            self.in_process
            if settings.embedded
            else RedisJobQueue(
                settings.redis_url or "",
                name=settings.queue_name,
                timeout_s=settings.job_timeout_s,
                heartbeat_s=settings.job_heartbeat_s,
                retries=settings.job_retries,
            )
        )
        # Compression is CPU-bound: one round at a time in this process.
        self._compress_lock = asyncio.Lock()
        self._owner_locks: dict[Scope, asyncio.Lock] = {}
        self._saver: asyncio.Task[None] | None = None
        self._reconciler: asyncio.Task[None] | None = None
        self._owns_compressor = False  # `open` sets it for the compressor it built

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

        With `run_jobs` in embedded mode the in-process job runner starts and picks up
        work an earlier crash left undone. In Redis mode workers do the jobs; `run_jobs`
        only re-enqueues outstanding work (harmless when Redis is down: the worker's own
        reconcile loop catches up).
        """
        settings = settings or Settings()
        store = await SqlStore.open(settings.sql_url)
        if embedder is None:
            embedder = await asyncio.to_thread(
                SentenceTransformerEmbedder, settings.embedding_model, settings.embedding_device
            )
        owns_compressor = compressor is None
        if compressor is None:  # an LM backend loads its model here
            compressor = await asyncio.to_thread(open_compressor, settings)
        ann = AnnConfig(settings.ann_threshold, settings.ann_nprobe, settings.ann_exact_scope)
        service = cls(settings, store, embedder, compressor, VectorIndexes(embedder.dim, settings.index_dir, ann))
        service._owns_compressor = owns_compressor
        await service.index_sync.start()
        if run_jobs:
            if settings.embedded:
                service.in_process.start()
                # Work whose job failed (the database was down, say) is retried from SQL state;
                # in Redis mode the workers' reconcile loop does this.
                service._reconciler = asyncio.create_task(service._reconcile_periodically())
            service._saver = asyncio.create_task(service._save_periodically())
            await service.reconcile()
        return service

    async def close(self) -> None:
        for task in (self._saver, self._reconciler):
            if task is not None:
                task.cancel()
        await self.in_process.close()
        if self.jobs is not self.in_process:
            await self.jobs.close()
        await self.index_sync.catch_up()
        await self.index_sync.save_if_due(force=True)
        await self.access.flush()
        await self.store.close()
        if self.pruner is not None:
            self.pruner.close()
        if self._owns_compressor:
            close = getattr(self.compressor, "close", None)
            if callable(close):
                close()

    def lm_processes(self) -> list[LMProcessStatus]:
        """The state of each child process that runs native LM code (none when no LM is isolated)."""
        owners = [self.compressor, self.pruner.scorer if self.pruner is not None else None]
        return [owner.lm_status() for owner in owners if owner is not None and hasattr(owner, "lm_status")]

    async def _save_periodically(self) -> None:
        while True:
            await asyncio.sleep(max(1.0, self.settings.index_save_seconds / 2))
            try:
                await self.index_sync.catch_up()
                await self.index_sync.save_if_due()
            except Exception:
                log.exception("saving the FAISS indexes failed; will retry")
            await self.access.flush()

    async def _reconcile_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reconcile_seconds)
            try:
                await self.reconcile()
            except Exception:
                log.exception("re-enqueueing outstanding work failed; will retry")

    # -- ingest ----------------------------------------------------------------

    async def ingest(self, events: Sequence[EventIn], tenant: str = DEFAULT_TENANT, wait: bool = False) -> IngestResult:
        """Store events (atomically, idempotent per event_id) and schedule their compression.

        With `wait` it returns once the events are compressed and indexed.
        """
        with tracing.span("ingest.validate"):
            check_limits(events, self.settings.max_batch_events, self.settings.max_event_bytes)
            stored = to_events(tenant, events)
            tokens = await asyncio.to_thread(count_tokens_many, [e.content for e in stored], self.settings.tokenizer)
        with tracing.span("ingest.store"):
            new_ids = await self.store.insert_events(stored, tokens)
        metrics.EVENTS_INGESTED.labels(tenant).inc(len(stored))
        metrics.EVENTS_NEW.labels(tenant).inc(len(new_ids))
        scopes = list(dict.fromkeys(e.scope for e in stored))
        if wait and self.settings.embedded:
            await self.compress_scopes(scopes)
            await self.index_sync.catch_up()
        else:
            with tracing.span("ingest.enqueue"):
                for scope in scopes:
                    await self._enqueue(JobKind.compress, scope)
            if wait:
                await self._wait_compressed(tenant, [e.event_id for e in stored])
        return IngestResult(len(stored), [e.event_id for e in stored], new_ids)

    async def _enqueue(self, kind: JobKind, scope: Scope) -> None:
        """Queue a job if a runner is there to take it. An unreachable Redis loses nothing:
        the work stays outstanding in SQL and the workers' reconcile loop finds it."""
        if self.jobs is self.in_process and not self.in_process.running:
            return
        try:
            await self.jobs.enqueue(kind, scope)
        except Exception as exc:
            log.warning("could not enqueue %s for %s (%s); it will be picked up by reconcile", kind, scope.label(), exc)

    async def _wait_compressed(self, tenant: str, event_ids: list[str], timeout_s: float = 300.0) -> None:
        deadline = time.monotonic() + timeout_s
        delay = 0.05
        while await self.store.count_uncompressed(tenant, event_ids):
            if time.monotonic() > deadline:
                raise TimeoutError(f"events not compressed within {timeout_s:.0f} s; they are stored and will be")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
        await self.index_sync.catch_up()

    async def compress_scopes(
        self, scopes: Sequence[Scope], on_progress: Callable[[int], None] | None = None
    ) -> CompressionStats:
        async with self._compress_lock:
            stats = await self.pipeline.compress_scopes(scopes, on_progress)
        metrics.record_compression(stats.events, stats.units, stats.input_tokens, stats.output_tokens)
        if stats.units:
            for owner in dict.fromkeys(owner_of(s) for s in scopes):
                await self._enqueue(JobKind.consolidate, owner)
        return stats

    async def consolidate(self, owner: Scope) -> ConsolidationReport:
        """Consolidate one owner's units now (idempotent; safe beside other workers)."""
        owner = owner_of(owner)
        lock = self._owner_locks.setdefault(owner, asyncio.Lock())
        async with lock:
            try:
                with tracing.span("consolidate", attributes={"owner": owner.label()}):
                    report = await self.consolidator.consolidate(owner)
            except StaleConsolidation as exc:
                log.info("consolidation of %s raced another worker (%s); it will be redone", owner.label(), exc)
                report = ConsolidationReport()
        await self.index_sync.catch_up()
        return report

    async def reconcile(self) -> int:
        """Enqueue every job SQL says is outstanding; returns how many were enqueued."""
        scopes = await self.store.pending_scopes()
        owners = await self.store.consolidation.unconsolidated_owners()
        for scope in scopes:
            await self._enqueue(JobKind.compress, scope)
        for owner in owners:
            await self._enqueue(JobKind.consolidate, owner)
        return len(scopes) + len(owners)

    async def job_stats(self, dead_letters: int = 20) -> QueueStats:
        return await self.jobs.stats(dead_letters)

    async def compress_pending(self, on_progress: Callable[[int], None] | None = None) -> CompressionStats:
        stats = await self.compress_scopes(await self.store.pending_scopes(), on_progress)
        await self.index_sync.catch_up()
        return stats

    async def retry_failed_windows(self, limit: int = 10_000) -> tuple[Requeued, CompressionStats]:
        """Compress again, with this service's compressor, the events an LM failed on before
        (their extractive stand-in units are replaced); see `stores.sql.retry`."""
        requeued = await requeue_marked(self.store, self.compressor.name, limit)
        await self.index_sync.catch_up()
        return requeued, await self.compress_pending()

    # -- query -----------------------------------------------------------------

    async def context(
        self,
        scope: Scope,
        query: str,
        budget_tokens: int | None = None,
        fmt: ContextFormat = "text",
        as_of: datetime | None = None,
    ) -> ContextResult:
        """Query-aware context (`context.pipeline`). Only currently valid units, or with `as_of` those valid then."""
        return await self.context_pipeline.run(scope, query, budget_tokens, fmt, as_of)

    @property
    def query_analyzer(self) -> LMQueryAnalyzer | None:
        """The LM query analyzer of the context path (None: the rules alone)."""
        return self.context_pipeline.analyzer

    @query_analyzer.setter
    def query_analyzer(self, analyzer: LMQueryAnalyzer | None) -> None:
        self.context_pipeline.analyzer = analyzer

    # -- browse and delete -----------------------------------------------------

    async def list_memories(
        self,
        scope: Scope,
        limit: int = 100,
        offset: int = 0,
        *,
        include_closed: bool = False,
        as_of: datetime | None = None,
        kind: str | None = None,
        contains: str | None = None,
        newest_first: bool = False,
    ) -> list[MemoryUnit]:
        """Units valid now (or at `as_of`; all with `include_closed`), narrowed by kind and text."""
        return await self.store.list_units(
            scope, limit, offset, include_closed, as_of=as_of, kind=kind, contains=contains, newest_first=newest_first
        )

    async def get_memories(self, unit_ids: Sequence[int], tenant: str = DEFAULT_TENANT) -> list[MemoryUnit]:
        """The tenant's units among `unit_ids`, in that order (missing ones left out)."""
        found = await self.store.units_by_ids(tenant, list(unit_ids))
        return [found[i] for i in unit_ids if i in found]

    async def list_scopes(self, tenant: str = DEFAULT_TENANT) -> list[ScopeCounts]:
        return await scope_counts(self.store, tenant)

    async def memory_history(self, unit_id: int, tenant: str = DEFAULT_TENANT) -> list[MemoryUnit]:
        """The unit with the units it replaced and those that replaced it (empty: no such unit)."""
        return await self.store.consolidation.unit_history(tenant, unit_id)

    async def get_memory(self, unit_id: int, tenant: str = DEFAULT_TENANT) -> MemoryUnit | None:
        return await self.store.get_unit(tenant, unit_id)

    async def delete_memory(self, unit_id: int, tenant: str = DEFAULT_TENANT) -> bool:
        deleted = await self.store.delete_unit(tenant, unit_id)
        if deleted:
            await self.index_sync.catch_up()
        return deleted

    async def list_events(
        self, scope: Scope | None, limit: int = 100, offset: int = 0, *, id_prefix: str | None = None,
        tenant: str = DEFAULT_TENANT,
    ) -> list[Event]:
        """Events of a scope, oldest first; with no scope, `id_prefix` is required and spans the tenant."""
        if scope is None:
            if not id_prefix:
                raise ValueError("listing events needs a scope or an event_id prefix")
            return await self.store.list_tenant_events(tenant, id_prefix, limit, offset)
        return await self.store.list_events(scope, limit, offset, id_prefix=id_prefix)

    async def get_event(self, event_id: str, tenant: str = DEFAULT_TENANT) -> Event | None:
        events = await self.store.get_events(tenant, [event_id])
        return events[0] if events else None

    async def get_events(self, event_ids: Sequence[str], tenant: str = DEFAULT_TENANT) -> list[Event]:
        return await self.store.get_events(tenant, event_ids)

    async def erase_event(self, event_id: str, tenant: str = DEFAULT_TENANT) -> ErasedEvent | None:
        """Delete a raw event and the units restated from it (None: no such event).

        Events that shared a deleted unit are compressed again before this returns.
        """
        erased = await erase_event(self.store, tenant, event_id)
        if erased is None:
            return None
        if erased.recompress:
            others = await self.store.get_events(tenant, erased.recompress)
            await self.compress_scopes(list(dict.fromkeys(e.scope for e in others)))
        await self.index_sync.catch_up()
        return erased

    async def erase_scope(self, scope: Scope) -> ErasedScope:
        """Erase a scope's events and units (and units elsewhere citing its events), their FAISS
        vectors, LM cache entries and queued jobs. Idempotent: a second call finds nothing.

        The FAISS indexes are saved before this returns, so the files on disk hold no erased
        vector either. Events that shared a deleted unit are compressed again first.
        """
        erased = await erase_scope(self.store, scope)
        cancelled = 0
        for exact in erased.exact_scopes:
            cancelled += await self._cancel(JobKind.compress, exact)
        if scope.session_id is None:  # the owner's units are all gone: its consolidation has nothing to do
            for owner in dict.fromkeys(owner_of(s) for s in erased.exact_scopes):
                cancelled += await self._cancel(JobKind.consolidate, owner)
        if erased.recompress:
            others = await self.store.get_events(scope.tenant, erased.recompress)
            await self.compress_scopes(list(dict.fromkeys(e.scope for e in others)))
        await self.index_sync.catch_up()
        await self.index_sync.save_if_due(force=True)
        return replace(erased, jobs_cancelled=cancelled)

    async def _cancel(self, kind: JobKind, scope: Scope) -> int:
        try:
            return int(await self.jobs.cancel(kind, scope))
        except Exception as exc:  # an unreachable Redis: the queued job will find no work anyway
            log.warning("could not remove the queued %s job of %s (%s)", kind, scope.label(), exc)
            return 0
