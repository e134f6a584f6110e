"""Ingest a LoCoMo-shaped file end to end, then ask every question: throughput, compression, latency.

    python benchmarks/ingest_query.py --locomo ../shared/bench/locomo/locomo_dev.json \
        --out benchmarks/results/ingest_query.json

Runs through `MemoryService` (what the REST API calls) on a fresh embedded data dir
(SQLite, FAISS, packaged embedding model). Evidence recall is printed too: the share
of annotated evidence turns (categories 1-4) cited by a unit in the returned context;
`memory-service eval locomo` is the full quality eval (every budget, per category, vs BM25).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from memory_service.domain import Scope
from memory_service.eval import locomo
from memory_service.eval.recall import evidence_recall
from memory_service.eval.run import ingest_samples
from memory_service.service import MemoryService
from memory_service.settings import Settings
from memory_service.tokens import count_tokens


async def bench(path: Path, budget: int, compressor: str, conversations: list[str] | None, data_dir: Path) -> dict:
    samples = [s for s in locomo.load(path) if not conversations or s["sample_id"] in conversations]
    settings = Settings(data_dir=data_dir, compressor=compressor)
    service = await MemoryService.open(settings, run_jobs=False)
    console = Console(stderr=True)
    try:
        with Progress(console=console) as progress:

            def phase(name: str, total: int) -> Callable[[int], None]:
                task = progress.add_task(name, total=total)
                return lambda n: progress.advance(task, n)

            ingested = await ingest_samples(service, samples, phase)
        turns, event_tokens, ingest_s = ingested["turns"], ingested["event_tokens"], ingested["seconds"]

        units = []
        for sample in samples:
            offset = 0
            while page := await service.list_memories(Scope(user_id=sample["sample_id"]), 1000, offset):
                units.extend(page)
                offset += len(page)
        unit_tokens = sum(count_tokens(u.text) for u in units)

        with Progress(console=console) as progress:
            task = progress.add_task("queries", total=sum(len(locomo.sample_questions(s)) for s in samples))
            asked = await evidence_recall(service, samples, budget, lambda: progress.advance(task))
    finally:
        await service.close()

    return {
        "file": str(path),
        "compressor": compressor,
        "conversations": [s["sample_id"] for s in samples],
        "budget_tokens": budget,
        "ingest": {
            "turns": turns,
            "seconds": ingest_s,
            "turns_per_s": turns / ingest_s,
            "units": len(units),
            "units_per_turn": len(units) / turns,
            "event_tokens": event_tokens,
            "unit_tokens": unit_tokens,
            "unit_tokens_per_event_token": unit_tokens / event_tokens,
        },
        "query": {k: v for k, v in asked.summary().items() if k != "evidence_recall"},
        "evidence_recall": asked.summary()["evidence_recall"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Ingest throughput and query latency on a LoCoMo-shaped file.")
    parser.add_argument("--locomo", type=Path, required=True)
    parser.add_argument("--budget", type=int, default=512)
    parser.add_argument("--compressor", default="extractive")
    parser.add_argument("--conversations", default="", help="comma-separated sample ids (default all)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ingest_query.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        report = asyncio.run(
            bench(args.locomo, args.budget, args.compressor, [c for c in args.conversations.split(",") if c], Path(tmp))
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))

    ingest, query, recall = report["ingest"], report["query"], report["evidence_recall"]
    table = Table(title=f"{args.locomo.name}: {args.compressor}, budget {args.budget}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    table.add_row("ingest turns/s (end to end)", f"{ingest['turns_per_s']:.1f}", ">= 100")
    table.add_row("units per turn", f"{ingest['units_per_turn']:.2f}", "")
    table.add_row("unit tokens / event tokens", f"{ingest['unit_tokens_per_event_token']:.2f}", "")
    table.add_row("query p50 ms", f"{query['p50_ms']:.1f}", "")
    table.add_row("query p95 ms", f"{query['p95_ms']:.1f}", "<= 50")
    table.add_row("context tokens (mean)", f"{query['context_tokens_mean']:.0f}", f"<= {args.budget}")
    table.add_row("evidence recall, cat 1-4", f"{recall['overall_1_4']:.3f}", "")
    for category, value in recall["by_category"].items():
        table.add_row(f"  category {category}", f"{value:.3f}", "")
    Console().print(table)
    Console().print(f"JSON: {args.out}")


if __name__ == "__main__":
    main()
