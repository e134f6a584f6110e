"""Hybrid retrieval: dense (FAISS) and lexical (SQL full text) candidates fused by reciprocal rank."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from compressors.text import STOPWORDS
from memory_service.domain import MemoryUnit, Scope
from memory_service.embedding import Embedder
from memory_service.index_sync import IndexSync
from stores.sql.store import SqlStore, lexical_terms
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

    async def retrieve(self, scope: Scope, query: str) -> RetrievalResult:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        await self.index_sync.catch_up()
        allowed = await self.store.unit_ids_in_scope(scope)
        timings["scope_ms"] = (time.perf_counter() - started) * 1000
        if not allowed:
            return RetrievalResult([], 0, timings)

        started = time.perf_counter()
        vector_task = asyncio.to_thread(self.embedder.embed, [query])
        lexical_task = self.store.lexical_search(scope, query_terms(query), self.candidates)
        vectors, lexical = await asyncio.gather(vector_task, lexical_task)
        dense = self.indexes.tenant(scope.tenant).search(np.asarray(vectors[0]), self.candidates, allowed)
        timings["search_ms"] = (time.perf_counter() - started) * 1000

        dense_scores = dict(dense)
        lexical_scores = dict(lexical)
        fused = reciprocal_rank_fusion([[i for i, _ in dense], [i for i, _ in lexical]], self.rrf_k)
        # Selective augmentation: a unit no query word hits and whose meaning is far off is no help.
        relevant = [
            i for i in fused if i in lexical_scores or dense_scores.get(i, -1.0) >= self.min_relevance
        ]
        started = time.perf_counter()
        units = await self.store.units_by_ids(scope.tenant, relevant)
        timings["load_ms"] = (time.perf_counter() - started) * 1000
        out = [
            Candidate(unit=units[i], score=fused[i], dense=dense_scores.get(i), lexical=lexical_scores.get(i))
            for i in relevant
            if i in units
        ]
        out.sort(key=lambda c: c.score, reverse=True)
        return RetrievalResult(out, len(fused), timings)
