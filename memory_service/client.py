"""Python client for the REST API: `MemoryClient` (sync) and `AsyncMemoryClient` (asyncio), over httpx.

Both are typed with the API's own models (`memory_service.schemas`, `memory_service.domain`).
Every endpoint is described once as a `Call` (method, path, body, response model); the two
clients only differ in how they send it. 429 and 503 answers, and connections that never
reached the server, are retried with exponential backoff (honouring `Retry-After`). Events
are given an `event_id` before the first try, so a retried ingest cannot store them twice.

For a service in this process (no server), see `api.inprocess.InProcessService`.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from memory_service.domain import Event, EventIn, MemoryUnit
from memory_service.schemas import (
    ContextRequest,
    ContextResponse,
    DeleteResponse,
    EventDeleteResponse,
    EventPage,
    Health,
    IngestRequest,
    IngestResponse,
    JobsResponse,
    MemoryHistory,
    MemoryPage,
    ScopeDeleteResponse,
)

T = TypeVar("T", bound=BaseModel)

DEFAULT_URL = "http://127.0.0.1:8080"
URL_ENV = "MEMORY_SERVICE_URL"
API_KEY_ENV = "MEMORY_SERVICE_API_KEY"


# -- errors ---------------------------------------------------------------------


class MemoryServiceError(Exception):
    """A request failed. `message` is the server's `detail` when it sent one."""

    def __init__(self, message: str, status_code: int | None = None, body: Any = None) -> None:
        super().__init__(f"{status_code}: {message}" if status_code else message)
        self.message = message
        self.status_code = status_code
        self.body = body


class ConnectionFailed(MemoryServiceError):
    """The server could not be reached (after the retries)."""


class InvalidRequest(MemoryServiceError):
    """400 or 422: the message names the offending field."""


class AuthenticationFailed(MemoryServiceError):
    """401 or 403: missing or wrong API key."""


class NotFound(MemoryServiceError):
    """404."""


class PayloadTooLarge(MemoryServiceError):
    """413: over the service's size limits."""


class RateLimited(MemoryServiceError):
    """429, after the retries."""


class ServiceUnavailable(MemoryServiceError):
    """503, after the retries."""


class ServerError(MemoryServiceError):
    """Any other 5xx."""


_ERRORS: dict[int, type[MemoryServiceError]] = {
    400: InvalidRequest,
    401: AuthenticationFailed,
    403: AuthenticationFailed,
    404: NotFound,
    413: PayloadTooLarge,
    422: InvalidRequest,
    429: RateLimited,
    503: ServiceUnavailable,
}


def error_from_response(response: httpx.Response) -> MemoryServiceError:
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):  # FastAPI's default validation shape
        detail = "; ".join(f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}" for d in detail if isinstance(d, dict))
    message = str(detail) if detail else (body if isinstance(body, str) and body else response.reason_phrase)
    status = response.status_code
    kind = _ERRORS.get(status, ServerError if status >= 500 else MemoryServiceError)
    return kind(message, status, body)


# -- retries --------------------------------------------------------------------


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


NO_RETRY = RetryPolicy(max_retries=0)


# -- calls ----------------------------------------------------------------------


@dataclass(frozen=True)
class Call(Generic[T]):
    """One REST request and the model its answer parses into."""

    method: Literal["GET", "POST", "DELETE"]
    path: str
    model: type[T]
    params: Mapping[str, Any] | None = None
    body: BaseModel | None = None

    def json(self) -> Any:
        return None if self.body is None else self.body.model_dump(mode="json", exclude_unset=True)


def _scope(user_id: str | None, agent_id: str | None, session_id: str | None) -> dict[str, str]:
    given = {"user_id": user_id, "agent_id": agent_id, "session_id": session_id}
    return {k: v for k, v in given.items() if v is not None}


def _with_ids(events: Sequence[EventIn | Mapping[str, Any]]) -> list[EventIn]:
    out: list[EventIn] = []
    for event in events:
        e = event if isinstance(event, EventIn) else EventIn.model_validate(event)
        if e.event_id is None:
            e = e.model_copy(update={"event_id": uuid.uuid4().hex})
        out.append(e)
    return out


class Calls:
    """Every endpoint of the API as a `Call`; the clients send them."""

    @staticmethod
    def ingest(events: Sequence[EventIn | Mapping[str, Any]], wait: bool = False) -> Call[IngestResponse]:
        body = IngestRequest(events=_with_ids(events), wait=wait)
        return Call("POST", "/v1/events", IngestResponse, body=body)

    @staticmethod
    def context(query: str, **fields: Any) -> Call[ContextResponse]:
        given = {k: v for k, v in fields.items() if v is not None}
        return Call("POST", "/v1/context", ContextResponse, body=ContextRequest(query=query, **given))

    @staticmethod
    def list_memories(
        user_id: str | None = None, agent_id: str | None = None, session_id: str | None = None,
        limit: int = 100, offset: int = 0,
    ) -> Call[MemoryPage]:
        params = {**_scope(user_id, agent_id, session_id), "limit": limit, "offset": offset}
        return Call("GET", "/v1/memories", MemoryPage, params=params)

    @staticmethod
    def get_memory(unit_id: int) -> Call[MemoryUnit]:
        return Call("GET", f"/v1/memories/{int(unit_id)}", MemoryUnit)

    @staticmethod
    def memory_history(unit_id: int) -> Call[MemoryHistory]:
        return Call("GET", f"/v1/memories/{int(unit_id)}/history", MemoryHistory)

    @staticmethod
    def jobs(dead_letters: int = 20) -> Call[JobsResponse]:
        return Call("GET", "/v1/jobs", JobsResponse, params={"dead_letters": dead_letters})

    @staticmethod
    def delete_memory(unit_id: int) -> Call[DeleteResponse]:
        return Call("DELETE", f"/v1/memories/{int(unit_id)}", DeleteResponse)

    @staticmethod
    def list_events(
        user_id: str | None = None, agent_id: str | None = None, session_id: str | None = None,
        limit: int = 100, offset: int = 0, event_id_prefix: str | None = None,
    ) -> Call[EventPage]:
        params: dict[str, Any] = {**_scope(user_id, agent_id, session_id), "limit": limit, "offset": offset}
        if event_id_prefix:
            params["event_id_prefix"] = event_id_prefix
        return Call("GET", "/v1/events", EventPage, params=params)

    @staticmethod
    def get_event(event_id: str) -> Call[Event]:
        return Call("GET", f"/v1/events/{quote(event_id, safe='')}", Event)

    @staticmethod
    def delete_event(event_id: str) -> Call[EventDeleteResponse]:
        return Call("DELETE", f"/v1/events/{quote(event_id, safe='')}", EventDeleteResponse)

    @staticmethod
    def erase_scope(
        user_id: str | None = None, agent_id: str | None = None, session_id: str | None = None
    ) -> Call[ScopeDeleteResponse]:
        return Call("DELETE", "/v1/scopes", ScopeDeleteResponse, params=_scope(user_id, agent_id, session_id))

    @staticmethod
    def health() -> Call[Health]:
        return Call("GET", "/healthz", Health)


# -- clients --------------------------------------------------------------------


def _headers(api_key: str | None) -> dict[str, str]:
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
    return {"authorization": f"Bearer {key}"} if key else {}


def _base_url(base_url: str | None) -> str:
    return (base_url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")


def _parse(call: Call[T], response: httpx.Response) -> T:
    if response.is_success:
        return call.model.model_validate_json(response.content)
    raise error_from_response(response)


# Connection never made: the request did not reach the server, so any call may be retried.
_RETRYABLE_TRANSPORT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


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
        self._http = httpx.Client(
            base_url=_base_url(base_url), headers=_headers(api_key), timeout=timeout, transport=transport
        )

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
            except _RETRYABLE_TRANSPORT as exc:
                if attempt >= self.retry.max_retries:
                    raise ConnectionFailed(f"{call.method} {call.path}: {exc!r}") from exc
                time.sleep(self.retry.delay(attempt))
            except httpx.HTTPError as exc:
                raise ConnectionFailed(f"{call.method} {call.path}: {exc!r}") from exc
            else:
                if response.status_code not in self.retry.statuses or attempt >= self.retry.max_retries:
                    return _parse(call, response)
                time.sleep(self.retry.delay(attempt, response))
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
        self._http = httpx.AsyncClient(
            base_url=_base_url(base_url), headers=_headers(api_key), timeout=timeout, transport=transport
        )

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
            except _RETRYABLE_TRANSPORT as exc:
                if attempt >= self.retry.max_retries:
                    raise ConnectionFailed(f"{call.method} {call.path}: {exc!r}") from exc
                await asyncio.sleep(self.retry.delay(attempt))
            except httpx.HTTPError as exc:
                raise ConnectionFailed(f"{call.method} {call.path}: {exc!r}") from exc
            else:
                if response.status_code not in self.retry.statuses or attempt >= self.retry.max_retries:
                    return _parse(call, response)
                await asyncio.sleep(self.retry.delay(attempt, response))
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
