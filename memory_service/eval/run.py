"""The LoCoMo eval run (`memory-service eval locomo`): evidence recall of the service's context vs BM25 over raw turns.

Each conversation is ingested through `MemoryService.ingest(wait=True)` (the code path of
`POST /v1/events?wait=true`) under its own user_id (the sample_id), consolidated as the
background worker would (`MemoryService.consolidate` on the owner), and every question is
asked through `MemoryService.context` (what `POST /v1/context` calls) at every budget,
all from the same ingested state. The baseline (`eval/bm25.py`, `TurnBM25`) answers the same
questions at the same budgets in the same run.

Metrics per question, per method and budget (aggregated per category and over 1-4):
- evidence recall: share of the question's evidence turns cited by the context
  (ours: a chosen unit's `source_event_ids` holds `<sample_id>/<dia_id>`; BM25: the turn
  is in the context). Averaged over questions (`evidence_recall`) as the published
  baseline is, and pooled over evidence turns (`evidence_recall_turns`).
- evidence content recall: share of evidence turns whose content mostly appears in the
  context text (`recall.content_hit`: >= 50% of the turn's distinct content stems).
- answer-token recall: share of the gold answer's content stems in the context text.
- empty: the service answered `empty=True`; for category 5 the share is the abstention
  rate (wanted), for 1-4 the false-empty rate (unwanted). BM25 is empty when no turn
  shares a word with the question.

The metrics are computed in `eval/recall.py` and aggregated, with the config, in `eval/report.py`.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memory_service.domain import Scope
from memory_service.eval import locomo
from memory_service.eval.bm25 import TurnBM25
from memory_service.eval.recall import score
from memory_service.service import MemoryService
from memory_service.settings import Settings
from memory_service.tokens import count_tokens

OURS = "service"
BM25 = "bm25"
METHODS = (OURS, BM25)

# A phase ("ingest", "consolidate", "questions") and its total -> a function advancing it.
ProgressHook = Callable[[str, int], Callable[[int], None]]


def _no_progress(phase: str, total: int) -> Callable[[int], None]:
    return lambda n: None


@dataclass
class EvalConfig:
    path: Path
    budgets: list[int]
    conversations: list[str] | None = None
    compressor: str | None = None
    consolidate: bool = True
    data_dir: Path | None = None


@dataclass
class Answer:
    """One method's context for one question at one budget, scored."""

    hits: list[str]
    """Evidence dia_ids cited by the context."""
    content_hits: list[str]
    """Evidence dia_ids whose content mostly appears in the context text."""
    answer_recall: float | None
    empty: bool
    tokens: int
    latency_ms: float
    units: int
    """Units (ours) or turns (BM25) in the context."""
    cited_turns: int
    """Distinct turns the context cites (a unit citing many turns inflates evidence recall)."""

    def evidence_recall(self, evidence: Sequence[str]) -> float | None:
        return len(self.hits) / len(evidence) if evidence else None

    def content_recall(self, evidence: Sequence[str]) -> float | None:
        return len(self.content_hits) / len(evidence) if evidence else None


@dataclass
class QuestionRecord:
    id: str
    sample_id: str
    category: int
    question: str
    answer: str | None
    evidence: list[str]
    answers: dict[str, dict[int, Answer]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "answers"}
        data["answers"] = {
            method: {
                str(budget): dict(
                    asdict(a),
                    evidence_recall=a.evidence_recall(self.evidence),
                    content_recall=a.content_recall(self.evidence),
                )
                for budget, a in by_budget.items()
            }
            for method, by_budget in self.answers.items()
        }
        return data


@dataclass
class EvalRun:
    config: EvalConfig
    settings: dict[str, Any]
    records: list[QuestionRecord]
    ingest: dict[str, Any]
    consolidation: dict[str, Any] | None
    started_at: str
    seconds: float = 0.0


def _public_settings(settings: Settings) -> dict[str, Any]:
    secret = ("url", "key", "secret", "password")
    return {
        k: v for k, v in settings.model_dump(mode="json").items() if not any(word in k for word in secret)
    }


def eval_settings(config: EvalConfig, data_dir: Path) -> Settings:
    """Embedded mode on `data_dir`: SQLite, local FAISS, in-process jobs, whatever the environment says."""
    settings = Settings(data_dir=data_dir, database_url=None, redis_url=None)
    if config.compressor:
        settings.compressor = config.compressor
    return settings


async def ingest_samples(
    service: MemoryService, samples: Sequence[dict[str, Any]], progress: ProgressHook
) -> dict[str, Any]:
    events = {str(s["sample_id"]): locomo.sample_events(s) for s in samples}
    total = sum(len(e) for e in events.values())
    advance = progress("ingest", total)
    batch = service.settings.max_batch_events
    started = time.perf_counter()
    for sample_events in events.values():
        for start in range(0, len(sample_events), batch):
            chunk = sample_events[start : start + batch]
            await service.ingest(chunk, wait=True)
            advance(len(chunk))
    seconds = time.perf_counter() - started
    return {
        "turns": total,
        "event_tokens": sum(count_tokens(e.content) for evs in events.values() for e in evs),
        "seconds": seconds,
        "turns_per_s": total / seconds if seconds else 0.0,
        "units": await _count_units(service, list(events)),
    }


async def _count_units(service: MemoryService, sample_ids: Sequence[str]) -> int:
    count = 0
    for sample_id in sample_ids:
        offset = 0
        while page := await service.list_memories(Scope(user_id=sample_id), 1000, offset):
            offset += len(page)
        count += offset
    return count


async def _consolidate(
    service: MemoryService, sample_ids: Sequence[str], progress: ProgressHook
) -> dict[str, Any]:
    advance = progress("consolidate", len(sample_ids))
    totals = {"examined": 0, "merged": 0, "superseded": 0, "abstractions_created": 0, "abstractions_retired": 0}
    started = time.perf_counter()
    for sample_id in sample_ids:
        report = await service.consolidate(Scope(user_id=sample_id))
        for key in totals:
            totals[key] += getattr(report, key)
        advance(1)
    return dict(totals, seconds=time.perf_counter() - started, units_after=await _count_units(service, sample_ids))


async def _ask(
    service: MemoryService,
    samples: Sequence[dict[str, Any]],
    budgets: Sequence[int],
    progress: ProgressHook,
) -> list[QuestionRecord]:
    questions = {str(s["sample_id"]): locomo.sample_questions(s) for s in samples}
    advance = progress("questions", sum(len(q) for q in questions.values()) * len(budgets))
    records: list[QuestionRecord] = []
    await service.context(Scope(user_id=str(samples[0]["sample_id"])), "warm up", budgets[0])
    for sample in samples:
        sample_id = str(sample["sample_id"])
        scope = Scope(user_id=sample_id)
        turns = locomo.sample_turns(sample)
        by_dia = {t.dia_id: t for t in turns}
        bm25 = await asyncio.to_thread(TurnBM25, turns, service.settings.tokenizer)
        for number, q in enumerate(questions[sample_id]):
            record = QuestionRecord(
                id=f"{sample_id}/q{number}",
                sample_id=sample_id,
                category=q.category,
                question=q.question,
                answer=q.answer,
                evidence=q.evidence,
                answers={OURS: {}, BM25: {}},
            )
            for budget in budgets:
                started = time.perf_counter()
                result = await service.context(scope, q.question, budget)
                latency = (time.perf_counter() - started) * 1000
                cited = {
                    eid.split("/", 1)[1]
                    for c in result.chosen
                    for eid in c.unit.source_event_ids
                    if eid.startswith(f"{sample_id}/")
                }
                hits, content, answer_recall = score(q.evidence, q.answer, by_dia, cited, result.context)
                record.answers[OURS][budget] = Answer(
                    hits, content, answer_recall, result.empty, result.tokens, latency, len(result.chosen), len(cited)
                )

                started = time.perf_counter()
                filled = bm25.fill(q.question, budget)
                latency = (time.perf_counter() - started) * 1000
                cited = {t.dia_id for t in filled.turns}
                hits, content, answer_recall = score(q.evidence, q.answer, by_dia, cited, filled.context)
                record.answers[BM25][budget] = Answer(
                    hits, content, answer_recall, filled.empty, filled.tokens, latency, len(filled.turns), len(cited)
                )
                advance(1)
            records.append(record)
    return records


async def run_eval(config: EvalConfig, progress: ProgressHook = _no_progress) -> EvalRun:
    if not config.budgets or any(b < 1 for b in config.budgets):
        raise ValueError("budgets must be positive token counts")
    samples = locomo.select_samples(config.path, config.conversations)
    if not samples:
        raise ValueError(f"{config.path}: no conversations")
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="memory-eval-") as tmp:
        settings = eval_settings(config, config.data_dir or Path(tmp))
        service = await MemoryService.open(settings, run_jobs=False)
        try:
            ingest = await ingest_samples(service, samples, progress)
            sample_ids = [str(s["sample_id"]) for s in samples]
            consolidation = await _consolidate(service, sample_ids, progress) if config.consolidate else None
            records = await _ask(service, samples, config.budgets, progress)
        finally:
            await service.close()
    return EvalRun(
        config=config,
        settings=_public_settings(settings),
        records=records,
        ingest=ingest,
        consolidation=consolidation,
        started_at=started_at,
        seconds=time.perf_counter() - started,
    )


