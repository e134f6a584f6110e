"""Request and response bodies of the REST API, shared by the API, the Python client and the integrations.

They live here, not in `api`, because `memory_service` must not import `api`.
New request/response models go in this module; `api.schemas` re-exports them.
"""

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
    as_of: datetime | None = Field(default=None, description="Answer from the units valid at this time.")


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


class EventDeleteResponse(BaseModel):
    """An erased event: the units restated from it are gone from every index too."""

    deleted: bool
    event_id: str
    units_deleted: list[int]


class Health(BaseModel):
    status: Literal["ok"]
    database: str
    units_indexed: int


class MemoryHistory(BaseModel):
    """A unit with the units it replaced (merged duplicates, older versions) and those that replaced it."""

    id: int
    versions: list[MemoryUnit]


class FailedJobInfo(BaseModel):
    key: str
    kind: str
    scope: dict[str, str | None]
    error: str
    attempts: int
    at: datetime


class JobsResponse(BaseModel):
    backend: Literal["in-process", "redis"]
    queued: int
    running: int
    scheduled: int
    failed_total: int
    workers: int
    dead_letters: list[FailedJobInfo]


class ConsolidationResponse(BaseModel):
    examined: int
    merged: int
    superseded: int
    abstractions_created: int
    abstractions_retired: int
