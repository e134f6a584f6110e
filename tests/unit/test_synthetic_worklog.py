"""The worklog generator's own ground truth is consistent (not a test of consolidation)."""

from __future__ import annotations

from datetime import datetime

import pytest

from benchmarks.synthetic_worklog import WorkLog, generate
from memory_service.domain import EventIn


@pytest.fixture(scope="module")
def log() -> WorkLog:
    return generate()


def test_events_are_valid_and_owned_by_one_user() -> None:
    log = generate(user_id="owner-x")
    assert {e["user_id"] for e in log.events} == {"owner-x"}
    for event in log.events:
        EventIn.model_validate(event)
    ids = [e["event_id"] for e in log.events]
    assert len(ids) == len(set(ids))


def test_ground_truth_ids_exist(log: WorkLog) -> None:
    ids = {e["event_id"] for e in log.events}
    assert all(group <= ids for group in log.duplicate_groups)
    assert all(old in ids and new in ids for old, new in log.supersessions)
    assert set(log.hard_negatives) <= ids and set(log.filler) <= ids


def test_groups_are_disjoint_and_at_least_pairs(log: WorkLog) -> None:
    seen: set[str] = set()
    for group in log.duplicate_groups:
        assert len(group) >= 2
        assert not group & seen
        seen |= group


def test_supersessions_point_forward_in_time(log: WorkLog) -> None:
    when = {e["event_id"]: datetime.fromisoformat(e["timestamp"]) for e in log.events}
    assert log.supersessions
    for old, new in log.supersessions:
        assert when[old] < when[new]
    # The old value's restatements all come before its change.
    group_of = {i: g for g in log.duplicate_groups for i in g}
    for old, new in log.supersessions:
        assert all(when[i] < when[new] for i in group_of[old])


def test_negatives_and_filler_carry_no_ground_truth(log: WorkLog) -> None:
    truth = set().union(*log.duplicate_groups) | {i for pair in log.supersessions for i in pair}
    assert log.hard_negatives and log.filler
    assert not truth & set(log.hard_negatives)
    assert not truth & set(log.filler)
    assert not set(log.hard_negatives) & set(log.filler)


def test_shape_of_the_log(log: WorkLog) -> None:
    tools = [e for e in log.events if e["role"] == "tool"]
    assert tools and all(set(e["tool"]) == {"name", "arguments", "result"} for e in tools)
    assert any(e["role"] == "assistant" for e in log.events)
    assert any(e["content"].startswith("Two updates on") for e in log.events)
    days = {e["session_id"] for e in log.events}
    assert len(days) > 30
    # Identical tool results form groups of their own.
    by_id = {e["event_id"]: e for e in log.events}
    assert any(
        len({repr(by_id[i].get("tool")) for i in g}) == 1 and by_id[next(iter(g))]["role"] == "tool"
        for g in log.duplicate_groups
    )


def test_deterministic_per_seed() -> None:
    assert generate(seed=5) == generate(seed=5)
    assert generate(seed=5).events != generate(seed=6).events


def test_persons_scales_it() -> None:
    small, large = generate(persons=3), generate(persons=12)
    assert len(large.events) > len(small.events)
    assert len(large.duplicate_groups) > len(small.duplicate_groups)
    speakers = lambda log: {e.get("speaker") for e in log.events if e["role"] == "user"}  # noqa: E731
    assert len(speakers(small)) == 3 and len(speakers(large)) == 6
