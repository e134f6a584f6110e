"""Request and response bodies of the REST API, shared by the API, the Python client and the integrations.

They live here, not in `api`, because `memory_service` must not import `api`.
New request/response models go in this module; `api.app` imports them from here.
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
    format: Literal["text", "json", "messages"] = Field(
        default="text",
        description="text: date-grouped lines; json: a JSON list of {date, text}; "
        "messages: also `messages`, one system message ready for a chat API.",
    )
    as_of: datetime | None = Field(default=None, description="Answer from the units valid at this time.")


class ContextUnit(BaseModel):
    id: int
    text: str
    score: float
    kind: UnitKind
    event_time: datetime | None
    source_event_ids: list[str]
    found_by: list[str] = Field(
        default_factory=list,
        description="Which retrieval signals found the unit: dense, lexical, entity, time.",
    )
    shown: str | None = Field(
        default=None, description="The part of `text` the context shows (sentences without the query's words cut)."
    )


class ContextStats(BaseModel):
    candidates_considered: int
    units_chosen: int
    timings_ms: dict[str, float] = Field(description="Time per stage: analysis, scope, search, expand, fuse, load, answerability, prune, pack.")
    tokens: int | None = Field(default=None, description="Tokens of the context (predictor tokenizer).")
    history_tokens: int | None = Field(default=None, description="Tokens of every raw event in the scope.")
    compression_ratio: float | None = Field(default=None, description="history_tokens / tokens (0 when empty).")
    best_relevance: float | None = Field(
        default=None, description="Highest query-unit cosine; under the service's empty threshold the context is empty."
    )
    abstention: str | None = Field(
        default=None,
        description="Why the context is or is not empty: answerable | irrelevant (nothing close in meaning) | "
        "wrong_subject (the question's attribute is covered only about another person) | uncovered (the question's "
        "distinctive words are in none of the best units).",
    )


class ChatMessage(BaseModel):
    role: Literal["system"]
    content: str


class ContextResponse(BaseModel):
    context: str
    tokens: int
    units: list[ContextUnit]
    empty: bool
    stats: ContextStats
    messages: list[ChatMessage] | None = Field(default=None, description="With format=messages.")


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


class ScopeDeleteResponse(BaseModel):
    """What `DELETE /v1/scopes` erased. Repeating the call erases nothing more (all counts 0)."""

    erased: bool = Field(description="Whether anything was erased by this call.")
    user_id: str | None
    agent_id: str | None
    session_id: str | None
    events_deleted: int
    units_deleted: int = Field(description="Units of the scope, and units elsewhere that cited its events.")
    events_restated: int = Field(
        description="Events outside the scope that shared a deleted unit; compressed again without the erased ones."
    )
    compression_cache_entries_deleted: int
    jobs_cancelled: int = Field(description="Queued jobs of the scope removed from the queue (Redis mode).")


class LMProcessHealth(BaseModel):
    """A child process running native LM code. Its failures do not make the service unhealthy:
    windows go extractive (marked for retry) and queries answer without the LM meanwhile."""

    label: str
    state: Literal["running", "stopped", "backoff"]
    pid: int | None
    starts: int
    failures: int
    last_failure: str | None
    retry_in_s: float


class Health(BaseModel):
    status: Literal["ok"]
    database: str
    units_indexed: int
    lm_processes: list[LMProcessHealth] = Field(default_factory=list)


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


class ScopeInfo(BaseModel):
    """One exact (user, agent, session) scope of the tenant."""

    user_id: str | None
    agent_id: str | None
    session_id: str | None
    events: int
    units: int = Field(description="Units stored, valid or closed.")
    valid_units: int = Field(description="Units currently valid (not merged or superseded).")


class ScopesResponse(BaseModel):
    scopes: list[ScopeInfo]


class ConsolidationResponse(BaseModel):
    examined: int
    merged: int
    superseded: int
    abstractions_created: int
    abstractions_retired: int
