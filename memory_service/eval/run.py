"""The LoCoMo eval run (`memory-service eval locomo`): evidence recall of the service's context vs BM25 over raw turns.

Each conversation is ingested through `MemoryService.ingest(wait=True)` (the code path of
`POST /v1/events?wait=true`) under its own user_id (the sample_id), consolidated as the
background worker would (`MemoryService.consolidate` on the owner), and every question is
asked through `MemoryService.context` (what `POST /v1/context` calls) at every budget,
all from the same ingested state. The baseline (`eval/bm25.py`, `TurnBM25`) answers the same
questions at the same budgets in the same run.

Metrics per question, per method and budget (aggregated per category, over the answerable
questions of the headline categories, and over the abstention questions):
- evidence recall: share of the question's evidence turns cited by the context
  (ours: a chosen unit's `source_event_ids` holds `<sample_id>/<dia_id>`; BM25: the turn
  is in the context). Averaged over questions (`evidence_recall`) as the published
  baseline is, and pooled over evidence turns (`evidence_recall_turns`).
- content recall: share of evidence turns whose content reaches the context text
  (`recall.content_hit`: >= 60% of the turn's distinct content stems, `content_recall`;
  >= 50%, `content_recall_50`).
- answer-token recall: share of the gold answer's content stems in the context text
  (not for abstention questions: their "answer" only says that nothing answers them).
- provenance precision: of the (returned unit, cited event) pairs, the share whose event
  has >= 50% of its distinct content stems in the text the context shows for that unit
  (`recall.provenance`; BM25: each turn cites itself).
- stop-word share: stop words / words of the context text (`recall.stopword_share`).
- empty: the service answered `empty=True`; over abstention questions the share is the
  abstention rate (wanted), over the others the false-empty rate (unwanted). BM25 is
  empty when no turn shares a word with the question.
Ingest-side: unit tokens per event token (cl100k), all units' text over all events'
content, after ingest and after consolidation.

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
from memory_service.eval.recall import CONTENT_RECALL_THRESHOLDS, content_hits, provenance, score, stopword_share
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
    headline: list[int] | None = None
    """The categories the overall figures cover (default: those with an answerable question); abstention questions never count."""
    bm25_dates: bool = True
    """BM25's context shows its turns under their session dates (`TurnBM25.fill(dated=True)`)."""


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
    content_hits_50: list[str] = field(default_factory=list)
    """Evidence dia_ids with >= 50% of their content stems in the context text."""
    supported_citations: int = 0
    """(unit, cited event) pairs whose event content mostly appears in the unit's shown text."""
    citations: int = 0
    """(unit, cited event) pairs of the context."""
    stopword_share: float | None = None

    def evidence_recall(self, evidence: Sequence[str]) -> float | None:
        return len(self.hits) / len(evidence) if evidence else None

    def content_recall(self, evidence: Sequence[str]) -> float | None:
        return len(self.content_hits) / len(evidence) if evidence else None

    def content_recall_50(self, evidence: Sequence[str]) -> float | None:
        return len(self.content_hits_50) / len(evidence) if evidence else None


@dataclass
class QuestionRecord:
    id: str
    sample_id: str
    category: int
    question: str
    answer: str | None
    evidence: list[str]
    answers: dict[str, dict[int, Answer]] = field(default_factory=dict)
    question_type: str | None = None
    abstention: bool = False

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "answers"}
        data["answers"] = {
            method: {
                str(budget): dict(
                    asdict(a),
                    evidence_recall=a.evidence_recall(self.evidence),
                    content_recall=a.content_recall(self.evidence),
                    content_recall_50=a.content_recall_50(self.evidence),
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
    category_names: dict[int, str] = field(default_factory=dict)


def _public_settings(settings: Settings) -> dict[str, Any]:
    secret = ("url", "key", "secret", "password")
    return {
        k: v for k, v in settings.model_dump(mode="json").items() if not any(word in k for word in secret)
    }


def eval_settings(config: EvalConfig, data_dir: Path, samples: Sequence[dict[str, Any]] = ()) -> Settings:
    """Embedded mode on `data_dir`: SQLite, local FAISS, in-process jobs, whatever the environment says;
    `max_event_bytes` raised to the file's largest turn (BEAM has a 349 kB one), so that every turn is
    measured as it is rather than refused."""
    settings = Settings(data_dir=data_dir, database_url=None, redis_url=None)
    if config.compressor:
        settings.compressor = config.compressor
    largest = max((len(e.content.encode()) for s in samples for e in locomo.sample_events(s)), default=0)
    settings.max_event_bytes = max(settings.max_event_bytes, largest)
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
    event_tokens = {sid: sum(count_tokens(e.content) for e in evs) for sid, evs in events.items()}
    units = await _unit_tokens(service, list(events))
    return {
        "turns": total,
        "event_tokens": sum(event_tokens.values()),
        "seconds": seconds,
        "turns_per_s": total / seconds if seconds else 0.0,
        "units": sum(n for n, _ in units.values()),
        "unit_tokens": sum(t for _, t in units.values()),
        "unit_tokens_per_event_token": _ratio(sum(t for _, t in units.values()), sum(event_tokens.values())),
        "by_conversation": {
            sid: {
                "turns": len(events[sid]),
                "event_tokens": event_tokens[sid],
                "units": units[sid][0],
                "unit_tokens": units[sid][1],
                "unit_tokens_per_event_token": _ratio(units[sid][1], event_tokens[sid]),
            }
            for sid in events
        },
    }


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


async def _unit_tokens(service: MemoryService, sample_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
    """sample_id -> (units, cl100k tokens of their text), currently valid units of every level."""
    out: dict[str, tuple[int, int]] = {}
    for sample_id in sample_ids:
        count = tokens = 0
        while page := await service.list_memories(Scope(user_id=sample_id), 1000, count):
            count += len(page)
            tokens += sum(count_tokens(u.text, service.settings.tokenizer) for u in page)
        out[sample_id] = (count, tokens)
    return out


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
    seconds = time.perf_counter() - started
    units = await _unit_tokens(service, sample_ids)
    return dict(
        totals,
        seconds=seconds,
        units_after=sum(n for n, _ in units.values()),
        unit_tokens_after=sum(t for _, t in units.values()),
    )


async def _ask(
    service: MemoryService,
    samples: Sequence[dict[str, Any]],
    budgets: Sequence[int],
    progress: ProgressHook,
    bm25_dates: bool = True,
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
                question_type=q.question_type,
                abstention=q.abstention,
            )
            # An abstention question's "answer" says that nothing answers it: no answer tokens to find.
            gold = None if q.abstention else q.answer
            prefix = f"{sample_id}/"
            for budget in budgets:
                started = time.perf_counter()
                result = await service.context(scope, q.question, budget)
                latency = (time.perf_counter() - started) * 1000
                shown = [
                    (p.text, [eid[len(prefix):] for eid in p.candidate.unit.source_event_ids if eid.startswith(prefix)])
                    for p in result.pieces
                ]
                cited = {dia for _, dias in shown for dia in dias}
                record.answers[OURS][budget] = _answer(
                    q.evidence, gold, by_dia, cited, shown, result.context, result.empty, result.tokens, latency
                )

                started = time.perf_counter()
                filled = bm25.fill(q.question, budget, dated=bm25_dates)
                latency = (time.perf_counter() - started) * 1000
                shown = [(t.render(), [t.dia_id]) for t in filled.turns]
                cited = {t.dia_id for t in filled.turns}
                record.answers[BM25][budget] = _answer(
                    q.evidence, gold, by_dia, cited, shown, filled.context, filled.empty, filled.tokens, latency
                )
                advance(1)
            records.append(record)
    return records


def _answer(
    evidence: Sequence[str],
    answer: str | None,
    turns: dict[str, locomo.Turn],
    cited: set[str],
    shown: Sequence[tuple[str, Sequence[str]]],
    context: str,
    empty: bool,
    tokens: int,
    latency_ms: float,
) -> Answer:
    """Score one context: `shown` is each unit's (or turn's) shown text with the dia_ids it cites."""
    hits, _, answer_recall = score(evidence, answer, turns, cited, context)
    by_threshold = content_hits(evidence, turns, context)
    high, low = CONTENT_RECALL_THRESHOLDS
    supported, citations = provenance(shown, turns)
    return Answer(
        hits=hits,
        content_hits=by_threshold[high],
        answer_recall=answer_recall,
        empty=empty,
        tokens=tokens,
        latency_ms=latency_ms,
        units=len(shown),
        cited_turns=len(cited),
        content_hits_50=by_threshold[low],
        supported_citations=supported,
        citations=citations,
        stopword_share=stopword_share(context),
    )


async def run_eval(config: EvalConfig, progress: ProgressHook = _no_progress) -> EvalRun:
    if not config.budgets or any(b < 1 for b in config.budgets):
        raise ValueError("budgets must be positive token counts")
    samples = locomo.select_samples(config.path, config.conversations)
    if not samples:
        raise ValueError(f"{config.path}: no conversations")
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="memory-eval-") as tmp:
        settings = eval_settings(config, config.data_dir or Path(tmp), samples)
        service = await MemoryService.open(settings, run_jobs=False)
        try:
            ingest = await ingest_samples(service, samples, progress)
            sample_ids = [str(s["sample_id"]) for s in samples]
            consolidation = await _consolidate(service, sample_ids, progress) if config.consolidate else None
            records = await _ask(service, samples, config.budgets, progress, config.bm25_dates)
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
        category_names=locomo.category_names(samples),
    )


