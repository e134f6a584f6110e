"""The service in this process, with no server: for tests, notebooks and embedded agents.

`InProcessService` opens a `MemoryService` on an event loop of its own, in a background
thread, and hands out ordinary `MemoryClient` / `AsyncMemoryClient` objects whose httpx
transport passes each request to the FastAPI app on that loop (no socket). Requests go
through exactly the routes, validation and error mapping a remote client meets; the
integrations (`memory_service.integrations`) take these clients and cannot tell the
difference. It lives in `api` because it needs the app, and `memory_service` must not
import `api`.

The service gets its own loop because it is bound to the loop it was opened on (its
engine, locks and job runner), while its callers are anything from a plain thread
(LangGraph's sync `invoke`) to another event loop (pytest, Jupyter, `ainvoke`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from concurrent.futures import Future
from typing import Any, TypeVar

import httpx

from api.app import create_app
from memory_service.client import AsyncMemoryClient, MemoryClient, RetryPolicy
from memory_service.index.embedding import Embedder
from memory_service.service import MemoryService
from memory_service.settings import Settings

R = TypeVar("R")

BASE_URL = "http://memory-service.local"


class _LoopBridge:
    """Runs ASGI requests on the service's loop, whoever calls."""

    def __init__(self, asgi: httpx.ASGITransport, loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
        self._asgi = asgi
        self._loop = loop
        self._thread = thread

    async def _handle(self, method: str, url: httpx.URL, headers: httpx.Headers, body: bytes) -> httpx.Response:
        request = httpx.Request(method, url, headers=headers, content=body)
        response = await self._asgi.handle_async_request(request)
        content = await response.aread()
        return httpx.Response(response.status_code, headers=response.headers, content=content)

    def submit(self, request: httpx.Request, body: bytes) -> Future[httpx.Response]:
        if threading.current_thread() is self._thread:
            raise RuntimeError("a blocking call into the in-process service from its own loop would deadlock")
        return asyncio.run_coroutine_threadsafe(
            self._handle(request.method, request.url, request.headers, body), self._loop
        )


class _SyncTransport(httpx.BaseTransport):
    def __init__(self, bridge: _LoopBridge) -> None:
        self._bridge = bridge

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._bridge.submit(request, request.read()).result()


class _AsyncTransport(httpx.AsyncBaseTransport):
    def __init__(self, bridge: _LoopBridge) -> None:
        self._bridge = bridge

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await asyncio.wrap_future(self._bridge.submit(request, await request.aread()))


class InProcessService:
    """`with InProcessService(settings) as local: client = local.client()`.

    `embedder` shares an already loaded model (tests); `open_kwargs` go to `MemoryService.open`.
    Closing it closes the service (jobs stop, indexes are saved) and ends the thread.
    """

    def __init__(self, settings: Settings | None = None, *, embedder: Embedder | None = None, **open_kwargs: Any) -> None:
        self.settings = settings or Settings()
        self._embedder = embedder
        self._open_kwargs = open_kwargs
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="memory-service-inprocess", daemon=True)
        self._service: MemoryService | None = None
        self._bridge: _LoopBridge | None = None

    def __enter__(self) -> InProcessService:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    def run(self, coro: Awaitable[R]) -> R:
        """Run a coroutine on the service's loop and wait for it (e.g. `local.run(local.service.compress_pending())`)."""
        return asyncio.run_coroutine_threadsafe(_awaited(coro), self._loop).result()

    def start(self) -> InProcessService:
        if self._service is not None:
            return self
        self._thread.start()
        try:
            self._service = self.run(MemoryService.open(self.settings, embedder=self._embedder, **self._open_kwargs))
        except BaseException:
            self._stop_loop()
            raise
        asgi = httpx.ASGITransport(app=create_app(self.settings, service=self._service))
        self._bridge = _LoopBridge(asgi, self._loop, self._thread)
        return self

    @property
    def service(self) -> MemoryService:
        if self._service is None:
            raise RuntimeError("InProcessService is not started")
        return self._service

    def client(
        self, *, retry: RetryPolicy | None = None, timeout: float = 300.0, api_key: str | None = None
    ) -> MemoryClient:
        """`api_key`: the tenant's key (default $MEMORY_SERVICE_API_KEY; none needed while no key exists)."""
        transport = _SyncTransport(self._started())
        return MemoryClient(BASE_URL, transport=transport, retry=retry or RetryPolicy(), timeout=timeout, api_key=api_key)

    def async_client(
        self, *, retry: RetryPolicy | None = None, timeout: float = 300.0, api_key: str | None = None
    ) -> AsyncMemoryClient:
        transport = _AsyncTransport(self._started())
        return AsyncMemoryClient(
            BASE_URL, transport=transport, retry=retry or RetryPolicy(), timeout=timeout, api_key=api_key
        )

    def create_key(self, tenant: str, *, name: str | None = None, rate_limit_per_minute: int | None = None) -> str:
        """A new API key for `tenant` (from then on every request needs a key)."""
        from memory_service.auth import create_key

        return self.run(create_key(self.service.store, tenant, name, rate_limit_per_minute)).key

    def close(self) -> None:
        if self._service is not None:
            try:
                self.run(self._service.close())
            finally:
                self._service = None
                self._bridge = None
                self._stop_loop()

    def _started(self) -> _LoopBridge:
        if self._bridge is None:
            raise RuntimeError("InProcessService is not started")
        return self._bridge

    def _stop_loop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        self._loop.close()


async def _awaited(coro: Awaitable[R]) -> R:
    return await coro
