"""DELETE /v1/scopes machinery: a scope's events, units, FAISS vectors, cache entries and queued jobs go,
nothing of other scopes or tenants does, and nothing comes back after a restart or an index rebuild."""

from __future__ import annotations

import shutil
import uuid

from memory_service.domain import EventIn, MemoryUnitDraft, Scope
from memory_service.index.embedding import SentenceTransformerEmbedder, to_bytes
from memory_service.service import MemoryService
from memory_service.settings import Settings
from stores.job_queue import JobKind, RedisJobQueue
from stores.sql.compression_cache import CacheEntry, CompressionCache
from stores.sql.rows import NewUnit
from tests.conftest import REDIS_URL

OTHER = "other-tenant"


def event(event_id: str, user: str, session: str, content: str) -> EventIn:
    return EventIn(event_id=event_id, user_id=user, session_id=session, role="user", speaker=user.title(), content=content)


def cites_erased(units: list, erased_events: set[str] = {"e1", "e2"}) -> list:  # noqa: B006
    return [u for u in units if erased_events & set(u.source_event_ids) or "kayak" in u.text.lower()]


async def seed(service: MemoryService, embedder: SentenceTransformerEmbedder) -> int:
    """Ivy's sessions s1 and s2, Bob, and another tenant's Ivy with the same ids; returns the id of
    an owner-level unit (as consolidation writes) citing an s1 and an s2 event."""
    await service.ingest([
        event("e1", "ivy", "s1", "I bought a red kayak in Lisbon."),
        event("e2", "ivy", "s1", "My kayak is called Blue Heron."),
        event("e3", "ivy", "s2", "I paddle on the Tagus river every Sunday."),
        event("e4", "ivy", "s2", "I also collect vintage maps."),
        event("b1", "bob", "s1", "Bob keeps a red kayak in Lisbon too."),
    ])
    await service.ingest([event("e1", "ivy", "s1", "I bought a red kayak in Lisbon.")], tenant=OTHER)
    text = "Ivy paddles her red kayak on the Tagus river."
    draft = MemoryUnitDraft(text=text, source_event_ids=["e1", "e3"])
    [summary] = await service.store.save_compression(
        "local", [NewUnit(draft, Scope(user_id="ivy"), to_bytes(embedder.embed([text])[0]), "test", "1")], []
    )
    await service.compress_pending()
    return summary.id


async def test_erasing_a_session_takes_units_citing_it_and_survives_restart_and_rebuild(
    settings: Settings, embedder: SentenceTransformerEmbedder
) -> None:
    service = await MemoryService.open(settings, embedder=embedder, run_jobs=False)
    try:
        summary_id = await seed(service, embedder)
        ivy, s1 = Scope(user_id="ivy"), Scope(user_id="ivy", session_id="s1")
        assert summary_id in {c.unit.id for c in (await service.context(ivy, "red kayak Tagus")).chosen}
        s1_units = {u.id for u in await service.list_memories(s1)}
        # An LM cache entry whose draft became one of the erased units, and one of another scope.
        [kayak_unit] = [u for u in await service.list_memories(s1) if "Blue Heron" in u.text]
        [maps_unit] = [u for u in await service.list_memories(Scope(user_id="ivy", session_id="s2")) if "maps" in u.text]
        cache = CompressionCache(service.store)
        await cache.put_many("local", [
            CacheEntry("k-erased", "llama_cpp", "m", "1", [{"draft": {"text": kayak_unit.text}, "compressor": "x", "version": "1"}]),
            CacheEntry("k-kept", "llama_cpp", "m", "1", [{"draft": {"text": maps_unit.text}, "compressor": "x", "version": "1"}]),
        ])

        erased = await service.erase_scope(s1)
        assert erased.event_ids == ["e1", "e2"]
        assert set(erased.unit_ids) == s1_units | {summary_id}
        assert erased.recompress == ["e3"]  # shared the summary: restated on its own
        assert erased.cache_entries == 1 and set(await cache.get_many("local", ["k-erased", "k-kept"])) == {"k-kept"}

        assert await service.list_events(s1) == [] and await service.list_memories(s1) == []
        assert cites_erased([c.unit for c in (await service.context(ivy, "red kayak Lisbon Blue Heron")).chosen]) == []
        tagus = [c.unit for c in (await service.context(ivy, "Tagus river Sunday")).chosen]
        assert tagus and all(u.source_event_ids == ["e3"] for u in tagus if "Tagus" in u.text)
        # Bob and the other tenant's Ivy (same event id e1) are untouched.
        assert [c.unit.user_id for c in (await service.context(Scope(user_id="bob"), "red kayak Lisbon")).chosen] == ["bob"]
        other = await service.context(Scope(tenant=OTHER, user_id="ivy"), "red kayak Lisbon")
        assert [c.unit.source_event_ids for c in other.chosen] == [["e1"]]

        again = await service.erase_scope(s1)  # idempotent
        assert (again.event_ids, again.unit_ids, again.recompress, again.cache_entries) == ([], [], [], 0)
        erased_ids = set(erased.unit_ids)
    finally:
        await service.close()

    async def nothing_erased_is_back(service: MemoryService) -> None:
        assert not erased_ids & set(service.indexes.tenant("local").vectors(sorted(erased_ids)))
        assert cites_erased([c.unit for c in (await service.context(ivy, "red kayak Lisbon Blue Heron")).chosen]) == []
        assert cites_erased(await service.list_memories(ivy)) == []
        assert await service.list_events(s1) == []
        assert [c.unit.user_id for c in (await service.context(Scope(user_id="bob"), "kayak")).chosen] == ["bob"]

    # Restart from the saved FAISS files ...
    service = await MemoryService.open(settings, embedder=embedder, run_jobs=False)
    try:
        await nothing_erased_is_back(service)
    finally:
        await service.close()
    # ... and with them gone, forcing a rebuild from SQL.
    shutil.rmtree(settings.index_dir)
    service = await MemoryService.open(settings, embedder=embedder, run_jobs=False)
    try:
        await nothing_erased_is_back(service)
        assert len(service.indexes.tenant(OTHER)) == 1
    finally:
        await service.close()


async def test_erasing_a_user_drops_its_queued_redis_jobs(tmp_path, sqlite_url: str, embedder: SentenceTransformerEmbedder) -> None:  # type: ignore[no-untyped-def]
    """Redis mode, no worker running: the compress jobs queued by the ingest are removed with the scope."""
    queue_name = f"test-erasure-{uuid.uuid4().hex[:8]}"
    settings = Settings(data_dir=tmp_path / "data", database_url=sqlite_url, redis_url=REDIS_URL, queue_name=queue_name)
    service = await MemoryService.open(settings, embedder=embedder, run_jobs=False)
    queue = RedisJobQueue(REDIS_URL, name=queue_name)
    try:
        await service.ingest([event("e1", "ivy", "s1", "I bought a red kayak."), event("e2", "ivy", "s2", "I like maps.")])
        await service.ingest([event("b1", "bob", "s1", "Bob likes maps.")])
        assert (await queue.stats()).queued == 3
        erased = await service.erase_scope(Scope(user_id="ivy"))
        assert erased.jobs_cancelled == 2 and erased.event_ids == ["e1", "e2"]
        assert (await queue.stats()).queued == 1  # Bob's job stays
        assert await queue.enqueue(JobKind.compress, Scope(user_id="ivy", session_id="s1"))  # can be queued again
    finally:
        await queue.close()
        await service.close()
        await _drop_queue_keys(queue_name)


async def _drop_queue_keys(queue_name: str) -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in redis.scan_iter(match=f"*{queue_name}*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()
