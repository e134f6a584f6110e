"""What the inspector's forms send, as typed values, and how a unit relates to another in its history."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel, Field

from memory_service.domain import MemoryUnit, UnitKind, as_utc

SCOPE_FIELDS = ("user_id", "agent_id", "session_id")


def scope_query(item: Any) -> str:
    """`user_id=..&agent_id=..&session_id=..` of anything with those attributes (the ones set)."""
    return urlencode({f: getattr(item, f) for f in SCOPE_FIELDS if getattr(item, f, None)})


def cleaned(values: Mapping[str, Any]) -> dict[str, str]:
    """Form or query values without the empty ones (an empty input means "not given")."""
    return {k: str(v).strip() for k, v in values.items() if str(v).strip() != ""}


class UnitFilters(BaseModel):
    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    include_closed: bool = False
    as_of: datetime | None = None
    kind: UnitKind | None = None
    contains: str | None = Field(default=None, max_length=256)
    limit: int = Field(default=50, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=2**31 - 1)

    def model_post_init(self, _context: Any) -> None:
        if self.as_of is not None:  # a datetime-local input has no zone: read it as UTC
            self.as_of = as_utc(self.as_of)

    def query_string(self, **changes: Any) -> str:
        values = {**self.model_dump(exclude_defaults=True, mode="json"), **changes}
        return urlencode({k: v for k, v in values.items() if v not in (None, "", False)})


def relation(unit: MemoryUnit, other: MemoryUnit) -> str:
    """How `other`, a version in `unit`'s history, relates to it."""
    if other.id == unit.id:
        return "this memory"
    if other.superseded_by == unit.id:
        return "replaced by this memory"
    if unit.superseded_by == other.id:
        return "replaced this memory"
    return "same history"
