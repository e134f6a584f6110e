"""`MemoryClient` (blocking) and `AsyncMemoryClient` (asyncio) over httpx, and their retry policy.

Both send the same `Call`s (`client/calls.py`) and differ only in how they wait. 429 and 503
answers, and connections that never reached the server, are retried with exponential backoff
(honouring `Retry-After`); `RetryPolicy` decides, for both clients, whether and how long to
wait before the next try.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import httpx

from memory_service.client.calls import Call, Calls, T
from memory_service.client.errors import ConnectionFailed, error_from_response
from memory_service.domain import Event, EventIn, MemoryUnit
from memory_service.schemas import (
    ContextResponse,
    DeleteResponse,
    EventDeleteResponse,
    EventPage,
    Health,
    IngestResponse,
    JobsResponse,
    MemoryHistory,
    MemoryPage,
    ScopeDeleteResponse,
)

DEFAULT_URL = "http://127.0.0.1:8080"
URL_ENV = "MEMORY_SERVICE_URL"
API_KEY_ENV = "MEMORY_SERVICE_API_KEY"

# Connection never made: the request did not reach the server, so any call may be retried.
_RETRYABLE_TRANSPORT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: try n waits up to min(max_delay, base_delay * 2**n)."""

    max_retries: int = 4
    base_delay: float = 0.25
    max_delay: float = 8.0
    statuses: frozenset[int] = field(default_factory=lambda: frozenset({429, 503}))

    def delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        if response is not None:
            retry_after = response.headers.get("retry-after")
            if retry_after is not None:
                try:
                    return min(self.max_delay, max(0.0, float(retry_after)))
                except ValueError:
                    pass
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))

    def after_response(self, attempt: int, response: httpx.Response) -> float | None:
        """Seconds to wait before trying again after try `attempt` got `response`; None: it is the answer."""
        if response.status_code not in self.statuses or attempt >= self.max_retries:
            return None
        return self.delay(attempt, response)

    def after_error(self, call: Call[Any], attempt: int, exc: httpx.HTTPError) -> float:
        """Seconds to wait before trying again after try `attempt` failed in transport; raises
        `ConnectionFailed` when the request may have reached the server or the retries are spent."""
        if isinstance(exc, _RETRYABLE_TRANSPORT) and attempt < self.max_retries:
            return self.delay(attempt)
        raise ConnectionFailed(f"{call.method} {call.path}: {exc!r}") from exc


NO_RETRY = RetryPolicy(max_retries=0)


def _http_options(base_url: str | None, api_key: str | None, timeout: float) -> dict[str, Any]:
    """httpx client options: `base_url` defaults to $MEMORY_SERVICE_URL, then DEFAULT_URL; `api_key`
    to $MEMORY_SERVICE_API_KEY (sent as `Authorization: Bearer ...`)."""
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
    return {
        "base_url": (base_url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/"),
        "headers": {"authorization": f"Bearer {key}"} if key else {},
        "timeout": timeout,
    }


def _parse(call: Call[T], response: httpx.Response) -> T:
    if response.is_success:
        return call.model.model_validate_json(response.content)
    raise error_from_response(response)


class MemoryClient:
    """Blocking client. `base_url` defaults to $MEMORY_SERVICE_URL, then http://127.0.0.1:8080;
    `api_key` to $MEMORY_SERVICE_API_KEY (sent as `Authorization: Bearer ...`)."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        retry: RetryPolicy = RetryPolicy(),
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.retry = retry
        self._http = httpx.Client(**_http_options(base_url, api_key, timeout), transport=transport)

    def __enter__(self) -> MemoryClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def send(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = self._http.request(call.method, call.path, params=call.params, json=call.json())
            except httpx.HTTPError as exc:
                wait = self.retry.after_error(call, attempt, exc)
            else:
                wait = self.retry.after_response(attempt, response)
                if wait is None:
                    return _parse(call, response)
            time.sleep(wait)
            attempt += 1

    def ingest(self, events: Sequence[EventIn | Mapping[str, Any]], *, wait: bool = False) -> IngestResponse:
        return self.send(Calls.ingest(events, wait))

    def context(
        self, query: str, *, user_id: str | None = None, agent_id: str | None = None,
        session_id: str | None = None, budget_tokens: int | None = None,
        format: Literal["text", "json", "messages"] | None = None, as_of: datetime | None = None, **fields: Any,
    ) -> ContextResponse:
        """`as_of`: answer from the units valid then. `fields` carries any other `ContextRequest` field."""
        return self.send(Calls.context(
            query, user_id=user_id, agent_id=agent_id, session_id=session_id,
            budget_tokens=budget_tokens, format=format, as_of=as_of, **fields,
        ))

    def list_memories(
        self, *, user_id: str | None = None, agent_id: str | None = None, session_id: str | None = None,
        limit: int = 100, offset: int = 0,
    ) -> MemoryPage:
        return self.send(Calls.list_memories(user_id, agent_id, session_id, limit, offset))

    def iter_memories(
        self, *, user_id: str | None = None, agent_id: str | None = None, session_id: str | None = None,
        page_size: int = 500,
    ) -> Iterator[MemoryUnit]:
        offset: int | None = 0
        while offset is not None:
            page = self.list_memories(user_id=user_id, agent_id=agent_id, session_id=session_id, limit=page_size, offset=offset)
            yield from page.memories
            offset = page.next_offset

    def get_memory(self, unit_id: int) -> MemoryUnit:
        return self.send(Calls.get_memory(unit_id))

    def memory_history(self, unit_id: int) -> MemoryHistory:
        """The unit with the units it replaced and those that replaced it."""
        return self.send(Calls.memory_history(unit_id))

    def delete_memory(self, unit_id: int) -> DeleteResponse:
        return self.send(Calls.delete_memory(unit_id))

    def list_events(
        self, *, user_id: str | None = None, agent_id: str | None = None, session_id: str | None = None,
        limit: int = 100, offset: int = 0, event_id_prefix: str | None = None,
    ) -> EventPage:
        return self.send(Calls.list_events(user_id, agent_id, session_id, limit, offset, event_id_prefix))

    def iter_events(
        self, *, user_id: str | None = None, agent_id: str | None = None, session_id: str | None = None,
        event_id_prefix: str | None = None, page_size: int = 1000,
    ) -> Iterator[Event]:
        offset: int | None = 0
        while offset is not None:
            page = self.list_events(
                user_id=user_id, agent_id=agent_id, session_id=session_id,
                limit=page_size, offset=offset, event_id_prefix=event_id_prefix,
            )
            yield from page.events
            offset = page.next_offset

    def get_event(self, event_id: str) -> Event:
        return self.send(Calls.get_event(event_id))

    def delete_event(self, event_id: str) -> EventDeleteResponse:
        """Erase a raw event and every unit restated from it."""
        return self.send(Calls.delete_event(event_id))

    def jobs(self, *, dead_letters: int = 20) -> JobsResponse:
        """Job queue state, with up to `dead_letters` recent failed jobs."""
        return self.send(Calls.jobs(dead_letters))

    def erase_scope(
        self, *, user_id: str | None = None, agent_id: str | None = None, session_id: str | None = None
    ) -> ScopeDeleteResponse:
        """Erase everything stored for a scope (events, memories, index and cache entries); idempotent."""
        return self.send(Calls.erase_scope(user_id, agent_id, session_id))

    def health(self) -> Health:
        return self.send(Calls.health())


class AsyncMemoryClient:
    """The asyncio twin of `MemoryClient` (same arguments, same methods, awaited)."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        retry: RetryPolicy = RetryPolicy(),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retry = retry
        self._http = httpx.AsyncClient(**_http_options(base_url, api_key, timeout), transport=transport)

    async def __aenter__(self) -> AsyncMemoryClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def send(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = await self._http.request(call.method, call.path, params=call.params, json=call.json())
            except httpx.HTTPError as exc:
                wait = self.retry.after_error(call, attempt, exc)
            else:
                wait = self.retry.after_response(attempt, response)
                if wait is None:
                    return _parse(call, response)
            await asyncio.sleep(wait)
            attempt += 1

    async def ingest(self, events: Sequence[EventIn | Mapping[str, Any]], *, wait: bool = False) -> IngestResponse:
        return await self.send(Calls.ingest(events, wait))

    async def context(
        self, query: str, *, user_id: str | None = None, agent_id: str | None = None,
        session_id: str | None = None, budget_tokens: int | None = None,
        format: Literal["text", "json", "messages"] | None = None, as_of: datetime | None = None, **fields: Any,
    ) -> ContextResponse:
        return await self.send(Calls.context(
            query, user_id=user_id, agent_id=agent_id, session_id=session_id,
            budget_tokens=budget_tokens, format=format, as_of=as_of, **fields,
        ))

    async def list_memories(
        self, *, user_id: str | None = None, agent_id: str | None = None, session_id: str | None = None,
        limit: int = 100, offset: int = 0,
    ) -> MemoryPage:
        return await self.send(Calls.list_memories(user_id, agent_id, session_id, limit, offset))

    async def iter_memories(
        self, *, user_id: str | None = None, agent_id: str | None = None, session_id: str | None = None,
        page_size: int = 500,
    ) -> AsyncIterator[MemoryUnit]:
        offset: int | None = 0
        while offset is not None:
            page = await self.list_memories(
                user_id=user_id, agent_id=agent_id, session_id=session_id, limit=page_size, offset=offset
            )
            for unit in page.memories:
                yield unit
            offset = page.next_offset

    async def get_memory(self, unit_id: int) -> MemoryUnit:
        return await self.send(Calls.get_memory(unit_id))

    async def memory_history(self, unit_id: int) -> MemoryHistory:
        return await self.send(Calls.memory_history(unit_id))

    async def delete_memory(self, unit_id: int) -> DeleteResponse:
        return await self.send(Calls.delete_memory(unit_id))

    async def list_events(
        self, *, user_id: str | None = None, agent_id: str | None = None, session_id: str | None = None,
        limit: int = 100, offset: int = 0, event_id_prefix: str | None = None,
    ) -> EventPage:
        return await self.send(Calls.list_events(user_id, agent_id, session_id, limit, offset, event_id_prefix))

    async def iter_events(
        self, *, user_id: str | None = None, agent_id: str | None = None, session_id: str | None = None,
        event_id_prefix: str | None = None, page_size: int = 1000,
    ) -> AsyncIterator[Event]:
        offset: int | None = 0
        while offset is not None:
            page = await self.list_events(
                user_id=user_id, agent_id=agent_id, session_id=session_id,
                limit=page_size, offset=offset, event_id_prefix=event_id_prefix,
            )
            for event in page.events:
                yield event
            offset = page.next_offset

    async def get_event(self, event_id: str) -> Event:
        return await self.send(Calls.get_event(event_id))

    async def delete_event(self, event_id: str) -> EventDeleteResponse:
        return await self.send(Calls.delete_event(event_id))

    async def jobs(self, *, dead_letters: int = 20) -> JobsResponse:
        return await self.send(Calls.jobs(dead_letters))

    async def erase_scope(
        self, *, user_id: str | None = None, agent_id: str | None = None, session_id: str | None = None
    ) -> ScopeDeleteResponse:
        return await self.send(Calls.erase_scope(user_id, agent_id, session_id))

    async def health(self) -> Health:
        return await self.send(Calls.health())
