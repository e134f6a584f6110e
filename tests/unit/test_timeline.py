"""The scope cache's Timeline against a plain sort of the same units, through random patches."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from memory_service.context.scope_cache import Timeline

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def reference(units: dict[int, tuple[str | None, datetime]]) -> dict[int, tuple[int, ...]]:
    """Each unit's previous and next in its session by (time, id), from sorted lists."""
    sessions: dict[str | None, list[tuple[datetime, int]]] = {}
    for unit_id, (session, when) in units.items():
        sessions.setdefault(session, []).append((when, unit_id))
    out: dict[int, tuple[int, ...]] = {}
    for keys in sessions.values():
        keys.sort()
        for n, (_, unit_id) in enumerate(keys):
            out[unit_id] = tuple(keys[m][1] for m in (n - 1, n + 1) if 0 <= m < len(keys))
    return out


def test_neighbours_follow_session_time_then_id_order() -> None:
    rows = [(5, "a", T0), (3, "a", T0 + timedelta(hours=1)), (9, "a", T0), (4, None, T0), (7, None, T0 - timedelta(days=1))]
    timeline = Timeline.of(rows)
    assert timeline.neighbours_of([5, 9, 3, 4, 7, 100]) == {5: (9,), 9: (5, 3), 3: (9,), 4: (7,), 7: (4,)}
    assert len(timeline) == 5


def test_random_patches_equal_a_fresh_sort() -> None:
    rng = random.Random(7)
    sessions = ["s1", "s2", None]
    units: dict[int, tuple[str | None, datetime]] = {}
    timeline = Timeline()
    next_id = 1
    for _ in range(200):
        removed = rng.sample(sorted(units), k=min(len(units), rng.randint(0, 4)))
        moved = rng.sample(sorted(set(units) - set(removed)), k=min(len(units) - len(removed), rng.randint(0, 2)))
        added = []
        for unit_id in moved:  # back in, in another session or at another time
            added.append((unit_id, rng.choice(sessions), T0 + timedelta(minutes=rng.randint(0, 30))))
        for _ in range(rng.randint(0, 6)):
            added.append((next_id, rng.choice(sessions), T0 + timedelta(minutes=rng.randint(0, 30))))  # many equal times
            next_id += 1
        for unit_id in removed + moved:
            units.pop(unit_id)
        for unit_id, session, when in added:
            units[unit_id] = (session, when)
        timeline.patch(removed + moved + [9_999], added)  # an id it never held is ignored
        assert timeline.neighbours_of(range(next_id + 5)) == reference(units)
        assert len(timeline) == len(units)
