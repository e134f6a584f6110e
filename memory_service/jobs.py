"""The embedded in-process job runner: compress a scope's pending events in the background.

Jobs carry only a scope; the work itself is derived from SQL state (events not yet
compressed), so a job submitted twice or lost on a crash is harmless: the next
start resubmits every scope that still has pending events.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from memory_service.domain import Scope

log = logging.getLogger(__name__)

ScopesHandler = Callable[[list[Scope]], Awaitable[object]]


class InProcessJobs:
    def __init__(self, handler: ScopesHandler) -> None:
        self.handler = handler
        self._queue: asyncio.Queue[Scope] = asyncio.Queue()
        self._waiting: dict[Scope, asyncio.Future[None]] = {}
        self._task: asyncio.Task[None] | None = None
        self.failed = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="memory-service-jobs")

    async def stop(self) -> None:
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

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def submit(self, scope: Scope) -> asyncio.Future[None]:
        """Queue a scope; a scope already queued (not yet running) shares that job."""
        future = self._waiting.get(scope)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._waiting[scope] = future
            self._queue.put_nowait(scope)
        return future

    async def _run(self) -> None:
        while True:
            # Everything queued so far goes in one call: the pipeline batches across scopes.
            scopes = [await self._queue.get()]
            while not self._queue.empty():
                scopes.append(self._queue.get_nowait())
            futures = [self._waiting.pop(scope) for scope in scopes]
            try:
                await self.handler(scopes)
            except asyncio.CancelledError:
                for future in futures:
                    future.cancel()
                raise
            except Exception as exc:  # the events stay pending and are retried on the next submit/start
                self.failed += 1
                log.exception("compression of %d scope(s) failed", len(scopes))
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for future in futures:
                    if not future.done():
                        future.set_result(None)
