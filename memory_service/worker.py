"""`memory-service worker`: compression and consolidation jobs from Redis (saq).

Crash safety comes from three layers: saq re-queues the job of a worker that stopped
heart-beating (its sweeper), every job's work is derived from SQL state and applied in
transactions that claim what they change, and each worker re-enqueues whatever SQL says
is outstanding every `reconcile_seconds` (which also covers jobs lost while Redis was
down).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from saq import Status, Worker

from memory_service import metrics
from memory_service.domain import Scope
from memory_service.service import MemoryService
from memory_service.settings import Settings
from stores.job_queue import JobKind, RedisJobQueue

log = logging.getLogger(__name__)


async def _heartbeat(job: Any, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        with contextlib.suppress(Exception):
            await job.update()


async def _run_with_heartbeat(ctx: dict[str, Any], work: Any) -> Any:
    job = ctx["job"]
    beat = asyncio.create_task(_heartbeat(job, max(0.5, job.heartbeat / 3))) if job.heartbeat else None
    try:
        return await work
    finally:
        if beat is not None:
            beat.cancel()


async def compress(ctx: dict[str, Any], *, scope: dict[str, Any]) -> dict[str, int]:
    service: MemoryService = ctx["service"]
    stats = await _run_with_heartbeat(ctx, service.compress_scopes([Scope.model_validate(scope)]))
    return {"events": stats.events, "units": stats.units}


async def consolidate(ctx: dict[str, Any], *, scope: dict[str, Any]) -> dict[str, int]:
    service: MemoryService = ctx["service"]
    report = await _run_with_heartbeat(ctx, service.consolidate(Scope.model_validate(scope)))
    return {"merged": report.merged, "superseded": report.superseded, "abstractions": report.abstractions_created}


async def _after_process(ctx: dict[str, Any]) -> None:
    job = ctx.get("job")
    if job is not None and job.status == Status.FAILED:
        metrics.JOBS_FAILED.labels(str(job.function)).inc()
        queue: RedisJobQueue = ctx["service"].jobs
        await queue.record_failure(job.key, job.function, (job.kwargs or {}).get("scope", {}), job.error or "", job.attempts)


async def _reconcile_forever(service: MemoryService, every_s: float) -> None:
    while True:
        try:
            await service.reconcile()
        except Exception as exc:  # Redis or the database away: try again next round
            log.warning("reconcile failed: %s", exc)
        await asyncio.sleep(every_s)


def create_worker(service: MemoryService, concurrency: int = 2, sweep_s: int | None = None) -> Worker:
    if not isinstance(service.jobs, RedisJobQueue):
        raise ValueError("the worker needs MEMORY_SERVICE_REDIS_URL (embedded mode runs jobs inside `serve`)")
    settings = service.settings
    return Worker(
        service.jobs.queue,
        functions=[(str(JobKind.compress), compress), (str(JobKind.consolidate), consolidate)],
        concurrency=concurrency,
        after_process=_after_process,
        # Sweeping often races saq's own dequeue (harmless, jobs are idempotent, but noisy).
        timers={"sweep": sweep_s or max(5, min(60, settings.job_heartbeat_s))},
        dequeue_timeout=1.0,
    )


async def run_worker(settings: Settings, concurrency: int = 2) -> None:
    service = await MemoryService.open(settings, run_jobs=False)
    worker = create_worker(service, concurrency)
    worker.context["service"] = service
    reconciler = asyncio.create_task(_reconcile_forever(service, settings.reconcile_seconds))
    try:
        await worker.start()
    finally:
        reconciler.cancel()
        await service.close()
