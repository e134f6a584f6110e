"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.routing import Route

from api.auth import AccessGuard, check_binding
from api.db_errors import install_unavailable_handlers
from api.mcp_server import KeyedMCP
from api.metrics import install_metrics
from api.openapi_errors import install_error_docs
from api.request_context import install_request_context
from api.ui.routes import install_ui
from memory_service import operations
from memory_service.domain import Event, MemoryUnit, Scope, UnitKind
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
    ScopesResponse,
)
from memory_service.service import MemoryService
from memory_service.settings import Settings


async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content={
            "detail": operations.validation_message(errors),
            "errors": [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in errors],
        },
    )


async def _refused(_request: Request, exc: operations.Refused) -> JSONResponse:
    return JSONResponse(status_code=exc.status, content={"detail": exc.message})


def get_service(request: Request) -> MemoryService:
    return request.app.state.service


async def tenant_of(request: Request) -> str:
    """The tenant of the request's API key (401 / 429 otherwise), also left on `request.state.tenant`."""
    guard: AccessGuard = request.app.state.guard
    return (await guard.admit(request, request.app.state.service.store)).tenant


Service = Annotated[MemoryService, Depends(get_service)]
Tenant = Annotated[str, Depends(tenant_of)]


def query_scope(
    tenant: Tenant,
    user_id: str | None = None,
    agent_id: str | None = None,
    session_id: str | None = None,
) -> Scope:
    return operations.scope_for(tenant, user_id, agent_id, session_id)


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
        async with AsyncExitStack() as stack:
            stack.push_async_callback(app.state.guard.close)
            if service is None:
                app.state.service = await MemoryService.open(settings)
                stack.push_async_callback(app.state.service.close)
            await check_binding(settings, app.state.service.store)  # not on 0.0.0.0 without keys
            await stack.enter_async_context(mcp_endpoint.running())
            yield

    app = FastAPI(title="memory-service", version="0.1.0", lifespan=lifespan)
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(operations.Refused, _refused)  # type: ignore[arg-type]
    install_unavailable_handlers(app)
    install_error_docs(app)
    install_metrics(app)
    install_request_context(app)
    app.state.guard = AccessGuard(settings)
    if service is not None:
        app.state.service = service
    mcp_endpoint = KeyedMCP(app.state.guard, lambda: app.state.service, settings.host)
    app.router.routes.append(Route("/mcp", endpoint=mcp_endpoint))  # MCP over streamable HTTP, keyed like /v1
    install_ui(app)  # the memory inspector at /ui

    @app.post("/v1/events", status_code=202, response_model=IngestResponse)
    async def ingest_events(body: IngestRequest, svc: Service, tenant: Tenant) -> IngestResponse:
        return await operations.ingest(svc, tenant, body)

    @app.post("/v1/context", response_model=ContextResponse)
    async def context(body: ContextRequest, svc: Service, tenant: Tenant) -> ContextResponse:
        return await operations.context(svc, tenant, body)

    @app.get("/v1/scopes", response_model=ScopesResponse)
    async def list_scopes(svc: Service, tenant: Tenant) -> ScopesResponse:
        """The tenant's exact (user, agent, session) scopes with their event and unit counts."""
        return await operations.scopes(svc, tenant)

    @app.get("/v1/memories", response_model=MemoryPage)
    async def list_memories(
        svc: Service,
        scope: QueryScope,
        limit: Limit = 100,
        offset: Offset = 0,
        include_closed: Annotated[bool, Query(description="Also merged and superseded units.")] = False,
        as_of: Annotated[datetime | None, Query(description="Units valid at this time.")] = None,
        kind: UnitKind | None = None,
        contains: Annotated[str | None, Query(max_length=256, description="Text contains (any case).")] = None,
    ) -> MemoryPage:
        units = await svc.list_memories(
            scope, limit, offset, include_closed=include_closed, as_of=as_of, kind=kind, contains=contains
        )
        return MemoryPage(memories=units, next_offset=offset + limit if len(units) == limit else None)

    @app.get("/v1/memories/{unit_id}", response_model=MemoryUnit)
    async def get_memory(unit_id: UnitId, svc: Service, tenant: Tenant) -> MemoryUnit:
        return await operations.memory(svc, tenant, unit_id)

    @app.get("/v1/memories/{unit_id}/history", response_model=MemoryHistory)
    async def memory_history(unit_id: UnitId, svc: Service, tenant: Tenant) -> MemoryHistory:
        return await operations.history(svc, tenant, unit_id)

    @app.get("/v1/jobs", response_model=JobsResponse)
    async def jobs(svc: Service, tenant: Tenant, dead_letters: Annotated[int, Query(ge=0, le=1000)] = 20) -> JobsResponse:
        return await operations.jobs(svc, tenant, dead_letters)

    @app.delete("/v1/memories/{unit_id}", response_model=DeleteResponse)
    async def delete_memory(unit_id: UnitId, svc: Service, tenant: Tenant) -> DeleteResponse:
        return await operations.delete_memory(svc, tenant, unit_id)

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
        return await operations.erase_event(svc, tenant, event_id)

    @app.delete("/v1/scopes", response_model=ScopeDeleteResponse)
    async def erase_scope(svc: Service, scope: QueryScope) -> ScopeDeleteResponse:
        """Erase everything of a scope: events, units, index and cache entries, queued jobs (idempotent)."""
        return await operations.erase_scope(svc, scope)

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
