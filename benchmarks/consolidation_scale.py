"""Consolidation time per new unit as one owner grows (issue 15, item 4).

    python -m benchmarks.consolidation_scale --locomo ../shared/bench/locomo/locomo_dev.json \
        --sizes 10000,100000,1000000 --out benchmarks/results/consolidation_scale.json

One owner (one user in one tenant, embedded SQLite, the service's own FAISS index) is
bulk-loaded to each size in turn with consolidated units, then `--rounds` batches of
`--fresh` new units are stored (through `save_compression`, so they reach FAISS through
the change log like compressed units do) and `MemoryService.consolidate` is timed; the
table reports milliseconds per new unit (median over rounds) at each size. After each bulk
load the index is rebuilt as IVF where it is past `MEMORY_SERVICE_ANN_THRESHOLD`, as the
service's index sync does ("ivf_build_s"), so sizes past it are measured approximate.

Data: unit texts are LoCoMo dev turns written as extractive units ("<name> said: ..."),
with the speaker replaced by one of `--names` generated names (subjects for the
abstraction clusters) and the event times spread at `--per-day` units a day (a busy
agent; a month's cluster then holds the same number of units at every size). Embeddings:
`--distinct` turns are embedded with the real packaged embedder; the bulk units are those
vectors **replicated with small Gaussian noise** (sigma `--noise` per component, renormalised;
about 0.75 cosine to their source, so replicas are update candidates but not duplicates).
New units use real embeddings of held-out turns, and every tenth is a near copy of a
stored unit (so each round merges something).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from memory_service.domain import MemoryUnitDraft, Scope
from memory_service.eval import locomo
from memory_service.index.embedding import SentenceTransformerEmbedder, to_bytes
from memory_service.service import MemoryService
from memory_service.settings import Settings
from stores.sql.rows import NewUnit, insert_units

OWNER = Scope(user_id="busy-agent")
T0 = datetime(2021, 1, 1, tzinfo=UTC)
FIRST = ("Ann", "Bob", "Chen", "Dara", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lea", "Mo", "Nia",
         "Omar", "Pia", "Raj", "Sol", "Tess", "Uma", "Vik", "Wen", "Xia", "Yusuf", "Zoe")
LAST = ("Abe", "Berg", "Cruz", "Diaz", "Eng", "Fox", "Gill", "Holt", "Ito", "Jha", "Kim", "Lund", "Moss", "Nagy",
        "Ortiz", "Park", "Quinn", "Rossi", "Sato", "Toft")


def names(count: int) -> list[str]:
    return [f"{FIRST[i % len(FIRST)]} {LAST[(i // len(FIRST)) % len(LAST)]}" for i in range(count)]


def turn_texts(path: Path) -> list[str]:
    texts = [e.content for sample in locomo.load(path) for e in locomo.sample_events(sample)]
    return list(dict.fromkeys(t for t in texts if len(t.split()) >= 4))


def unit(text: str, name: str, when: datetime, vector: np.ndarray, source: str, scope: Scope = OWNER) -> NewUnit:
    draft = MemoryUnitDraft(
        text=f"{name} said: {text}", persons=[name], keywords=text.lower().split()[:4],
        event_time=when, source_event_ids=[source],
    )
    return NewUnit(draft=draft, scope=scope, embedding=to_bytes(vector), compressor="extractive", compressor_version="2")


def noisy(vectors: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    out = vectors + rng.normal(0.0, sigma, vectors.shape).astype(np.float32)
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


async def bulk_load(service: MemoryService, start: int, stop: int, texts: list[str], base: np.ndarray,
                    people: list[str], per_day: int, sigma: float, rng: np.random.Generator,
                    scope_of: Callable[[int], Scope] = lambda i: OWNER) -> tuple[float, float]:
    """Store units start..stop-1 (unit i in `scope_of(i)`, one tenant) as consolidated and add them
    straight to the tenant's FAISS index; returns (SQL seconds, FAISS seconds)."""
    sql_s = faiss_s = 0.0
    index = service.indexes.tenant(OWNER.tenant)
    step = timedelta(days=1) / per_day
    for lo in range(start, stop, 5000):
        hi = min(stop, lo + 5000)
        picks = rng.integers(0, len(base), hi - lo)
        vectors = noisy(base[picks], sigma, rng)
        new = [unit(texts[p], people[i % len(people)], T0 + step * i, v, f"bulk/{i}", scope_of(i))
               for i, p, v in zip(range(lo, hi), picks, vectors, strict=True)]
        started = time.perf_counter()
        async with service.store.session() as session, session.begin():
            created = await insert_units(session, OWNER.tenant, new, datetime.now(UTC), consolidated=True)
        sql_s += time.perf_counter() - started
        started = time.perf_counter()
        with service.indexes.lock:
            index.index.add_with_ids(vectors, np.asarray([u.id for u in created], dtype=np.int64))
        faiss_s += time.perf_counter() - started
    return sql_s, faiss_s


async def one_round(service: MemoryService, size: int, round_no: int, fresh: int, held_out: list[str],
                    held_vectors: np.ndarray, people: list[str], per_day: int, rng: np.random.Generator) -> dict[str, Any]:
    when = T0 + timedelta(days=1) / per_day * size
    new: list[NewUnit] = []
    stored = [u for u in await service.store.recent_units(OWNER, fresh // 10)]
    for j in range(fresh):
        tag = f"fresh/{size}/{round_no}/{j}"
        if j % 10 == 0 and stored:  # a near copy of a stored unit: merged
            copy = stored[(j // 10) % len(stored)]
            vector = noisy(service.indexes.tenant(OWNER.tenant).vectors([copy.id])[copy.id][None, :], 0.002, rng)[0]
            new.append(NewUnit(draft=MemoryUnitDraft(text=copy.text, persons=copy.persons, event_time=when,
                                                     source_event_ids=[tag]),
                               scope=OWNER, embedding=to_bytes(vector), compressor="extractive", compressor_version="2"))
            continue
        k = int(rng.integers(0, len(held_out)))
        new.append(unit(held_out[k], people[int(rng.integers(0, len(people)))], when, held_vectors[k], tag))
    await service.store.save_compression(OWNER.tenant, new, [])
    started = time.perf_counter()
    report = await service.consolidate(OWNER)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "ms_per_new_unit": seconds * 1000 / fresh, "examined": report.examined,
            "merged": report.merged, "superseded": report.superseded,
            "abstractions_created": report.abstractions_created,
            "ms_per_new_unit_by_step": {k: v / fresh for k, v in getattr(report, "timings_ms", {}).items()}}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = np.random.default_rng(args.seed)
    texts = turn_texts(args.locomo)
    rng.shuffle(texts)
    base_texts, held_out = texts[: args.distinct], texts[args.distinct : args.distinct + 500]
    embedder = SentenceTransformerEmbedder()
    started = time.perf_counter()
    base = embedder.embed(base_texts)
    held_vectors = embedder.embed(held_out)
    embed_s = time.perf_counter() - started
    people = names(args.names)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(dir=args.data_dir) as tmp:
        service = await MemoryService.open(Settings(data_dir=Path(tmp)), embedder=embedder, run_jobs=False)
        try:
            loaded = 0
            for size in sizes:
                load_s = sum(await bulk_load(service, loaded, size, base_texts, base, people, args.per_day, args.noise, rng))
                loaded = size
                started = time.perf_counter()  # past the threshold the service's index becomes IVF, as in service
                rebuilt = await asyncio.to_thread(service.indexes.make_approximate_where_due)
                ivf_build_s = time.perf_counter() - started
                rounds = [await one_round(service, size, r, args.fresh, held_out, held_vectors, people,
                                          args.per_day, rng) for r in range(args.rounds)]
                steps = {k for r in rounds for k in r["ms_per_new_unit_by_step"]}
                row = {"owner_units": size, "bulk_load_s": load_s, "ivf_rebuilt": bool(rebuilt),
                       "approximate": service.indexes.tenant(OWNER.tenant).approximate, "ivf_build_s": ivf_build_s,
                       "ms_per_new_unit": statistics.median(r["ms_per_new_unit"] for r in rounds),
                       "ms_per_new_unit_by_step": {
                           k: statistics.median(r["ms_per_new_unit_by_step"].get(k, 0.0) for r in rounds) for k in steps},
                       "rounds": rounds}
                results.append(row)
                per_round = ", ".join(f"{r['ms_per_new_unit']:.2f}" for r in rounds)
                by_step = ", ".join(f"{k} {v:.2f}" for k, v in sorted(row["ms_per_new_unit_by_step"].items()))
                print(f"{size:>9,} units: {row['ms_per_new_unit']:7.2f} ms per new unit "
                      f"(rounds: {per_round}; by step: {by_step}; load {load_s:.0f} s)", flush=True)
        finally:
            await service.close()
    flat = results[-1]["ms_per_new_unit"] / results[0]["ms_per_new_unit"] if results else 0.0
    return {
        "config": {**{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                   "embeddings": "bulk: real embeddings of --distinct turns replicated with Gaussian noise; "
                                 "new units: real embeddings", "backend": "sqlite", "embed_s": embed_s},
        "sizes": results,
        "largest_over_smallest": flat,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Consolidation time per new unit against owner size.")
    parser.add_argument("--locomo", type=Path, required=True)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--fresh", type=int, default=100, help="new units per consolidation round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--distinct", type=int, default=2000, help="real turns embedded for the bulk units")
    parser.add_argument("--names", type=int, default=200)
    parser.add_argument("--per-day", type=int, default=1000)
    parser.add_argument("--noise", type=float, default=0.045)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--data-dir", type=Path, default=None, help="where the temporary data dir goes")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/consolidation_scale.json"))
    args = parser.parse_args()
    result = asyncio.run(run(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    print(f"largest / smallest: {result['largest_over_smallest']:.2f}x; JSON: {args.out}")


if __name__ == "__main__":
    main()
