"""The call table: every endpoint of the REST API described once, as a `Call`.

A `Call` is the method, path, query parameters and body of one request and the model its
answer parses into; `MemoryClient` and `AsyncMemoryClient` (`client/http.py`) only send
them. The integrations build calls too (`Calls.context(...)`) and hand them to either client.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

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
