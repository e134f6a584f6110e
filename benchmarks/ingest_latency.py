"""Does `POST /v1/events` get slower when compression gets more expensive?

    python -m benchmarks.ingest_latency --out benchmarks/results/ingest_latency.json

For each compressor (extractive: ~1 ms a window; llama_cpp with the packaged SmolLM2:
seconds a window) and each mode (embedded: compression runs in the API process;
redis: PostgreSQL + a private Redis, compression runs in a `memory-service worker`
process), a real server takes `--requests` POSTs of `--batch` events each, one after
another without waiting for compression, and we time each POST. In Redis mode the API
only stores and enqueues, so its latency should not move with the compressor; in
embedded mode the compression competes with the request path for this machine's CPU.
Run it on a quiet machine: other load shows up as latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

from tests.server import create_database, drop_database, free_port, redis_server, running_server, start_worker, stopping

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def batch(request: int, size: int) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"lat-{request}-{i}", "user_id": f"user-{request % 4}", "session_id": "s1", "role": "user",
            "speaker": "Dana",
            "content": f"Dana asked to move the staging database of team {request} to port {5400 + i} before Friday, "
                       f"and to tell Lee once the migration number {request * 10 + i} is done.",
            "timestamp": f"2024-05-01T10:{request % 60:02d}:{i % 60:02d}Z",
        }
        for i in range(size)
    ]


def post_all(url: str, requests: int, size: int) -> list[float]:
    latencies: list[float] = []
    with httpx.Client(base_url=url, timeout=120) as client:
        for r in range(requests):
            started = time.perf_counter()
            response = client.post("/v1/events", json={"events": batch(r, size)})
            latencies.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
    return latencies


def run_mode(mode: str, compressor: str, requests: int, size: int, root: Path) -> dict[str, Any]:
    data_dir = root / f"{mode}-{compressor}"
    data_dir.mkdir(parents=True)
    env = {"MEMORY_SERVICE_COMPRESSOR": compressor}
    if mode == "embedded":
        with running_server(data_dir, env) as (url, _):
            latencies = post_all(url, requests, size)
    else:
        database, sql_url = asyncio.run(create_database(PG_ADMIN, "ms_bench"))
        port = free_port()
        env.update({
            "MEMORY_SERVICE_DATABASE_URL": sql_url,
            "MEMORY_SERVICE_REDIS_URL": f"redis://127.0.0.1:{port}/0",
            "MEMORY_SERVICE_DATA_DIR": str(data_dir),
        })
        try:
            with redis_server(port), running_server(data_dir, env) as (url, _):
                workers = [start_worker(env, data_dir / "worker.log")]
                with stopping(workers):
                    latencies = post_all(url, requests, size)
        finally:
            asyncio.run(drop_database(PG_ADMIN, database))
    values = np.asarray(latencies)
    return {
        "mode": mode,
        "compressor": compressor,
        "requests": requests,
        "batch_events": size,
        "p50_ms": float(np.percentile(values, 50)),
        "p95_ms": float(np.percentile(values, 95)),
        "max_ms": float(values.max()),
        "mean_ms": statistics.fmean(latencies),
        "latencies_ms": latencies,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--compressors", default="extractive,llama_cpp")
    parser.add_argument("--modes", default="embedded,redis")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ingest_latency.json"))
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for compressor in args.compressors.split(","):
            for mode in args.modes.split(","):
                results.append(run_mode(mode, compressor, args.requests, args.batch, Path(tmp)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"results": results}, indent=2))
    table = Table(title=f"POST /v1/events latency ({args.requests} requests of {args.batch} events, no wait)")
    for column in ("mode", "compressor", "p50 ms", "p95 ms", "max ms"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(r["mode"], r["compressor"], f"{r['p50_ms']:.1f}", f"{r['p95_ms']:.1f}", f"{r['max_ms']:.1f}")
    Console().print(table)
    print(f"JSON: {args.out}")


if __name__ == "__main__":
    main()
