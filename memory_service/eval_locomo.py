"""`memory-service eval locomo`: evidence recall of the service's context vs BM25 over raw turns.

Each conversation is ingested through `MemoryService.ingest(wait=True)` (the code path of
`POST /v1/events?wait=true`) under its own user_id (the sample_id), consolidated as the
background worker would (`MemoryService.consolidate` on the owner), and every question is
asked through `MemoryService.context` (what `POST /v1/context` calls) at every budget,
all from the same ingested state. The baseline (`bm25_baseline.TurnBM25`) answers the same
questions at the same budgets in the same run.

Metrics per question, per method and budget (aggregated per category and over 1-4):
- evidence recall: share of the question's evidence turns cited by the context
  (ours: a chosen unit's `source_event_ids` holds `<sample_id>/<dia_id>`; BM25: the turn
  is in the context). Averaged over questions (`evidence_recall`) as the published
  baseline is, and pooled over evidence turns (`evidence_recall_turns`).
- evidence content recall: share of evidence turns whose content mostly appears in the
  context text (`evaluation.content_hit`: >= 50% of the turn's distinct content stems).
- answer-token recall: share of the gold answer's content stems in the context text.
- empty: the service answered `empty=True`; for category 5 the share is the abstention
  rate (wanted), for 1-4 the false-empty rate (unwanted). BM25 is empty when no turn
  shares a word with the question.
"""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memory_service import locomo
from memory_service.bm25_baseline import Turn, TurnBM25, sample_turns
from memory_service.domain import Scope
from memory_service.evaluation import (
    CONTENT_RECALL_THRESHOLD,
    content_hit,
    content_stems,
    mean,
    percentile,
    token_recall,
)
from memory_service.service import MemoryService
from memory_service.settings import Settings
from memory_service.tokens import count_tokens

OURS = "service"
BM25 = "bm25"
METHODS = (OURS, BM25)
ANSWERABLE = (1, 2, 3, 4)
CATEGORY_NAMES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}

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


def git_commit() -> dict[str, Any] | None:
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0:
        return None
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def select_samples(path: Path, conversations: Sequence[str] | None) -> list[dict[str, Any]]:
    """The file's samples, or the named ones in the given order; unknown names are an error."""
    samples = locomo.load(path)
    if not conversations:
        return samples
    by_id = {str(s.get("sample_id")): s for s in samples}
    unknown = [c for c in conversations if c not in by_id]
    if unknown:
        raise ValueError(f"{path}: no conversation {', '.join(unknown)} (it has {', '.join(by_id)})")
    return [by_id[c] for c in dict.fromkeys(conversations)]


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


def score(
    evidence: Sequence[str],
    answer: str | None,
    turns: dict[str, Turn],
    cited: set[str],
    context: str,
) -> tuple[list[str], list[str], float | None]:
    """(evidence hits by citation, evidence hits by content, answer-token recall) of one context."""
    stems = content_stems(context)
    hits = [d for d in evidence if d in cited]
    content = [d for d in evidence if d in turns and content_hit(turns[d].content, stems)]
    return hits, content, token_recall(answer, stems) if answer else None


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
        turns = sample_turns(sample)
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
    samples = select_samples(config.path, config.conversations)
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


# --------------------------------------------------------------------------- aggregation


def summarize(records: Sequence[QuestionRecord], method: str, budget: int) -> dict[str, Any]:
    """Every metric for one method and budget over the given questions."""
    answers = [(r, r.answers[method][budget]) for r in records if budget in r.answers.get(method, {})]
    with_evidence = [(r, a) for r, a in answers if r.evidence]
    evidence_turns = sum(len(r.evidence) for r, _ in with_evidence)
    tokens = [a.tokens for _, a in answers]
    latencies = [a.latency_ms for _, a in answers]
    return {
        "questions": len(answers),
        "evidence_recall": mean([a.evidence_recall(r.evidence) or 0.0 for r, a in with_evidence]),
        "evidence_recall_turns": sum(len(a.hits) for _, a in with_evidence) / evidence_turns if evidence_turns else None,
        "content_recall": mean([a.content_recall(r.evidence) or 0.0 for r, a in with_evidence]),
        "answer_recall": mean([a.answer_recall for _, a in answers if a.answer_recall is not None]),
        "empty_rate": mean([float(a.empty) for _, a in answers]),
        "context_tokens_mean": mean(tokens),
        "context_tokens_p95": percentile(tokens, 95),
        "units_mean": mean([a.units for _, a in answers]),
        "cited_turns_mean": mean([a.cited_turns for _, a in answers]),
        "latency_ms_p50": percentile(latencies, 50),
        "latency_ms_p95": percentile(latencies, 95),
    }


def results(run: EvalRun) -> dict[str, dict[str, dict[str, Any]]]:
    """method -> budget -> {"overall" (categories 1-4), "by_category": {"1".."5": ...}}."""
    out: dict[str, dict[str, Any]] = {}
    categories = sorted({r.category for r in run.records})
    for method in METHODS:
        out[method] = {}
        for budget in run.config.budgets:
            answerable = [r for r in run.records if r.category in ANSWERABLE]
            overall = summarize(answerable, method, budget)
            overall["false_empty_rate"] = overall.pop("empty_rate")
            by_category = {}
            for category in categories:
                summary = summarize([r for r in run.records if r.category == category], method, budget)
                key = "abstain_rate" if category == 5 else "false_empty_rate"
                summary[key] = summary.pop("empty_rate")
                by_category[str(category)] = summary
            out[method][str(budget)] = {"overall": overall, "by_category": by_category}
    return out


def worst_questions(run: EvalRun, per_category: int, budget: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """Per category, the service's worst questions at `budget` (default the largest): lowest
    evidence recall, then lowest content recall; with what BM25 found at the same budget."""
    budget = budget if budget is not None else max(run.config.budgets)
    out: dict[str, list[dict[str, Any]]] = {}
    for category in sorted({r.category for r in run.records}):
        rows = [r for r in run.records if r.category == category and r.evidence]
        rows.sort(
            key=lambda r: (
                r.answers[OURS][budget].evidence_recall(r.evidence),
                r.answers[OURS][budget].content_recall(r.evidence),
                r.id,
            )
        )
        out[str(category)] = [
            {
                "id": r.id,
                "question": r.question,
                "answer": r.answer,
                "evidence": r.evidence,
                "missed": [d for d in r.evidence if d not in r.answers[OURS][budget].hits],
                "evidence_recall": r.answers[OURS][budget].evidence_recall(r.evidence),
                "content_recall": r.answers[OURS][budget].content_recall(r.evidence),
                "bm25_evidence_recall": r.answers[BM25][budget].evidence_recall(r.evidence),
                "empty": r.answers[OURS][budget].empty,
                "tokens": r.answers[OURS][budget].tokens,
            }
            for r in rows[:per_category]
        ]
    return out


def report(run: EvalRun, include_questions: bool = True, worst: int = 0) -> dict[str, Any]:
    """Everything as JSON-ready data: config, ingest, results, and optionally per-question details."""
    data: dict[str, Any] = {
        "config": {
            "file": str(run.config.path),
            "conversations": sorted({r.sample_id for r in run.records}, key=[r.sample_id for r in run.records].index),
            "budgets": run.config.budgets,
            "compressor": run.settings.get("compressor"),
            "consolidate": run.config.consolidate,
            "data_dir": str(run.config.data_dir) if run.config.data_dir else None,
            "git": git_commit(),
            "started_at": run.started_at,
            "seconds": run.seconds,
            "settings": run.settings,
            "baseline": "BM25 (bm25s, English stop words, Snowball stems) over raw turns, greedy fill to the budget",
            "metrics": {
                "content_recall_threshold": CONTENT_RECALL_THRESHOLD,
                "evidence_recall": "mean over questions of the share of evidence turns cited",
                "evidence_recall_turns": "evidence turns cited / all evidence turns",
            },
        },
        "ingest": run.ingest,
        "consolidation": run.consolidation,
        "results": results(run),
    }
    if worst:
        data["worst"] = worst_questions(run, worst)
    if include_questions:
        data["questions"] = [r.to_json() for r in run.records]
    return data
