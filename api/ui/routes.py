"""The memory inspector at /ui: server-rendered pages (Jinja2) with htmx for the playground and erasure.

Every handler calls `memory_service.operations` or the service methods REST calls; nothing here
decides what is stored or retrieved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from api.ui.access import LoginRequired, forget_key, remember_key, require_htmx, to_login, ui_tenant
from api.ui.filters import UnitFilters, cleaned, relation, scope_query
from memory_service import operations
from memory_service.schemas import ContextRequest
from memory_service.service import MemoryService

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["scope_query"] = scope_query
router = APIRouter(prefix="/ui", include_in_schema=False)
UiTenant = Annotated[str, Depends(ui_tenant)]
Changes = Depends(require_htmx)


def service(request: Request) -> MemoryService:
    return request.app.state.service


Service = Annotated[MemoryService, Depends(service)]


def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status)


def install_ui(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")
    app.add_exception_handler(LoginRequired, to_login)  # type: ignore[arg-type]


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str = "/ui/", reason: str | None = None) -> HTMLResponse:
    return page(request, "login.html", next=next if next.startswith("/ui") else "/ui/", reason=reason)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    key, target = str(form.get("key", "")).strip(), str(form.get("next", "/ui/"))
    target = target if target.startswith("/ui") else "/ui/"
    try:
        await request.app.state.guard.identify_key(key or None, request.app.state.service.store)
    except HTTPException as exc:
        return page(request, "login.html", status=401, next=target, reason=str(exc.detail))
    response = RedirectResponse(target, status_code=303)
    remember_key(response, key)
    return response


@router.post("/logout")
async def logout() -> Response:
    response = RedirectResponse("/ui/login", status_code=303)
    forget_key(response)
    return response


@router.get("/", response_class=HTMLResponse)
async def scopes_page(request: Request, svc: Service, tenant: UiTenant) -> HTMLResponse:
    return page(request, "scopes.html", tenant=tenant, scopes=(await operations.scopes(svc, tenant)).scopes)


@router.delete("/scopes", response_class=HTMLResponse, dependencies=[Changes])
async def erase_scope(request: Request, svc: Service, tenant: UiTenant) -> HTMLResponse:
    params = cleaned(request.query_params)
    try:
        scope = operations.scope_for(tenant, params.get("user_id"), params.get("agent_id"), params.get("session_id"))
        erased = await operations.erase_scope(svc, scope)
    except operations.Refused as exc:
        return page(request, "error.html", message=exc.message)
    return page(request, "erased.html", what=f"scope {scope.label().partition(',')[2]}", counts=erased.model_dump())


@router.get("/units", response_class=HTMLResponse)
async def units_page(request: Request, svc: Service, tenant: UiTenant) -> HTMLResponse:
    try:
        filters = operations.parse(UnitFilters, cleaned(request.query_params))
        scope = operations.scope_for(tenant, filters.user_id, filters.agent_id, filters.session_id)
    except operations.Refused as exc:
        return page(request, "error.html", status=exc.status, tenant=tenant, message=exc.message)
    units = await svc.list_memories(
        scope, filters.limit + 1, filters.offset, include_closed=filters.include_closed, as_of=filters.as_of,
        kind=filters.kind, contains=filters.contains,
    )
    return page(
        request, "units.html", tenant=tenant, f=filters, units=units[: filters.limit],
        more=len(units) > filters.limit, query=filters.query_string(),
    )


@router.get("/units/{unit_id}", response_class=HTMLResponse)
async def unit_page(request: Request, unit_id: int, svc: Service, tenant: UiTenant) -> HTMLResponse:
    try:
        unit = await operations.memory(svc, tenant, unit_id)
        history = await operations.history(svc, tenant, unit_id)
    except operations.Refused as exc:
        return page(request, "error.html", status=exc.status, tenant=tenant, message=exc.message)
    events = {e.event_id: e for e in await svc.get_events(unit.source_event_ids, tenant)}
    return page(
        request, "unit.html", tenant=tenant, unit=unit,
        events=[events[i] for i in unit.source_event_ids if i in events],
        missing=[i for i in unit.source_event_ids if i not in events],
        versions=[(v, relation(unit, v)) for v in history.versions],
        children=await svc.get_memories(unit.child_unit_ids, tenant),
    )


@router.delete("/units/{unit_id}", response_class=HTMLResponse, dependencies=[Changes])
async def erase_unit(request: Request, unit_id: int, svc: Service, tenant: UiTenant) -> HTMLResponse:
    try:
        deleted = await operations.delete_memory(svc, tenant, unit_id)
    except operations.Refused as exc:
        return page(request, "error.html", message=exc.message)
    return page(request, "erased.html", what=f"memory {unit_id}", counts=deleted.model_dump())


@router.get("/playground", response_class=HTMLResponse)
async def playground_page(request: Request, tenant: UiTenant) -> HTMLResponse:
    return page(request, "playground.html", tenant=tenant, form=cleaned(request.query_params))


@router.post("/playground", response_class=HTMLResponse, dependencies=[Changes])
async def playground_run(request: Request, svc: Service, tenant: UiTenant) -> HTMLResponse:
    form = cleaned(await request.form())
    try:
        answer = await operations.context(svc, tenant, operations.parse(ContextRequest, form))
    except operations.Refused as exc:
        return page(request, "error.html", message=exc.message)
    return page(request, "context.html", answer=answer)


@router.get("/jobs", response_class=HTMLResponse)
async def jobs_page(request: Request, svc: Service, tenant: UiTenant) -> HTMLResponse:
    try:
        jobs = await operations.jobs(svc, tenant)
    except operations.Refused as exc:
        return page(request, "error.html", status=exc.status, tenant=tenant, message=exc.message)
    return page(request, "jobs.html", tenant=tenant, jobs=jobs)
