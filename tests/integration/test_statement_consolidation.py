"""Consolidation through subject-attribute-value statements, end to end: real SQLite and
PostgreSQL, the packaged embedder, the extractive compressor. Paraphrased restatements and
updates sit too far apart in embedding space for the similarity path; their statement keys
pair them, within a run and (through `unit_statements`) across runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from memory_service.context.packing import CONFLICT_MARK
from memory_service.domain import EventIn, MemoryUnit, Scope
from memory_service.index.embedding import from_bytes
from memory_service.service import MemoryService
from memory_service.settings import Settings

T0 = datetime(2024, 2, 1, 9, 0, tzinfo=UTC)
OWNER = Scope(user_id="maya")


def event(i: int, text: str, day: int, speaker: str = "Maya") -> EventIn:
    return EventIn(
        event_id=f"m{i}", user_id="maya", session_id=f"s{day}", role="user", speaker=speaker, content=text,
        timestamp=T0 + timedelta(days=day),
    )


@pytest.fixture
async def service(settings: Settings, embedder):
    service = await MemoryService.open(settings, embedder=embedder, run_jobs=False)
    yield service
    await service.close()


def by_event(units: list[MemoryUnit], event_id: str) -> MemoryUnit:
    return next(u for u in units if u.level == 0 and event_id in u.source_event_ids and u.source_event_ids[0] == event_id)


async def test_a_paraphrased_restatement_merges_and_a_paraphrased_update_supersedes(service: MemoryService) -> None:
    await service.ingest(
        [
            event(1, "I'm living in Porto these days.", 0),
            event(2, "Porto has been home for a while now, I love the river.", 9),
            event(3, "I flew to Bergen for a conference.", 15),  # a trip: stays apart
            event(4, "My sister lives in Oslo.", 16),  # another person's residence: stays apart
            event(5, "After months of packing we finally settled in Bergen.", 40),
        ],
        wait=True,
    )
    units = await service.store.list_units(OWNER, include_invalid=True)
    first, again, update = by_event(units, "m1"), by_event(units, "m2"), by_event(units, "m5")
    cosine = float(np.dot(service.embedder.embed([first.text])[0], service.embedder.embed([update.text])[0]))
    assert cosine < service.consolidator.supersede_threshold  # the similarity path cannot pair them

    report = await service.consolidate(OWNER)
    units = {u.id: u for u in await service.store.list_units(OWNER, include_invalid=True)}
    first, again, update = units[first.id], units[again.id], units[update.id]
    assert again.superseded_by == first.id and again.valid_to == again.valid_from  # merged
    assert sorted(first.source_event_ids) == ["m1", "m2"]
    assert first.superseded_by == update.id and first.valid_to is not None  # then superseded
    assert any(h.get("by") == "statement" for h in first.history)
    assert update.valid_to is None
    assert by_event(list(units.values()), "m3").valid_to is None
    assert by_event(list(units.values()), "m4").valid_to is None
    assert (first.id, update.id) in report.supersessions

    context = await service.context(OWNER, "Where does Maya live?", 256)
    shown = [c.unit.id for c in context.chosen]
    assert update.id in shown and first.id not in shown and again.id not in shown


async def test_a_later_run_finds_the_old_statement_through_its_key(service: MemoryService) -> None:
    await service.ingest([event(1, "I work as a paramedic at City General.", 0)], wait=True)
    await service.consolidate(OWNER)
    # A later run: the old unit is consolidated, found only by its stored (subject, attribute) keys.
    await service.ingest([event(2, "Northwind took me on as a pharmacist, today was day one.", 30)], wait=True)
    fresh = await service.store.consolidation.fresh_units(OWNER)
    assert [u.source_event_ids for u, _ in fresh] == [["m2"]]
    stated = await service.store.consolidation.stating(OWNER, ["maya|employer"])
    assert [u.source_event_ids for u, _ in stated] == [["m1"]]
    report = await service.consolidate(OWNER)
    assert report.superseded == 1
    units = await service.store.list_units(OWNER, include_invalid=True)
    old, new = by_event(units, "m1"), by_event(units, "m2")
    assert old.superseded_by == new.id and new.valid_to is None
    assert from_bytes(stated[0][1]).shape == service.embedder.embed(["x"])[0].shape
    # Running again finds nothing to do.
    again = await service.consolidate(OWNER)
    assert again.examined == 0 and again.superseded == 0


async def test_a_denial_marks_both_statements_as_conflicting(service: MemoryService) -> None:
    await service.ingest(
        [event(1, "I visited Japan in 2019 with my brother.", 0), event(2, "I've never been to Japan.", 20)], wait=True
    )
    report = await service.consolidate(OWNER)
    assert report.superseded == 0 and len(report.conflicts) == 1
    units = await service.store.list_units(OWNER, include_invalid=True)
    visited, never = by_event(units, "m1"), by_event(units, "m2")
    assert visited.valid_to is None and never.valid_to is None  # neither silently wins
    context = await service.context(OWNER, "Has Maya been to Japan?", 256)
    assert {visited.id, never.id} <= {c.unit.id for c in context.chosen}
    assert context.context.count(CONFLICT_MARK) == 2


async def test_erasing_a_unit_erases_its_statement_keys(service: MemoryService) -> None:
    await service.ingest([event(1, "I live in Porto.", 0)], wait=True)
    await service.consolidate(OWNER)
    (unit, _), = await service.store.consolidation.stating(OWNER, ["maya|residence"])
    assert await service.store.delete_unit(OWNER.tenant, unit.id)
    assert await service.store.consolidation.stating(OWNER, ["maya|residence"]) == []


def tool_event(i: int, args: dict, result: object, day: int) -> EventIn:
    return EventIn(
        event_id=f"m{i}", user_id="maya", session_id=f"s{day}", role="tool", content="",
        tool={"name": "team_lead", "arguments": args, "result": result}, timestamp=T0 + timedelta(days=day),
    )


async def test_only_the_same_subject_and_attribute_can_close_a_unit(service: MemoryService) -> None:
    await service.ingest(
        [
            tool_event(1, {"team": "search"}, "@dana", 0),
            tool_event(2, {"team": "infra"}, "@dana", 3),  # another call, the same answer: stays
            event(3, "payments-api listens on port 8443.", 4, speaker="Dev"),
            event(4, "ledger-api listens on port 7000.", 6, speaker="Dev"),  # another service's port
            event(5, "My colleague lives in Leeds.", 7),
            event(6, "My colleague lives in Derby.", 9),  # maybe another colleague
            event(7, "Tom is employed by Initech as an accountant.", 10),
            event(8, "I work at Brightforge as a welder.", 12),  # the speaker's job, not Tom's
            tool_event(9, {"team": "search"}, "@femi", 20),  # the same call, a new answer: an update
        ],
        wait=True,
    )
    report = await service.consolidate(OWNER)
    units = await service.store.list_units(OWNER, include_invalid=True)
    first, changed = by_event(units, "m1"), by_event(units, "m9")
    assert first.superseded_by == changed.id and any(h.get("op") == "superseded" for h in first.history)
    assert report.supersessions == [(first.id, changed.id)] and report.merged == 0
    assert all(by_event(units, f"m{i}").valid_to is None for i in range(2, 10))


@pytest.fixture
async def sqlite_service(tmp_path, sqlite_url: str, embedder):
    service = await MemoryService.open(Settings(data_dir=tmp_path / "data", database_url=sqlite_url), embedder=embedder, run_jobs=False)
    yield service
    await service.close()


def ops_tool(i: int, service: str, result: dict, day: int) -> EventIn:
    return EventIn(
        event_id=f"m{i}", user_id="maya", session_id=f"s{day}", role="tool", content="",
        tool={"name": "read_settings", "arguments": {"service": service}, "result": result}, timestamp=T0 + timedelta(days=day),
    )


async def test_a_changed_setting_closes_every_unit_stating_the_old_value(sqlite_service: MemoryService) -> None:
    service = sqlite_service
    await service.ingest(
        [
            event(1, "The orders service listens on port 8001.", 0, speaker="Dev"),
            ops_tool(2, "orders", {"port": 8001}, 2),  # the old value again, from a tool
            event(5, "orders-service listens on port 8002 now.", 10, speaker="Dev"),  # the change
        ],
        wait=True,
    )
    report = await service.consolidate(OWNER)
    units = await service.store.list_units(OWNER, include_invalid=True)
    change = by_event(units, "m5")
    stale = [u for u in units if u.level == 0 and {"m1", "m2"} & set(u.source_event_ids) and u.valid_to is not None]
    # Both statements of the old port are closed by the change (merged first, or each superseded).
    assert all(any(e in u.source_event_ids for u in stale) for e in ("m1", "m2"))
    superseded = [u for u in stale if any(h.get("op") == "superseded" for h in u.history)]
    assert superseded and all(u.superseded_by == change.id for u in superseded)
    assert {(u.id, change.id) for u in superseded} <= set(report.supersessions)
    assert change.valid_to is None


async def test_one_projects_or_services_setting_never_closes_anothers(sqlite_service: MemoryService) -> None:
    service = sqlite_service
    await service.ingest(
        [
            event(3, "For the Atlas project, the deploy target is Fly.io.", 3, speaker="Dev"),
            event(4, "The port of the ledger service is 7100.", 4, speaker="Dev"),
            event(6, "The deploy target for Borealis is Render.", 11, speaker="Dev"),  # another project
            event(7, "The port of the billing service is 7200.", 12, speaker="Dev"),  # another service
        ],
        wait=True,
    )
    report = await service.consolidate(OWNER)
    units = await service.store.list_units(OWNER, include_invalid=True)
    assert report.superseded == 0
    for event_id in ("m3", "m4", "m6", "m7"):
        assert by_event(units, event_id).valid_to is None, event_id
