"""Hybrid retrieval: dense (FAISS), lexical (SQL full text) and symbolic (entities, time range) candidates
fused linearly over normalised scores, with multi-hop expansion and an importance-decay prior."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from compressors.text.words import STOPWORDS, lexical_terms
from memory_service import tracing
from memory_service.context.analysis import QueryAnalysis, analyze
from memory_service.context.config import RetrievalConfig
from memory_service.context.importance import DecayPolicy
from memory_service.context.ranking import LearnedRanker, candidate_features
from memory_service.context.scope_cache import ScopeCache
from memory_service.domain import MemoryUnit, Scope, utc_now
from memory_service.index.embedding import Embedder
from memory_service.index.sync import IndexSync
from stores.lru import LRU
from stores.sql.changes import UnitChange
from stores.sql.store import SqlStore
from stores.vector_index import AllowedIds, TenantIndex, VectorIndexes


@dataclass
class Candidate:
    unit: MemoryUnit
    score: float
    dense: float | None = None
    lexical: float | None = None
    vector: np.ndarray | None = None
    entity_match: bool = False
    in_time_range: bool = False
    second_lexical: float = 0.0  # expansion-round lexical score, scaled by the round's best
    neighbour: float = 0.0  # best hand-fused score of a session neighbour
    fused: float = 0.0  # the hand-set fusion's score (before decay)


@dataclass
class RetrievalResult:
    candidates: list[Candidate]
    considered: int
    timings_ms: dict[str, float] = field(default_factory=dict)
    analysis: QueryAnalysis | None = None


def query_terms(query: str) -> list[str]:
    """The query's content words, for the lexical index (stop words only add noise to an OR query)."""
    return [t for t in lexical_terms(query) if t not in STOPWORDS]


def search_terms(query: str, analysis: QueryAnalysis) -> list[str]:
    """What lexical search looks for: the analysis's terms in the index's word form, else the query's."""
    return lexical_terms(" ".join(analysis.terms)) if analysis.terms else query_terms(query)


class HybridRetriever:
    def __init__(
        self,
        store: SqlStore,
        embedder: Embedder,
        indexes: VectorIndexes,
        index_sync: IndexSync,
        config: RetrievalConfig | None = None,
        decay: DecayPolicy | None = None,
        ranker: LearnedRanker | None = None,
    ) -> None:
        """`config` sets the weights (default `RetrievalConfig()`); `decay` scales scores by decayed
        importance (the service passes the config's; None: no decay); `ranker` replaces the
        hand-set fusion's score by a learned one (None: the hand-set fusion ranks)."""
        config = config or RetrievalConfig()
        self.store = store
        self.embedder = embedder
        self.indexes = indexes
        self.index_sync = index_sync
        self.candidates = config.candidates
        self.min_relevance = config.min_relevance
        self.expansion_hits = config.expansion_hits
        self.lexical_weight = config.lexical_weight
        self.neighbour_weight = config.neighbour_weight
        self.entity_boost = config.entity_boost
        self.time_boost = config.time_boost
        self.symbolic_limit = config.symbolic_limit
        self.decay = decay
        self.ranker = ranker
        # Unit rows until the change log names them; per-scope ids and timelines, patched from it.
        self._units: LRU[int, MemoryUnit] = LRU(100_000)
        self.scopes = ScopeCache(store.search, indexes)
        self._query_vectors: LRU[str, np.ndarray] = LRU(1024)
        index_sync.listeners.append(self._follow)

    def _follow(self, changes: list[UnitChange] | None) -> None:
        self.scopes.follow(changes)
        if changes is None:
            self._units.clear()
        else:
            self._units.evict(c.unit_id for c in changes)

    async def _dense(
        self, embedding: Awaitable[np.ndarray], index: TenantIndex, k: int, allowed: AllowedIds
    ) -> tuple[np.ndarray, list[tuple[int, float]]]:
        """The query vector and the `k` nearest allowed units."""
        vector = await embedding
        return vector, index.search(vector, k, allowed)

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

    async def retrieve(
        self, scope: Scope, query: str, as_of: datetime | None = None, analysis: QueryAnalysis | None = None
    ) -> RetrievalResult:
        """Dense + lexical + symbolic (entities, time range) candidates, scored by normalised cosine
        plus weighted lexical score, boosted for entity and time matches and by session neighbours,
        then scaled by the units' decayed importance (not when looking back with `as_of`).

        With `analysis.expand`, a second round searches the entities and keywords of the
        first round's best hits (lexically) and the query vector moved towards those hits
        (densely); those rankings count half. Level-0 and level-1 units are both eligible.
        """
        timings: dict[str, float] = {}
        started = time.perf_counter()
        if analysis is None:
            with tracing.span("context.analysis"):
                analysis = analyze(query, as_of, self.candidates)
        timings["analysis_ms"] = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        # The query's embedding (a model run in a thread) overlaps the catch-up and the scope read.
        embedding = asyncio.ensure_future(self._query_vector(query))
        try:
            await self.index_sync.catch_up()
            allowed = await self.scopes.allowed(scope, as_of)
        except BaseException:
            embedding.cancel()
            raise
        timings["scope_ms"] = (time.perf_counter() - started) * 1000
        if not len(allowed):
            embedding.cancel()
            return RetrievalResult([], 0, timings, analysis)

        started = time.perf_counter()
        k = max(analysis.candidates, self.candidates)
        include_closed = as_of is not None
        time_range = analysis.time_range
        index = self.indexes.tenant(scope.tenant)
        (vector, dense), lexical, mentioning, in_range = await asyncio.gather(
            tracing.traced("context.candidates.dense", self._dense(embedding, index, k, allowed)),
            tracing.traced(
                "context.candidates.lexical",
                self.store.search.lexical(scope, search_terms(query, analysis), k, include_closed, len(allowed)),
            ),
            tracing.traced(
                "context.candidates.entity",
                self.store.search.unit_ids_mentioning(scope, analysis.entities, as_of, self.symbolic_limit)
                if analysis.entities
                else _nothing(),
            ),
            tracing.traced(
                "context.candidates.time",
                self.store.search.unit_ids_in_time_range(
                    scope, time_range.start, time_range.end, as_of, self.symbolic_limit
                )
                if time_range is not None
                else _nothing(),
            ),
        )
        # Lexical search sees closed units too when looking back; the symbolic lookups
        # already apply the scope's validity themselves.
        if include_closed:
            lexical = [(i, score) for i, score in lexical if i in allowed.members]
        rankings: list[list[int]] = [[i for i, _ in dense], [i for i, _ in lexical]]
        # Symbolic: units naming a mentioned entity / in the asked-about time, ranked by meaning.
        entity_ids, range_ids = list(mentioning), list(in_range)
        with tracing.span("context.candidates.symbolic"):
            # A name every unit carries (a speaker of the whole history) says nothing.
            if entity_ids and len(entity_ids) < 0.5 * len(allowed):
                rankings.append([i for i, _ in index.search_within(vector, k, entity_ids, allowed)])
            if range_ids:
                rankings.append([i for i, _ in index.search_within(vector, k, range_ids, allowed)])
        timings["search_ms"] = (time.perf_counter() - started) * 1000

        pool = dict.fromkeys(i for ranking in rankings for i in ranking)
        second_lexical: dict[int, float] = {}
        if analysis.expand and pool:
            started = time.perf_counter()
            with tracing.span("context.candidates.expansion"):
                first = _scores(pool, index.vectors(list(pool)), vector, dict(lexical), {}, self.lexical_weight)
                top = sorted(first, key=first.__getitem__, reverse=True)[: self.expansion_hits]
                top_units = await self._load_units(scope.tenant, top)
                extra = expansion_terms([top_units[i] for i in top if i in top_units], analysis.terms)
                if extra:
                    found = await self.store.search.lexical(scope, extra, k, include_closed, len(allowed))
                    second_lexical = {i: score for i, score in found if not include_closed or i in allowed.members}
                    pool.update(dict.fromkeys(second_lexical))
            timings["expand_ms"] = (time.perf_counter() - started) * 1000

        started = time.perf_counter()
        # Not a `with` block: the span covers the rest of this method (an exception just drops it).
        fusion = tracing.tracer.start_span("context.fusion", attributes={"pool": len(pool)})
        # A turn is often understood only with the one before or after it (a question and
        # its answer): neighbours in the same session join the pool and lend each other score.
        timeline = await self.scopes.timeline(scope, as_of)
        neighbours = timeline.neighbours_of(pool)
        for i in list(pool):
            pool.update(dict.fromkeys(neighbours.get(i, ())))
        neighbours.update(timeline.neighbours_of(i for i in pool if i not in neighbours))
        ids = list(pool)
        vectors = index.vectors(ids)
        lexical_scores = dict(lexical)
        dense_scores = {i: float(np.dot(v, vector)) for i, v in vectors.items()}
        entity_set, range_set = set(entity_ids), set(range_ids)
        base = _scores(pool, vectors, vector, lexical_scores, second_lexical, self.lexical_weight)
        for i in entity_set:
            if i in base:
                base[i] += self.entity_boost
        if time_range is not None:
            for i in range_set:
                if i in base:
                    base[i] += self.time_boost
        neighbour_scores = {i: max((base.get(n, 0.0) for n in neighbours.get(i, ())), default=0.0) for i in base}
        fused = {i: score + self.neighbour_weight * neighbour_scores[i] for i, score in base.items()}
        top_second = max(second_lexical.values(), default=0.0)
        # Selective augmentation, per unit: no query word hits it and its meaning is far off.
        relevant = [
            i
            for i in ids
            if i in lexical_scores
            or i in second_lexical
            or i in entity_set
            or dense_scores.get(i, -1.0) >= self.min_relevance
        ]
        timings["fuse_ms"] = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        units = await self._load_units(scope.tenant, relevant)
        timings["load_ms"] = (time.perf_counter() - started) * 1000
        out = [
            Candidate(
                unit=units[i],
                score=fused[i],
                dense=dense_scores.get(i),
                lexical=lexical_scores.get(i),
                vector=vectors.get(i),
                entity_match=i in entity_set,
                in_time_range=i in range_set,
                second_lexical=max(second_lexical.get(i, 0.0), 0.0) / top_second if top_second > 0 else 0.0,
                neighbour=neighbour_scores[i],
                fused=fused[i],
            )
            for i in relevant
            if i in units
        ]
        if self.ranker is not None and out:
            started = time.perf_counter()
            learned = self.ranker.scores(candidate_features(out, analysis))
            for candidate, value in zip(out, learned, strict=True):
                candidate.score = float(value)
            timings["rank_ms"] = (time.perf_counter() - started) * 1000
        if self.decay is not None and as_of is None:
            now = utc_now()
            for candidate in out:
                candidate.score *= self.decay.rank_factor(candidate.unit, now)
        out.sort(key=lambda c: c.score, reverse=True)
        fusion.end()
        return RetrievalResult(out, len(pool), timings, analysis)


def _scores(
    pool: dict[int, None],
    vectors: dict[int, np.ndarray],
    query: np.ndarray,
    lexical: dict[int, float],
    second_lexical: dict[int, float],
    lexical_weight: float,
) -> dict[int, float]:
    """Cosine and lexical score, each scaled by its best value in the pool, added (lexical weighted)."""
    dense = {i: float(np.dot(v, query)) for i, v in vectors.items()}
    top_dense = max(dense.values(), default=0.0)
    top_lexical = max(lexical.values(), default=0.0)
    top_second = max(second_lexical.values(), default=0.0)
    out = {}
    for i in pool:
        score = dense.get(i, 0.0) / top_dense if top_dense > 0 else 0.0
        if top_lexical > 0:
            score += lexical_weight * max(lexical.get(i, 0.0), 0.0) / top_lexical
        if top_second > 0:
            score += 0.5 * lexical_weight * max(second_lexical.get(i, 0.0), 0.0) / top_second
        out[i] = score
    return out


async def _nothing() -> list[int]:
    return []


def expansion_terms(units: Sequence[MemoryUnit], query_terms: Sequence[str], limit: int = 8) -> list[str]:
    """Names (entities, persons) the first hits mention and the query lacks, best-ranked hits first;
    the hits' keywords only when they name nothing new.

    A term most of the hits share (the speakers of a whole history, say) is no lead to
    anything new and is left out.
    """
    asked = set(query_terms)
    common = max(3, len(units) // 2 + 1)

    def ranked(fields: Callable[[MemoryUnit], Sequence[str]]) -> list[str]:
        counts: dict[str, float] = {}
        seen_in: dict[str, int] = {}
        for rank, unit in enumerate(units):
            words = {
                word
                for term in fields(unit)
                for word in lexical_terms(term)
                if word not in asked and word not in STOPWORDS and not word.isdigit()
            }
            for word in words:
                counts[word] = counts.get(word, 0.0) + 1.0 / (rank + 1)
                seen_in[word] = seen_in.get(word, 0) + 1
        kept = [t for t in counts if seen_in[t] < common]
        return sorted(kept, key=lambda t: (-counts[t], t))[:limit]

    return ranked(lambda u: [*u.entities, *u.persons]) or ranked(lambda u: u.keywords)
