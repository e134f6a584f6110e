"""Consolidation quality and cost.

    python -m benchmarks.consolidation --locomo ../shared/bench/locomo/locomo_dev.json \
        --out benchmarks/results/consolidation.json

1. Four synthetic agent logs with known duplicates and updates: `templates`
   (benchmarks/synthetic_log.py, written alongside the heuristic judge, so optimistic),
   `paraphrase` (benchmarks/synthetic_paraphrase.py, other phrasings and hard negatives),
   `spec` (benchmarks/synthetic_spec.py, written from a spec alone without reading the judge
   or the other generators; personal and project facts, tool repeats, hard negatives) and
   `worklog` (benchmarks/synthetic_worklog.py, also from a spec alone: a small team's coding
   agent, work config/ops facts, tool results that restate or change them, two-fact turns):
   precision and recall of duplicate merges (over pairs of events that end up in one
   unit) and of supersessions (over (old event, new event) pairs), units before/after,
   consolidation throughput.
2. The LoCoMo file: evidence recall at the budget before and after consolidating every
   conversation (it must not drop), units before/after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.synthetic_log import SyntheticLog, generate
from benchmarks.synthetic_paraphrase import generate as generate_paraphrase
from benchmarks.synthetic_spec import generate as generate_spec
from benchmarks.synthetic_worklog import generate as generate_worklog
from memory_service.domain import EventIn, MemoryUnit, Scope
from memory_service.eval import locomo
from memory_service.eval.recall import evidence_recall
from memory_service.service import MemoryService
from memory_service.settings import Settings


def prf(predicted: set, truth: set) -> dict[str, float]:
    hit = len(predicted & truth)
    return {
        "precision": hit / len(predicted) if predicted else 1.0,
        "recall": hit / len(truth) if truth else 1.0,
        "predicted": len(predicted),
        "truth": len(truth),
    }


async def all_units(service: MemoryService, owner: Scope) -> list[MemoryUnit]:
    units: list[MemoryUnit] = []
    while page := await service.store.list_units(owner, 1000, len(units), include_invalid=True):
        units.extend(page)
    return units


GENERATORS: dict[str, Callable[[int], SyntheticLog]] = {
    "templates": generate,
    "paraphrase": generate_paraphrase,
    "spec": generate_spec,
    "worklog": generate_worklog,
}


async def synthetic(data_dir: Path, persons: int, generator: str = "templates") -> dict[str, Any]:
    log = GENERATORS[generator](persons)
    service = await MemoryService.open(Settings(data_dir=data_dir), run_jobs=False)
    owner = Scope(user_id="synthetic")
    try:
        await service.ingest([EventIn.model_validate(e) for e in log.events], wait=True)
        before = [u for u in await all_units(service, owner) if u.valid_to is None]
        started = time.perf_counter()
        report = await service.consolidate(owner)
        seconds = time.perf_counter() - started
        units = await all_units(service, owner)
    finally:
        await service.close()
    by_id = {u.id: u for u in units}
    # Units that absorbed duplicates, whether or not they were superseded afterwards.
    absorbers = [u for u in units if u.level == 0 and not any(h.get("op") == "merged_into" for h in u.history)]
    merged_pairs = {
        frozenset((a, b)) for u in absorbers for i, a in enumerate(u.source_event_ids) for b in u.source_event_ids[i + 1 :]
    }
    superseded = {
        (u.source_event_ids[0], by_id[u.superseded_by].source_event_ids[0])
        for u in units
        if u.superseded_by is not None and any(h.get("op") == "superseded" for h in u.history)
    }
    valid = [u for u in units if u.valid_to is None]
    return {
        "events": len(log.events),
        "units_before": len(before),
        "units_after": len(valid),
        "level0_after": sum(u.level == 0 for u in valid),
        "abstractions": sum(u.level > 0 for u in valid),
        "merges": prf(merged_pairs, log.duplicate_pairs()),
        "supersessions": prf(superseded, log.supersessions),
        "supersessions_fact_level": prf(*fact_level(superseded, log)),
        "consolidation_s": seconds,
        "units_per_s": len(before) / seconds if seconds else 0.0,
        "report": {"merged": report.merged, "superseded": report.superseded, "abstractions": report.abstractions_created},
    }


def fact_level(superseded: set[tuple[str, str]], log: SyntheticLog) -> tuple[set, set]:
    """Supersessions as (old fact, new fact) pairs: an event stands for its whole duplicate group,
    so closing another statement of the old value by the change (or a restatement of it) counts,
    which the exact (first statement, change) pairs do not credit."""
    group_of: dict[str, frozenset[str]] = {}
    for group in log.duplicate_groups:
        for event_id in group:
            group_of[event_id] = frozenset(group)

    def fact(event_id: str) -> frozenset[str]:
        return group_of.get(event_id, frozenset((event_id,)))

    return {(fact(a), fact(b)) for a, b in superseded}, {(fact(a), fact(b)) for a, b in log.supersessions}


async def locomo_before_after(path: Path, data_dir: Path, budget: int, conversations: list[str]) -> dict[str, Any]:
    samples = [s for s in locomo.load(path) if not conversations or s["sample_id"] in conversations]
    service = await MemoryService.open(Settings(data_dir=data_dir), run_jobs=False)
    try:
        for sample in samples:
            await service.ingest(locomo.sample_events(sample), wait=True)
        owners = [Scope(user_id=str(s["sample_id"])) for s in samples]
        units_before = sum([len(await service.list_memories(o, 10_000)) for o in owners])
        before = await evidence_recall(service, samples, budget)
        started = time.perf_counter()
        reports = [await service.consolidate(o) for o in owners]
        seconds = time.perf_counter() - started
        units_after = sum([len(await service.list_memories(o, 10_000)) for o in owners])
        after = await evidence_recall(service, samples, budget)
    finally:
        await service.close()
    return {
        "conversations": [s["sample_id"] for s in samples],
        "budget_tokens": budget,
        "units_before": units_before,
        "units_after": units_after,
        "merged": sum(r.merged for r in reports),
        "superseded": sum(r.superseded for r in reports),
        "abstractions": sum(r.abstractions_created for r in reports),
        "consolidation_s": seconds,
        "units_per_s": units_before / seconds if seconds else 0.0,
        "recall_before": before.summary()["evidence_recall"],
        "recall_after": after.summary()["evidence_recall"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Consolidation precision/recall and its effect on evidence recall.")
    parser.add_argument("--locomo", type=Path, help="LoCoMo-shaped file; skipped when not given")
    parser.add_argument("--conversations", default="", help="comma-separated sample ids (default all)")
    parser.add_argument("--budget", type=int, default=512)
    parser.add_argument("--persons", type=int, default=12)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/consolidation.json"))
    args = parser.parse_args()

    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in GENERATORS:
            result[f"synthetic_{name}"] = asyncio.run(synthetic(Path(tmp) / name, args.persons, name))
        if args.locomo:
            wanted = [c for c in args.conversations.split(",") if c]
            result["locomo"] = asyncio.run(locomo_before_after(args.locomo, Path(tmp) / "locomo", args.budget, wanted))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))

    console = Console()
    table = Table(title="Consolidation on synthetic agent logs with ground truth")
    for column in ("log", "", "precision", "recall", "predicted", "truth"):
        table.add_column(column, justify="right")
    for generator in GENERATORS:
        syn = result[f"synthetic_{generator}"]
        for name in ("merges", "supersessions", "supersessions_fact_level"):
            m = syn[name]
            table.add_row(generator, name, f"{m['precision']:.2f}", f"{m['recall']:.2f}", str(m["predicted"]), str(m["truth"]))
    console.print(table)
    for generator in GENERATORS:
        syn = result[f"synthetic_{generator}"]
        console.print(
            f"{generator}: units {syn['units_before']} -> {syn['units_after']} ({syn['abstractions']} abstractions), "
            f"{syn['units_per_s']:.0f} units/s"
        )
    if "locomo" in result:
        lo = result["locomo"]
        table = Table(title=f"LoCoMo evidence recall at {lo['budget_tokens']} tokens")
        for column in ("", "before", "after"):
            table.add_column(column, justify="right")
        table.add_row("units", str(lo["units_before"]), str(lo["units_after"]))
        table.add_row("overall (1-4)", f"{lo['recall_before']['overall_1_4']:.3f}", f"{lo['recall_after']['overall_1_4']:.3f}")
        for category in lo["recall_before"]["by_category"]:
            table.add_row(
                f"category {category}",
                f"{lo['recall_before']['by_category'][category]:.3f}",
                f"{lo['recall_after']['by_category'][category]:.3f}",
            )
        console.print(table)
    console.print(f"JSON: {args.out}")


if __name__ == "__main__":
    main()
