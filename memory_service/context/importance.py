"""Importance that decays when a unit goes unused, and the record of use it decays from.

A unit's stored `importance` is what its compressor judged when writing it. What
ranking uses is that, raised by how often the unit has been returned in a context
and faded by how long ago it was last useful (returned, or else written). Decay only
reorders: nothing is ever deleted or closed because of it, and a unit nobody asked
for in a year still comes back when it is the best match.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from memory_service.domain import MemoryUnit, utc_now
from stores.sql.store import SqlStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DecayPolicy:
    """`half_life_days`: unused for this long, a unit's recency factor halves.
    `floor`: the recency factor never drops below this (old is not wrong).
    `uses_to_saturate`: returned this many times, the usage boost is ~63% of `usage_boost`.
    `weight`: how far importance may move a retrieval score (+/- weight/2 around 1).
    """

    half_life_days: float = 30.0
    floor: float = 0.5
    usage_boost: float = 0.3
    uses_to_saturate: float = 3.0
    weight: float = 0.2

    def importance(self, unit: MemoryUnit, now: datetime) -> float:
        """Effective importance in [0, 1]."""
        used = 1.0 - math.exp(-unit.access_count / self.uses_to_saturate)
        base = min(1.0, unit.importance + self.usage_boost * used)
        last_useful = unit.last_accessed_at or unit.created_at
        idle_days = max(0.0, (now - last_useful).total_seconds() / 86_400)
        recency = 0.5 ** (idle_days / self.half_life_days)
        return base * (self.floor + (1.0 - self.floor) * recency)

    def rank_factor(self, unit: MemoryUnit, now: datetime) -> float:
        """Multiplier for a relevance score: 1 at effective importance 0.5, within 1 +/- weight/2."""
        return 1.0 + self.weight * (self.importance(unit, now) - 0.5)


class AccessRecorder:
    """Counts the units each context returned and writes the counts in batches.

    Writing on every query would put a write transaction on the read path (and, on
    SQLite, contend with ingest for the one writer); counts are folded in memory and
    flushed by the service's periodic task and on close. A crash loses at most one
    interval of counts, which only nudges ranking.
    """

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self._pending: dict[str, Counter[int]] = {}
        self._last_at: datetime | None = None
        self._lock = asyncio.Lock()

    def record(self, tenant: str, units: Iterable[MemoryUnit], at: datetime | None = None) -> None:
        at = at or utc_now()
        counts = self._pending.setdefault(tenant, Counter())
        for unit in units:
            counts[unit.id] += 1
            # Cached unit objects see their own use at once; other processes after a reload.
            unit.access_count += 1
            unit.last_accessed_at = at
        self._last_at = at

    @property
    def pending(self) -> int:
        return sum(len(c) for c in self._pending.values())

    async def flush(self) -> int:
        """Write what was recorded; returns the number of unit rows updated."""
        async with self._lock:
            pending, self._pending = self._pending, {}
            at = self._last_at or utc_now()
            updated = 0
            for tenant, counts in pending.items():
                try:
                    updated += await self.store.record_access(tenant, counts, at)
                except Exception:
                    log.exception("recording unit access failed; the counts are kept for the next flush")
                    merged = self._pending.setdefault(tenant, Counter())
                    merged.update(counts)
            return updated
