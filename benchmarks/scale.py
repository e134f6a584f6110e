"""The service as one tenant grows (issue 15, item 1): context latency for a user's scope and for
the whole tenant, process RSS, FAISS build / IVF rebuild / save / load / catch-up, and the SQL
candidate lookups, on SQLite and PostgreSQL.

    python -m benchmarks.scale --locomo ../shared/bench/locomo/locomo_dev.json \
        --sizes 10000,100000 --backends sqlite,postgres --out benchmarks/results/scale.json

One tenant, one agent, users of `--per-user` units each (user-0 is "a user's scope"; the
agent's scope is the whole tenant), loaded in turn to each size. Unit texts are LoCoMo dev
turns as extractive units with generated speaker names and event times at `--per-day` a day;
embeddings are `--distinct` real embeddings replicated with noise (as
`benchmarks/consolidation_scale.py` does: same loader). Bulk units go into SQL in batches and
straight into the tenant's FAISS index ("faiss_add_s"; `consolidation_scale.bulk_load`); then the index is rebuilt as IVF where
it is past `MEMORY_SERVICE_ANN_THRESHOLD` ("ivf_build_s"), and 1,000 more units go through the
change log ("catch_up_1000_s", the path compressed units take). Queries are real LoCoMo
questions with the real embedder, through `MemoryService.context` at 512 tokens, warm.

"serving" repeats the two context timings in a new process that opens the saved state the
way an API replica starts (FAISS loaded from disk, nothing else in memory), and reports that
process's RSS: the loading process also holds what the bulk load and the flat-to-IVF rebuild
left behind, which a service does not (its index becomes IVF once, at the threshold, and
grows as IVF after that).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import track
from sqlalchemy import text as sa_text

from benchmarks.consolidation_scale import T0, bulk_load, names, noisy, turn_texts, unit
from benchmarks.output import emit
from memory_service.domain import Scope
from memory_service.eval import locomo
from memory_service.index.embedding import SentenceTransformerEmbedder
from memory_service.service import MemoryService
from memory_service.settings import Settings
from stores.vector_index import VectorIndexes
from tests.server import create_database, drop_database

AGENT = "agent"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


# The two measured scopes: user-0's 10^4 units, and the agent's, which is the whole tenant.
MEASURED_SCOPES = (("user_scope", Scope(user_id="user-0", agent_id=AGENT)), ("whole_tenant", Scope(agent_id=AGENT)))


def scope_of(i: int, per_user: int) -> Scope:
    return Scope(user_id=f"user-{i // per_user}", agent_id=AGENT)


def rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]


async def timed(calls: list[Callable[[], Awaitable[Any]]]) -> dict[str, float]:
    times = []
    for call in calls:
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(float(np.percentile(times, 50)), 2), "p95_ms": round(float(np.percentile(times, 95)), 2)}


async def warm_context_timings(service: MemoryService, scope: Scope, questions: list[str]) -> dict[str, float]:
    """p50 / p95 of `/v1/context` logic at 512 tokens over `questions`, after three warm-up queries
    (scope ids, units, query vectors)."""
    for q in questions[:3]:
        await service.context(scope, q, 512)
    return await timed([lambda q=q: service.context(scope, q, 512) for q in questions])


async def sql_bytes(service: MemoryService) -> int:
    """What the database holds on disk: SQLite's pages, or PostgreSQL's database size."""
    engine = service.store.engine
    async with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            pages = (await conn.execute(sa_text("PRAGMA page_count"))).scalar_one()
            return int(pages) * int((await conn.execute(sa_text("PRAGMA page_size"))).scalar_one())
        return int((await conn.execute(sa_text("SELECT pg_database_size(current_database())"))).scalar_one())


async def after_writes(service: MemoryService, scope: Scope, questions: list[str], data: dict[str, Any],
                       args: argparse.Namespace, rng: np.random.Generator, size: int, rounds: int = 10) -> dict[str, float]:
    """Context latency right after one unit is written into user-0's scope (inside both measured
    scopes), timed with the write and the catch-up: the agent writes all day, so this is the
    latency most queries see."""
    when = T0 + timedelta(days=1) / args.per_day * size

    async def write_then_ask(n: int) -> None:
        pick = int(rng.integers(0, len(data["base"])))
        new = unit(data["texts"][pick], data["people"][0], when, noisy(data["base"][pick:pick + 1], args.noise, rng)[0],
                   f"written/{scope.user_id}/{size}/{n}", scope_of(0, args.per_user))
        await service.store.save_compression("local", [new], [])
        await service.index_sync.catch_up()
        await service.context(scope, questions[n % len(questions)], 512)

    return await timed([lambda n=n: write_then_ask(n) for n in range(rounds)])


async def measure(service: MemoryService, size: int, data: dict[str, Any], args: argparse.Namespace,
                  rng: np.random.Generator) -> dict[str, Any]:
    started = time.perf_counter()
    rebuilt = await asyncio.to_thread(service.indexes.make_approximate_where_due)
    ivf_build_s = time.perf_counter() - started
    # 1,000 units the way compressed units come: stored with a change-log row, then caught up.
    picks = rng.integers(0, len(data["base"]), 1000)
    vectors = noisy(data["base"][picks], args.noise, rng)
    when = T0 + timedelta(days=1) / args.per_day * size
    fresh = [unit(data["texts"][p], data["people"][0], when, v, f"fresh/{size}/{j}", scope_of(j, args.per_user))
             for j, (p, v) in enumerate(zip(picks, vectors, strict=True))]
    await service.store.save_compression("local", fresh, [])
    started = time.perf_counter()
    await service.index_sync.catch_up()
    catch_up_s = time.perf_counter() - started
    started = time.perf_counter()
    service.indexes.save()  # under the service's data dir
    save_s = time.perf_counter() - started
    loaded = VectorIndexes(service.indexes.dim, service.indexes.directory, service.indexes.ann)
    started = time.perf_counter()
    loaded.load()
    load_s = time.perf_counter() - started
    questions = data["questions"]
    out: dict[str, Any] = {
        "size": size, "approximate": service.indexes.tenant("local").approximate, "ivf_rebuilt": bool(rebuilt),
        "ivf_build_s": round(ivf_build_s, 2), "catch_up_1000_s": round(catch_up_s, 2),
        "faiss_save_s": round(save_s, 2), "faiss_load_s": round(load_s, 2),
    }
    for name, scope in MEASURED_SCOPES:
        out[f"context_{name}"] = await warm_context_timings(service, scope, questions)
        stages: dict[str, list[float]] = {}
        for q in questions:
            for stage, ms in (await service.context(scope, q, 512)).timings_ms.items():
                stages.setdefault(stage, []).append(ms)
        out[f"stages_p50_ms_{name}"] = {stage: round(float(np.median(v)), 2) for stage, v in stages.items()}
        out[f"context_after_a_write_{name}"] = await after_writes(service, scope, questions, data, args, rng, size)
        terms = [[w for w in re.findall(r"[a-z]+", q.lower()) if len(w) > 3][:6] for q in questions]
        out[f"sql_{name}"] = {
            "lexical": await timed([lambda s=scope, t=t: service.store.search.lexical(s, t, 50) for t in terms]),
            "mentioning": await timed([lambda s=scope, n=n: service.store.search.unit_ids_mentioning(s, [n]) for n in data["people"][:20]]),
            "time_range": await timed([
                lambda s=scope, d=d: service.store.search.unit_ids_in_time_range(s, T0 + timedelta(days=d), T0 + timedelta(days=d + 30))
                for d in range(0, 600, 30)
            ]),
        }
    out["rss_mb"] = round(rss_mb(), 1)
    out["serving"] = await asyncio.to_thread(serving_process, service.settings, questions)
    units = await service.store.count_units()
    out["sql_bytes_per_unit"] = round(await sql_bytes(service) / units)
    saved = sum(p.stat().st_size for p in service.indexes.directory.glob("*.faiss"))
    out["faiss_bytes_per_unit"] = round(saved / units)
    return out


def serving_process(settings: Settings, questions: list[str]) -> dict[str, Any]:
    """`serve_and_measure` in a new Python process, on the same database and data dir."""
    spec = {"data_dir": str(settings.data_dir), "database_url": settings.database_url, "questions": questions}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
    try:
        done = subprocess.run([sys.executable, "-m", "benchmarks.scale", "--serving", f.name],
                              capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1])
    finally:
        Path(f.name).unlink()
    return json.loads(done.stdout.strip().splitlines()[-1])


async def serve_and_measure(spec: dict[str, Any]) -> dict[str, Any]:
    settings = Settings(data_dir=Path(spec["data_dir"]), database_url=spec["database_url"], redis_url=None)
    service = await MemoryService.open(settings, run_jobs=False)
    try:
        out: dict[str, Any] = {"rss_mb_opened": round(rss_mb(), 1)}
        questions = spec["questions"]
        for name, scope in MEASURED_SCOPES:
            out[f"context_{name}"] = await warm_context_timings(service, scope, questions)
        out["rss_mb"] = round(rss_mb(), 1)
        return out
    finally:
        await service.close()


async def run_backend(backend: str, sizes: list[int], data: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    rng = np.random.default_rng(args.seed)
    database = None
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=None, redis_url=None)
        if backend == "postgres":
            database, settings.database_url = await create_database(PG_ADMIN, "ms_scale")
        service = await MemoryService.open(settings, run_jobs=False)
        rows = []
        try:
            loaded = 0
            for size in track(sizes, description=backend):
                sql_s, faiss_s = await bulk_load(
                    service, loaded, size, data["texts"], data["base"], data["people"], args.per_day, args.noise, rng,
                    lambda i: scope_of(i, args.per_user),
                )
                loaded = size
                if backend == "postgres":  # the planner statistics autovacuum would gather after a bulk load
                    async with service.store.engine.connect() as conn:
                        await (await conn.execution_options(isolation_level="AUTOCOMMIT")).execute(sa_text("ANALYZE"))
                row = await measure(service, size, data, args, rng)
                rows.append({"backend": backend, "sql_load_s": round(sql_s, 1), "faiss_add_s": round(faiss_s, 2), **row})
                print(json.dumps(rows[-1]), flush=True)
        finally:
            await service.close()
            if database is not None:
                await drop_database(PG_ADMIN, database)
    return rows


async def run(args: argparse.Namespace) -> dict[str, Any]:
    texts = turn_texts(args.locomo)
    rng = np.random.default_rng(args.seed)
    distinct = [texts[i] for i in rng.choice(len(texts), size=min(args.distinct, len(texts)), replace=False)]
    embedder = SentenceTransformerEmbedder()
    base = np.asarray(embedder.embed(distinct), dtype=np.float32)
    questions = [q.question for s in locomo.select_samples(args.locomo, None) for q in locomo.sample_questions(s)]
    questions = [questions[i] for i in rng.choice(len(questions), size=min(args.queries, len(questions)), replace=False)]
    data = {"texts": distinct, "base": base, "people": names(args.names), "questions": questions}
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = [row for backend in args.backends.split(",") for row in await run_backend(backend, sizes, data, args)]
    return {"embeddings": "bulk: real embeddings of --distinct LoCoMo turns replicated with Gaussian noise; "
                          "queries: real embeddings", "per_user": args.per_user, "rows": rows}


def main() -> None:
    if sys.argv[1:2] == ["--serving"]:  # the child of `serving_process`
        print(json.dumps(asyncio.run(serve_and_measure(json.loads(Path(sys.argv[2]).read_text())))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--locomo", type=Path, required=True)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--per-user", type=int, default=10_000)
    parser.add_argument("--per-day", type=int, default=200)
    parser.add_argument("--names", type=int, default=200)
    parser.add_argument("--distinct", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--noise", type=float, default=0.045)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    report = asyncio.run(run(args))
    emit(report, args.out)


if __name__ == "__main__":
    main()
