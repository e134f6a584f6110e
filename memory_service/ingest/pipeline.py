"""From stored events to indexed memory units: windows, compression (cached), embedding, storing."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from compressors.base import Compressor, WindowResult, compress_windows
from compressors.cache_key import CacheIdentity, decode, encode, window_key
from memory_service import tracing
from memory_service.domain import CompressionWindow, Event, MemoryUnit, Scope
from memory_service.index.embedding import Embedder, to_bytes
from memory_service.tokens import count_tokens
from stores.sql.compression_cache import CacheEntry, CompressionCache
from stores.sql.rows import NewUnit
from stores.sql.store import AlreadyCompressed, SqlStore

log = logging.getLogger(__name__)


def windows(events: Sequence[Event], size: int, overlap: int, before: Sequence[Event] = ()) -> list[CompressionWindow]:
    """Consecutive windows of `size` events, each shown the `overlap` events before it."""
    history = list(before)
    out: list[CompressionWindow] = []
    for start in range(0, len(events), size):
        chunk = list(events[start : start + size])
        context = (history + list(events[:start]))[-overlap:] if overlap else []
        out.append(CompressionWindow(events=chunk, context_events=context))
    return out


RECENT_UNITS = 10


@dataclass
class _ScopeQueue:
    batches: deque[list[CompressionWindow]]
    recent: list[MemoryUnit]


@dataclass
class CompressionStats:
    events: int = 0
    units: int = 0
    windows: int = 0
    # LM compressors only (see compressors.base.WindowResult)
    cache_hits: int = 0
    fallbacks: int = 0  # windows that fell back to extractive; their events are marked for retry
    lm_units: int = 0
    rejected: int = 0
    repaired: int = 0
    lm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    lm_seconds: float = 0.0  # summed per window (windows in flight together each count their own wait)
    lm_wall_seconds: float = 0.0  # wall time the rounds spent compressing uncached windows
    prompt_eval_tokens: int = 0  # prompt processing and generation apart, where the backend measures them
    prompt_eval_seconds: float = 0.0
    generated_tokens: int = 0
    generation_seconds: float = 0.0
    # cl100k tokens of the compressed events (content + tool call) and of the units written
    input_tokens: int = 0
    output_tokens: int = 0

    def lm_summary(self) -> dict[str, float | int | None]:
        """What an LM compressor did, for CLI output and benchmarks."""
        return {
            "windows": self.windows,
            "cache_hits": self.cache_hits,
            "fallback_windows": self.fallbacks,
            "lm_units": self.lm_units,
            "rejected_units": self.rejected,
            "repaired_units": self.repaired,
            "lm_calls": self.lm_calls,
            "lm_prompt_tokens": self.prompt_tokens,
            "lm_completion_tokens": self.completion_tokens,
            "lm_seconds": round(self.lm_seconds, 2),
            "lm_wall_seconds": round(self.lm_wall_seconds, 2),
            "prompt_eval_tokens": self.prompt_eval_tokens,
            "prompt_eval_seconds": round(self.prompt_eval_seconds, 2),
            "prompt_eval_tokens_per_s": _rate(self.prompt_eval_tokens, self.prompt_eval_seconds),
            "generation_seconds": round(self.generation_seconds, 2),
            "generation_tokens_per_s": _rate(self.generated_tokens, self.generation_seconds),
        }

    def add(self, result: WindowResult) -> None:
        self.cache_hits += result.cached
        self.fallbacks += result.fallback is not None
        self.lm_units += result.lm_units
        self.rejected += result.rejected
        self.repaired += result.repaired
        self.lm_calls += result.lm_calls
        self.prompt_tokens += result.prompt_tokens
        self.completion_tokens += result.completion_tokens
        self.lm_seconds += result.lm_seconds
        self.prompt_eval_tokens += result.prompt_eval_tokens
        self.prompt_eval_seconds += result.prompt_eval_seconds
        self.generated_tokens += result.generated_tokens
        self.generation_seconds += result.generation_seconds


def _rate(tokens: int, seconds: float) -> float | None:
    return round(tokens / seconds, 1) if seconds > 0 else None


def event_tokens(event: Event) -> int:
    """What an event weighs in the compression ratio: its content and its tool call."""
    tokens = count_tokens(event.content)
    if event.tool is not None:
        tokens += count_tokens(event.tool.model_dump_json())
    return tokens


class CompressionPipeline:
    """Compresses a scope's pending events window by window, embeds the units and stores them.

    Each batch of windows is saved in one transaction together with marking its events
    compressed, so a crash leaves events pending (to be compressed again), never half done.
    """

    def __init__(
        self,
        store: SqlStore,
        compressor: Compressor,
        embedder: Embedder,
        window_size: int = 8,
        window_overlap: int = 0,
        windows_per_batch: int = 16,
        events_per_round: int = 512,
        use_cache: bool = True,
    ) -> None:
        self.store = store
        self.compressor = compressor
        self.embedder = embedder
        self.window_size = window_size
        self.window_overlap = window_overlap
        self.windows_per_batch = windows_per_batch
        self.events_per_round = events_per_round
        # Only compressors that name a model and prompt (the LM ones) are cached.
        self.cache_identity: CacheIdentity | None = getattr(compressor, "cache_identity", None)
        self.cache = CompressionCache(store) if use_cache and self.cache_identity is not None else None
        if self.cache_identity is not None:
            # An LM takes seconds per window: smaller rounds save (and cache) work as it is done,
            # but each round still holds enough windows to keep `concurrency` requests in flight
            # (or `sequences` windows in each llama.cpp decode).
            parallel = max(1, int(getattr(compressor, "concurrency", 1)), int(getattr(compressor, "sequences", 1)))
            self.windows_per_batch = min(windows_per_batch, max(4, parallel))
            self.events_per_round = min(events_per_round, max(64, parallel * window_size))

    async def compress_scopes(
        self, scopes: Sequence[Scope], on_progress: Callable[[int], None] | None = None
    ) -> CompressionStats:
        """Compress the pending events of several scopes.

        Work goes in rounds of about `events_per_round` events taken across scopes (at
        most one batch of windows per scope per round, so a scope's next batch sees the
        units saved from its previous one). Each round embeds all its units in one call:
        the embedding model dominates ingest cost and is far faster on large batches.
        """
        stats = CompressionStats()
        queues: dict[Scope, _ScopeQueue] = {}
        for scope in scopes:
            pending = await self.store.pending_events(scope)
            if not pending:
                continue
            before = await self.store.events_before(scope, pending[0], self.window_overlap)
            all_windows = windows(pending, self.window_size, self.window_overlap, before)
            batches = deque(
                all_windows[i : i + self.windows_per_batch] for i in range(0, len(all_windows), self.windows_per_batch)
            )
            queues[scope] = _ScopeQueue(batches, await self.store.recent_units(scope, RECENT_UNITS))
        while queues:
            jobs: list[tuple[Scope, list[CompressionWindow]]] = []
            events = 0
            for scope, queue in list(queues.items()):
                batch = queue.batches.popleft()
                for window in batch:
                    window.recent_units = queue.recent
                jobs.append((scope, batch))
                events += sum(len(w.events) for w in batch)
                if events >= self.events_per_round:
                    break
            results, wall = await self._compress_round(jobs)
            stats.lm_wall_seconds += wall
            texts = [u.draft.text for job in results for result in job for u in result.units]
            with tracing.span("compress.embed", attributes={"units": len(texts)}):
                vectors = iter(await asyncio.to_thread(self.embedder.embed, texts) if texts else [])
            for (scope, batch), job_results in zip(jobs, results, strict=True):
                new_units = [
                    NewUnit(
                        draft=unit.draft,
                        scope=scope,
                        embedding=to_bytes(next(vectors)),
                        compressor=unit.compressor,
                        compressor_version=unit.version,
                    )
                    for result in job_results
                    for unit in result.units
                ]
                event_ids = [e.event_id for w in batch for e in w.events]
                retry = [
                    e.event_id for w, r in zip(batch, job_results, strict=True) if r.fallback is not None for e in w.events
                ]
                try:
                    with tracing.span("compress.save", attributes={"units": len(new_units)}):
                        saved = await self.store.save_compression(
                            scope.tenant, new_units, event_ids, retry, self.compressor.name if retry else None
                        )
                except AlreadyCompressed as exc:
                    log.info("scope %s: %s; leaving the rest to the process that did", scope.label(), exc)
                    queues.pop(scope, None)
                    continue
                stats.windows += len(batch)
                stats.events += len(event_ids)
                for result in job_results:
                    stats.add(result)
                stats.units += len(saved)
                stats.input_tokens += sum(event_tokens(e) for w in batch for e in w.events)
                stats.output_tokens += sum(count_tokens(u.text) for u in saved)
                if on_progress is not None:
                    on_progress(len(event_ids))
                queue = queues[scope]
                queue.recent = (queue.recent + saved)[-RECENT_UNITS:]
                if not queue.batches:
                    del queues[scope]
        return stats

    async def _compress_round(
        self, jobs: list[tuple[Scope, list[CompressionWindow]]]
    ) -> tuple[list[list[WindowResult]], float]:
        """Compress every window of a round, reusing cached results and caching new LM results;
        also the seconds the compressor took on the uncached ones."""
        if self.cache is None or self.cache_identity is None:
            return await asyncio.to_thread(self._compress_jobs, jobs, None, {})
        identity = self.cache_identity
        keys = [[window_key(w, identity) for w in batch] for _, batch in jobs]
        cached: dict[tuple[str, str], CacheEntry] = {}
        for tenant in {scope.tenant for scope, _ in jobs}:
            tenant_keys = [
                key for (scope, _), job_keys in zip(jobs, keys, strict=True) if scope.tenant == tenant for key in job_keys
            ]
            found = await self.cache.get_many(tenant, tenant_keys)
            cached.update({(tenant, k): v for k, v in found.items()})
        results, wall = await asyncio.to_thread(self._compress_jobs, jobs, keys, cached)
        fresh: dict[str, list[CacheEntry]] = {}
        for (scope, batch), job_keys, job_results in zip(jobs, keys, results, strict=True):
            for window, key, result in zip(batch, job_keys, job_results, strict=True):
                if result.cached or result.fallback is not None:
                    continue  # a fallback is not cached: a retry should ask the LM again
                drafts = encode(result.units, window)
                entry = CacheEntry(
                    key, identity.compressor, identity.model, identity.prompt_version, drafts, result.rejected
                )
                fresh.setdefault(scope.tenant, []).append(entry)
        for tenant, entries in fresh.items():
            await self.cache.put_many(tenant, entries)
        return results, wall

    def _compress_jobs(
        self,
        jobs: list[tuple[Scope, list[CompressionWindow]]],
        keys: list[list[str]] | None,
        cached: dict[tuple[str, str], CacheEntry],
    ) -> tuple[list[list[WindowResult]], float]:
        """Every window of the round: cached ones decoded, the rest compressed in one call
        (so a compressor with a concurrency above 1 has them all in flight), in order; and
        the seconds that call took."""
        found: list[list[WindowResult | None]] = []
        missing: list[CompressionWindow] = []
        for j, (scope, batch) in enumerate(jobs):
            row: list[WindowResult | None] = []
            for w, window in enumerate(batch):
                entry = cached.get((scope.tenant, keys[j][w])) if keys is not None else None
                units = decode(entry.drafts, window) if entry is not None else None
                row.append(WindowResult(units, cached=True) if units is not None else None)
                if units is None:
                    missing.append(window)
            found.append(row)
        started = time.perf_counter()
        cached_windows = sum(len(row) for row in found) - len(missing)
        with tracing.span("compress.windows", attributes={"windows": len(missing), "cached": cached_windows}):
            fresh = iter(compress_windows(self.compressor, missing))
        wall = time.perf_counter() - started if missing else 0.0
        return [
            [self._cited_in_window(window, result if result is not None else next(fresh)) for window, result in zip(batch, row, strict=True)]
            for (_, batch), row in zip(jobs, found, strict=True)
        ], wall

    def _cited_in_window(self, window: CompressionWindow, result: WindowResult) -> WindowResult:
        """`result` without units that cite no event of `window` (and each unit's citations outside it)."""
        allowed = {e.event_id for e in window.events}
        kept = []
        for unit in result.units:
            cited = [i for i in unit.draft.source_event_ids if i in allowed]
            if not cited:
                log.warning("%s produced a unit citing no event of its window: dropped", unit.compressor)
                continue
            unit.draft.source_event_ids = cited
            kept.append(unit)
        result.units = kept
        return result
