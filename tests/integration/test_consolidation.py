"""Consolidation on real SQLite and PostgreSQL with the real embedding model:
merge, supersession, abstraction, time travel, idempotence and concurrent workers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from memory_service.consolidate.rules import HeuristicJudge
from memory_service.domain import EventIn, MemoryUnit, Scope
from memory_service.service import MemoryService
from memory_service.settings import Settings

T0 = datetime(2023, 1, 10, 12, 0, tzinfo=UTC)
OWNER = Scope(user_id="caroline")


def event(i: int, text: str, day: int, speaker: str = "Caroline", session: str = "s1") -> EventIn:
    return EventIn(
        event_id=f"e{i}",
        user_id="caroline",
        session_id=session,
        role="user",
        speaker=speaker,
        content=text,
        timestamp=T0 + timedelta(days=day),
    )


@pytest.fixture
async def service(settings: Settings, embedder):
    service = await MemoryService.open(settings, embedder=embedder, run_jobs=False)
    yield service
    await service.close()


async def state(service: MemoryService) -> list[tuple]:
    units = await service.store.list_units(OWNER, limit=1000, include_invalid=True)
    return sorted(
        (u.id, u.level, u.text, u.valid_to, u.superseded_by, tuple(sorted(u.source_event_ids)), tuple(u.child_unit_ids))
        for u in units
    )


def valid(units: list[MemoryUnit]) -> list[MemoryUnit]:
    return [u for u in units if u.valid_to is None]


async def test_restated_fact_is_merged_with_provenance_union(service: MemoryService) -> None:
    await service.ingest(
        [
            event(1, "I adopted a golden retriever named Max.", 0),
            event(2, "I adopted a golden retriever called Max.", 3, session="s2"),
            event(3, "I love painting landscapes with watercolors.", 4, session="s2"),
        ],
        wait=True,
    )
    report = await service.consolidate(OWNER)
    assert report.merged == 1 and report.superseded == 0
    units = await service.store.list_units(OWNER, include_invalid=True)
    max_units = [u for u in units if "Max" in u.text]
    survivor = next(u for u in max_units if u.valid_to is None)
    duplicate = next(u for u in max_units if u.valid_to is not None)
    assert sorted(survivor.source_event_ids) == ["e1", "e2"]
    assert duplicate.superseded_by == survivor.id
    history = await service.memory_history(survivor.id)
    assert {u.id for u in history} == {survivor.id, duplicate.id}
    # The duplicate is invisible at every time, the survivor answers.
    answer = await service.context(OWNER, "What is the name of Caroline's dog?", 256)
    assert [c.unit.id for c in answer.chosen if "Max" in c.unit.text] == [survivor.id]
    past = await service.context(OWNER, "What is the name of Caroline's dog?", 256, as_of=T0 + timedelta(days=5))
    assert duplicate.id not in [c.unit.id for c in past.chosen]


async def test_changed_number_is_not_a_duplicate(service: MemoryService) -> None:
    await service.ingest(
        [
            event(1, "The staging database listens on port 5432.", 0, speaker="Ops"),
            event(2, "The staging database listens on port 5433.", 2, speaker="Ops"),
        ],
        wait=True,
    )
    report = await service.consolidate(OWNER)
    assert report.merged == 0
    texts = [u.text for u in valid(await service.store.list_units(OWNER, include_invalid=True))]
    assert any("5433" in t for t in texts)


async def test_update_supersedes_and_time_travel_sees_the_old_fact(service: MemoryService) -> None:
    await service.ingest(
        [
            event(1, "I live in Boston with my two cats.", 0),
            event(2, "I started a new job as a nurse.", 1),
            event(3, "I moved to Denver last week, Boston is behind me now.", 120, session="s2"),
        ],
        wait=True,
    )
    report = await service.consolidate(OWNER)
    assert report.superseded == 1
    units = await service.store.list_units(OWNER, include_invalid=True)
    boston = next(u for u in units if u.source_event_ids == ["e1"])
    denver = next(u for u in units if u.source_event_ids == ["e3"])
    assert boston.superseded_by == denver.id and boston.valid_to is not None
    assert boston.valid_to <= T0 + timedelta(days=120)
    nurse = next(u for u in units if u.source_event_ids == ["e2"])
    assert nurse.valid_to is None  # an unrelated fact stays

    now = await service.context(OWNER, "Where does Caroline live?", 256)
    assert denver.id in [c.unit.id for c in now.chosen] and boston.id not in [c.unit.id for c in now.chosen]
    then = await service.context(OWNER, "Where does Caroline live?", 256, as_of=T0 + timedelta(days=30))
    assert boston.id in [c.unit.id for c in then.chosen] and denver.id not in [c.unit.id for c in then.chosen]
    assert [u.id for u in await service.memory_history(boston.id)] == [boston.id, denver.id]


async def test_an_older_fact_arriving_late_is_closed_by_the_newer_one(service: MemoryService) -> None:
    await service.ingest([event(3, "I moved to Denver last week, Boston is behind me now.", 120, session="s2")], wait=True)
    await service.consolidate(OWNER)
    await service.ingest([event(1, "I live in Boston with my two cats.", 0)], wait=True)
    report = await service.consolidate(OWNER)
    assert report.superseded == 1
    units = await service.store.list_units(OWNER, include_invalid=True)
    boston = next(u for u in units if u.source_event_ids == ["e1"])
    denver = next(u for u in units if u.source_event_ids == ["e3"])
    assert boston.valid_to is not None and boston.superseded_by == denver.id and denver.valid_to is None


async def test_abstraction_summarises_a_month_and_refreshes(service: MemoryService) -> None:
    facts = [
        "Melanie painted a sunrise over the lake.",
        "Melanie ran a charity race for mental health.",
        "Melanie took her kids camping in the mountains.",
        "Melanie signed up for a pottery class.",
    ]
    await service.ingest([event(i, f, i, speaker="Melanie") for i, f in enumerate(facts)], wait=True)
    report = await service.consolidate(OWNER)
    assert report.abstractions_created == 1
    units = valid(await service.store.list_units(OWNER, include_invalid=True))
    summary = next(u for u in units if u.level == 1)
    children = [u for u in units if u.level == 0]
    assert sorted(summary.child_unit_ids) == sorted(u.id for u in children)
    assert sorted(summary.source_event_ids) == sorted(e for u in children for e in u.source_event_ids)  # all fit
    assert summary.kind == "summary" and summary.text.startswith("Melanie in January 2023:")
    assert "pottery" in summary.text and "charity race" in summary.text

    await service.ingest([event(9, "Melanie adopted a kitten named Oliver.", 9, speaker="Melanie")], wait=True)
    report = await service.consolidate(OWNER)
    assert report.abstractions_created == 1 and report.abstractions_retired == 1
    units = await service.store.list_units(OWNER, include_invalid=True)
    fresh = next(u for u in units if u.level == 1 and u.valid_to is None)
    assert len(fresh.child_unit_ids) == 5 and "Oliver" in fresh.text
    old = next(u for u in units if u.id == summary.id)
    assert old.superseded_by == fresh.id


async def test_an_abstraction_cites_only_the_children_its_text_states(settings: Settings, embedder) -> None:
    service = await MemoryService.open(settings, embedder=embedder, run_jobs=False)
    service.consolidator.max_abstraction_words = 12  # room for two of the four clauses
    try:
        what = ("sunrise", "charity", "camping", "pottery")
        facts = [
            "Melanie painted a sunrise over the lake with watercolours.",
            "Melanie ran a charity race for mental health awareness.",
            "Melanie took her kids camping in the mountains near Denver.",
            "Melanie signed up for a pottery class at the community centre.",
        ]
        await service.ingest([event(i, f, i, speaker="Melanie") for i, f in enumerate(facts)], wait=True)
        await service.consolidate(OWNER)
        units = valid(await service.store.list_units(OWNER, include_invalid=True))
        summary = next(u for u in units if u.level == 1)
        assert len(summary.child_unit_ids) == 4
        stated = [u for u in units if u.level == 0 and any(w in u.text and w in summary.text for w in what)]
        assert 0 < len(stated) < 4
        assert sorted(summary.source_event_ids) == sorted(e for u in stated for e in u.source_event_ids)
    finally:
        await service.close()


async def test_consolidating_twice_equals_once_and_keeps_every_event_reachable(service: MemoryService) -> None:
    texts = [
        "I adopted a golden retriever named Max.",
        "I live in Boston.",
        "I adopted a golden retriever called Max.",
        "I volunteer at the animal shelter on weekends.",
        "I moved to Denver, I no longer live in Boston.",
        "I love hiking in the Rockies.",
        "I really love hiking in the Rockies.",
    ]
    await service.ingest([event(i, t, i * 10, session=f"s{i}") for i, t in enumerate(texts)], wait=True)
    first = await service.consolidate(OWNER)
    assert first.merged >= 2 and first.superseded >= 1
    once = await state(service)
    second = await service.consolidate(OWNER)
    assert (second.examined, second.merged, second.superseded, second.abstractions_created) == (0, 0, 0, 0)
    assert await state(service) == once
    reachable = {e for u in valid(await service.store.list_units(OWNER, include_invalid=True)) for e in u.source_event_ids}
    assert reachable == {f"e{i}" for i in range(len(texts))} - {"e1"}  # Boston was superseded, not merged


async def test_two_workers_at_once_never_double_merge(settings: Settings, embedder) -> None:
    first = await MemoryService.open(settings, embedder=embedder, run_jobs=False)
    second = await MemoryService.open(settings, embedder=embedder, run_jobs=False)
    try:
        texts = ["I adopted a golden retriever named Max.", "I adopted a golden retriever called Max."] * 3
        await first.ingest([event(i, t, i, session=f"s{i}") for i, t in enumerate(texts)], wait=True)
        await asyncio.gather(first.consolidate(OWNER), second.consolidate(OWNER))
        await first.consolidate(OWNER)  # whatever a raced worker left is finished here
        units = await first.store.list_units(OWNER, include_invalid=True)
        survivors = [u for u in units if u.valid_to is None and u.level == 0]
        assert len(survivors) == 1
        assert sorted(survivors[0].source_event_ids) == [f"e{i}" for i in range(6)]
        closed = [u for u in units if u.valid_to is not None]
        assert len(closed) == 5 and all(u.superseded_by is not None for u in closed)
        merges = [h for u in units for h in u.history if h.get("op") == "merged_into"]
        assert len(merges) == 5  # each duplicate closed exactly once
    finally:
        await first.close()
        await second.close()


def unit(text: str, persons: list[str], day: int) -> MemoryUnit:
    when = T0 + timedelta(days=day)
    return MemoryUnit(
        id=day + 1, tenant="local", user_id="u", text=text, persons=persons, source_event_ids=["x"],
        valid_from=when, event_time=when, compressor="t", compressor_version="1", hash="h",
        created_at=when, updated_at=when,
    )


def test_heuristic_judge() -> None:
    judge = HeuristicJudge()
    boston = unit("Caroline lives in Boston.", ["Caroline"], 0)
    assert judge.supersedes(boston, unit("Caroline moved to Denver.", ["Caroline"], 5), 0.5)
    assert judge.supersedes(boston, unit("Caroline lives in Denver.", ["Caroline"], 5), 0.7)
    assert judge.supersedes(unit("Ann likes coffee.", ["Ann"], 0), unit("Ann does not like coffee.", ["Ann"], 3), 0.8)
    assert not judge.supersedes(boston, unit("Melanie moved to Denver.", ["Melanie"], 5), 0.6)
    assert not judge.supersedes(boston, unit("Caroline started a new job as a nurse.", ["Caroline"], 5), 0.5)
    assert not judge.supersedes(boston, unit("Caroline lives in Boston with her cats.", ["Caroline"], 5), 0.9)
