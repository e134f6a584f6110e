"""Ingest through the service with the real llama.cpp compressor: unit provenance and compressor
names in SQL, the compression cache on re-ingest, and retry marks when the LM fails."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from compressors.backends.llamacpp import LlamaCppCompressor
from compressors.extractive import ExtractiveCompressor
from memory_service.domain import EventIn, Scope, ToolCall
from memory_service.service import MemoryService
from memory_service.settings import Settings
from stores.sql.compression_cache import CompressionCache
from stores.sql.retry import count_marked
from stores.sql.tables import EventRow

pytestmark = pytest.mark.slow

T0 = datetime(2024, 3, 14, 9, 0, tzinfo=UTC)


def agent_log(agent_id: str) -> list[EventIn]:
    return [
        EventIn(event_id=f"{agent_id}/1", agent_id=agent_id, role="user", speaker="Priya",
                content="Please move the staging database to port 5433.", timestamp=T0),
        EventIn(event_id=f"{agent_id}/2", agent_id=agent_id, role="tool",
                tool=ToolCall(name="edit_config", arguments={"key": "db.port", "value": 5433}, result={"status": "ok"}),
                timestamp=T0),
        EventIn(event_id=f"{agent_id}/3", agent_id=agent_id, role="assistant", speaker="Deployer",
                content="Done: staging now listens on port 5433.", timestamp=T0),
    ]


@pytest.fixture(scope="module")
def llama() -> LlamaCppCompressor:
    return LlamaCppCompressor(timeout_s=600, max_tokens=300)


async def open_service(settings: Settings, embedder, compressor) -> MemoryService:  # type: ignore[no-untyped-def]
    return await MemoryService.open(settings, embedder=embedder, compressor=compressor, run_jobs=False)


async def test_lm_units_in_sql_and_cache_hit_on_reingest(settings: Settings, embedder, llama) -> None:  # type: ignore[no-untyped-def]
    service = await open_service(settings, embedder, llama)
    try:
        await service.ingest(agent_log("first"))
        first = await service.compress_pending()
        assert first.windows == 1 and first.lm_calls == 1 and first.cache_hits == 0 and first.fallbacks == 0
        units = await service.list_memories(Scope(agent_id="first"))
        assert {i for u in units for i in u.source_event_ids} == {"first/1", "first/2", "first/3"}
        for unit in units:
            assert unit.compressor in ("llama_cpp", "extractive")
            assert unit.compressor_version == (llama.version if unit.compressor == "llama_cpp" else ExtractiveCompressor.version)
        assert first.lm_units >= 1
        assert await CompressionCache(service.store).count() == 1

        # the same log again, under another agent and new event ids: no LM call
        await service.ingest(agent_log("second"))
        second = await service.compress_pending()
        assert second.cache_hits == 1 and second.lm_calls == 0
        again = await service.list_memories(Scope(agent_id="second"))
        assert sorted(u.text for u in again) == sorted(u.text for u in units)
        assert {i for u in again for i in u.source_event_ids} == {"second/1", "second/2", "second/3"}
        assert [(u.compressor, u.compressor_version) for u in again] == [(u.compressor, u.compressor_version) for u in units]
    finally:
        await service.close()


async def test_failed_lm_window_is_stored_extractive_and_marked_for_retry(settings: Settings, embedder, llama) -> None:  # type: ignore[no-untyped-def]
    failing = copy.copy(llama)
    failing.timeout_s = 0.001
    service = await open_service(settings, embedder, failing)
    try:
        await service.ingest(agent_log("slow"))
        stats = await service.compress_pending()
        assert stats.fallbacks == 1 and stats.events == 3
        units = await service.list_memories(Scope(agent_id="slow"))
        assert units and {u.compressor for u in units} == {"extractive"}
        assert {i for u in units for i in u.source_event_ids} == {"slow/1", "slow/2", "slow/3"}
        async with service.store.session() as session:
            marks = dict((await session.execute(select(EventRow.event_id, EventRow.retry_compressor))).all())
        assert marks == {"slow/1": "llama_cpp", "slow/2": "llama_cpp", "slow/3": "llama_cpp"}
        assert await CompressionCache(service.store).count() == 0  # a fallback is never cached
    finally:
        await service.close()

    # later, with a working model: the marked events are compressed again by the LM
    service = await open_service(settings, embedder, llama)
    try:
        stand_ins = {u.id for u in await service.list_memories(Scope(agent_id="slow"))}
        requeued, stats = await service.retry_failed_windows()
        assert requeued.events == 3 and requeued.units_deleted == len(stand_ins)
        assert stats.events == 3 and stats.lm_calls == 1 and stats.fallbacks == 0
        units = await service.list_memories(Scope(agent_id="slow"))
        assert not stand_ins & {u.id for u in units}
        assert "llama_cpp" in {u.compressor for u in units}
        assert {i for u in units for i in u.source_event_ids} == {"slow/1", "slow/2", "slow/3"}
        assert await count_marked(service.store) == 0
        assert len(service.indexes.tenant(units[0].tenant)) == len(units)  # the deletions reached FAISS
    finally:
        await service.close()
