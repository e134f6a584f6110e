"""The query path: a query and a budget in, a `ContextResult` out.

analysis (rules, or with the LM) -> hybrid retrieval -> abstention (selective
augmentation) -> token pruning of the best candidates (optional) -> selection into the
budget and rendering (`packing`) -> use recorded for importance decay. Every knob is
in the `ContextConfig` it is built with.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime

from memory_service import metrics, tracing
from memory_service.context.analysis import QueryAnalysis
from memory_service.context.answerability import Answerability, assess
from memory_service.context.config import ContextConfig
from memory_service.context.importance import AccessRecorder
from memory_service.context.lm_analysis import LMQueryAnalyzer
from memory_service.context.packing import ContextFormat, PackedContext, display_text, pack
from memory_service.context.pruning import TokenPruner
from memory_service.context.retrieval import Candidate, HybridRetriever
from memory_service.context.selection import Piece
from memory_service.domain import Scope
from memory_service.index.sync import IndexSync
from stores.lru import LRU
from stores.sql.store import SqlStore


@dataclass
class ContextResult:
    context: str
    tokens: int
    chosen: list[Candidate]
    empty: bool
    candidates_considered: int
    timings_ms: dict[str, float] = field(default_factory=dict)
    pieces: list[Piece] = field(default_factory=list)
    messages: list[dict[str, str]] | None = None
    history_tokens: int = 0
    analysis: QueryAnalysis | None = None
    best_relevance: float = -1.0
    answerability: Answerability | None = None

    @property
    def compression_ratio(self) -> float:
        """History tokens per context token (0 when the context is empty)."""
        return self.history_tokens / self.tokens if self.tokens else 0.0


class ContextPipeline:
    """`analyzer` None: the rules' analysis (inside retrieval); `pruner` None: no pruning."""

    def __init__(
        self,
        config: ContextConfig,
        store: SqlStore,
        index_sync: IndexSync,
        retriever: HybridRetriever,
        access: AccessRecorder,
        analyzer: LMQueryAnalyzer | None = None,
        pruner: TokenPruner | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.retriever = retriever
        self.access = access
        self.analyzer = analyzer
        self.pruner = pruner
        self._history_token_cache: LRU[Scope, int] = LRU(1024)
        index_sync.listeners.append(lambda _changes: self._history_token_cache.clear())

    async def run(
        self,
        scope: Scope,
        query: str,
        budget_tokens: int | None = None,
        fmt: ContextFormat = "text",
        as_of: datetime | None = None,
    ) -> ContextResult:
        """Query-aware context. Only currently valid units, or with `as_of` those valid then."""
        with tracing.span("context", attributes={"budget_tokens": budget_tokens or self.config.default_budget_tokens}):
            return await self._run(scope, query, budget_tokens, fmt, as_of)

    async def _run(
        self, scope: Scope, query: str, budget_tokens: int | None, fmt: ContextFormat, as_of: datetime | None
    ) -> ContextResult:
        config = self.config
        budget = budget_tokens if budget_tokens is not None else config.default_budget_tokens
        analysis = None
        analysis_ms = 0.0
        if self.analyzer is not None:
            started = time.perf_counter()
            with tracing.span("context.analysis", attributes={"lm": True}):
                analysis = await asyncio.to_thread(self.analyzer.analyze, query, as_of, config.retrieval.candidates)
            analysis_ms = (time.perf_counter() - started) * 1000
        result = await self.retriever.retrieve(scope, query, as_of, analysis)
        # Selective augmentation: when no candidate is close enough in meaning, or the best ones
        # do not cover the question's subject and attribute, say so instead of filling the
        # budget with the least bad units (`context.answerability`).
        started = time.perf_counter()
        with tracing.span("context.answerability") as current:
            answerability = assess(result.candidates, result.analysis, config.abstention)
            current.set_attribute("reason", answerability.reason)
        top = answerability.best_relevance
        relevant = answerability.answerable
        extra_timings: dict[str, float] = {
            "analysis_ms": result.timings_ms.get("analysis_ms", 0.0) + analysis_ms,
            "answerability_ms": (time.perf_counter() - started) * 1000,
        }
        display = None
        if self.pruner is not None and relevant and result.candidates:
            started = time.perf_counter()
            best = result.candidates[: config.pruning.top]
            with tracing.span("context.pruning", attributes={"units": len(best)}):
                pruned = await asyncio.to_thread(
                    self.pruner.prune_many, [(c.unit.id, c.unit.hash, display_text(c.unit)) for c in best], query
                )

            def display(candidate: Candidate) -> str:
                return pruned.get(candidate.unit.id) or display_text(candidate.unit)

            extra_timings["prune_ms"] = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        packed: PackedContext = pack(
            result.candidates if relevant else [], budget, fmt, config.tokenizer, result.analysis,
            config.selection, display=display,
        )
        if as_of is None:  # looking back in time is not use of today's memory
            self.access.record(scope.tenant, [c.unit for c in packed.chosen])
        timings = dict(result.timings_ms, **extra_timings, pack_ms=(time.perf_counter() - started) * 1000)
        history = await self._history_tokens(scope)
        metrics.record_context(packed.tokens, not packed.chosen, history)
        return ContextResult(
            context=packed.context,
            tokens=packed.tokens,
            chosen=packed.chosen,
            empty=not packed.chosen,
            candidates_considered=result.considered,
            timings_ms=timings,
            pieces=packed.pieces,
            messages=packed.messages,
            history_tokens=history,
            analysis=result.analysis,
            best_relevance=top,
            answerability=answerability,
        )

    async def _history_tokens(self, scope: Scope) -> int:
        """Tokens of every raw event in the scope (what sending the whole history would cost).

        A SQL sum of the per-event counts stored at ingest, cached until the next unit change
        (new events reach the context only through new units, so a cached sum is never behind
        what the context could show).
        """
        tokens = self._history_token_cache.get(scope)
        if tokens is None:
            tokens = await self.store.history_tokens(scope)
            self._history_token_cache.put(scope, tokens)
        return tokens

