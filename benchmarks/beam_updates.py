"""Knowledge updates and contradictions on BEAM dev, after consolidation.

    python -m benchmarks.beam_updates --beam ../shared/bench/beam/beam_dev.json --out /tmp/beam_updates.json

Ingests each chat (extractive, one user_id per chat), consolidates it, and asks the
knowledge-update (category 6) and contradiction (category 8) questions at the budget.
Evidence turns are ordered by position in the chat: the last is the latest value, the
earlier ones the stale or contradicted statements. Per category, the share of questions:
- `latest_reaches`: the latest evidence turn's content reaches the context (content hit
  at `memory_service.eval.recall.CONTENT_RECALL_THRESHOLD`, as the eval counts it);
- `stale_closed_or_marked`: every level-0 unit citing a stale turn was closed by a
  supersession, or one that reaches the context is marked conflicting;
- `all_reach`: every evidence turn reaches the context;
- `all_reach_and_marked` (category 8): they all reach and the context marks a conflict.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.consolidation import all_units
from benchmarks.output import emit
from memory_service.context.packing import CONFLICT_MARK, display_text
from memory_service.domain import MemoryUnit, Scope
from memory_service.eval import locomo
from memory_service.eval.recall import CONTENT_RECALL_THRESHOLD, content_hits
from memory_service.service import MemoryService
from memory_service.settings import Settings

CATEGORIES = {6: "knowledge_update", 8: "contradiction_resolution"}


def _position(dia: str) -> tuple[int, int]:
    session, turn = dia[1:].split(":")
    return int(session), int(turn)


def _superseded(unit: MemoryUnit) -> bool:
    return unit.valid_to is not None and any(h.get("op") == "superseded" for h in unit.history)


async def _sample(service: MemoryService, sample: dict[str, Any], budget: int) -> list[dict[str, Any]]:
    sample_id = str(sample["sample_id"])
    owner = Scope(user_id=sample_id)
    turns = {t.dia_id: t for t in locomo.sample_turns(sample)}
    units = [u for u in await all_units(service, owner) if u.level == 0]
    citing: dict[str, list[MemoryUnit]] = {}
    for unit in units:
        for event_id in unit.source_event_ids:
            citing.setdefault(event_id, []).append(unit)
    out = []
    for q in locomo.sample_questions(sample):
        if q.category not in CATEGORIES or not q.evidence:
            continue
        evidence = sorted((d for d in q.evidence if d in turns), key=_position)
        if not evidence:
            continue
        result = await service.context(owner, q.question, budget)
        reached = set(content_hits(evidence, turns, result.context)[CONTENT_RECALL_THRESHOLD])
        marked_units = {c.unit.id for c in result.chosen if CONFLICT_MARK in _shown(c.unit)}
        latest, stale = evidence[-1], evidence[:-1]

        def closed_or_marked(dia: str, marked_units: set[int] = marked_units) -> bool:
            cited = citing.get(f"{sample_id}/{dia}", [])
            return bool(cited) and (all(_superseded(u) for u in cited) or any(u.id in marked_units for u in cited))

        out.append(
            {
                "sample_id": sample_id,
                "category": q.category,
                "question": q.question,
                "evidence": evidence,
                "latest_reaches": latest in reached,
                "stale_closed_or_marked": bool(stale) and all(closed_or_marked(d) for d in stale),
                "all_reach": all(d in reached for d in evidence),
                "marked": bool(marked_units),
                "context_tokens": result.tokens,
            }
        )
    return out


def _shown(unit: MemoryUnit) -> str:
    return display_text(unit)


async def run(path: Path, data_dir: Path, budget: int, samples_wanted: list[str], limit: int) -> dict[str, Any]:
    samples = [s for s in locomo.load(path) if not samples_wanted or s["sample_id"] in samples_wanted]
    if limit:
        samples = samples[:limit]
    settings = Settings(data_dir=data_dir)
    # BEAM has a 349 kB turn: measure every turn as it is (as `memory_service.eval.run.eval_settings` does).
    largest = max((len(e.content.encode()) for s in samples for e in locomo.sample_events(s)), default=0)
    settings.max_event_bytes = max(settings.max_event_bytes, largest)
    service = await MemoryService.open(settings, run_jobs=False)
    try:
        started = time.perf_counter()
        for sample in samples:
            await service.ingest(locomo.sample_events(sample), wait=True)
        ingest_s = time.perf_counter() - started
        started = time.perf_counter()
        reports = [await service.consolidate(Scope(user_id=str(s["sample_id"]))) for s in samples]
        consolidate_s = time.perf_counter() - started
        questions = [q for s in samples for q in await _sample(service, s, budget)]
    finally:
        await service.close()
    by_category: dict[str, dict[str, Any]] = {}
    for category, name in CATEGORIES.items():
        qs = [q for q in questions if q["category"] == category]
        n = len(qs)

        def share(key: str, rows: list[dict[str, Any]] = qs, n: int = n) -> float | None:
            return sum(bool(r[key]) for r in rows) / n if n else None

        by_category[str(category)] = {
            "name": name,
            "questions": n,
            "latest_reaches": share("latest_reaches"),
            "stale_closed_or_marked": share("stale_closed_or_marked"),
            "all_reach": share("all_reach"),
            "all_reach_and_marked": sum(bool(r["all_reach"] and r["marked"]) for r in qs) / n if n else None,
        }
    return {
        "samples": [s["sample_id"] for s in samples],
        "budget_tokens": budget,
        "ingest_s": ingest_s,
        "consolidate_s": consolidate_s,
        "merged": sum(r.merged for r in reports),
        "superseded": sum(r.superseded for r in reports),
        "by_category": by_category,
        "questions": questions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="BEAM knowledge updates and contradictions after consolidation.")
    parser.add_argument("--beam", type=Path, default=Path("../shared/bench/beam/beam_dev.json"))
    parser.add_argument("--budget", type=int, default=512)
    parser.add_argument("--samples", default="", help="comma-separated sample ids (default all)")
    parser.add_argument("--limit", type=int, default=0, help="the first N samples only")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wanted = [s for s in args.samples.split(",") if s]
        report = asyncio.run(run(args.beam, Path(tmp), args.budget, wanted, args.limit))
    emit(report, args.out)
    table = Table(title=f"BEAM dev at {report['budget_tokens']} tokens, consolidated ({len(report['samples'])} chats)")
    for column in ("category", "n", "latest reaches", "stale closed/marked", "all reach", "all reach + marked"):
        table.add_column(column, justify="right")

    def f(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    for category, row in report["by_category"].items():
        table.add_row(
            f"{category} {row['name']}", str(row["questions"]), f(row["latest_reaches"]),
            f(row["stale_closed_or_marked"]), f(row["all_reach"]), f(row["all_reach_and_marked"]),
        )
    Console(stderr=True).print(table)


if __name__ == "__main__":
    main()
