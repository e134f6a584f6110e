"""Decayed importance: pure arithmetic on unit fields (the recording path is in tests/integration)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from memory_service.context.importance import DecayPolicy
from memory_service.domain import MemoryUnit

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def unit(importance: float = 0.5, accesses: int = 0, created_days_ago: float = 0, used_days_ago: float | None = None) -> MemoryUnit:
    created = NOW - timedelta(days=created_days_ago)
    return MemoryUnit(
        id=1, tenant="t", user_id="u", text="Ann likes tea.", source_event_ids=["e"], importance=importance,
        valid_from=created, compressor="extractive", compressor_version="1", hash="h",
        access_count=accesses, last_accessed_at=None if used_days_ago is None else NOW - timedelta(days=used_days_ago),
        created_at=created, updated_at=created,
    )


def test_unused_units_fade_and_used_units_keep_their_rank() -> None:
    policy = DecayPolicy(half_life_days=30)
    fresh, month_old, year_old = unit(), unit(created_days_ago=30), unit(created_days_ago=365)
    assert policy.importance(fresh, NOW) == 0.5
    assert policy.importance(month_old, NOW) == 0.5 * (0.5 + 0.5 * 0.5)
    assert policy.importance(fresh, NOW) > policy.importance(month_old, NOW) > policy.importance(year_old, NOW)
    # A year-old unit that was returned yesterday (and often) outranks an unused fresh one.
    used = unit(created_days_ago=365, accesses=5, used_days_ago=1)
    assert policy.importance(used, NOW) > policy.importance(fresh, NOW)


def test_decay_has_a_floor_and_bounded_effect_on_ranking() -> None:
    policy = DecayPolicy(half_life_days=30, floor=0.5, weight=0.2)
    ancient = unit(importance=0.5, created_days_ago=10_000)
    assert policy.importance(ancient, NOW) >= 0.5 * 0.5 - 1e-9  # faded, never to nothing
    for u in (ancient, unit(importance=1.0, accesses=1000), unit(importance=0.0)):
        assert 0.9 - 1e-9 <= policy.rank_factor(u, NOW) <= 1.1 + 1e-9
    assert policy.rank_factor(unit(), NOW) == 1.0
