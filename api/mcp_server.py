"""The MCP server: the service's operations as Model Context Protocol tools and resources.

Built on the official SDK's `FastMCP` (tool schemas from the signatures, stdio and streamable
HTTP from one server object). Every tool calls `memory_service.operations`, as REST does, so a
refused request gets REST's message as a tool error (FastMCP prefixes "Error executing tool
NAME: ") and changes nothing.

Who the caller is: on HTTP (`/mcp`, see `mcp_http_app`) the API key is checked like REST's,
before the request reaches the SDK, and the tenant is read from the request; on stdio
(`memory-service mcp`) the tenant is fixed when the process starts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import HTTPException
from mcp.server.fastmcp import Context, FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from api.auth import AccessGuard, is_loopback
from memory_service import operations
from memory_service.domain import Scope as MemoryScope
from memory_service.schemas import (
    ContextRequest,
    ContextResponse,
    ContextUnit,
    DeleteResponse,
    EventDeleteResponse,
    IngestRequest,
    IngestResponse,
    MemoryHistory,
    ScopeDeleteResponse,
)
from memory_service.service import MemoryService

INSTRUCTIONS = (
    "Long-term memory for this user or agent. Call `get_context` with the user's question before "
    "answering to recall what was said before; call `remember` with facts worth keeping. Every call "
    "names a scope: `user_id` and/or `agent_id` (required), `session_id` (optional)."
)

UserId = Annotated[str | None, Field(description="Whose memory: the user's id (this or agent_id is required).")]
AgentId = Annotated[str | None, Field(description="Whose memory: the agent's id (this or user_id is required).")]
SessionId = Annotated[str | None, Field(description="Narrow to one conversation/session (optional).")]

ServiceOf = Callable[[], MemoryService]
TenantOf = Callable[[Context[Any, Any, Any]], str]


def _request_tenant(ctx: Context[Any, Any, Any]) -> str:
    """The tenant `KeyedMCP` authenticated for this HTTP request."""
    request = ctx.request_context.request
    tenant = getattr(getattr(request, "state", None), "tenant", None)
    if tenant is None:  # cannot happen behind KeyedMCP; refuse rather than guess a tenant
        raise ToolError("request not authenticated")
    return str(tenant)


def _context_request(
    query: str, user_id: str | None, agent_id: str | None, session_id: str | None, **options: Any
) -> ContextRequest:
    scope = {"user_id": user_id, "agent_id": agent_id, "session_id": session_id}
    return operations.parse(ContextRequest, {"query": query, **scope, **options})


def build_mcp(service_of: ServiceOf, tenant_of: TenantOf | None = None, *, host: str = "127.0.0.1") -> FastMCP:
    """The server; `tenant_of(ctx)` names the caller's tenant (default: the HTTP request's)."""
    tenant_of = tenant_of or _request_tenant
    security = None if is_loopback(host) else TransportSecuritySettings(enable_dns_rebinding_protection=False)
    mcp = FastMCP(
        "memory-service",
        instructions=INSTRUCTIONS,
        host=host,
        stateless_http=True,
        json_response=True,
        streamable_http_path="/mcp",
        transport_security=security,
    )

    @mcp.tool()
    async def remember(
        ctx: Context[Any, Any, Any],
        note: Annotated[str | None, Field(description="A plain note to remember, e.g. 'Ann's cat is called Miso.'")] = None,
        events: Annotated[
            list[dict[str, Any]] | None,
            Field(
                description="Or interaction-log events, as in POST /v1/events: each {role: user|assistant|tool|system|"
                "observation, content, speaker?, timestamp? (ISO-8601), tool? {name, arguments, result}, event_id?}."
            ),
        ] = None,
        user_id: UserId = None,
        agent_id: AgentId = None,
        session_id: SessionId = None,
        speaker: Annotated[str | None, Field(description="Who said the note (default: none).")] = None,
        wait: Annotated[bool, Field(description="Return once the memory is compressed and searchable.")] = True,
    ) -> IngestResponse:
        """Store a note or interaction-log events in memory. The service restates them as memory units
        (with dates, speakers, entities) that `get_context` and `search_memories` find later."""
        if (note is None) == (events is None):
            raise ToolError("give either `note` or `events`")
        scope = {k: v for k, v in (("user_id", user_id), ("agent_id", agent_id), ("session_id", session_id)) if v}
        batch = [{"role": "user", "speaker": speaker, "content": note}] if note is not None else events or []
        body = operations.parse(IngestRequest, {"events": [{**scope, **e} for e in batch], "wait": wait})
        return await operations.ingest(service_of(), tenant_of(ctx), body)

    @mcp.tool()
    async def get_context(
        ctx: Context[Any, Any, Any],
        query: Annotated[str, Field(description="The question or task to recall memories for.")],
        user_id: UserId = None,
        agent_id: AgentId = None,
        session_id: SessionId = None,
        budget_tokens: Annotated[int, Field(description="Most tokens the context may take.")] = 512,
        format: Annotated[
            Literal["text", "json", "messages"], Field(description="text (default), json, or chat messages.")
        ] = "text",
        as_of: Annotated[str | None, Field(description="ISO-8601 time: answer from memories valid then.")] = None,
    ) -> ContextResponse:
        """The memory relevant to a query, ready to put in a prompt: only what matters, oldest first,
        within `budget_tokens`. `empty` is true (and the context "") when nothing stored is relevant."""
        body = _context_request(query, user_id, agent_id, session_id, budget_tokens=budget_tokens, format=format, as_of=as_of)
        return await operations.context(service_of(), tenant_of(ctx), body)

    @mcp.tool()
    async def search_memories(
        ctx: Context[Any, Any, Any],
        query: Annotated[str, Field(description="What to look for.")],
        user_id: UserId = None,
        agent_id: AgentId = None,
        session_id: SessionId = None,
        limit: Annotated[int, Field(ge=1, le=100, description="Most memories to return.")] = 10,
    ) -> list[ContextUnit]:
        """Memory units relevant to a query, best first: id, text, score, kind, event_time and the ids
        of the raw events each was restated from (provenance). Use the ids with `forget` or
        `memory_history`."""
        body = _context_request(query, user_id, agent_id, session_id, budget_tokens=4096, format="json")
        answer = await operations.context(service_of(), tenant_of(ctx), body)
        return sorted(answer.units, key=lambda u: -u.score)[:limit]

    @mcp.tool()
    async def forget(
        ctx: Context[Any, Any, Any],
        memory_id: Annotated[int | None, Field(description="Erase this memory unit (its raw events stay).")] = None,
        event_id: Annotated[str | None, Field(description="Erase this raw event and every unit restated from it.")] = None,
        user_id: Annotated[str | None, Field(description="With neither id: erase this whole scope.")] = None,
        agent_id: AgentId = None,
        session_id: SessionId = None,
    ) -> DeleteResponse | EventDeleteResponse | ScopeDeleteResponse:
        """Erase a memory unit, a raw event, or a whole scope (events, units, index entries), and say
        what was erased. Give exactly one of `memory_id`, `event_id`, or a scope."""
        given = [memory_id is not None, event_id is not None, bool(user_id or agent_id or session_id)]
        if sum(given) != 1:
            raise ToolError("give exactly one of memory_id, event_id, or a scope (user_id / agent_id / session_id)")
        svc, tenant = service_of(), tenant_of(ctx)
        if memory_id is not None:
            return await operations.delete_memory(svc, tenant, memory_id)
        if event_id is not None:
            return await operations.erase_event(svc, tenant, event_id)
        return await operations.erase_scope(svc, operations.scope_for(tenant, user_id, agent_id, session_id))

    @mcp.tool()
    async def memory_history(
        ctx: Context[Any, Any, Any],
        memory_id: Annotated[int, Field(description="A memory unit id (from search_memories or get_context).")],
    ) -> MemoryHistory:
        """A memory unit with the units it replaced (merged duplicates, superseded versions) and those that
        replaced it, each with its change history."""
        return await operations.history(service_of(), tenant_of(ctx), memory_id)

    async def _recent(scope: MemoryScope) -> str:
        units = await service_of().list_memories(scope, limit=50, newest_first=True)
        return "[" + ",".join(u.model_dump_json() for u in reversed(units)) + "]"

    @mcp.resource("memory://users/{user_id}/recent", mime_type="application/json")
    async def user_recent(user_id: str) -> str:
        """The 50 most recent valid memories of a user, oldest first."""
        return await _recent(operations.scope_for(tenant_of(mcp.get_context()), user_id, None))

    @mcp.resource("memory://agents/{agent_id}/recent", mime_type="application/json")
    async def agent_recent(agent_id: str) -> str:
        """The 50 most recent valid memories of an agent, oldest first."""
        return await _recent(operations.scope_for(tenant_of(mcp.get_context()), None, agent_id))

    @mcp.resource("memory://memories/{memory_id}", mime_type="application/json")
    async def one_memory(memory_id: str) -> str:
        """One memory unit by id."""
        if not memory_id.isdigit():
            raise operations.Refused(404, f"memory {memory_id} not found")
        unit = await operations.memory(service_of(), tenant_of(mcp.get_context()), int(memory_id))
        return unit.model_dump_json()

    return mcp


class KeyedMCP:
    """`/mcp`: streamable HTTP behind the REST API's key check (401/429 before the SDK sees the request).

    `running()` (the app's lifespan) builds a fresh server each time: the SDK's session manager
    runs once per instance, and an app may be started more than once (tests, `InProcessService`).
    """

    def __init__(self, guard: AccessGuard, service_of: ServiceOf, host: str) -> None:
        self.guard = guard
        self.service_of = service_of
        self.host = host
        self.manager: StreamableHTTPSessionManager | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        server = build_mcp(self.service_of, host=self.host)
        server.streamable_http_app()  # creates the session manager
        async with server.session_manager.run():
            self.manager = server.session_manager
            try:
                yield
            finally:
                self.manager = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.manager is None:
            await JSONResponse({"detail": "the MCP server is not running"}, 503)(scope, receive, send)
            return
        try:
            await self.guard.admit(Request(scope, receive), self.service_of().store)
        except HTTPException as exc:
            await JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)(scope, receive, send)
            return
        await self.manager.handle_request(scope, receive, send)
