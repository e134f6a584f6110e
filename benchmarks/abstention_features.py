"""Answerability features per question, for tuning the abstention decision offline.

    # once per dev set: ingest and consolidate into a kept data dir, then retrieve every question
    python -m benchmarks.abstention_features dump ../shared/bench/locomo/locomo_dev.json \
        --data-dir /tmp/answer/data/locomo --out /tmp/answer/locomo_candidates.json
    # as often as wanted, in seconds: features and the decision's rates from the dumped candidates
    python -m benchmarks.abstention_features score /tmp/answer/locomo_candidates.json \
        /tmp/answer/beam_candidates.json --out benchmarks/results/abstention_features.json

`dump` ingests (`eval.run.ingest_samples`, then `eval.run._consolidate`) only when the data dir
holds no events yet, so later dumps reuse the state. It asks retrieval alone
(`HybridRetriever.retrieve`, what the context pipeline runs first): no access is recorded, so the
data dir stays as ingested and can be copied for `memory-service eval locomo --data-dir`.
It keeps each question's best candidates (text, persons, cosine, fused score) and the query
analysis, which is all `context.answerability.assess` reads.

`latency` times `MemoryService.context` per question (the last of `--passes` passes: warm) and
the answerability stage alone (`timings_ms["answerability_ms"]`); it records access, so give it
a copy of the data dir.

`score --transfer 0.02` also tunes the subject rule's two thresholds on each set alone (the most
abstention at <= 2% false empties) and applies them to the other set.

`score` recomputes the features with `context.answerability` from the dump (the decision the
service runs, with the parameters of `AbstentionConfig` or those given), prints per set the
abstention rate (abstention questions that come back empty) and the false-empty rate
(answerable ones that do), and a sweep of each parameter with the others held; `--per-question`
keeps every question's features in the JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from memory_service.context.analysis import QueryAnalysis
from memory_service.context.answerability import Answerability, assess
from memory_service.context.config import AbstentionConfig
from memory_service.domain import Scope

KEEP = 40  # candidates kept per question (the decision reads fewer)


# ---------------------------------------------------------------- dump


def _progress(phase: str, total: int):  # type: ignore[no-untyped-def]
    done = [0]
    started = time.perf_counter()

    def advance(n: int) -> None:
        done[0] += n
        if done[0] == total or done[0] % max(1, total // 20) < n:
            print(f"{phase}: {done[0]}/{total} ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)

    return advance


async def dump(path: Path, data_dir: Path) -> list[dict[str, Any]]:
    from memory_service.eval import locomo
    from memory_service.eval.run import EvalConfig, _consolidate, eval_settings, ingest_samples
    from memory_service.service import MemoryService

    samples = locomo.select_samples(path, None)
    config = EvalConfig(path=path, budgets=[512], data_dir=data_dir)
    service = await MemoryService.open(eval_settings(config, data_dir, samples), run_jobs=False)
    rows: list[dict[str, Any]] = []
    try:
        if not await service.store.count_events():
            await ingest_samples(service, samples, _progress)
            await _consolidate(service, [str(s["sample_id"]) for s in samples], _progress)
        for sample in samples:
            sample_id = str(sample["sample_id"])
            scope = Scope(user_id=sample_id)
            for number, q in enumerate(locomo.sample_questions(sample)):
                started = time.perf_counter()
                result = await service.retriever.retrieve(scope, q.question, None, None)
                ms = (time.perf_counter() - started) * 1000
                rows.append(
                    {
                        "id": f"{sample_id}/q{number}",
                        "category": q.category,
                        "abstention": q.abstention,
                        "question": q.question,
                        "answer": q.answer,
                        "retrieve_ms": ms,
                        "analysis": asdict(result.analysis) if result.analysis else None,
                        "candidates": [
                            {
                                "text": c.unit.text,
                                "persons": list(c.unit.persons),
                                "dense": c.dense,
                                "score": c.score,
                                "level": c.unit.level,
                            }
                            for c in result.candidates[:KEEP]
                        ],
                    }
                )
    finally:
        await service.close()
    return rows


async def latency(path: Path, data_dir: Path, budget: int, passes: int) -> dict[str, Any]:
    """Context latency through `MemoryService.context` on an ingested data dir (records access: use a copy)."""
    import numpy as np

    from memory_service.eval import locomo
    from memory_service.eval.run import EvalConfig, eval_settings
    from memory_service.service import MemoryService

    samples = locomo.select_samples(path, None)
    settings = eval_settings(EvalConfig(path=path, budgets=[budget], data_dir=data_dir), data_dir, samples)
    service = await MemoryService.open(settings, run_jobs=False)
    total: list[float] = []
    stage: list[float] = []
    try:
        await service.context(Scope(user_id=str(samples[0]["sample_id"])), "warm up", budget)
        for run in range(passes):
            for sample in samples:
                scope = Scope(user_id=str(sample["sample_id"]))
                for q in locomo.sample_questions(sample):
                    started = time.perf_counter()
                    result = await service.context(scope, q.question, budget)
                    if run == passes - 1:
                        total.append((time.perf_counter() - started) * 1000)
                        stage.append(result.timings_ms.get("answerability_ms", 0.0))
    finally:
        await service.close()
    return {
        "questions": len(total),
        "context_ms_p50": float(np.percentile(total, 50)),
        "context_ms_p95": float(np.percentile(total, 95)),
        "answerability_ms_p50": float(np.percentile(stage, 50)),
        "answerability_ms_p95": float(np.percentile(stage, 95)),
    }


# ---------------------------------------------------------------- score


@dataclass
class _Unit:
    text: str
    persons: list[str] = field(default_factory=list)
    level: int = 0


@dataclass
class _Candidate:
    unit: _Unit
    score: float
    dense: float | None


def _analysis(data: dict[str, Any] | None) -> QueryAnalysis | None:
    if data is None:
        return None
    data = dict(data)
    data["time_range"] = None  # not read by the decision
    return QueryAnalysis(**data)


def load_questions(path: Path) -> list[dict[str, Any]]:
    rows = json.loads(path.read_text())["questions"]
    for row in rows:
        row["_analysis"] = _analysis(row["analysis"])
        row["_candidates"] = [
            _Candidate(_Unit(c["text"], c["persons"], c.get("level", 0)), c["score"], c["dense"])
            for c in row["candidates"]
        ]
    return rows


def decisions_of(rows: list[dict[str, Any]], config: AbstentionConfig) -> list[Answerability]:
    return [assess(row["_candidates"], row["_analysis"], config) for row in rows]  # type: ignore[arg-type]


def rates(rows: list[dict[str, Any]], decisions: list[Answerability]) -> dict[str, Any]:
    abst = [d for r, d in zip(rows, decisions, strict=True) if r["abstention"]]
    ans = [d for r, d in zip(rows, decisions, strict=True) if not r["abstention"]]
    by_category: dict[int, list[bool]] = {}
    for r, d in zip(rows, decisions, strict=True):
        by_category.setdefault(r["category"], []).append(not d.answerable)
    return {
        "abstention_rate": sum(not d.answerable for d in abst) / len(abst) if abst else None,
        "false_empty_rate": sum(not d.answerable for d in ans) / len(ans) if ans else None,
        "abstention_n": len(abst),
        "answerable_n": len(ans),
        "empty_by_category": {str(k): round(sum(v) / len(v), 3) for k, v in sorted(by_category.items())},
        "reasons": _count(
            d.reason for r, d in zip(rows, decisions, strict=True) if r["abstention"] and not d.answerable
        ),
        "false_reasons": _count(
            d.reason for r, d in zip(rows, decisions, strict=True) if not r["abstention"] and not d.answerable
        ),
    }


def _count(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


SWEEPS: dict[str, list[float]] = {
    "empty_threshold": [0.25, 0.3, 0.35, 0.4, 0.45],
    "subject_margin": [0.1, 0.2, 0.3, 0.4, 0.5, 2.0],
    "subject_max": [0.3, 0.4, 0.5, 0.6, 0.8, 1.0],
    "subject_top": [10, 20, 30, 40],
    "attribute_threshold": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5],
}


def score(paths: list[Path], config: AbstentionConfig, per_question: bool) -> dict[str, Any]:
    sets = {p.stem: load_questions(p) for p in paths}
    out: dict[str, Any] = {"config": asdict(config), "sets": {}, "sweeps": {}}
    for name, rows in sets.items():
        decisions = decisions_of(rows, config)
        out["sets"][name] = rates(rows, decisions)
        if per_question:
            out["sets"][name]["questions"] = [
                {
                    "id": r["id"],
                    "category": r["category"],
                    "abstention": r["abstention"],
                    "question": r["question"],
                    **asdict(d),
                }
                for r, d in zip(rows, decisions, strict=True)
            ]
    for param, values in SWEEPS.items():
        if not hasattr(config, param):
            continue
        out["sweeps"][param] = {}
        for value in values:
            changed = replace(config, **{param: value})
            out["sweeps"][param][str(value)] = {
                name: {k: v for k, v in rates(rows, decisions_of(rows, changed)).items() if k.endswith("rate")}
                for name, rows in sets.items()
            }
    return out


GRID: dict[str, list[float]] = {
    "subject_margin": [0.1, 0.2, 0.3, 0.4, 0.5],
    "subject_max": [0.3, 0.4, 0.5, 0.6, 0.8, 1.0],
}


def transfer(paths: list[Path], config: AbstentionConfig, max_false: float) -> dict[str, Any]:
    """Tune (subject_margin, subject_max) on each set alone: the most abstention with false empties
    <= `max_false` (ties: the larger margin, then the smaller subject_max); apply to every set."""
    sets = {p.stem: load_questions(p) for p in paths}
    grid = [
        replace(config, subject_margin=m, subject_max=x) for m in GRID["subject_margin"] for x in GRID["subject_max"]
    ]
    scored = {name: [(c, rates(rows, decisions_of(rows, c))) for c in grid] for name, rows in sets.items()}
    out: dict[str, Any] = {}
    for train, results in scored.items():
        allowed = [(c, r) for c, r in results if (r["false_empty_rate"] or 0.0) <= max_false]
        if not allowed:
            out[train] = {"chosen": None}
            continue
        chosen, _ = max(
            allowed, key=lambda cr: (cr[1]["abstention_rate"] or 0.0, cr[0].subject_margin, -cr[0].subject_max)
        )
        out[train] = {
            "chosen": {"subject_margin": chosen.subject_margin, "subject_max": chosen.subject_max},
            "on": {
                name: {k: v for k, v in rates(rows, decisions_of(rows, chosen)).items() if k.endswith("rate")}
                for name, rows in sets.items()
            },
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump", help="ingest once into --data-dir, retrieve every question, keep the candidates")
    d.add_argument("file", type=Path)
    d.add_argument("--data-dir", type=Path, required=True)
    d.add_argument("--out", type=Path, required=True)
    lat = sub.add_parser("latency", help="context latency (last of --passes passes) on an ingested data dir")
    lat.add_argument("file", type=Path)
    lat.add_argument("--data-dir", type=Path, required=True)
    lat.add_argument("--budget", type=int, default=512)
    lat.add_argument("--passes", type=int, default=2)
    s = sub.add_parser("score", help="features and decision rates from dumps")
    s.add_argument("dumps", type=Path, nargs="+")
    s.add_argument(
        "--set", action="append", default=[], metavar="PARAM=VALUE", help="override an AbstentionConfig field"
    )
    s.add_argument("--per-question", action="store_true")
    s.add_argument(
        "--transfer",
        type=float,
        metavar="MAX_FALSE",
        help="also tune the subject rule on each set, apply to the others",
    )
    s.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.command == "dump":
        args.data_dir.mkdir(parents=True, exist_ok=True)
        rows = asyncio.run(dump(args.file, args.data_dir))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"file": str(args.file), "questions": rows}, default=str))
        print(f"{len(rows)} questions -> {args.out}", file=sys.stderr)
        return
    if args.command == "latency":
        print(json.dumps(asyncio.run(latency(args.file, args.data_dir, args.budget, args.passes)), indent=1))
        return
    config = AbstentionConfig()
    for item in args.set:
        key, value = item.split("=", 1)
        config = replace(config, **{key: type(getattr(config, key))(value)})
    result = score(args.dumps, config, args.per_question)
    if args.transfer is not None:
        result["transfer"] = transfer(args.dumps, config, args.transfer)
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    summary = {name: {k: v for k, v in r.items() if k != "questions"} for name, r in result["sets"].items()}
    print(json.dumps(summary, indent=1))
    if "transfer" in result:
        print(json.dumps({"transfer": result["transfer"]}, indent=1))


if __name__ == "__main__":
    main()
