"""From client events to stored events, and from stored events to indexed memory units."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
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
    ) -> None:
        self.store = store
        self.compressor = compressor
        self.embedder = embedder
        self.window_size = window_size
        self.window_overlap = window_overlap
        self.windows_per_batch = windows_per_batch

    async def compress_scope(self, scope: Scope) -> CompressionStats:
        stats = CompressionStats()
        pending = await self.store.pending_events(scope)
        if not pending:
            return stats
        before = await self.store.events_before(scope, pending[0], self.window_overlap)
        recent = await self.store.recent_units(scope, 10)
        all_windows = windows(pending, self.window_size, self.window_overlap, before)
        for start in range(0, len(all_windows), self.windows_per_batch):
            batch = all_windows[start : start + self.windows_per_batch]
            for window in batch:
                window.recent_units = recent
            try:
                saved = await self._compress_batch(scope, batch)
            except AlreadyCompressed as exc:
                log.info("scope %s: %s; leaving the rest to the process that did", scope.label(), exc)
                break
            if saved:
                recent = (recent + saved)[-10:]
            stats.windows += len(batch)
            stats.events += sum(len(w.events) for w in batch)
            stats.units += len(saved)
        return stats

    async def _compress_batch(self, scope: Scope, batch: list[CompressionWindow]) -> list[MemoryUnit]:
        drafts = await asyncio.to_thread(lambda: [self._compress_window(w) for w in batch])
        flat = [d for window_drafts in drafts for d in window_drafts]
        vectors = await asyncio.to_thread(self.embedder.embed, [d.text for d in flat]) if flat else []
        new_units = [
            NewUnit(
                draft=draft,
                scope=scope,
                embedding=to_bytes(vector),
                compressor=self.compressor.name,
                compressor_version=self.compressor.version,
            )
            for draft, vector in zip(flat, vectors)
        ]
        event_ids = [e.event_id for w in batch for e in w.events]
        return await self.store.save_compression(scope.tenant, new_units, event_ids)

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
