"""The shared vocabulary: events, memory units and scopes.

This module imports nothing else from the project, so `compressors` and `stores`
can depend on it without depending on the rest of `memory_service`.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Role = Literal["user", "assistant", "tool", "system", "observation"]
UnitKind = Literal["fact", "event", "preference", "procedure", "summary"]

DEFAULT_TENANT = "local"


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC; aware ones are converted to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


MAX_NESTING = 32


def check_storable(value: Any, where: str, depth: int = 0) -> None:
    """Reject what no store can keep the same way: NUL characters (PostgreSQL text and jsonb
    refuse them, SQLite would keep them), lone UTF-16 surrogates (not encodable as UTF-8), and
    JSON nested deeper than MAX_NESTING (recursion limits in JSON codecs and SQL JSON functions)."""
    if depth > MAX_NESTING:
        raise ValueError(f"{where}: nested deeper than {MAX_NESTING} levels")
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{where}: contains a NUL character (\\u0000), which cannot be stored")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{where}: contains a lone surrogate (invalid Unicode)") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            check_storable(key, f"{where} key", depth + 1)
            check_storable(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_storable(item, f"{where}[{i}]", depth + 1)


class Scope(BaseModel):
    """Who a memory belongs to. A query scope matches every field it sets."""

    model_config = ConfigDict(frozen=True)

    tenant: str = DEFAULT_TENANT
    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None

    @model_validator(mode="after")
    def _needs_owner(self) -> Scope:
        if not self.user_id and not self.agent_id:
            raise ValueError("at least one of user_id or agent_id is required")
        return self

    def label(self) -> str:
        parts = [f"{k}={v}" for k, v in self.model_dump().items() if v is not None]
        return ",".join(parts)


class ToolCall(BaseModel):
    name: str = Field(min_length=1, max_length=256)
    arguments: dict[str, Any] = Field(default_factory=dict)
    result: Any = None


class EventIn(BaseModel):
    """An event as a client sends it (REST body, CLI JSONL line)."""

    model_config = ConfigDict(extra="forbid")

    event_id: str | None = Field(default=None, min_length=1, max_length=256)
    user_id: str | None = Field(default=None, min_length=1, max_length=256)
    agent_id: str | None = Field(default=None, min_length=1, max_length=256)
    session_id: str | None = Field(default=None, min_length=1, max_length=256)
    role: Role
    speaker: str | None = Field(default=None, max_length=256)
    content: str = ""
    timestamp: datetime | None = None
    tool: ToolCall | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        try:
            return None if value is None else as_utc(value)
        except OverflowError:  # e.g. 0001-01-01T00:00+14:00 is before year 1 in UTC
            raise ValueError("timestamp is out of range once converted to UTC") from None

    @model_validator(mode="after")
    def _check(self) -> EventIn:
        if not self.user_id and not self.agent_id:
            raise ValueError("scope missing: at least one of user_id or agent_id is required")
        if not self.content.strip() and self.tool is None:
            raise ValueError("content is empty (an event needs content or a tool call)")
        for name in ("event_id", "user_id", "agent_id", "session_id", "speaker", "content"):
            check_storable(getattr(self, name), name)
        check_storable(self.metadata, "metadata")
        if self.tool is not None:
            check_storable(self.tool.model_dump(), "tool")
        return self


class Event(BaseModel):
    """A stored raw event. Compression and consolidation never change it."""

    tenant: str
    event_id: str
    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    role: Role
    speaker: str | None = None
    content: str
    timestamp: datetime
    received_at: datetime
    tool: ToolCall | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def scope(self) -> Scope:
        return Scope(
            tenant=self.tenant,
            user_id=self.user_id,
            agent_id=self.agent_id,
            session_id=self.session_id,
        )

    @property
    def speaker_name(self) -> str:
        if self.speaker:
            return self.speaker
        if self.role == "tool" and self.tool is not None:
            return f"tool {self.tool.name}"
        return self.role

    @property
    def caption(self) -> str:
        """The caption of an image the event shares (`metadata["blip_caption"]`), or ""."""
        caption = self.metadata.get("blip_caption") if isinstance(self.metadata, dict) else None
        return " ".join(caption.split()) if isinstance(caption, str) else ""

    def full_text(self) -> str:
        """Everything the event says, as one string (content, an image's caption, a tool call)."""
        parts = [self.content] if self.content else []
        if self.caption:
            parts.append(f"(shares an image: {self.caption})")
        if self.tool is not None:
            parts.append(f"{self.tool.name}({json.dumps(self.tool.arguments, sort_keys=True, default=str)})")
            if self.tool.result is not None:
                result = self.tool.result
                parts.append(result if isinstance(result, str) else json.dumps(result, default=str))
        return "\n".join(parts)


class MemoryUnitDraft(BaseModel):
    """What a compressor produces: a memory unit before it is stored."""

    text: str = Field(min_length=1)
    kind: UnitKind = "fact"
    keywords: list[str] = Field(default_factory=list)
    persons: list[str] = Field(default_factory=list)
    entities: list[str] = Field(default_factory=list)
    location: str | None = None
    topic: str | None = None
    event_time: datetime | None = None
    source_event_ids: list[str] = Field(min_length=1)
    importance: float = Field(default=0.5, ge=0.0, le=1.0)

    def content_hash(self) -> str:
        return hashlib.sha256(self.text.strip().lower().encode()).hexdigest()


class MemoryUnit(MemoryUnitDraft):
    id: int
    tenant: str
    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    level: int = 0
    child_unit_ids: list[int] = Field(default_factory=list)
    valid_from: datetime
    valid_to: datetime | None = None
    compressor: str
    compressor_version: str
    hash: str
    superseded_by: int | None = None
    history: list[dict[str, Any]] = Field(default_factory=list)
    access_count: int = 0
    last_accessed_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class CompressionWindow(BaseModel):
    """Events to compress, with the overlap before them and the scope's recent units.

    A compressor restates `events` only; `context_events` are shown for reference
    (who "you" is, what "it" refers to) and must not be cited.
    """

    events: list[Event]
    context_events: list[Event] = Field(default_factory=list)
    recent_units: list[MemoryUnit] = Field(default_factory=list)

    def key(self, compressor: str, version: str) -> str:
        payload = {
            "compressor": compressor,
            "version": version,
            "events": [e.model_dump(mode="json", exclude={"received_at", "tenant"}) for e in self.events],
            "context": [e.event_id for e in self.context_events],
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
