"""Load test: N concurrent clients on loopback doing an ingest / context mix for D seconds.

    .venv/bin/python -m benchmarks.load --clients 8 --duration 60 --out benchmarks/results/load.json

Starts its own server(s) and stops them: `embedded` (SQLite, in-process jobs, fresh data
dir) and `redis` (a private PostgreSQL database on the server given by --pg-admin, a
private queue name on --redis-url, and one `memory-service worker`). Each client loops:
with probability --ingest-share it POSTs a batch of --batch events (fresh ids) for one of
--users users, else it asks /v1/context for one of them. Reported per mode: throughput,
p50/p95/p99 latency per operation, error rate, and events accepted (202) vs stored (counted
in SQL once the queue has drained; they must be equal).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from stores.sql.store import SqlStore
from tests.server import create_database, drop_database, running_server, start_worker, stopping

console = Console(stderr=True)

QUERIES = [
    "Which module did Dana ask to refactor?",
    "What happened when the tests ran?",
    "What does Dana like to eat?",
    "When is the deploy planned?",
    "Which file was read last?",
]
SENTENCES = [
    "Dana asked to refactor module {n} so the parser handles case {n}.",
    "Dana said she prefers ramen over pizza on Fridays, order {n}.",
    "The deploy of release {n} is planned for next Tuesday at 10am.",
    "Dana mentioned that the flaky test number {n} fails on CI only.",
]



@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"ingest": [], "context": []})
    statuses: dict[str, dict[str, int]] = field(default_factory=lambda: {"ingest": {}, "context": {}})
    accepted_events: int = 0

    def record(self, op: str, status: int | str, seconds: float) -> None:
        self.latencies[op].append(seconds)
        self.statuses[op][str(status)] = self.statuses[op].get(str(status), 0) + 1


def event(user: str, event_id: str, n: int, when: int) -> dict:
    return {
        "event_id": event_id,
        "user_id": user,
        "session_id": "load",
        "role": "user" if n % 3 else "assistant",
        "speaker": "Dana" if n % 3 else "Assistant",
        "content": SENTENCES[n % len(SENTENCES)].format(n=n),
        "timestamp": f"2024-05-{1 + when // 86400 % 28:02d}T{when // 3600 % 24:02d}:{when // 60 % 60:02d}:{when % 60:02d}Z",
    }


async def client_loop(
    index: int, url: str, deadline: float, args: argparse.Namespace, stats: Stats, rng: random.Random
) -> None:
    counter = 0
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        while time.monotonic() < deadline:
            user = f"user{rng.randrange(args.users)}"
            if rng.random() < args.ingest_share:
                ids = [f"c{index}-{counter + i}" for i in range(args.batch)]
                body = {"events": [event(user, e, counter + i, counter + i + index * 10_000) for i, e in enumerate(ids)]}
                counter += args.batch
                op = "ingest"
            else:
                body = {"query": rng.choice(QUERIES), "user_id": user, "budget_tokens": 256}
                op = "context"
            started = time.perf_counter()
            try:
                response = await client.post("/v1/events" if op == "ingest" else "/v1/context", json=body)
                status: int | str = response.status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            stats.record(op, status, time.perf_counter() - started)
            if op == "ingest" and status == 202:
                stats.accepted_events += len(response.json()["event_ids"])


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


async def seed(url: str, users: int, per_user: int) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        for u in range(users):
            events = [event(f"user{u}", f"seed-{u}-{i}", i, i * 60) for i in range(per_user)]
            response = await client.post("/v1/events", json={"events": events, "wait": True})
            response.raise_for_status()


async def drain_and_count(sql_url: str, timeout_s: float) -> tuple[int, float, int]:
    """Wait until no event is left uncompressed; (stored events, seconds waited, still pending)."""
    store = await SqlStore.open(sql_url, run_migrations=False)
    try:
        started = time.monotonic()
        while True:
            pending = await store.count_pending_events()
            if not pending or time.monotonic() - started > timeout_s:
                break
            await asyncio.sleep(0.5)
        return await store.count_events(), time.monotonic() - started, pending
    finally:
        await store.close()


async def run_load(url: str, args: argparse.Namespace) -> tuple[Stats, float]:
    stats = Stats()
    started = time.monotonic()
    deadline = started + args.duration
    await asyncio.gather(
        *(client_loop(i, url, deadline, args, stats, random.Random(args.seed + i)) for i in range(args.clients))
    )
    return stats, time.monotonic() - started


def run_mode(mode: str, args: argparse.Namespace, work: Path) -> dict:
    data_dir = work / mode
    data_dir.mkdir(parents=True)
    env = {"MEMORY_SERVICE_DATA_DIR": str(data_dir), "MEMORY_SERVICE_LOG_LEVEL": "WARNING"}
    database = None
    if mode == "redis":
        database, sql_url = asyncio.run(create_database(args.pg_admin, "ms_load"))
        env |= {
            "MEMORY_SERVICE_DATABASE_URL": sql_url,
            "MEMORY_SERVICE_REDIS_URL": args.redis_url,
            "MEMORY_SERVICE_QUEUE_NAME": f"ms-load-{uuid.uuid4().hex[:8]}",
            "MEMORY_SERVICE_RECONCILE_SECONDS": "2",
        }
    else:
        sql_url = f"sqlite+aiosqlite:///{(data_dir / 'memory.db').resolve()}"
    workers: list[subprocess.Popen[bytes]] = []
    try:
        with running_server(data_dir, env, timeout_s=180) as (url, _), stopping(workers):
            if mode == "redis":
                workers.append(start_worker(env, work / f"{mode}-worker.log"))
            console.print(f"[{mode}] seeding {args.users} users x {args.seed_events} events")
            asyncio.run(seed(url, args.users, args.seed_events))
            seeded = args.users * args.seed_events
            console.print(f"[{mode}] {args.clients} clients for {args.duration:.0f} s")
            stats, elapsed = asyncio.run(run_load(url, args))
            stored, drain_s, pending = asyncio.run(drain_and_count(sql_url, args.drain_timeout))
    finally:
        if database is not None:
            asyncio.run(drop_database(args.pg_admin, database))
    requests = sum(len(v) for v in stats.latencies.values())
    errors = sum(n for op in stats.statuses.values() for s, n in op.items() if s not in ("200", "202"))
    return {
        "mode": mode,
        "clients": args.clients,
        "duration_s": round(elapsed, 1),
        "requests": requests,
        "requests_per_s": round(requests / elapsed, 1),
        "events_per_s": round(stats.accepted_events / elapsed, 1),
        "error_rate": round(errors / requests, 4) if requests else 0.0,
        "operations": {
            op: {
                "count": len(lat),
                "p50_ms": round(percentile(lat, 50) * 1000, 1),
                "p95_ms": round(percentile(lat, 95) * 1000, 1),
                "p99_ms": round(percentile(lat, 99) * 1000, 1),
                "mean_ms": round(statistics.fmean(lat) * 1000, 1) if lat else None,
                "statuses": stats.statuses[op],
            }
            for op, lat in stats.latencies.items()
        },
        "events_accepted": stats.accepted_events,
        "events_stored": stored - seeded,
        "pending_after_drain": pending,
        "drain_s": round(drain_s, 1),
        "accepted_equals_stored": stats.accepted_events == stored - seeded,
    }





def show(results: list[dict]) -> None:
    table = Table(title="load (loopback)")
    for column in ("mode", "op", "count", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "accepted", "stored", "drain s"):
        table.add_column(column, justify="right" if column not in ("mode", "op") else "left")
    for result in results:
        for op, o in result["operations"].items():
            errors = sum(n for s, n in o["statuses"].items() if s not in ("200", "202"))
            table.add_row(
                result["mode"], op, str(o["count"]), f"{o['count'] / result['duration_s']:.1f}",
                str(o["p50_ms"]), str(o["p95_ms"]), str(o["p99_ms"]), str(errors),
                str(result["events_accepted"]) if op == "ingest" else "",
                str(result["events_stored"]) if op == "ingest" else "",
                str(result["drain_s"]) if op == "ingest" else "",
            )
    Console(width=160).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", "-c", type=int, default=8, choices=range(1, 65), metavar="1..64")
    parser.add_argument("--duration", "-d", type=float, default=60.0, help="seconds of load per mode (max 600)")
    parser.add_argument("--modes", default="embedded,redis", help="comma-separated: embedded, redis")
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--batch", type=int, default=5, help="events per ingest request")
    parser.add_argument("--ingest-share", type=float, default=0.7)
    parser.add_argument("--seed-events", type=int, default=100, help="events per user stored before the run")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--drain-timeout", type=float, default=600.0)
    parser.add_argument("--pg-admin", default=os.environ.get("MEMORY_SERVICE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--redis-url", default=os.environ.get("MEMORY_SERVICE_TEST_REDIS", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/load.json"))
    args = parser.parse_args()
    if not 0 < args.duration <= 600:
        parser.error("--duration must be in (0, 600]")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if unknown := set(modes) - {"embedded", "redis"}:
        parser.error(f"unknown modes {sorted(unknown)}")
    results = []
    with tempfile.TemporaryDirectory(prefix="ms-load-") as tmp:
        for mode in modes:
            results.append(run_mode(mode, args, Path(tmp)))
    show(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "command": " ".join(sys.argv),
        "machine": {"cpus": os.cpu_count(), "note": "loopback; server, worker and clients share the machine"},
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "pg_admin")},
        "results": results,
    }
    args.out.write_text(json.dumps(report, indent=2))
    console.print(f"wrote {args.out}")
    if not all(r["accepted_equals_stored"] for r in results):
        console.print("[red]events accepted != events stored[/red]")
        sys.exit(1)


if __name__ == "__main__":
    main()
