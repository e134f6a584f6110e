"""Query-aware context on a LoCoMo-shaped file: recall per category, time per stage, and the
selective-augmentation threshold (empty rate on adversarial questions vs false empties).

    python -m benchmarks.query_context --locomo ../shared/bench/locomo/locomo_dev.json \
        --data-dir /tmp/locomo-dev --out benchmarks/results/query_context.json

Ingests (and consolidates) into --data-dir once; later runs reuse it, so retrieval can be
re-measured in a minute or two. Scoring uses `memory_service.eval.recall.score` (evidence
recall by citation, content recall by text), the same as `memory-service eval locomo`.
Every question is asked with the empty threshold off, so the sweep can say, for each
threshold, which questions would have been answered with an empty context.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from memory_service.domain import Scope
from memory_service.eval import locomo
from memory_service.eval.locomo import sample_turns
from memory_service.eval.recall import score
from memory_service.service import MemoryService
from memory_service.settings import Settings

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
THRESHOLDS = [0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6]


async def ingest_once(service: MemoryService, samples: list[dict[str, Any]], consolidate: bool) -> None:
    if await service.store.count_events():
        return
    for sample in samples:
        events = locomo.sample_events(sample)
        for start in range(0, len(events), service.settings.max_batch_events):
            await service.ingest(events[start : start + service.settings.max_batch_events], wait=True)
        if consolidate:
            await service.consolidate(Scope(user_id=str(sample["sample_id"])))


async def ask_all(service: MemoryService, samples: list[dict[str, Any]], budgets: list[int]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    await service.context(Scope(user_id=str(samples[0]["sample_id"])), "warm up", budgets[0])
    for sample in samples:
        sample_id = str(sample["sample_id"])
        by_dia = {t.dia_id: t for t in sample_turns(sample)}
        for number, q in enumerate(locomo.sample_questions(sample)):
            for budget in budgets:
                started = time.perf_counter()
                result = await service.context(Scope(user_id=sample_id), q.question, budget)
                latency = (time.perf_counter() - started) * 1000
                cited = {
                    e.split("/", 1)[1] for c in result.chosen for e in c.unit.source_event_ids if e.startswith(f"{sample_id}/")
                }
                hits, content, _ = score(q.evidence, q.answer, by_dia, cited, result.context)
                rows.append(
                    {
                        "id": f"{sample_id}/q{number}",
                        "category": q.category,
                        "budget": budget,
                        "question": q.question,
                        "evidence": q.evidence,
                        "hits": list(hits),
                        "content_hits": list(content),
                        "best_relevance": result.best_relevance,
                        "tokens": result.tokens,
                        "units": len(result.chosen),
                        "history_tokens": result.history_tokens,
                        "latency_ms": latency,
                        "timings_ms": result.timings_ms,
                    }
                )
    return rows


def recall(rows: list[dict[str, Any]], key: str, categories: tuple[int, ...]) -> float:
    """Mean over questions of the share of their evidence turns hit (as `memory-service eval locomo`)."""
    chosen = [r for r in rows if r["category"] in categories and r["evidence"]]
    return float(np.mean([len(r[key]) / len(r["evidence"]) for r in chosen])) if chosen else 0.0


def summarize(rows: list[dict[str, Any]], budgets: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for budget in budgets:
        at = [r for r in rows if r["budget"] == budget]
        latency = np.asarray([r["latency_ms"] for r in at])
        stages = sorted({k for r in at for k in r["timings_ms"]})
        out[str(budget)] = {
            "evidence_recall": recall(at, "hits", (1, 2, 3, 4)),
            "content_recall": recall(at, "content_hits", (1, 2, 3, 4)),
            "by_category": {name: recall(at, "hits", (c,)) for c, name in CATEGORIES.items()},
            "content_by_category": {name: recall(at, "content_hits", (c,)) for c, name in CATEGORIES.items()},
            "tokens_mean": float(np.mean([r["tokens"] for r in at])),
            "units_mean": float(np.mean([r["units"] for r in at])),
            "compression_ratio_mean": float(np.mean([r["history_tokens"] / r["tokens"] for r in at if r["tokens"]])),
            "latency_ms": {"p50": float(np.percentile(latency, 50)), "p95": float(np.percentile(latency, 95))},
            "stages_ms_p50_p95": {
                k: [float(np.percentile([r["timings_ms"].get(k, 0.0) for r in at], q)) for q in (50, 95)] for k in stages
            },
        }
    return out


def threshold_sweep(rows: list[dict[str, Any]], budget: int) -> list[dict[str, float]]:
    """Per threshold: share of adversarial (5) questions that would be empty, of 1-4 that would be
    (false empties), and the evidence recall those false empties cost."""
    at = [r for r in rows if r["budget"] == budget]
    adversarial = [r for r in at if r["category"] == 5]
    answerable = [r for r in at if r["category"] in CATEGORIES and r["evidence"]]
    total = sum(len(r["evidence"]) for r in answerable)
    sweep = []
    for t in THRESHOLDS:
        lost = [r for r in answerable if r["best_relevance"] < t]
        sweep.append(
            {
                "threshold": t,
                "empty_rate_cat5": float(np.mean([r["best_relevance"] < t for r in adversarial])) if adversarial else 0.0,
                "false_empty_rate_cat1_4": len(lost) / len(answerable) if answerable else 0.0,
                "evidence_recall_lost": sum(len(r["hits"]) for r in lost) / total if total else 0.0,
            }
        )
    return sweep


async def run(args: argparse.Namespace) -> dict[str, Any]:
    samples = locomo.load(args.locomo)
    budgets = [int(b) for b in args.budgets.split(",")]
    settings = Settings(data_dir=args.data_dir, database_url=None, redis_url=None, empty_threshold=-2.0)
    service = await MemoryService.open(settings, run_jobs=False)
    try:
        await ingest_once(service, samples, args.consolidate)
        rows = await ask_all(service, samples, budgets)
    finally:
        await service.close()
    chosen = Settings().empty_threshold
    return {
        "file": str(args.locomo),
        "budgets": budgets,
        "consolidated": args.consolidate,
        "results": summarize(rows, budgets),
        "empty_threshold": chosen,
        "threshold_sweep": threshold_sweep(rows, budgets[0]),
        "questions": rows if args.questions else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--locomo", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True, help="ingested once, reused by later runs")
    parser.add_argument("--budgets", default="512,256,1024,2048", help="the first one is used for the threshold sweep")
    parser.add_argument("--no-consolidate", dest="consolidate", action="store_false")
    parser.add_argument("--questions", action="store_true", help="keep per-question rows in the JSON")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/query_context.json"))
    args = parser.parse_args()
    report = asyncio.run(run(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    for budget, r in report["results"].items():
        cats = " ".join(f"{k} {v:.3f}" for k, v in r["by_category"].items())
        print(
            f"@{budget}: evidence {r['evidence_recall']:.3f} content {r['content_recall']:.3f} | {cats} | "
            f"p50 {r['latency_ms']['p50']:.1f} ms p95 {r['latency_ms']['p95']:.1f} ms | tokens {r['tokens_mean']:.0f}"
        )
    for row in report["threshold_sweep"]:
        print(
            f"threshold {row['threshold']:.2f}: cat-5 empty {row['empty_rate_cat5']:.3f}, "
            f"false empty 1-4 {row['false_empty_rate_cat1_4']:.3f}, recall lost {row['evidence_recall_lost']:.3f}"
        )
    print(f"JSON: {args.out}")


if __name__ == "__main__":
    main()
