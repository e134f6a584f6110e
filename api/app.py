"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from api.auth import AccessGuard, check_binding
from api.db_errors import install_unavailable_handlers
from api.metrics import install_metrics
from api.openapi_errors import install_error_docs
from api.request_context import install_request_context
from memory_service.context.response import context_response
from memory_service.domain import Event, MemoryUnit, Scope
from memory_service.ingest.events import BatchTooLarge, InvalidBatch
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
    LMProcessHealth,
    MemoryHistory,
    MemoryPage,
    ScopeDeleteResponse,
)
from memory_service.service import MemoryService
from memory_service.settings import Settings


def _field(loc: tuple[object, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    message = "; ".join(f"{_field(tuple(e.get('loc', ())))}: {e.get('msg')}" for e in errors[:5])
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content={"detail": message, "errors": [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in errors]},
    )


def get_service(request: Request) -> MemoryService:
    return request.app.state.service


async def tenant_of(request: Request) -> str:
    """The tenant of the request's API key (401 / 429 otherwise), also left on `request.state.tenant`."""
    guard: AccessGuard = request.app.state.guard
    identity = await guard.identify(request, request.app.state.service.store)
    request.state.tenant = identity.tenant
    request.state.api_key_id = identity.key_id
    await guard.limit(identity)
    return identity.tenant


Service = Annotated[MemoryService, Depends(get_service)]
Tenant = Annotated[str, Depends(tenant_of)]


def query_scope(
    tenant: Tenant,
    user_id: str | None = None,
    agent_id: str | None = None,
    session_id: str | None = None,
) -> Scope:
    try:
        return Scope(tenant=tenant, user_id=user_id, agent_id=agent_id, session_id=session_id)
    except ValidationError:
        raise HTTPException(422, "scope missing: give user_id or agent_id") from None


QueryScope = Annotated[Scope, Depends(query_scope)]
Limit = Annotated[int, Query(ge=1, le=1000)]
# Bounded so an out-of-range number is a 422, not a database overflow (500).
Offset = Annotated[int, Query(ge=0, le=2**31 - 1)]
UnitId = Annotated[int, Path(ge=-(2**63), le=2**63 - 1, description="A memory unit id (int64).")]


def create_app(settings: Settings | None = None, service: MemoryService | None = None) -> FastAPI:
    """The app. With `service` given, the caller owns its lifecycle (tests, embedding)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if service is not None:
            await check_binding(settings, service.store)
            try:
                yield
            finally:
                await app.state.guard.close()
            return
        app.state.service = await MemoryService.open(settings)
        try:
            await check_binding(settings, app.state.service.store)  # not on 0.0.0.0 without keys
            yield
        finally:
            await app.state.guard.close()
            await app.state.service.close()

    app = FastAPI(title="memory-service", version="0.1.0", lifespan=lifespan)
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    install_unavailable_handlers(app)
    install_error_docs(app)
    install_metrics(app)
    install_request_context(app)
    app.state.guard = AccessGuard(settings)
    if service is not None:
        app.state.service = service

    @app.post("/v1/events", status_code=202, response_model=IngestResponse)
    async def ingest_events(body: IngestRequest, svc: Service, tenant: Tenant) -> IngestResponse:
        try:
            result = await svc.ingest(body.events, tenant=tenant, wait=body.wait)
        except BatchTooLarge as exc:
            raise HTTPException(413, str(exc)) from None
        except InvalidBatch as exc:
            raise HTTPException(422, str(exc)) from None
        except TimeoutError as exc:  # Redis mode with wait: stored, workers still busy
            raise HTTPException(504, str(exc)) from None
        return IngestResponse(accepted=result.accepted, event_ids=result.event_ids)

    @app.post("/v1/context", response_model=ContextResponse)
    async def context(body: ContextRequest, svc: Service, tenant: Tenant) -> ContextResponse:
        scope = query_scope(tenant, body.user_id, body.agent_id, body.session_id)
        result = await svc.context(scope, body.query, body.budget_tokens, body.format, as_of=body.as_of)
        return context_response(result)

    @app.get("/v1/memories", response_model=MemoryPage)
    async def list_memories(svc: Service, scope: QueryScope, limit: Limit = 100, offset: Offset = 0) -> MemoryPage:
        units = await svc.list_memories(scope, limit, offset)
        return MemoryPage(memories=units, next_offset=offset + limit if len(units) == limit else None)

    @app.get("/v1/memories/{unit_id}", response_model=MemoryUnit)
    async def get_memory(unit_id: UnitId, svc: Service, tenant: Tenant) -> MemoryUnit:
        unit = await svc.get_memory(unit_id, tenant)
        if unit is None:
            raise HTTPException(404, f"memory {unit_id} not found")
        return unit

    @app.get("/v1/memories/{unit_id}/history", response_model=MemoryHistory)
    async def memory_history(unit_id: UnitId, svc: Service, tenant: Tenant) -> MemoryHistory:
        versions = await svc.memory_history(unit_id, tenant)
        if not versions:
            raise HTTPException(404, f"memory {unit_id} not found")
        return MemoryHistory(id=unit_id, versions=versions)

    @app.get("/v1/jobs", response_model=JobsResponse)
    async def jobs(svc: Service, tenant: Tenant, dead_letters: Annotated[int, Query(ge=0, le=1000)] = 20) -> JobsResponse:
        try:
            stats = await svc.job_stats(dead_letters)
        except Exception as exc:  # Redis unreachable: say so instead of a 500
            raise HTTPException(503, f"job queue unavailable: {exc}") from None
        own = [f for f in stats.dead_letters if f.scope.get("tenant") == tenant]  # another tenant's scopes stay hidden
        return JobsResponse.model_validate(
            {**asdict(stats), "dead_letters": [{**asdict(f), "at": datetime.fromtimestamp(f.at, UTC)} for f in own]}
        )

    @app.delete("/v1/memories/{unit_id}", response_model=DeleteResponse)
    async def delete_memory(unit_id: UnitId, svc: Service, tenant: Tenant) -> DeleteResponse:
        if not await svc.delete_memory(unit_id, tenant):
            raise HTTPException(404, f"memory {unit_id} not found")
        return DeleteResponse(deleted=True, id=unit_id)

    @app.get("/v1/events", response_model=EventPage)
    async def list_events(
        svc: Service,
        tenant: Tenant,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        event_id_prefix: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> EventPage:
        # Without user_id/agent_id, an event_id prefix lists across the tenant's scopes.
        scope = None
        if user_id or agent_id or session_id or not event_id_prefix:
            scope = query_scope(tenant, user_id, agent_id, session_id)
        events = await svc.list_events(scope, limit, offset, id_prefix=event_id_prefix, tenant=tenant)
        return EventPage(events=events, next_offset=offset + limit if len(events) == limit else None)

    @app.get("/v1/events/{event_id:path}", response_model=Event)
    async def get_event(event_id: str, svc: Service, tenant: Tenant) -> Event:
        event = await svc.get_event(event_id, tenant)
        if event is None:
            raise HTTPException(404, f"event {event_id} not found")
        return event

    @app.delete("/v1/events/{event_id:path}", response_model=EventDeleteResponse)
    async def erase_event(event_id: str, svc: Service, tenant: Tenant) -> EventDeleteResponse:
        erased = await svc.erase_event(event_id, tenant)
        if erased is None:
            raise HTTPException(404, f"event {event_id} not found")
        return EventDeleteResponse(deleted=True, event_id=event_id, units_deleted=erased.unit_ids)

    @app.delete("/v1/scopes", response_model=ScopeDeleteResponse)
    async def erase_scope(svc: Service, scope: QueryScope) -> ScopeDeleteResponse:
        """Erase everything of a scope: events, units, index and cache entries, queued jobs (idempotent)."""
        erased = await svc.erase_scope(scope)
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

    @app.get("/healthz", response_model=Health)
    async def healthz(svc: Service) -> Health:
        await svc.store.ping()
        return Health(
            status="ok",
            database=svc.store.dialect,
            units_indexed=sum(len(svc.indexes.tenant(t)) for t in svc.indexes.tenants()),
            lm_processes=[LMProcessHealth(**asdict(p)) for p in svc.lm_processes()],
        )

    return app
