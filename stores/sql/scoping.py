"""Scope filters on SELECTs: what a query scope sees, exactly one scope, one owner, and validity in time.

Three different meanings of a scope, each a WHERE clause:
- `in_scope`: query semantics (fields given must match, fields not given match anything);
- `exact_scope`: exactly this (user, agent, session), a missing field matching only NULL
  (the unit of compression: pending events, recent units);
- `owned_by`: exactly this (user, agent) pair, any session (the unit of consolidation
  and of erasure, since consolidation cites events across sessions).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select

from memory_service.domain import Event, Scope
from stores.sql.tables import EventRow, MemoryUnitRow


def in_scope(stmt: Select[Any], model: type[EventRow | MemoryUnitRow], scope: Scope) -> Select[Any]:
    """Query-scope semantics: fields given must match, fields not given match anything."""
    stmt = stmt.where(model.tenant == scope.tenant)
    for field in ("user_id", "agent_id", "session_id"):
        value = getattr(scope, field)
        if value is not None:
            stmt = stmt.where(getattr(model, field) == value)
    return stmt


def _exactly(stmt: Select[Any], model: Any, scope: Scope, fields: tuple[str, ...]) -> Select[Any]:
    stmt = stmt.where(model.tenant == scope.tenant)
    for field in fields:
        value = getattr(scope, field)
        column = getattr(model, field)
        stmt = stmt.where(column.is_(None) if value is None else column == value)
    return stmt


def exact_scope(stmt: Select[Any], model: type[EventRow | MemoryUnitRow], scope: Scope) -> Select[Any]:
    """Rows of exactly this (user, agent, session); a field not given matches only NULL."""
    return _exactly(stmt, model, scope, ("user_id", "agent_id", "session_id"))


def owner_of_event(event: Event) -> Scope:
    return Scope(tenant=event.tenant, user_id=event.user_id, agent_id=event.agent_id)


def owned_by(stmt: Select[Any], owner: Scope) -> Select[Any]:
    """Units of exactly this user/agent pair, in any session."""
    return _exactly(stmt, MemoryUnitRow, owner, ("user_id", "agent_id"))


def valid_at(stmt: Select[Any], as_of: datetime | None) -> Select[Any]:
    """Units valid now (not closed), or valid at `as_of` in event time."""
    if as_of is None:
        return stmt.where(MemoryUnitRow.valid_to.is_(None))
    return stmt.where(
        MemoryUnitRow.valid_from <= as_of,
        (MemoryUnitRow.valid_to.is_(None)) | (MemoryUnitRow.valid_to > as_of),
    )
