"""Metrics, structured logs with request ids, and `memory-service doctor`."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from memory_service.logs import JsonFormatter
from memory_service.service import MemoryService
from memory_service.settings import Settings
from stores.sql.store import SqlStore
from tests.server import running_server

EVENTS = [
    {"event_id": f"obs-{i}", "user_id": "obs", "role": "user", "speaker": "Ann",
     "content": f"Ann planted {i + 2} tomato plants in the garden behind the school.",
     "timestamp": f"2024-03-0{i + 1}T09:00:00Z"}
    for i in range(4)
]


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(metrics: dict, name: str, **labels: str) -> float:
    return metrics.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
async def client(tmp_path: Path, embedder):
    settings = Settings(data_dir=tmp_path)
    service = await MemoryService.open(settings, embedder=embedder)
    app = create_app(settings, service=service)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client
    await service.close()


async def test_metrics_after_traffic(client: httpx.AsyncClient) -> None:
    before = samples((await client.get("/metrics")).text)
    assert (await client.post("/v1/events", json={"events": EVENTS, "wait": True})).status_code == 202
    answer = await client.post("/v1/context", json={"query": "How many tomato plants?", "user_id": "obs"})
    assert answer.status_code == 200 and not answer.json()["empty"]
    assert (await client.get("/v1/memories/987654")).status_code == 404
    assert (await client.get("/no/such/route")).status_code == 404
    scrape = await client.get("/metrics")
    assert scrape.status_code == 200 and scrape.headers["content-type"].startswith("text/plain")
    after = samples(scrape.text)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("memory_http_requests_total", method="POST", route="/v1/events", status="202") == 1
    assert grew("memory_http_requests_total", method="POST", route="/v1/context", status="200") == 1
    # by route template, never the raw path (bounded label cardinality)
    assert grew("memory_http_requests_total", method="GET", route="/v1/memories/{unit_id}", status="404") == 1
    assert grew("memory_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert not any("987654" in dict(labels).get("route", "") for _, labels in after)
    assert grew("memory_http_request_duration_seconds_count", method="POST", route="/v1/context") == 1
    assert grew("memory_events_ingested_total", tenant="local") == len(EVENTS)
    assert grew("memory_events_stored_total", tenant="local") == len(EVENTS)
    assert grew("memory_events_compressed_total") == len(EVENTS)
    assert grew("memory_units_created_total") >= 1
    assert grew("memory_compression_input_tokens_total") > 0 and grew("memory_compression_output_tokens_total") > 0
    assert grew("memory_compression_ratio_count") >= 1
    assert grew("memory_context_tokens_returned_count") == 1
    assert grew("memory_context_tokens_returned_sum") == answer.json()["tokens"]
    # the full history of the scope, for the returned / history ratio
    assert grew("memory_context_history_tokens_total") > 0
    assert value(after, "memory_queue_up") == 1
    assert ("memory_queue_jobs", frozenset({("backend", "in-process"), ("state", "queued")})) in after
    assert ("memory_queue_failed_jobs_total", frozenset({("backend", "in-process")})) in after

    # re-sending the same events: accepted again, stored once
    assert (await client.post("/v1/events", json={"events": EVENTS})).status_code == 202
    again = samples((await client.get("/metrics")).text)
    assert value(again, "memory_events_ingested_total", tenant="local") - value(after, "memory_events_ingested_total", tenant="local") == len(EVENTS)
    assert value(again, "memory_events_stored_total", tenant="local") == value(after, "memory_events_stored_total", tenant="local")


async def test_request_id_round_trips_into_json_logs(client: httpx.AsyncClient) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        given = await client.post(
            "/v1/context", json={"query": "tomatoes", "user_id": "obs"}, headers={"X-Request-ID": "req-42.abc"}
        )
        generated = await client.get("/v1/memories", params={"user_id": "obs"})
        insane = await client.get("/v1/memories", params={"user_id": "obs"}, headers={"X-Request-ID": "bad id\twith spaces"})
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    assert given.headers["x-request-id"] == "req-42.abc"
    assert len(generated.headers["x-request-id"]) == 32
    assert insane.headers["x-request-id"] != "bad id\twith spaces" and len(insane.headers["x-request-id"]) == 32
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == "memory_service.access"]
    mine = [line for line in access if line.get("request_id") == "req-42.abc"]
    assert len(mine) == 1, access
    assert mine[0]["tenant"] == "local" and mine[0]["route"] == "/v1/context" and mine[0]["status"] == 200
    assert mine[0]["duration_ms"] >= 0 and mine[0]["level"] == "info"
    assert any(line.get("request_id") == generated.headers["x-request-id"] for line in access)


def test_server_writes_json_logs_and_serves_metrics(tmp_path: Path) -> None:
    env = {"MEMORY_SERVICE_LOG_FORMAT": "json"}
    with running_server(tmp_path / "data", env) as (url, _process):
        response = httpx.post(
            f"{url}/v1/events", json={"events": EVENTS[:1]}, headers={"X-Request-ID": "e2e-req-1"}, timeout=30
        )
        assert response.status_code == 202 and response.headers["x-request-id"] == "e2e-req-1"
        metrics = samples(httpx.get(f"{url}/metrics", timeout=30).text)
        assert value(metrics, "memory_http_requests_total", method="POST", route="/v1/events", status="202") == 1
        log_file = next(tmp_path.glob("server-*.log"))
        lines = log_file.read_text().splitlines()
    parsed = [json.loads(line) for line in lines if line.startswith("{")]
    assert parsed, lines[:20]
    assert any(p.get("request_id") == "e2e-req-1" and p.get("tenant") == "local" for p in parsed)
    # uvicorn's own lines go through the same formatter
    assert any(p["logger"].startswith("uvicorn") for p in parsed)


async def migrated(url: str) -> None:
    store = await SqlStore.open(url)
    await store.close()


def doctor(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "memory_service.cli", "doctor", *args],
        env={**os.environ, "MEMORY_SERVICE_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_doctor_on_healthy_and_broken_configs(tmp_path: Path, pg_url: str) -> None:
    asyncio.run(migrated(pg_url))
    healthy = doctor(tmp_path, "--json", MEMORY_SERVICE_DATABASE_URL=pg_url)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    report = json.loads(healthy.stdout)
    by_name = {c["name"]: c for c in report["checks"]}
    assert report["ok"] is True
    assert set(by_name) == {
        "database", "statements", "redis", "faiss", "gpu", "embedding", "compressor", "tokenizer", "llama.cpp"
    }
    assert by_name["statements"]["status"] == "ok" and by_name["statements"]["required"] is False
    assert by_name["llama.cpp"]["status"] == "info" and "CPU :" in by_name["llama.cpp"]["detail"]
    assert by_name["database"]["status"] == "ok" and "migrations at head" in by_name["database"]["detail"]
    assert by_name["embedding"]["status"] == "ok" and "dim 384" in by_name["embedding"]["detail"]
    assert by_name["gpu"]["status"] == "info" and by_name["gpu"]["required"] is False

    broken = doctor(
        tmp_path,
        MEMORY_SERVICE_DATABASE_URL="postgresql+asyncpg://postgres:secret@127.0.0.1:1/nothing",
        MEMORY_SERVICE_REDIS_URL="redis://127.0.0.1:1/0",
    )
    assert broken.returncode == 1
    lines = broken.stdout.splitlines()
    database = next(line for line in lines if " database " in line)
    assert "FAIL" in database and "cannot connect" in database and "secret" not in broken.stdout
    assert any("FAIL" in line and " redis " in line for line in lines)
    assert "a required check failed" in broken.stderr


def test_doctor_runs_each_configured_lm_in_a_child_and_fails_on_a_broken_native_build(tmp_path: Path) -> None:
    good = doctor(tmp_path, "--json", MEMORY_SERVICE_COMPRESSOR="llama_cpp", MEMORY_SERVICE_PRUNE_TOKENS="true")
    assert good.returncode == 0, good.stdout + good.stderr
    by_name = {c["name"]: c for c in json.loads(good.stdout)["checks"]}
    assert by_name["lm"]["status"] == "ok" and "tiny generation in a child process" in by_name["lm"]["detail"]
    assert by_name["pruning"]["status"] == "ok"
    if "CMAKE_ARGS" not in os.environ:  # `make install` builds llama.cpp without the AVX-512/AMX kernels
        assert "AMX" not in by_name["llama.cpp"]["detail"] and "AVX512 = 1" not in by_name["llama.cpp"]["detail"]

    broken = doctor(tmp_path, MEMORY_SERVICE_COMPRESSOR="tests.crashing_lm:create_crashing_compressor",
                    MEMORY_SERVICE_LLM_MODEL="segfault-now")
    assert broken.returncode == 1
    lm_line = next(line for line in broken.stdout.splitlines() if " lm " in line)
    assert "FAIL" in lm_line and "SIGSEGV" in lm_line
    assert "a required check failed" in broken.stderr
