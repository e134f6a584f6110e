"""The job queue: Redis (saq) when configured, in-process otherwise.

A job names only a kind and a scope. What to do is derived from SQL state (events not
yet compressed, units not yet consolidated), so a job that is lost, repeated or run
twice at once is harmless; a periodic reconciler re-enqueues whatever SQL says is
outstanding. saq was chosen over hand-rolled Redis Streams because it already has what
the worker needs: keyed de-duplication of queued jobs, retries with exponential backoff,
per-job timeouts, heartbeats and a sweeper that re-queues the job of a worker that died.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from memory_service.domain import Scope


class JobKind(StrEnum):
    compress = "compress"
    consolidate = "consolidate"


def job_key(kind: JobKind, scope: Scope) -> str:
    return f"{kind}:{json.dumps(scope.model_dump(), sort_keys=True)}"


@dataclass
class FailedJob:
    key: str
    kind: str
    scope: dict[str, Any]
    error: str
    attempts: int
    at: float


@dataclass
class QueueStats:
    backend: str
    queued: int
    running: int
    scheduled: int
    failed_total: int
    workers: int
    dead_letters: list[FailedJob] = field(default_factory=list)


class JobQueue(Protocol):
    backend: str

    async def enqueue(self, kind: JobKind, scope: Scope) -> bool:
        """Queue a job; False when the same job is already queued (nothing to add)."""
        ...

    async def stats(self, dead_letters: int = 20) -> QueueStats: ...

    async def cancel(self, kind: JobKind, scope: Scope) -> bool:
        """Remove a queued (not yet running) job; False when there was none or the queue cannot."""
        ...

    async def close(self) -> None: ...


JobHandler = Callable[[JobKind, Scope], Awaitable[object]]

DEAD_LETTERS_KEPT = 1000


class RedisJobQueue:
    """saq on Redis. Producers (the API) and consumers (`memory-service worker`) both use it."""

    backend = "redis"

    def __init__(
        self,
        url: str,
        name: str = "memory-service",
        timeout_s: int = 600,
        heartbeat_s: int = 15,
        retries: int = 5,
        retry_delay_s: float = 1.0,
        retry_backoff_max_s: float = 60.0,
    ) -> None:
        from saq import Queue

        self.queue = Queue.from_url(url, name=name)
        self.name = name
        self.timeout_s = timeout_s
        self.heartbeat_s = heartbeat_s
        self.retries = retries
        self.retry_delay_s = retry_delay_s
        self.retry_backoff_max_s = retry_backoff_max_s
        self._dead_key = f"{name}:dead-letters"
        self._failed_key = f"{name}:failed-total"

    @property
    def redis(self) -> Any:
        return self.queue.redis  # type: ignore[attr-defined]

    async def enqueue(self, kind: JobKind, scope: Scope) -> bool:
        job = await self.queue.enqueue(
            str(kind),
            key=job_key(kind, scope),
            scope=scope.model_dump(),
            timeout=self.timeout_s,
            heartbeat=self.heartbeat_s,
            retries=self.retries,
            retry_delay=self.retry_delay_s,
            retry_backoff=self.retry_backoff_max_s,
        )
        return job is not None

    async def cancel(self, kind: JobKind, scope: Scope) -> bool:
        """Abort the job of this kind and scope if it is still queued (a running one is left to
        finish: it derives its work from SQL, so after an erasure it finds none)."""
        from saq.job import Status

        job = await self.queue.job(job_key(kind, scope))
        if job is None or job.status != Status.QUEUED:
            return False
        await self.queue.abort(job, "scope erased")
        return True

    async def record_failure(self, key: str, kind: str, scope: dict[str, Any], error: str, attempts: int) -> None:
        """A job out of retries goes to the dead-letter list (newest first, bounded)."""
        entry = FailedJob(key=key, kind=kind, scope=scope, error=error[-2000:], attempts=attempts, at=time.time())
        async with self.redis.pipeline(transaction=True) as pipe:
            await (
                pipe.lpush(self._dead_key, json.dumps(asdict(entry)))
                .ltrim(self._dead_key, 0, DEAD_LETTERS_KEPT - 1)
                .incr(self._failed_key)
                .execute()
            )

    async def stats(self, dead_letters: int = 20) -> QueueStats:
        info = await self.queue.info()
        raw = await self.redis.lrange(self._dead_key, 0, max(0, dead_letters - 1)) if dead_letters else []
        failed_total = int(await self.redis.get(self._failed_key) or 0)
        return QueueStats(
            backend=self.backend,
            queued=int(info["queued"]),
            running=int(info["active"]),
            scheduled=int(info["scheduled"]),
            failed_total=failed_total,
            workers=len(info["workers"]),
            dead_letters=[FailedJob(**json.loads(item)) for item in raw],
        )

    async def close(self) -> None:
        await self.queue.disconnect()
