"""LangChain retriever and memory tools over the memory service."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import Field

from memory_service.client import AsyncMemoryClient, Call, Calls, MemoryClient, NotFound
from memory_service.domain import Role
from memory_service.schemas import ContextRequest, ContextResponse, ContextUnit

SCOPE_FIELDS = ("user_id", "agent_id", "session_id")


class MemoryServiceRetriever(BaseRetriever):
    """Memory units relevant to a query, best first, as `Document`s.

    `page_content` is the unit's text; `metadata` holds `id`, `score`, `kind`, `event_time`
    and `source_event_ids` (the raw events it was restated from). The service packs units
    into `budget_tokens` and returns only relevant ones; `k` then caps how many come back.
    `invoke(query, k=..., budget_tokens=..., user_id=...)` overrides any of these per call,
    and any other `ContextRequest` field passes through.
    """

    client: MemoryClient | None = None
    async_client: AsyncMemoryClient | None = None
    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    budget_tokens: int | None = Field(default=None, ge=1)
    k: int | None = Field(default=None, ge=1)

    def _call(self, query: str, overrides: dict[str, Any]) -> tuple[Call[ContextResponse], int | None]:
        overrides = dict(overrides)
        k = overrides.pop("k", self.k)
        fields: dict[str, Any] = {f: getattr(self, f) for f in (*SCOPE_FIELDS, "budget_tokens")}
        unknown = set(overrides) - set(ContextRequest.model_fields)
        if unknown:
            raise TypeError(f"MemoryServiceRetriever got unexpected arguments: {sorted(unknown)}")
        fields.update(overrides)
        return Calls.context(query, **fields), k

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        if self.client is None:
            raise RuntimeError("MemoryServiceRetriever needs `client` (a MemoryClient) for sync calls")
        call, k = self._call(query, kwargs)
        return to_documents(self.client.send(call).units, k)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        if self.async_client is None:
            return await super()._aget_relevant_documents(query, run_manager=run_manager, **kwargs)
        call, k = self._call(query, kwargs)
        return to_documents((await self.async_client.send(call)).units, k)


def to_documents(units: list[ContextUnit], k: int | None = None) -> list[Document]:
    ranked = sorted(units, key=lambda u: -u.score)[:k]
    return [
        Document(
            page_content=u.text,
            id=str(u.id),
            metadata={
                "id": u.id,
                "score": u.score,
                "kind": u.kind,
                "event_time": u.event_time.isoformat() if u.event_time else None,
                "source_event_ids": list(u.source_event_ids),
            },
        )
        for u in ranked
    ]


def format_memories(answer: ContextResponse) -> str:
    """Units oldest first, each with the id `forget_memory` takes."""
    if answer.empty:
        return "No relevant memories."
    units = sorted(answer.units, key=lambda u: (u.event_time is None, u.event_time or 0, u.id))  # type: ignore[operator]
    lines = [f"- [id {u.id}] {'[' + u.event_time.date().isoformat() + '] ' if u.event_time else ''}{u.text}" for u in units]
    return "\n".join(lines)


def create_memory_tools(
    client: MemoryClient | None = None,
    async_client: AsyncMemoryClient | None = None,
    *,
    user_id: str | None = None,
    agent_id: str | None = None,
    session_id: str | None = None,
    budget_tokens: int = 1024,
    role: Role = "observation",
    speaker: str | None = None,
) -> list[BaseTool]:
    """`save_memory`, `search_memories` and `forget_memory` tools for an agent.

    The scope is the one given here; a run's `configurable` (`user_id`, `agent_id`,
    `session_id`) fills in or overrides it, so one set of tools serves many users.
    """
    if client is None and async_client is None:
        raise ValueError("create_memory_tools needs a MemoryClient, an AsyncMemoryClient or both")
    static = {"user_id": user_id, "agent_id": agent_id, "session_id": session_id}

    def scope(config: RunnableConfig | None) -> dict[str, str]:
        configurable = (config or {}).get("configurable") or {}
        merged = {f: configurable.get(f) or static[f] for f in SCOPE_FIELDS}
        return {f: v for f, v in merged.items() if v}

    def save_call(content: str, config: RunnableConfig | None) -> Call[Any]:
        return Calls.ingest([{"role": role, "speaker": speaker, "content": content, **scope(config)}], wait=True)

    def search_call(query: str, config: RunnableConfig | None) -> Call[ContextResponse]:
        return Calls.context(query, budget_tokens=budget_tokens, **scope(config))

    def sync() -> MemoryClient:
        if client is None:
            raise RuntimeError("these memory tools were created without a MemoryClient; call them asynchronously")
        return client

    def save_memory(content: str, config: RunnableConfig) -> str:
        answer = sync().send(save_call(content, config))
        return f"Saved (event {answer.event_ids[0]})."

    async def asave_memory(content: str, config: RunnableConfig) -> str:
        if async_client is None:
            return await asyncio.to_thread(save_memory, content, config)
        answer = await async_client.send(save_call(content, config))
        return f"Saved (event {answer.event_ids[0]})."

    def search_memories(query: str, config: RunnableConfig) -> str:
        return format_memories(sync().send(search_call(query, config)))

    async def asearch_memories(query: str, config: RunnableConfig) -> str:
        if async_client is None:
            return await asyncio.to_thread(search_memories, query, config)
        return format_memories(await async_client.send(search_call(query, config)))

    def forget_memory(memory_id: int, config: RunnableConfig) -> str:
        try:
            sync().delete_memory(memory_id)
        except NotFound:
            return f"There is no memory {memory_id}."
        return f"Forgot memory {memory_id}."

    async def aforget_memory(memory_id: int, config: RunnableConfig) -> str:
        if async_client is None:
            return await asyncio.to_thread(forget_memory, memory_id, config)
        try:
            await async_client.delete_memory(memory_id)
        except NotFound:
            return f"There is no memory {memory_id}."
        return f"Forgot memory {memory_id}."

    return [
        StructuredTool.from_function(
            func=save_memory, coroutine=asave_memory, name="save_memory",
            description="Save a fact worth remembering across conversations. `content`: one self-contained statement.",
        ),
        StructuredTool.from_function(
            func=search_memories, coroutine=asearch_memories, name="search_memories",
            description="Search long-term memory. Returns the relevant memories, oldest first, each with its id.",
        ),
        StructuredTool.from_function(
            func=forget_memory, coroutine=aforget_memory, name="forget_memory",
            description="Forget a memory that is wrong or outdated, by the id search_memories showed.",
        ),
    ]
