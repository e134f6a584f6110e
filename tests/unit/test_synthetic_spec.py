"""The spec-written synthetic log (benchmarks/synthetic_spec.py): shape and ground-truth consistency."""

from __future__ import annotations

import pytest

from benchmarks.synthetic_spec import SpecLog, generate
from memory_service.domain import EventIn


@pytest.fixture(scope="module")
def log() -> SpecLog:
    return generate(12, seed=5)


def truth_ids(log: SpecLog) -> set[str]:
    ids = {event_id for group in log.duplicate_groups for event_id in group}
    return ids | {event_id for pair in log.supersessions for event_id in pair}


def test_reproducible_for_a_seed() -> None:
    a, b = generate(12, seed=11), generate(12, seed=11)
    assert a.events == b.events
    assert a.duplicate_groups == b.duplicate_groups and a.supersessions == b.supersessions
    assert a.hard_negatives == b.hard_negatives
    assert generate(12, seed=12).events != a.events


def test_size_at_twelve_persons(log: SpecLog) -> None:
    assert 150 <= len(log.events) <= 300
    assert len(log.duplicate_pairs()) >= 30
    assert len(log.supersessions) >= 15
    assert len(generate(24, seed=5).events) > len(log.events)


def test_events_are_valid_sorted_and_scoped() -> None:
    log = generate(12, seed=5, user_id="someone")
    stamps = [e["timestamp"] for e in log.events]
    assert stamps == sorted(stamps)
    assert len({e["event_id"] for e in log.events}) == len(log.events)
    assert {e["user_id"] for e in log.events} == {"someone"}
    for event in log.events:
        EventIn.model_validate(event)
    roles = {e["role"] for e in log.events}
    assert {"user", "assistant", "tool"} <= roles


def test_ground_truth_refers_to_events(log: SpecLog) -> None:
    ids = {e["event_id"] for e in log.events}
    assert truth_ids(log) <= ids
    assert log.hard_negatives <= ids and log.filler <= ids


def test_supersessions_go_forward_in_time(log: SpecLog) -> None:
    when = {e["event_id"]: e["timestamp"] for e in log.events}
    for old, new in log.supersessions:
        assert when[old] < when[new]
    # an old statement and the change that replaces it are never one duplicate group
    for old, new in log.supersessions:
        assert not any(old in group and new in group for group in log.duplicate_groups)


def test_duplicate_groups_are_disjoint(log: SpecLog) -> None:
    seen: set[str] = set()
    for group in log.duplicate_groups:
        assert len(group) >= 2
        assert not group & seen
        seen |= group


def test_restatements_use_other_words_except_repeated_tool_results(log: SpecLog) -> None:
    by_id = {e["event_id"]: e for e in log.events}
    tool_repeats = 0
    for group in log.duplicate_groups:
        texts = [by_id[i]["content"] for i in group if by_id[i]["role"] != "tool"]
        assert len(set(texts)) == len(texts)
        tools = [by_id[i]["tool"] for i in group if by_id[i]["role"] == "tool"]
        tool_repeats += len(tools) > 1 and all(t == tools[0] for t in tools)
    assert tool_repeats >= 1


def test_hard_negatives_are_substantial_and_outside_the_truth(log: SpecLog) -> None:
    assert not log.hard_negatives & truth_ids(log)
    assert not log.filler & truth_ids(log)
    assert len(log.hard_negatives) >= 0.12 * len(log.events)
    outside = [e for e in log.events if e["event_id"] not in truth_ids(log)]
    assert len(outside) >= 0.3 * len(log.events)
    texts = [e["content"] for e in log.events if e["event_id"] in log.hard_negatives]
    assert any(t.startswith("Should ") for t in texts)  # questions
    assert any("used to" in t for t in texts)  # past values


def test_small_and_single_person_logs() -> None:
    for persons in (1, 2):
        log = generate(persons, seed=1)
        assert log.events and log.duplicate_groups
        assert truth_ids(log) <= {e["event_id"] for e in log.events}
