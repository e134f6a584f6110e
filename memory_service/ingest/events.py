"""From client events to stored events: the size limits of a batch, and ids and times filled in."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

from memory_service.domain import Event, EventIn, utc_now


class BatchTooLarge(ValueError):
    """A batch or an event over the configured size limits (HTTP 413)."""


class InvalidBatch(ValueError):
    """A batch that is well-formed JSON but inconsistent, e.g. an event id twice (HTTP 422)."""


def check_limits(events: Sequence[EventIn], max_events: int, max_event_bytes: int) -> None:
    if len(events) > max_events:
        raise BatchTooLarge(f"events: {len(events)} events in one batch, the limit is {max_events}")
    seen: set[str] = set()
    for i, event in enumerate(events):
        size = len(event.content.encode())
        if size > max_event_bytes:
            raise BatchTooLarge(f"events[{i}].content: {size} bytes, the limit is {max_event_bytes}")
        attached = len(json.dumps(event.metadata, default=str).encode()) if event.metadata else 0
        if event.tool is not None:
            attached += len(event.tool.model_dump_json().encode())
        if attached > max_event_bytes:
            raise BatchTooLarge(f"events[{i}].metadata and tool: {attached} bytes, the limit is {max_event_bytes}")
        if event.event_id is not None:
            if event.event_id in seen:
                raise InvalidBatch(f"events[{i}].event_id: {event.event_id!r} appears twice in the batch")
            seen.add(event.event_id)


def to_events(tenant: str, events: Sequence[EventIn]) -> list[Event]:
    now = utc_now()
    return [
        Event(
            tenant=tenant,
            event_id=e.event_id or uuid.uuid4().hex,
            user_id=e.user_id,
            agent_id=e.agent_id,
            session_id=e.session_id,
            role=e.role,
            speaker=e.speaker,
            content=e.content,
            timestamp=e.timestamp or now,
            received_at=now,
            tool=e.tool,
            metadata=e.metadata,
        )
        for e in events
    ]
