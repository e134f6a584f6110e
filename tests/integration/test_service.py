"""The whole path in process: events -> extractive units -> SQL + FAISS -> context, on both databases,
with the real packaged embedding model."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

import pytest

from compressors.extractive import ExtractiveCompressor
from memory_service.domain import CompressionWindow, EventIn, MemoryUnitDraft, Scope
from memory_service.service import MemoryService
from memory_service.settings import Settings
from memory_service.tokens import count_tokens
from stores.job_queue import JobKind

T0 = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)


def conversation() -> list[EventIn]:
    turns = [
        ("Caroline", "Hey Mel! Good to see you!"),
        ("Melanie", "Hi Caroline! Great to see you too."),
        ("Caroline", "I went to a LGBTQ support group yesterday and it was so powerful."),
        ("Melanie", "That sounds amazing. I painted a sunrise over the lake last year."),
        ("Caroline", "I'm planning to study counseling and psychology next year."),
        ("Melanie", "My kids love the camping trips we take every summer."),
        ("Caroline", "Thanks!"),
    ]
    return [
        EventIn(
            event_id=f"c1/D1:{i + 1}",
            user_id="conv-1",
            session_id="session_1",
            role="user" if speaker == "Caroline" else "assistant",
            speaker=speaker,
            content=text,
            timestamp=T0,
        )
        for i, (speaker, text) in enumerate(turns)
    ]


@pytest.fixture
async def service(settings: Settings, embedder):
    service = await MemoryService.open(settings, embedder=embedder)
    yield service
    await service.close()


class RecordingExtractive(ExtractiveCompressor):
    """The real extractive compressor, keeping every window it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.windows: list[CompressionWindow] = []

    def compress(self, window: CompressionWindow) -> list[MemoryUnitDraft]:
        self.windows.append(window)
        return super().compress(window)


async def test_a_later_ingest_shows_its_first_window_the_scopes_last_compressed_events(settings: Settings, embedder) -> None:  # type: ignore[no-untyped-def]
    # window_overlap is 0 by default; a larger LM may be shown earlier events, also across ingests
    compressor = RecordingExtractive()
    service = await MemoryService.open(settings.model_copy(update={"window_size": 3, "window_overlap": 2}),
                                       embedder=embedder, compressor=compressor)
    try:
        events = conversation()
        await service.ingest(events[:4], wait=True)
        await service.ingest(events[4:], wait=True)
    finally:
        await service.close()

    def ids(window_events: list) -> list[str]:  # type: ignore[type-arg]
        return [e.event_id for e in window_events]

    shown = [(ids(w.events), ids(w.context_events)) for w in compressor.windows]
    assert shown == [
        (["c1/D1:1", "c1/D1:2", "c1/D1:3"], []),
        (["c1/D1:4"], ["c1/D1:2", "c1/D1:3"]),
        (["c1/D1:5", "c1/D1:6", "c1/D1:7"], ["c1/D1:3", "c1/D1:4"]),  # from the store: the first ingest's last two
    ]


async def test_ingest_wait_then_context_finds_the_right_unit(service: MemoryService) -> None:
    result = await service.ingest(conversation(), wait=True)
    assert result.accepted == 7 and len(result.new_event_ids) == 7

    units = await service.list_memories(Scope(user_id="conv-1"))
    assert units, "the extractive compressor produced no unit"
    cited = {eid for u in units for eid in u.source_event_ids}
    assert "c1/D1:1" not in cited and "c1/D1:7" not in cited  # greetings and thanks are filler
    assert "c1/D1:3" in cited

    answer = await service.context(Scope(user_id="conv-1"), "When did Caroline go to the LGBTQ support group?", 128)
    assert not answer.empty
    assert answer.tokens <= 128 and answer.tokens == count_tokens(answer.context)
    top = max(answer.chosen, key=lambda c: c.score)
    assert top.unit.source_event_ids == ["c1/D1:3"]
    assert "7 May 2023" in top.unit.text  # "yesterday" resolved from the event time
    assert "2023-05-0" in answer.context


async def test_reingest_is_idempotent(service: MemoryService) -> None:
    await service.ingest(conversation(), wait=True)
    before = await service.store.count_units()
    again = await service.ingest(conversation(), wait=True)
    assert again.new_event_ids == []
    assert await service.store.count_units() == before
    assert await service.store.count_events() == 7


async def test_scopes_do_not_leak(service: MemoryService) -> None:
    events = conversation()
    other = [e.model_copy(update={"user_id": "conv-2", "event_id": "c2/" + e.event_id}) for e in events]
    await service.ingest(events + other, wait=True)
    answer = await service.context(Scope(user_id="conv-2"), "support group", 512)
    assert answer.chosen and all(c.unit.user_id == "conv-2" for c in answer.chosen)


async def test_unrelated_query_returns_empty(service: MemoryService) -> None:
    await service.ingest(conversation(), wait=True)
    answer = await service.context(Scope(user_id="conv-1"), "quantum chromodynamics lattice gauge", 512)
    assert answer.empty and answer.context == "" and answer.tokens == 0


async def test_budget_is_respected(service: MemoryService) -> None:
    await service.ingest(conversation(), wait=True)
    for budget in (1, 20, 40, 2000):
        answer = await service.context(Scope(user_id="conv-1"), "Caroline and Melanie", budget)
        assert answer.tokens <= budget


async def test_background_compression_without_wait(service: MemoryService) -> None:
    await service.ingest(conversation(), wait=False)
    await service.in_process.submit(JobKind.compress, Scope(user_id="conv-1", session_id="session_1"))
    assert await service.store.count_units() > 0


async def test_indexes_survive_restart_and_rebuild_from_sql(settings: Settings, embedder) -> None:
    query = "What does Caroline plan to study?"
    service = await MemoryService.open(settings, embedder=embedder)
    await service.ingest(conversation(), wait=True)
    first = await service.context(Scope(user_id="conv-1"), query, 256)
    await service.close()  # saves the FAISS index with its watermark

    reopened = await MemoryService.open(settings, embedder=embedder)
    assert reopened.indexes.watermark == await reopened.store.changes.last_seq()
    second = await reopened.context(Scope(user_id="conv-1"), query, 256)
    await reopened.close()

    shutil.rmtree(settings.index_dir)  # index files lost: rebuilt from stored embeddings
    rebuilt = await MemoryService.open(settings, embedder=embedder)
    third = await rebuilt.context(Scope(user_id="conv-1"), query, 256)
    await rebuilt.close()
    assert first.context == second.context == third.context
    assert [c.unit.id for c in first.chosen] == [c.unit.id for c in third.chosen]


async def test_index_catches_up_with_units_written_by_another_process(settings: Settings, embedder) -> None:
    reader = await MemoryService.open(settings, embedder=embedder)
    writer = await MemoryService.open(settings, embedder=embedder, run_jobs=False)
    await writer.ingest(conversation(), wait=True)
    answer = await reader.context(Scope(user_id="conv-1"), "painting a sunrise", 256)
    assert any(c.unit.source_event_ids == ["c1/D1:4"] and c.dense is not None for c in answer.chosen)
    unit_id = answer.chosen[0].unit.id
    assert await writer.delete_memory(unit_id)
    after = await reader.context(Scope(user_id="conv-1"), "painting a sunrise", 256)
    assert unit_id not in [c.unit.id for c in after.chosen]
    await writer.close()
    await reader.close()
