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
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from memory_service.domain import Scope
from stores.lru import LRU
from stores.sql.changes import UnitChange
from stores.sql.search import UnitSearch
from stores.vector_index import AllowedIds, VectorIndexes

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(when: datetime) -> int:
    return (when - _EPOCH) // _MICROSECOND


class Timeline:
    """A scope's level-0 units in session order: each one's previous and next unit in its session.

    Held in numpy arrays, about 36 bytes a unit: a whole-tenant scope at 10^6 units took
    about 0.5 GB as dicts of tuples. The ids sorted, with each one's session and time; and
    per session its (time, id) pairs in order, the order SQL gives. A batch of changes is
    one delete and one insert per touched session, found by binary search.
    """

    def __init__(self) -> None:
        self._ids = np.empty(0, dtype=np.int64)  # sorted
        self._session = np.empty(0, dtype=np.int32)  # of each id in `_ids`: a code of `_codes`
        self._when = np.empty(0, dtype=np.int64)  # of each id in `_ids`: microseconds since the epoch
        self._codes: dict[str | None, int] = {}
        self._order: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # session code -> (times, ids) by (time, id)

    @classmethod
    def of(cls, rows: Iterable[tuple[int, str | None, datetime]]) -> Timeline:
        timeline = cls()
        timeline.patch((), rows)
        return timeline

    def __len__(self) -> int:
        return len(self._ids)

    def neighbours_of(self, ids: Iterable[int]) -> dict[int, tuple[int, ...]]:
        """The previous and next unit in its session of each of `ids` that is in the timeline."""
        wanted = np.unique(np.fromiter(ids, dtype=np.int64))
        rows = self._rows(wanted)
        found = rows >= 0
        wanted, rows = wanted[found], rows[found]
        out: dict[int, tuple[int, ...]] = {}
        for code in np.unique(self._session[rows]):
            mine = self._session[rows] == code
            times, order = self._order[int(code)]
            places = _positions(times, order, self._when[rows[mine]], wanted[mine])
            for unit_id, n in zip(wanted[mine].tolist(), places.tolist(), strict=True):
                out[unit_id] = tuple(int(order[m]) for m in (n - 1, n + 1) if 0 <= m < len(order))
        return out

    def patch(self, removed: Iterable[int], added: Iterable[tuple[int, str | None, datetime]]) -> None:
        """Take `removed` out (those present), then put `added` in at their places; an id in
        both moves."""
        gone = np.unique(np.fromiter(removed, dtype=np.int64))
        rows = self._rows(gone)
        rows = rows[rows >= 0]
        if len(rows):
            for code in np.unique(self._session[rows]):
                mine = rows[self._session[rows] == code]
                times, order = self._order[int(code)]
                places = _positions(times, order, self._when[mine], self._ids[mine])
                self._order[int(code)] = (np.delete(times, places), np.delete(order, places))
            self._ids, self._session, self._when = (np.delete(a, rows) for a in (self._ids, self._session, self._when))
        new = sorted((int(i), self._code(session), _micros(when)) for i, session, when in added)
        if not new:
            return
        ids = np.fromiter((i for i, _, _ in new), dtype=np.int64, count=len(new))
        codes = np.fromiter((c for _, c, _ in new), dtype=np.int32, count=len(new))
        whens = np.fromiter((w for _, _, w in new), dtype=np.int64, count=len(new))
        at = np.searchsorted(self._ids, ids)
        self._ids, self._session, self._when = (
            np.insert(self._ids, at, ids), np.insert(self._session, at, codes), np.insert(self._when, at, whens)
        )
        for code in np.unique(codes):
            mine = codes == code
            first = np.lexsort((ids[mine], whens[mine]))  # by (time, id): np.insert keeps equal places in this order
            add_times, add_ids = whens[mine][first], ids[mine][first]
            times, order = self._order.get(int(code), (np.empty(0, np.int64), np.empty(0, np.int64)))
            places = _positions(times, order, add_times, add_ids)
            self._order[int(code)] = (np.insert(times, places, add_times), np.insert(order, places, add_ids))

    def _code(self, session: str | None) -> int:
        return self._codes.setdefault(session, len(self._codes))

    def _rows(self, ids: np.ndarray) -> np.ndarray:
        """Each id's row in `_ids`, or -1."""
        rows = np.searchsorted(self._ids, ids)
        inside = rows < len(self._ids)
        inside[inside] = self._ids[rows[inside]] == ids[inside]
        return np.where(inside, rows, -1)


def _positions(times: np.ndarray, order: np.ndarray, at_times: np.ndarray, at_ids: np.ndarray) -> np.ndarray:
    """Where each (time, id) is, or would go, in a session's (time, id) order: after smaller
    times, and among equal times after smaller ids."""
    low = np.searchsorted(times, at_times, side="left")
    high = np.searchsorted(times, at_times, side="right")
    places = low.copy()
    for n in np.flatnonzero(high > low):  # equal times (rare): by id among them
        places[n] = low[n] + np.searchsorted(order[low[n]:high[n]], at_ids[n])
    return places


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

    async def timeline(self, scope: Scope, as_of: datetime | None = None) -> Timeline:
        """The scope's visible level-0 units in session order (`Timeline.neighbours_of`)."""
        if as_of is not None:
            return Timeline.of(await self.search.unit_timeline(scope, as_of))
        entry = self._entries.get(scope)
        if entry is None:  # evicted since `allowed`: read it once, uncached
            return Timeline.of(await self.search.unit_timeline(scope))
        if entry.pending:
            await self._patch(scope, entry)
        if entry.timeline is None:
            seen = self._seen(scope.tenant)
            timeline = Timeline.of(await self.search.unit_timeline(scope))
            if self._seen(scope.tenant) != seen:  # changes arrived during the read: use it once
                return timeline
            entry.timeline = timeline
        return entry.timeline

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
            if entry.timeline is not None:  # out, then back in at its (possibly new) place
                entry.timeline.patch(
                    pending,
                    ((i, placed[i].session_id, placed[i].when) for i in sorted(visible) if placed[i].level == 0),
                )
