"""The embedded runner retries outstanding work on its own: events stored without a job
(as when the job failed during a database outage) get compressed by the periodic reconcile."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from memory_service.domain import EventIn, Scope
from memory_service.ingest.events import to_events
from memory_service.service import MemoryService
from memory_service.settings import Settings


async def test_stored_events_without_a_job_are_compressed_by_the_periodic_reconcile(sqlite_url, tmp_path, embedder) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=sqlite_url, reconcile_seconds=0.2)
    service = await MemoryService.open(settings, embedder=embedder)
    try:
        events = to_events("local", [
            EventIn(event_id=f"r{i}", user_id="ann", role="user", speaker="Ann", content=f"Ann booked flight {i} to Oslo.",
                    timestamp=datetime(2024, 1, 1, 9, i, tzinfo=UTC))
            for i in range(3)
        ])
        await service.store.insert_events(events, [1] * len(events))  # stored, but no job was enqueued
        for _ in range(200):
            if not await service.store.count_uncompressed("local", [e.event_id for e in events]):
                break
            await asyncio.sleep(0.1)
        assert await service.store.count_uncompressed("local", [e.event_id for e in events]) == 0
        assert len(await service.list_memories(Scope(user_id="ann"))) == 3
    finally:
        await service.close()
