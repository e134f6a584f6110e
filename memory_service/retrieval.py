"""Hybrid retrieval: dense (FAISS) and lexical (SQL full text) candidates fused by reciprocal rank."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from compressors.text import STOPWORDS
from memory_service.domain import MemoryUnit, Scope
from memory_service.embedding import Embedder
from memory_service.index_sync import IndexSync
from stores.lru import LRU
from stores.sql.store import SqlStore, UnitChange, lexical_terms
from stores.vector_index import VectorIndexes


@dataclass
class Candidate:
    unit: MemoryUnit
    score: float
    dense: float | None = None
    lexical: float | None = None


@dataclass
class RetrievalResult:
    candidates: list[Candidate]
    considered: int
    timings_ms: dict[str, float] = field(default_factory=dict)


def reciprocal_rank_fusion(rankings: Sequence[Sequence[int]], k: int = 60) -> dict[int, float]:
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank + 1)
    return scores


def query_terms(query: str) -> str:
    """The query's content words, for the lexical index (stop words only add noise to an OR query)."""
    return " ".join(t for t in lexical_terms(query) if t not in STOPWORDS)


class HybridRetriever:
    def __init__(
        self,
        store: SqlStore,
        embedder: Embedder,
        indexes: VectorIndexes,
        index_sync: IndexSync,
        candidates: int = 50,
        rrf_k: int = 60,
        min_relevance: float = 0.25,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.indexes = indexes
        self.index_sync = index_sync
        self.candidates = candidates
        self.rrf_k = rrf_k
        self.min_relevance = min_relevance
        # Unit rows and per-scope id lists, valid until the change log says otherwise.
        self._units: LRU[int, MemoryUnit] = LRU(100_000)
        self._scope_ids: LRU[Scope, list[int]] = LRU(1024)
        self._query_vectors: LRU[str, np.ndarray] = LRU(1024)
        index_sync.listeners.append(self._invalidate)

    def _invalidate(self, changes: list[UnitChange] | None) -> None:
        self._scope_ids.clear()
        if changes is None:
            self._units.clear()
        else:
            self._units.evict(c.unit_id for c in changes)

    async def _allowed_ids(self, scope: Scope, as_of: datetime | None) -> list[int]:
        if as_of is not None:
            return await self.store.unit_ids_in_scope(scope, as_of)
        ids = self._scope_ids.get(scope)
        if ids is None:
            ids = await self.store.unit_ids_in_scope(scope)
            self._scope_ids.put(scope, ids)
        return ids

    async def _query_vector(self, query: str) -> np.ndarray:
        vector = self._query_vectors.get(query)
        if vector is None:
            vector = (await asyncio.to_thread(self.embedder.embed, [query]))[0]
            self._query_vectors.put(query, vector)
        return vector

    async def _load_units(self, tenant: str, ids: list[int]) -> dict[int, MemoryUnit]:
        found: dict[int, MemoryUnit] = {}
        missing: list[int] = []
        for unit_id in ids:
            unit = self._units.get(unit_id)
            if unit is not None and unit.tenant == tenant:
                found[unit_id] = unit
            else:
                missing.append(unit_id)
        if missing:
            loaded = await self.store.units_by_ids(tenant, missing)
            for unit_id, unit in loaded.items():
                self._units.put(unit_id, unit)
            found.update(loaded)
        return found

    async def retrieve(self, scope: Scope, query: str, as_of: datetime | None = None) -> RetrievalResult:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        await self.index_sync.catch_up()
        allowed = await self._allowed_ids(scope, as_of)
        timings["scope_ms"] = (time.perf_counter() - started) * 1000
        if not allowed:
            return RetrievalResult([], 0, timings)

        started = time.perf_counter()
        vector, lexical = await asyncio.gather(
            self._query_vector(query),
            self.store.lexical_search(scope, query_terms(query), self.candidates, include_closed=as_of is not None),
        )
        if as_of is not None:
            visible = set(allowed)
            lexical = [(i, score) for i, score in lexical if i in visible]
        dense = self.indexes.tenant(scope.tenant).search(vector, self.candidates, allowed)
        timings["search_ms"] = (time.perf_counter() - started) * 1000

        dense_scores = dict(dense)
        lexical_scores = dict(lexical)
        fused = reciprocal_rank_fusion([[i for i, _ in dense], [i for i, _ in lexical]], self.rrf_k)
        # Selective augmentation: a unit no query word hits and whose meaning is far off is no help.
        relevant = [
            i for i in fused if i in lexical_scores or dense_scores.get(i, -1.0) >= self.min_relevance
        ]
        started = time.perf_counter()
        units = await self._load_units(scope.tenant, relevant)
        timings["load_ms"] = (time.perf_counter() - started) * 1000
        out = [
            Candidate(unit=units[i], score=fused[i], dense=dense_scores.get(i), lexical=lexical_scores.get(i))
            for i in relevant
            if i in units
        ]
        out.sort(key=lambda c: c.score, reverse=True)
        return RetrievalResult(out, len(fused), timings)
