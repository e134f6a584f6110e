"""DELETE /v1/events/{id} (what the LangGraph store's delete uses): units citing the event go, others are restated."""

from __future__ import annotations

from memory_service.domain import EventIn, MemoryUnitDraft, Scope
from memory_service.index.embedding import SentenceTransformerEmbedder, to_bytes
from memory_service.service import MemoryService
from memory_service.settings import Settings
from stores.sql.rows import NewUnit


async def test_erasing_an_event_restates_the_events_that_shared_its_unit(
    settings: Settings, embedder: SentenceTransformerEmbedder
) -> None:
    service = await MemoryService.open(settings, embedder=embedder, run_jobs=False)
    try:
        scope = Scope(user_id="ivy", session_id="s1")
        await service.ingest([
            EventIn(event_id="e1", user_id="ivy", session_id="s1", role="user", speaker="Ivy", content="I bought a red kayak."),
            EventIn(event_id="e2", user_id="ivy", session_id="s1", role="user", speaker="Ivy", content="I paddle on the Tagus river."),
        ])
        text = "Ivy bought a red kayak and paddles on the Tagus river."
        draft = MemoryUnitDraft(text=text, source_event_ids=["e1", "e2"])
        [shared] = await service.store.save_compression(
            "local", [NewUnit(draft, scope, to_bytes(embedder.embed([text])[0]), "test", "1")], ["e1", "e2"]
        )
        await service.index_sync.catch_up()
        assert [c.unit.id for c in (await service.context(scope, "kayak")).chosen] == [shared.id]

        erased = await service.erase_event("e1")
        assert erased is not None and erased.unit_ids == [shared.id] and erased.recompress == ["e2"]
        assert await service.get_event("e1") is None
        units = await service.list_memories(scope)
        assert [u.source_event_ids for u in units] == [["e2"]]  # e2 restated on its own
        assert "Tagus" in units[0].text and "kayak" not in units[0].text
        chosen = (await service.context(scope, "kayak Tagus")).chosen
        assert [c.unit.id for c in chosen] == [units[0].id]  # the FAISS index followed
        assert await service.erase_event("e1") is None
    finally:
        await service.close()
