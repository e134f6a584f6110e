"""From client events to stored events, and from stored events to indexed memory units."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from compressors.base import Compressor
from memory_service.domain import CompressionWindow, Event, EventIn, MemoryUnit, MemoryUnitDraft, Scope, utc_now
from memory_service.embedding import Embedder, to_bytes
from stores.sql.store import AlreadyCompressed, NewUnit, SqlStore

log = logging.getLogger(__name__)


class BatchTooLarge(ValueError):
    """A batch or an event over the configured size limits (HTTP 413)."""


class InvalidBatch(ValueError):
    """A batch that is well-formed JSON but inconsistent, e.g. an event id twice (HTTP 422)."""


def check_limits(events: Sequence[EventIn], max_events: int, max_event_bytes: int) -> None:
    if len(events) > max_events:
        raise BatchTooLarge(f"events: {len(events)} events in one batch, the limit is {max_events}")
    seen: set[str] = set()
    for i, event in enumerate(events):
        size = len(event.content.encode())
        if size > max_event_bytes:
            raise BatchTooLarge(f"events[{i}].content: {size} bytes, the limit is {max_event_bytes}")
        if event.event_id is not None:
            if event.event_id in seen:
                raise InvalidBatch(f"events[{i}].event_id: {event.event_id!r} appears twice in the batch")
            seen.add(event.event_id)


def to_events(tenant: str, events: Sequence[EventIn]) -> list[Event]:
    now = utc_now()
    return [
        Event(
            tenant=tenant,
            event_id=e.event_id or uuid.uuid4().hex,
            user_id=e.user_id,
            agent_id=e.agent_id,
            session_id=e.session_id,
            role=e.role,
            speaker=e.speaker,
            content=e.content,
            timestamp=e.timestamp or now,
            received_at=now,
            tool=e.tool,
            metadata=e.metadata,
        )
        for e in events
    ]


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
        window_overlap: int = 2,
        windows_per_batch: int = 16,
        events_per_round: int = 512,
    ) -> None:
        self.store = store
        self.compressor = compressor
        self.embedder = embedder
        self.window_size = window_size
        self.window_overlap = window_overlap
        self.windows_per_batch = windows_per_batch
        self.events_per_round = events_per_round

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
            drafts = await asyncio.to_thread(self._compress_jobs, jobs)
            texts = [d.text for job in drafts for window in job for d in window]
            vectors = iter(await asyncio.to_thread(self.embedder.embed, texts) if texts else [])
            for (scope, batch), job_drafts in zip(jobs, drafts, strict=True):
                new_units = [
                    NewUnit(
                        draft=draft,
                        scope=scope,
                        embedding=to_bytes(next(vectors)),
                        compressor=self.compressor.name,
                        compressor_version=self.compressor.version,
                    )
                    for window_drafts in job_drafts
                    for draft in window_drafts
                ]
                event_ids = [e.event_id for w in batch for e in w.events]
                try:
                    saved = await self.store.save_compression(scope.tenant, new_units, event_ids)
                except AlreadyCompressed as exc:
                    log.info("scope %s: %s; leaving the rest to the process that did", scope.label(), exc)
                    queues.pop(scope, None)
                    continue
                stats.windows += len(batch)
                stats.events += len(event_ids)
                stats.units += len(saved)
                if on_progress is not None:
                    on_progress(len(event_ids))
                queue = queues[scope]
                queue.recent = (queue.recent + saved)[-RECENT_UNITS:]
                if not queue.batches:
                    del queues[scope]
        return stats

    def _compress_jobs(self, jobs: list[tuple[Scope, list[CompressionWindow]]]) -> list[list[list[MemoryUnitDraft]]]:
        return [[self._compress_window(w) for w in batch] for _, batch in jobs]

    def _compress_window(self, window: CompressionWindow) -> list[MemoryUnitDraft]:
        allowed = {e.event_id for e in window.events}
        drafts = self.compressor.compress(window)
        kept = []
        for draft in drafts:
            cited = [i for i in draft.source_event_ids if i in allowed]
            if not cited:
                log.warning("%s produced a unit citing no event of its window: dropped", self.compressor.name)
                continue
            draft.source_event_ids = cited
            kept.append(draft)
        return kept
