"""Request and response bodies of the REST API (shared with the Python client)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from memory_service.domain import Event, EventIn, MemoryUnit, UnitKind


class IngestRequest(BaseModel):
    events: list[EventIn] = Field(min_length=1)
    wait: bool = False


class IngestResponse(BaseModel):
    accepted: int
    event_ids: list[str]


class ContextRequest(BaseModel):
    query: str = Field(min_length=1, max_length=8192)
    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    budget_tokens: int = Field(default=512, ge=1, le=128_000)
    format: Literal["text", "json"] = "text"


class ContextUnit(BaseModel):
    id: int
    text: str
    score: float
    kind: UnitKind
    event_time: datetime | None
    source_event_ids: list[str]


class ContextStats(BaseModel):
    candidates_considered: int
    units_chosen: int
    timings_ms: dict[str, float]


class ContextResponse(BaseModel):
    context: str
    tokens: int
    units: list[ContextUnit]
    empty: bool
    stats: ContextStats


class MemoryPage(BaseModel):
    memories: list[MemoryUnit]
    next_offset: int | None


class EventPage(BaseModel):
    events: list[Event]
    next_offset: int | None


class DeleteResponse(BaseModel):
    deleted: bool
    id: int


class Health(BaseModel):
    status: Literal["ok"]
    database: str
    units_indexed: int
