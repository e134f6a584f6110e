"""Two reference compressors that bracket the real ones when they are measured (MI, eval).

- `identity`: the raw window, one unit per event ("speaker: text", an image's caption and
  tool calls written out).
  Nothing is lost, so it is the upper reference.
- `truncate`: each event's raw text cut to the token count of the unit `extractive` makes
  of it (cl100k tokens; an event extractive drops is dropped). The same budget as
  extractive, spent without choosing: the lower reference.

Neither is meant for ingest; both register by name so that `memory-service mi` and
`memory-service eval --compressor` can run them like any backend.
"""

from __future__ import annotations

from typing import Any

from compressors.extractive import ExtractiveCompressor
from compressors.text.tokens import encoding
from memory_service.domain import CompressionWindow, Event, MemoryUnitDraft


def raw_text(event: Event) -> str:
    return f"{event.speaker_name}: {event.full_text()}"


class IdentityCompressor:
    name = "identity"
    version = "2"  # 2: an image's caption is part of the event's text

    def __init__(self, **_: Any) -> None:
        pass

    def compress(self, window: CompressionWindow) -> list[MemoryUnitDraft]:
        return [
            MemoryUnitDraft(text=raw_text(e), event_time=e.timestamp, source_event_ids=[e.event_id])
            for e in window.events
            if raw_text(e).strip()
        ]


class TruncationCompressor:
    name = "truncate"
    version = "2"

    def __init__(self, **options: Any) -> None:
        self.extractive = ExtractiveCompressor(**options)
        self.encoding = encoding()

    def compress(self, window: CompressionWindow) -> list[MemoryUnitDraft]:
        budget = {d.source_event_ids[0]: len(self.encoding.encode(d.text, disallowed_special=()))
                  for d in self.extractive.compress(window)}
        drafts = []
        for event in window.events:
            if event.event_id not in budget:
                continue
            tokens = self.encoding.encode(raw_text(event), disallowed_special=())[: budget[event.event_id]]
            text = self.encoding.decode(tokens).strip()
            if text:
                drafts.append(MemoryUnitDraft(text=text, event_time=event.timestamp, source_event_ids=[event.event_id]))
        return drafts


def create_identity(**options: Any) -> IdentityCompressor:
    return IdentityCompressor(**options)


def create_truncation(**options: Any) -> TruncationCompressor:
    return TruncationCompressor(**options)
