"""Each operation of the service as every door performs it: the REST API, the MCP tools and the
web inspector all call these, so one input gets one answer and one error message everywhere.

Request model in, response model out; a request the service refuses raises `Refused` with the
HTTP status REST answers and the message every door shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from memory_service.context.response import context_response
from memory_service.domain import MemoryUnit, Scope
from memory_service.ingest.events import BatchTooLarge, InvalidBatch
from memory_service.schemas import (
    ContextRequest,
    ContextResponse,
    DeleteResponse,
    EventDeleteResponse,
    IngestRequest,
    IngestResponse,
    JobsResponse,
    MemoryHistory,
    ScopeDeleteResponse,
    ScopeInfo,
    ScopesResponse,
)
from memory_service.service import MemoryService
from stores.sql.erasure import ErasedScope

M = TypeVar("M", bound=BaseModel)


class Refused(Exception):
    """A request the service will not carry out; nothing was changed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _field(loc: Sequence[object]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


def validation_message(errors: Sequence[Any]) -> str:
    """The one-line 422 `detail`: `field.path: message` for the first five errors."""
    return "; ".join(f"{_field(tuple(e.get('loc', ())))}: {e.get('msg')}" for e in errors[:5])


def parse(model: type[M], data: dict[str, Any]) -> M:
    """`data` as `model` (what REST does to a body), or `Refused(422)` with REST's message."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Refused(422, validation_message(exc.errors())) from None


def scope_for(tenant: str, user_id: str | None, agent_id: str | None, session_id: str | None = None) -> Scope:
    try:
        return Scope(tenant=tenant, user_id=user_id, agent_id=agent_id, session_id=session_id)
    except ValidationError:
        raise Refused(422, "scope missing: give user_id or agent_id") from None


async def ingest(svc: MemoryService, tenant: str, body: IngestRequest) -> IngestResponse:
    try:
        result = await svc.ingest(body.events, tenant=tenant, wait=body.wait)
    except BatchTooLarge as exc:
        raise Refused(413, str(exc)) from None
    except InvalidBatch as exc:
        raise Refused(422, str(exc)) from None
    except TimeoutError as exc:  # Redis mode with wait: stored, workers still busy
        raise Refused(504, str(exc)) from None
    return IngestResponse(accepted=result.accepted, event_ids=result.event_ids)


async def context(svc: MemoryService, tenant: str, body: ContextRequest) -> ContextResponse:
    scope = scope_for(tenant, body.user_id, body.agent_id, body.session_id)
    result = await svc.context(scope, body.query, body.budget_tokens, body.format, as_of=body.as_of)
    return context_response(result)


async def memory(svc: MemoryService, tenant: str, unit_id: int) -> MemoryUnit:
    unit = await svc.get_memory(unit_id, tenant)
    if unit is None:
        raise Refused(404, f"memory {unit_id} not found")
    return unit


async def history(svc: MemoryService, tenant: str, unit_id: int) -> MemoryHistory:
    versions = await svc.memory_history(unit_id, tenant)
    if not versions:
        raise Refused(404, f"memory {unit_id} not found")
    return MemoryHistory(id=unit_id, versions=versions)


async def delete_memory(svc: MemoryService, tenant: str, unit_id: int) -> DeleteResponse:
    if not await svc.delete_memory(unit_id, tenant):
        raise Refused(404, f"memory {unit_id} not found")
    return DeleteResponse(deleted=True, id=unit_id)


async def erase_event(svc: MemoryService, tenant: str, event_id: str) -> EventDeleteResponse:
    erased = await svc.erase_event(event_id, tenant)
    if erased is None:
        raise Refused(404, f"event {event_id} not found")
    return EventDeleteResponse(deleted=True, event_id=event_id, units_deleted=erased.unit_ids)


def _erasure(scope: Scope, erased: ErasedScope) -> ScopeDeleteResponse:
    return ScopeDeleteResponse(
        erased=bool(erased.event_ids or erased.unit_ids),
        user_id=scope.user_id,
        agent_id=scope.agent_id,
        session_id=scope.session_id,
        events_deleted=len(erased.event_ids),
        units_deleted=len(erased.unit_ids),
        events_restated=len(erased.recompress),
        compression_cache_entries_deleted=erased.cache_entries,
        jobs_cancelled=erased.jobs_cancelled,
    )


async def erase_scope(svc: MemoryService, scope: Scope) -> ScopeDeleteResponse:
    return _erasure(scope, await svc.erase_scope(scope))


async def jobs(svc: MemoryService, tenant: str, dead_letters: int = 20) -> JobsResponse:
    try:
        stats = await svc.job_stats(dead_letters)
    except Exception as exc:  # Redis unreachable: say so instead of a 500
        raise Refused(503, f"job queue unavailable: {exc}") from None
    own = [f for f in stats.dead_letters if f.scope.get("tenant") == tenant]  # another tenant's scopes stay hidden
    return JobsResponse.model_validate(
        {**asdict(stats), "dead_letters": [{**asdict(f), "at": datetime.fromtimestamp(f.at, UTC)} for f in own]}
    )


async def scopes(svc: MemoryService, tenant: str) -> ScopesResponse:
    return ScopesResponse(scopes=[ScopeInfo(**asdict(s)) for s in await svc.list_scopes(tenant)])
