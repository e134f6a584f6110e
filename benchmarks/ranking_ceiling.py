"""How far ranking alone can take the context: the service's context next to the same
units packed with the gold evidence ranked first (the ranking ceiling), and where each
missed evidence turn was lost.

Per question (LoCoMo- or BEAM-shaped file, one budget), both contexts go through the
same selection and packing (`context.packing.pack` with the service's `ContextConfig`,
no abstention: a false empty is not counted against either); only the scores differ: the "ceiling" lifts every level-0 candidate citing an evidence
turn above all others. Nothing of this is used by the service: it reads the gold evidence.

Each evidence turn whose content the service's context misses is put in one bucket:
- `not_candidate`: no candidate cites it (retrieval never found it);
- `ranked_below`: a candidate cites it, but the budget ran out before it (ranking);
- `chosen_not_carried`: a chosen unit cites it, but the shown text lacks its content
  (compression: the unit, or its trimmed text, carries under 60% of the turn's stems).

    python -m benchmarks.ranking_ceiling ../shared/bench/locomo/locomo_dev.json --data-dir /tmp/ceiling/locomo \
        --out benchmarks/results/ranking_ceiling_locomo.json
    python -m benchmarks.ranking_ceiling ../shared/bench/beam/beam_dev.json --headline 1,2,4,6,7,8,9 \
        --data-dir /tmp/ceiling/beam --out benchmarks/results/ranking_ceiling_beam.json

The data dir keeps the ingested state (ingested and consolidated once, then reused).
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import track

from benchmarks.output import emit
from benchmarks.query_context import ingest_once
from memory_service.context.packing import pack
from memory_service.context.retrieval import Candidate
from memory_service.domain import Scope
from memory_service.eval import locomo
from memory_service.eval.recall import score
from memory_service.eval.run import EvalConfig, eval_settings
from memory_service.service import MemoryService

TOP_K = (10, 20, 40, 100)


def evidence_first(candidates: list[Candidate], evidence: set[str]) -> list[Candidate]:
    """The same candidates, those of level 0 citing an evidence event scored above all others
    (selection ranks by score, not by list order), keeping their order among themselves."""
    top = max((c.score for c in candidates), default=1.0)
    lifted = [
        replace(c, score=c.score + 2 * abs(top) + 1)
        for c in candidates
        if c.unit.level == 0 and evidence & set(c.unit.source_event_ids)
    ]
    lifted_ids = {c.unit.id for c in lifted}
    return lifted + [c for c in candidates if c.unit.id not in lifted_ids]


def first_ranks(candidates: list[Candidate], prefix: str) -> dict[str, int]:
    """dia_id -> rank of the best candidate citing it."""
    ranks: dict[str, int] = {}
    for rank, c in enumerate(candidates):
        for event_id in c.unit.source_event_ids:
            if event_id.startswith(prefix):
                ranks.setdefault(event_id[len(prefix):], rank)
    return ranks


async def measure(path: Path, data_dir: Path, budget: int, headline: list[int] | None) -> dict[str, Any]:
    samples = locomo.select_samples(path, None)
    settings = eval_settings(EvalConfig(path=path, budgets=[budget], data_dir=data_dir), data_dir, samples)
    service = await MemoryService.open(settings, run_jobs=False)
    config = service.settings.context_config()
    rows: list[dict[str, Any]] = []
    try:
        await ingest_once(service, samples, consolidate=True)
        questions = [
            (sample, q)
            for sample in samples
            for q in locomo.sample_questions(sample)
            if not q.abstention and q.evidence and (headline is None or q.category in headline)
        ]
        turns = {str(s["sample_id"]): {t.dia_id: t for t in locomo.sample_turns(s)} for s in samples}
        for sample, q in track(questions, description=f"{path.name} @{budget}"):
            sample_id = str(sample["sample_id"])
            prefix = f"{sample_id}/"
            result = await service.retriever.retrieve(Scope(user_id=sample_id), q.question, None, None)
            ranks = first_ranks(result.candidates, prefix)
            row: dict[str, Any] = {"category": q.category, "evidence": len(q.evidence)}
            evidence_ids = {prefix + d for d in q.evidence}
            for name, ordered in (("service", result.candidates), ("ceiling", evidence_first(result.candidates, evidence_ids))):
                packed = pack(ordered, budget, "text", config.tokenizer, result.analysis, config.selection)
                cited = {e[len(prefix):] for p in packed.pieces for e in p.candidate.unit.source_event_ids if e.startswith(prefix)}
                _, content, answer = score(q.evidence, q.answer, turns[sample_id], cited, packed.context)
                row[name] = {"content": len(content) / len(q.evidence), "answer": answer}
                if name == "service":
                    row["lost"] = [
                        "not_candidate" if d not in ranks else "chosen_not_carried" if d in cited else "ranked_below"
                        for d in q.evidence
                        if d not in content
                    ]
            row["ranks"] = [ranks.get(d) for d in q.evidence]
            rows.append(row)
    finally:
        await service.close()
    return summarize(rows, budget)


def summarize(rows: list[dict[str, Any]], budget: int) -> dict[str, Any]:
    def mean(values: list[float | None]) -> float | None:
        kept = [v for v in values if v is not None]
        return round(float(np.mean(kept)), 4) if kept else None

    ranks = [r for row in rows for r in row["ranks"]]
    return {
        "budget": budget,
        "questions": len(rows),
        "evidence_turns": len(ranks),
        **{
            name: {"content_recall": mean([r[name]["content"] for r in rows]), "answer_recall": mean([r[name]["answer"] for r in rows])}
            for name in ("service", "ceiling")
        },
        "lost_evidence_turns": dict(Counter(why for r in rows for why in r["lost"])),
        "evidence_in_top_k": {k: round(sum(r is not None and r < k for r in ranks) / max(1, len(ranks)), 4) for k in TOP_K},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--budget", type=int, default=512)
    parser.add_argument("--headline", help="categories to count, comma-separated (default: all answerable)")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    headline = [int(c) for c in args.headline.split(",")] if args.headline else None
    args.data_dir.mkdir(parents=True, exist_ok=True)
    report = asyncio.run(measure(args.file, args.data_dir, args.budget, headline))
    emit(report, args.out)


if __name__ == "__main__":
    main()
