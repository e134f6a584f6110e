"""What the retriever keeps per query scope, kept up to date from the change log.

For each scope: the ids it may see (`AllowedIds`, with its FAISS selector and, for a small
scope of an approximate index, its gathered vectors) and its session timeline (each level-0
unit's neighbours). Both cost a scan of the scope to build: at 10^6 units, seconds. An agent
writes all day, so rebuilding them after every write of the tenant would make the first query
after each write pay that scan. Instead each entry collects the ids the change log names and,
when next asked for, reads only where those units are now (`UnitSearch.unit_placement`) and
patches itself: ids added and removed, and each unit moved in its session's timeline.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from memory_service.domain import Scope
from stores.lru import LRU
from stores.sql.changes import UnitChange
from stores.sql.search import UnitSearch
from stores.vector_index import AllowedIds, VectorIndexes


@dataclass
class Timeline:
    """A scope's level-0 units in session order: each one's previous and next unit in its session.

    Each session's units are kept sorted by (time, id), the order SQL gives, so one unit is
    added or removed with a binary search and only its neighbours' entries change.
    """

    neighbours: dict[int, tuple[int, ...]] = field(default_factory=dict)
    sessions: dict[str | None, list[tuple[datetime, int]]] = field(default_factory=dict)
    key_of: dict[int, tuple[str | None, datetime]] = field(default_factory=dict)

    @classmethod
    def of(cls, rows: list[tuple[int, str | None, datetime]]) -> Timeline:
        timeline = cls()
        for unit_id, session, when in rows:  # ordered by session, time, id
            timeline.sessions.setdefault(session, []).append((when, unit_id))
            timeline.key_of[unit_id] = (session, when)
        for keys in timeline.sessions.values():
            timeline._refresh(keys, range(len(keys)))
        return timeline

    def add(self, unit_id: int, session: str | None, when: datetime) -> None:
        keys = self.sessions.setdefault(session, [])
        position = bisect.bisect_left(keys, (when, unit_id))
        keys.insert(position, (when, unit_id))
        self.key_of[unit_id] = (session, when)
        self._refresh(keys, (position - 1, position, position + 1))

    def remove(self, unit_id: int) -> None:
        session, when = self.key_of.pop(unit_id)
        keys = self.sessions[session]
        position = bisect.bisect_left(keys, (when, unit_id))
        del keys[position]
        self.neighbours.pop(unit_id, None)
        self._refresh(keys, (position - 1, position))

    def _refresh(self, keys: list[tuple[datetime, int]], positions: Iterable[int]) -> None:
        for n in positions:
            if 0 <= n < len(keys):
                around = [keys[m][1] for m in (n - 1, n + 1) if 0 <= m < len(keys)]
                self.neighbours[keys[n][1]] = tuple(around)


@dataclass
class ScopeEntry:
    allowed: AllowedIds
    timeline: Timeline | None = None
    pending: set[int] = field(default_factory=set)  # units the change log named since the last patch


class ScopeCache:
    def __init__(self, search: UnitSearch, indexes: VectorIndexes, capacity: int = 1024, gathered_scopes: int = 8) -> None:
        self.search = search
        self.indexes = indexes
        self._entries: LRU[Scope, ScopeEntry] = LRU(capacity)
        # Entries whose vectors are gathered, oldest first: the memory they hold is bounded by this
        # many times `AnnConfig.direct_scope` vectors.
        self._gathered: deque[ScopeEntry] = deque()
        self.gathered_scopes = gathered_scopes
        self._patching = asyncio.Lock()
        # Change batches seen per tenant: a scope read while one arrives may have missed it, so it is not kept.
        self._generation: dict[str, int] = {}
        self._everything = 0  # rebuilds of every index (a change of every tenant)

    def get(self, scope: Scope) -> ScopeEntry | None:
        return self._entries.get(scope)

    def follow(self, changes: list[UnitChange] | None) -> None:
        """Note what the change log says (None: everything may have changed, so drop all)."""
        if changes is None:
            self._entries.clear()
            self._gathered.clear()
            self._generation = {t: n + 1 for t, n in self._generation.items()}
            self._everything += 1
            return
        by_tenant: dict[str, set[int]] = {}
        for change in changes:
            by_tenant.setdefault(change.tenant, set()).add(change.unit_id)
        for tenant in by_tenant:
            self._generation[tenant] = self._generation.get(tenant, 0) + 1
        for scope in self._entries.key_list():
            ids = by_tenant.get(scope.tenant)
            entry = self._entries.get(scope) if ids else None
            if entry is not None:
                entry.pending |= ids

    async def allowed(self, scope: Scope, as_of: datetime | None = None) -> AllowedIds:
        """The ids `scope` may see now (cached), or at `as_of` (read each time)."""
        if as_of is not None:
            return AllowedIds(await self.search.unit_ids_in_scope(scope, as_of))
        entry = self._entries.get(scope)
        if entry is None:
            seen = self._seen(scope.tenant)
            allowed = AllowedIds(await self.search.unit_ids_in_scope(scope))
            if self._seen(scope.tenant) != seen:  # changes arrived during the read: use it once
                return allowed
            entry = ScopeEntry(allowed)
            if await asyncio.to_thread(self.indexes.gather_vectors, scope.tenant, allowed):
                self._keep_gathered(entry)
            self._entries.put(scope, entry)
        elif entry.pending:
            await self._patch(scope, entry)
        return entry.allowed

    async def neighbours(self, scope: Scope, as_of: datetime | None = None) -> dict[int, tuple[int, ...]]:
        """Each visible level-0 unit's previous and next unit in its session."""
        if as_of is not None:
            return Timeline.of(await self.search.unit_timeline(scope, as_of)).neighbours
        entry = self._entries.get(scope)
        if entry is None:  # evicted since `allowed`: read it once, uncached
            return Timeline.of(await self.search.unit_timeline(scope)).neighbours
        if entry.pending:
            await self._patch(scope, entry)
        if entry.timeline is None:
            seen = self._seen(scope.tenant)
            timeline = Timeline.of(await self.search.unit_timeline(scope))
            if self._seen(scope.tenant) != seen:  # changes arrived during the read: use it once
                return timeline.neighbours
            entry.timeline = timeline
        return entry.timeline.neighbours

    def _seen(self, tenant: str) -> tuple[int, int]:
        return self._generation.get(tenant, 0), self._everything

    def _keep_gathered(self, entry: ScopeEntry) -> None:
        self._gathered.append(entry)
        while len(self._gathered) > self.gathered_scopes:
            self._gathered.popleft().allowed.vectors = None

    async def _patch(self, scope: Scope, entry: ScopeEntry) -> None:
        async with self._patching:  # one patch at a time: a second caller waits for it, then finds none
            if not entry.pending:
                return
            pending, entry.pending = entry.pending, set()
            try:
                placed = {p.unit_id: p for p in await self.search.unit_placement(scope.tenant, sorted(pending))}
            except BaseException:
                self._entries.evict([scope])  # what it missed is unknown now: read it afresh next time
                raise
            visible = {i for i, p in placed.items() if p.visible_in(scope)}
            ids = np.fromiter(sorted(pending), dtype=np.int64, count=len(pending))
            present = entry.allowed.contains(ids)
            removed = [int(i) for i, inside in zip(ids, present, strict=True) if inside and int(i) not in visible]
            added = sorted(int(i) for i, inside in zip(ids, present, strict=True) if not inside and int(i) in visible)
            if removed or added:
                vectors = None
                if entry.allowed.vectors is not None and added:
                    vectors = await asyncio.to_thread(self.indexes.reconstruct, scope.tenant, added)
                entry.allowed = entry.allowed.patched(removed, added, vectors)
                if entry.allowed.vectors is not None and len(entry.allowed) > self.indexes.ann.direct_scope:
                    entry.allowed.vectors = None  # grown past what is searched without FAISS
                self._gathered = deque(e for e in self._gathered if e.allowed.vectors is not None)
            if entry.timeline is not None:
                for unit_id in pending:  # out, then back in at its (possibly new) place
                    if unit_id in entry.timeline.key_of:
                        entry.timeline.remove(unit_id)
                for unit_id in sorted(visible):
                    placement = placed[unit_id]
                    if placement.level == 0:
                        entry.timeline.add(unit_id, placement.session_id, placement.when)
