"""What the compression cache stores for a window, and the key it is stored under.

The key hashes the window's content (speakers, roles, text, tool calls, timestamps,
metadata of its events and of the overlap shown before it), never event ids or
the scope, plus the compressor, model and prompt version. Cached drafts cite
events by position in the window, so the same log re-ingested under new ids or
another user reuses the result without calling the LM.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from compressors.base import ProducedDraft
from memory_service.domain import CompressionWindow, Event, MemoryUnitDraft


@dataclass(frozen=True)
class CacheIdentity:
    compressor: str
    model: str
    prompt_version: str


def _event_content(event: Event) -> dict[str, Any]:
    return event.model_dump(
        mode="json", include={"role", "speaker", "content", "tool", "timestamp", "metadata"}
    )


def window_key(window: CompressionWindow, identity: CacheIdentity) -> str:
    payload = {
        "compressor": identity.compressor,
        "model": identity.model,
        "prompt": identity.prompt_version,
        "events": [_event_content(e) for e in window.events],
        "context": [_event_content(e) for e in window.context_events],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def encode(units: list[ProducedDraft], window: CompressionWindow) -> list[dict[str, Any]]:
    position = {e.event_id: i for i, e in enumerate(window.events)}
    out = []
    for unit in units:
        data = unit.draft.model_dump(mode="json", exclude={"source_event_ids"})
        data["sources"] = [position[i] for i in unit.draft.source_event_ids if i in position]
        out.append({"draft": data, "compressor": unit.compressor, "version": unit.version})
    return out


def decode(payload: list[dict[str, Any]], window: CompressionWindow) -> list[ProducedDraft] | None:
    """The cached units re-pointed at this window's event ids; None if the entry does not fit it."""
    ids = [e.event_id for e in window.events]
    units = []
    try:
        for item in payload:
            data = dict(item["draft"])
            sources = data.pop("sources")
            if not sources or any(not 0 <= i < len(ids) for i in sources):
                return None
            data["source_event_ids"] = [ids[i] for i in sources]
            units.append(ProducedDraft(MemoryUnitDraft.model_validate(data), item["compressor"], item["version"]))
    except (KeyError, TypeError, ValueError):
        return None
    return units
