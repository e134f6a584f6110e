"""`memory-service worker` in process against the real local Redis, on a queue of its own.

The command runs until a signal stops it; here `run_worker` is wrapped so that the real worker
is cancelled once it has compressed what the API side queued (saq then stops it as on SIGTERM).
tests/e2e/test_worker.py runs workers as processes, with PostgreSQL and crashes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memory_service import worker as worker_module
from memory_service.domain import EventIn
from memory_service.index.embedding import SentenceTransformerEmbedder
from memory_service.service import MemoryService
from memory_service.settings import Settings
from tests.cli.conftest import EVENTS, count_rows, invoke, said
from tests.conftest import REDIS_URL


@pytest.fixture
def queue_name(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"test-cli-worker-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("MEMORY_SERVICE_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("MEMORY_SERVICE_QUEUE_NAME", name)
    yield name
    asyncio.run(_drop_queue_keys(name))


async def _drop_queue_keys(queue_name: str) -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in redis.scan_iter(match=f"*{queue_name}*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


def test_worker_compresses_what_the_api_queued(
    data_dir: Path, queue_name: str, embedder: SentenceTransformerEmbedder,
    monkeypatch: pytest.MonkeyPatch, restore_logging: None,
) -> None:
    async def api_side() -> None:  # Redis mode: ingest stores the events and enqueues, compresses nothing
        service = await MemoryService.open(Settings(), embedder=embedder, run_jobs=False)
        try:
            await service.ingest([EventIn.model_validate(e) for e in EVENTS])
        finally:
            await service.close()

    asyncio.run(api_side())
    assert count_rows(data_dir, "events") == 4 and count_rows(data_dir, "memory_units") == 0

    real_run_worker = worker_module.run_worker
    seen: dict[str, Any] = {}

    async def until_compressed(settings: Settings, concurrency: int = 2) -> None:
        seen.update(queue=settings.queue_name, concurrency=concurrency)
        task = asyncio.create_task(real_run_worker(settings, concurrency))
        for _ in range(600):
            if task.done() or count_rows(data_dir, "memory_units") > 0:
                break
            await asyncio.sleep(0.2)
        task.cancel()
        await task

    monkeypatch.setattr(worker_module, "run_worker", until_compressed)
    result = invoke("worker", "--concurrency", "1")
    assert result.exit_code == 0, result.output
    assert seen == {"queue": queue_name, "concurrency": 1}
    assert count_rows(data_dir, "memory_units") > 0


def test_worker_needs_redis(data_dir: Path) -> None:
    result = invoke("worker")
    assert result.exit_code == 1
    assert said(result.stderr, "the worker needs MEMORY_SERVICE_REDIS_URL; in embedded mode `serve` runs the jobs itself")


def test_worker_rejects_bad_options(data_dir: Path) -> None:
    for args, option in ((["--concurrency", "0"], "--concurrency"), (["--metrics-port", "x"], "--metrics-port")):
        result = invoke("worker", *args, MEMORY_SERVICE_REDIS_URL=REDIS_URL)
        assert result.exit_code == 2 and said(result.stderr, f"Invalid value for '{option}'"), result.output
