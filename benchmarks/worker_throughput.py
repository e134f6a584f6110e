"""Ingest throughput with 1 and with 2 `memory-service worker` processes (issue 15, item 5).

    python -m benchmarks.worker_throughput --locomo ../shared/bench/locomo/locomo_dev.json \
        --workers 1,2 --out benchmarks/results/worker_throughput.json

For each worker count N: a fresh PostgreSQL database (127.0.0.1:5432, as the tests use) and a
private Redis 7 (`redis-server` on a free port, as `tests/e2e/test_replicas.py` does), one
`memory-service serve` and N `memory-service worker` processes (the test's process helpers in
`tests/server.py`). Once every worker has registered with the queue (its models are loaded),
the LoCoMo conversations are POSTed to `/v1/events` in requests of `--batch` events without
`wait`, one after another. The clock starts at the first POST and stops when SQL holds no
uncompressed event of the run (`compressed_s`, the ingest throughput: events / compressed_s),
and again when the queue is empty (`drained_s`: the consolidation jobs that compression
enqueues are done too). The speed-up is events/s with N workers over events/s with the first N.

Jobs carry one (user, session) scope each, so LoCoMo's ~130 sessions spread over the workers.
Each worker compresses one round at a time (the service's compression lock), and torch in each
uses every core: on a 2-core machine two workers mostly share the same CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from benchmarks.output import emit
from memory_service.eval import locomo
from stores.sql.store import SqlStore
from tests.server import (
    create_database,
    drop_database,
    free_port,
    redis_server,
    start_server,
    start_worker,
    stopping,
    wait_healthy,
)

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
TENANT = "local"


def service_env(sql_url: str, redis_port: int, data_dir: Path) -> dict[str, str]:
    return {
        "MEMORY_SERVICE_DATABASE_URL": sql_url,
        "MEMORY_SERVICE_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "MEMORY_SERVICE_DATA_DIR": str(data_dir),
        "MEMORY_SERVICE_COMPRESSOR": "extractive",
    }


async def wait_for_workers(client: httpx.AsyncClient, count: int, timeout_s: float = 300) -> None:
    """Until the queue knows `count` workers (each registers once its service, models included, is open)."""
    deadline = time.monotonic() + timeout_s
    while (await client.get("/v1/jobs", params={"dead_letters": 0})).json()["workers"] < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {count} workers registered after {timeout_s} s")
        await asyncio.sleep(0.5)


async def drive(url: str, sql_url: str, batches: list[list[dict[str, Any]]], workers: int, poll_s: float) -> dict[str, Any]:
    event_ids = [e["event_id"] for b in batches for e in b]
    store = await SqlStore.open(sql_url, run_migrations=False)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            await wait_for_workers(client, workers)
            started = time.perf_counter()
            for batch in batches:
                (await client.post("/v1/events", json={"events": batch})).raise_for_status()
            posted_s = time.perf_counter() - started
            while True:
                if not await store.count_uncompressed(TENANT, event_ids):
                    break
                await asyncio.sleep(poll_s)
            compressed_s = time.perf_counter() - started
            while True:
                jobs = (await client.get("/v1/jobs", params={"dead_letters": 0})).json()
                if jobs["queued"] == 0 and jobs["running"] == 0 and jobs["scheduled"] == 0:
                    break
                await asyncio.sleep(poll_s)
            drained_s = time.perf_counter() - started
            failed = jobs["failed_total"]
        units = await store.count_units()
    finally:
        await store.close()
    return {
        "workers": workers,
        "events": len(event_ids),
        "units": units,
        "post_s": posted_s,
        "compressed_s": compressed_s,
        "drained_s": drained_s,
        "events_per_s": len(event_ids) / compressed_s,
        "events_per_s_drained": len(event_ids) / drained_s,
        "failed_jobs": failed,
    }


def run(workers: int, batches: list[list[dict[str, Any]]], root: Path, poll_s: float) -> dict[str, Any]:
    """One measurement: fresh database and Redis, one API, `workers` worker processes."""
    database, sql_url = asyncio.run(create_database(PG_ADMIN, "ms_workers"))
    redis_port = free_port()
    processes: list[Any] = []
    try:
        with redis_server(redis_port), stopping(processes):
            api_dir = root / f"n{workers}" / "api" / "data"
            url, api, api_log = start_server(api_dir, service_env(sql_url, redis_port, api_dir))
            processes.append(api)
            # The API migrates the fresh database before the workers open it (and on a loaded
            # machine three processes loading torch at once can outlast the default wait).
            wait_healthy(url, api, api_log, timeout_s=600)
            for w in range(workers):
                data_dir = root / f"n{workers}" / f"worker-{w}" / "data"
                data_dir.mkdir(parents=True)
                processes.append(start_worker(service_env(sql_url, redis_port, data_dir), data_dir.parent / "worker.log"))
            return asyncio.run(drive(url, sql_url, batches, workers, poll_s))
    finally:
        asyncio.run(drop_database(PG_ADMIN, database))


def table(results: list[dict[str, Any]]) -> Table:
    out = Table(title=f"Ingest through REST, N workers ({results[0]['events']} LoCoMo events, {os.cpu_count()} CPUs)")
    for column in ("workers", "POST s", "compressed s", "events/s", "speed-up", "drained s", "units"):
        out.add_column(column, justify="right")
    for r in results:
        out.add_row(
            str(r["workers"]), f"{r['post_s']:.1f}", f"{r['compressed_s']:.1f}", f"{r['events_per_s']:.1f}",
            f"{r['speedup']:.2f}", f"{r['drained_s']:.1f}", str(r["units"]),
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--locomo", type=Path, default=Path("../shared/bench/locomo/locomo_dev.json"))
    parser.add_argument("--conversations", default="", help="comma-separated sample ids (default all)")
    parser.add_argument("--workers", default="1,2", help="worker counts to measure, in order")
    parser.add_argument("--batch", type=int, default=50, help="events per POST")
    parser.add_argument("--poll", type=float, default=0.2, help="seconds between completion checks")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    samples = locomo.select_samples(args.locomo, [c for c in args.conversations.split(",") if c] or None)
    events = [e.model_dump(mode="json", exclude_none=True) for s in samples for e in locomo.sample_events(s)]
    batches = [events[i : i + args.batch] for i in range(0, len(events), args.batch)]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(x) for x in args.workers.split(",")):
            results.append(run(n, batches, Path(tmp), args.poll))
            print(results[-1], file=sys.stderr, flush=True)
    for r in results:
        r["speedup"] = r["events_per_s"] / results[0]["events_per_s"]
    Console(stderr=True).print(table(results))
    emit({"file": str(args.locomo), "cpus": os.cpu_count(), "batch_events": args.batch, "results": results}, args.out)


if __name__ == "__main__":
    main()
