"""The embedded job runner: compression and consolidation in the API process, on asyncio.

Jobs carry only a kind and a scope; the work itself is derived from SQL state, so a job
submitted twice or lost on a crash is harmless: the next start resubmits every scope
that still has work (see `MemoryService.reconcile`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Awaitable, Callable

from memory_service import metrics
from memory_service.domain import Scope
from stores.job_queue import DEAD_LETTERS_KEPT, FailedJob, JobKind, QueueStats, job_key

log = logging.getLogger(__name__)

CompressHandler = Callable[[list[Scope]], Awaitable[object]]
ConsolidateHandler = Callable[[Scope], Awaitable[object]]


class InProcessJobs:
    backend = "in-process"

    def __init__(self, compress: CompressHandler, consolidate: ConsolidateHandler) -> None:
        self.compress = compress
        self.consolidate = consolidate
        self._queue: asyncio.Queue[tuple[JobKind, Scope]] = asyncio.Queue()
        self._waiting: dict[tuple[JobKind, Scope], asyncio.Future[None]] = {}
        self._task: asyncio.Task[None] | None = None
        self._busy = False
        self.failed_total = 0
        self.dead_letters: list[FailedJob] = []

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="memory-service-jobs")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def submit(self, kind: JobKind, scope: Scope) -> asyncio.Future[None]:
        """Queue a job; one already queued (not yet running) is shared, not repeated."""
        future = self._waiting.get((kind, scope))
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._waiting[(kind, scope)] = future
            self._queue.put_nowait((kind, scope))
        return future

    async def enqueue(self, kind: JobKind, scope: Scope) -> bool:
        fresh = (kind, scope) not in self._waiting
        self.submit(kind, scope)
        return fresh

    async def cancel(self, kind: JobKind, scope: Scope) -> bool:
        """In-process jobs stay queued: one whose scope was erased finds no work in SQL and does nothing."""
        return False

    async def stats(self, dead_letters: int = 20) -> QueueStats:
        return QueueStats(
            backend=self.backend,
            queued=self._queue.qsize(),
            running=int(self._busy),
            scheduled=0,
            failed_total=self.failed_total,
            workers=int(self.running),
            dead_letters=self.dead_letters[:dead_letters],
        )

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._busy = True
            try:
                compress = [scope for kind, scope in batch if kind is JobKind.compress]
                if compress:
                    # One call for all scopes: the pipeline batches embedding across them.
                    await self._attempt(JobKind.compress, compress, lambda c=compress: self.compress(c))
                for kind, scope in batch:
                    if kind is JobKind.consolidate:
                        await self._attempt(kind, [scope], lambda s=scope: self.consolidate(s))
            finally:
                self._busy = False

    async def _attempt(self, kind: JobKind, scopes: list[Scope], run: Callable[[], Awaitable[object]]) -> None:
        futures = [self._waiting.pop((kind, s)) for s in scopes]
        try:
            await run()
        except asyncio.CancelledError:
            for future in futures:
                future.cancel()
            raise
        except Exception as exc:  # the work stays outstanding in SQL; the next reconcile retries it
            self.failed_total += 1
            metrics.JOBS_FAILED.labels(str(kind)).inc()
            log.exception("%s job for %d scope(s) failed", kind, len(scopes))
            error = traceback.format_exc()[-2000:]
            for scope in scopes:
                self.dead_letters.insert(
                    0, FailedJob(job_key(kind, scope), str(kind), scope.model_dump(), error, 1, time.time())
                )
            del self.dead_letters[DEAD_LETTERS_KEPT:]
            for future in futures:
                if not future.done():
                    future.set_exception(exc)
                    future.exception()  # retrieved here so an unawaited future does not warn
        else:
            for future in futures:
                if not future.done():
                    future.set_result(None)
