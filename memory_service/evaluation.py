"""Asking a LoCoMo-shaped file's questions through the service and scoring what comes back.

Evidence recall: the share of annotated evidence turns (categories 1-4) that a unit in
the returned context cites. The same code serves the benchmarks and, later, the eval.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memory_service import locomo
from memory_service.domain import Scope
from memory_service.service import MemoryService


@dataclass
class RecallReport:
    questions: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    context_tokens: list[int] = field(default_factory=list)
    hits: dict[int, int] = field(default_factory=dict)
    evidence: dict[int, int] = field(default_factory=dict)

    def recall(self, categories: Sequence[int] = (1, 2, 3, 4)) -> float:
        total = sum(self.evidence.get(c, 0) for c in categories)
        return sum(self.hits.get(c, 0) for c in categories) / total if total else 0.0

    def summary(self) -> dict[str, Any]:
        lat = np.asarray(self.latencies_ms or [0.0])
        return {
            "questions": self.questions,
            "p50_ms": float(np.percentile(lat, 50)),
            "p95_ms": float(np.percentile(lat, 95)),
            "mean_ms": float(lat.mean()),
            "context_tokens_mean": float(np.mean(self.context_tokens)) if self.context_tokens else 0.0,
            "evidence_recall": {
                "overall_1_4": self.recall(),
                "by_category": {str(c): self.recall([c]) for c in sorted(self.evidence)},
            },
        }


async def evidence_recall(
    service: MemoryService,
    samples: Sequence[dict[str, Any]],
    budget: int,
    on_question: Callable[[], None] | None = None,
) -> RecallReport:
    report = RecallReport()
    await service.context(Scope(user_id=str(samples[0]["sample_id"])), "warm up", budget)
    for sample in samples:
        for q in locomo.sample_questions(sample):
            started = time.perf_counter()
            result = await service.context(Scope(user_id=q.sample_id), q.question, budget)
            report.latencies_ms.append((time.perf_counter() - started) * 1000)
            report.questions += 1
            if on_question is not None:
                on_question()
            if q.category == 5 or not q.evidence:
                continue
            cited = {eid for c in result.chosen for eid in c.unit.source_event_ids}
            report.hits[q.category] = report.hits.get(q.category, 0) + sum(
                f"{q.sample_id}/{dia}" in cited for dia in q.evidence
            )
            report.evidence[q.category] = report.evidence.get(q.category, 0) + len(q.evidence)
            report.context_tokens.append(result.tokens)
    return report
