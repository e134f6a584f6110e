"""Access counts behind importance decay, on real SQLite and PostgreSQL with the real embedder:
contexts count the units they return, counts reach SQL in batches and survive a restart,
looking back in time (`as_of`) counts nothing, and nothing is ever deleted by decay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from memory_service.domain import EventIn, Scope
from memory_service.service import MemoryService
from memory_service.settings import Settings

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
SCOPE = Scope(user_id="ann")


def events() -> list[EventIn]:
    said = ["I adopted a beagle called Biscuit.", "My sister lives in Lisbon.", "I play the cello on Sundays."]
    return [
        EventIn(event_id=f"a{i}", user_id="ann", role="user", speaker="Ann", content=text, timestamp=T0 + timedelta(hours=i))
        for i, text in enumerate(said)
    ]


async def counts(service: MemoryService) -> dict[str, tuple[int, datetime | None]]:
    units = await service.store.list_units(SCOPE, limit=100)
    return {u.text: (u.access_count, u.last_accessed_at) for u in units}


async def test_contexts_count_what_they_return_and_counts_survive_a_restart(settings: Settings, embedder) -> None:
    service = await MemoryService.open(settings, embedder=embedder, run_jobs=False)
    try:
        await service.ingest(events(), wait=True)
        assert all(n == 0 for n, _ in (await counts(service)).values())
        first = await service.context(SCOPE, "What is the name of Ann's dog?", budget_tokens=200)
        second = await service.context(SCOPE, "What is the name of Ann's dog?", budget_tokens=200)
        dog = [c.unit for c in second.chosen if "Biscuit" in c.unit.text]
        assert dog and dog[0].access_count == 2  # the cached unit object sees its use at once
        assert {c.unit.id for c in first.chosen} == {c.unit.id for c in second.chosen}
        await service.context(SCOPE, "What is the name of Ann's dog?", as_of=T0 + timedelta(days=1))
        assert service.access.pending == len(second.chosen)
        assert all(n == 0 for n, _ in (await counts(service)).values())  # batched: not yet in SQL
        assert await service.access.flush() == len(second.chosen)
        stored = await counts(service)
        biscuit = next(v for text, v in stored.items() if "Biscuit" in text)
        assert biscuit[0] == 2 and biscuit[1] is not None
        assert sum(n for n, _ in stored.values()) == 2 * len(second.chosen)
    finally:
        await service.close()

    reopened = await MemoryService.open(settings, embedder=embedder, run_jobs=False)
    try:
        after = await counts(reopened)
        assert after == stored and len(after) == 3  # decay never deletes
        unit = next(u for u in await reopened.store.list_units(SCOPE, limit=100) if "Biscuit" in u.text)
        now = unit.last_accessed_at
        assert reopened.decay.importance(unit, now) > unit.importance  # used units gain
    finally:
        await reopened.close()


async def test_units_returned_often_outrank_equally_relevant_unused_ones(settings: Settings, embedder) -> None:
    said = ["Ann's cat is called Miso.", "Ann's cat is named Miso."]
    service = await MemoryService.open(settings, embedder=embedder, run_jobs=False)
    try:
        await service.ingest([
            EventIn(event_id=f"c{i}", user_id="ann", role="user", speaker="Ann", content=text, timestamp=T0)
            for i, text in enumerate(said)
        ], wait=True)
        query = "Ann cat Miso"
        ranked = (await service.retriever.retrieve(SCOPE, query)).candidates
        assert len(ranked) == 2
        first, second = ranked
        assert first.score / second.score < 1.05  # as good as each other before use
        await service.store.record_access("local", {second.unit.id: 10}, datetime.now(UTC))
    finally:
        await service.close()

    reopened = await MemoryService.open(settings, embedder=embedder, run_jobs=False)
    try:
        ranked = (await reopened.retriever.retrieve(SCOPE, query)).candidates
        assert [c.unit.id for c in ranked] == [second.unit.id, first.unit.id]
        reopened.retriever.decay = None  # without the prior: the original order, the same base scores
        plain = (await reopened.retriever.retrieve(SCOPE, query)).candidates
        assert [c.unit.id for c in plain] == [first.unit.id, second.unit.id]
        factor = reopened.decay.rank_factor(ranked[0].unit, datetime.now(UTC))
        assert ranked[0].score == pytest.approx(plain[1].score * factor, rel=1e-3)
    finally:
        await reopened.close()
