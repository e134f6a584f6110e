"""The prompt every LM compressor uses (SimpleMem-style windows, made faithful).

The model sees the window's events numbered from 1, under a header per day (the date is
written once per day, the time only when it changes: every prompt token costs a small CPU
model about as much as a generated one), with relative dates already resolved from each
event's timestamp (a small model cannot do date arithmetic),
the overlap events before them for reference only, and the scope's most recent
units so it does not restate them. The answer must fit `unit_schema`. Change `VERSION`
whenever the messages or the schema change: it is part of the compression cache key and
of every unit's version.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from typing import Any

from compressors.lm.output import KINDS
from compressors.text.dates import format_day, resolve_relative_dates
from compressors.text.tokens import count_tokens
from memory_service.domain import CompressionWindow, Event, MemoryUnit

VERSION = "4"
MAX_EVENT_CHARS = 1200
MAX_RECENT_UNITS = 8
MAX_RECENT_CHARS = 200
MAX_RECENT_TOKENS = 160  # predictor tokens (cl100k_base, as memory_service.tokens counts)

SYSTEM = """You write memory notes from an agent's interaction log.
Events are listed under their day ("3 June 2024:"); a time is shown when it changes.
Each note restates facts from the numbered events as one short sentence that makes sense on its own:
- name people instead of writing I, me, my, you, we, he, she or they; keep speaker names;
- copy names, numbers, dates and quoted text exactly as they appear in the events;
- write dates as absolute dates (the events already give them), never "yesterday" or "last week";
- "source" lists the numbers of the events the note restates, and nothing else;
- kind is one of fact, event, preference, procedure (tool calls, steps), summary;
- skip greetings and small talk; do not repeat the already known notes.
Answer with compact JSON only: {"units":[{"source":[1],"text":"...","kind":"..."}]}"""

EXAMPLE_EVENTS = """Events:
3 June 2024:
[1] 09:12 Dana: I moved to Porto on 1 June 2024, my new flat is on Rua Alegre.
[2] Sam: Nice! How's the commute?
[3] 09:15 Dana: 25 minutes by metro. I love the tiles there."""

# JSON without whitespace: fewer tokens to generate (the grammar allows no other; see backends/llamacpp.py).
COMPACT = (",", ":")

# The example shows the required fields and the cheap useful ones; keywords, entities and
# location are allowed by the schema and filled from the text when a model leaves them out.
EXAMPLE_ANSWER = json.dumps(
    {
        "units": [
            {
                "source": [1],
                "text": "Dana moved to Porto on 1 June 2024; Dana's new flat is on Rua Alegre.",
                "kind": "event",
            },
            {
                "source": [2, 3],
                "text": "Dana's commute in Porto takes 25 minutes by metro.",
                "kind": "fact",
            },
            {
                "source": [3],
                "text": "Dana loves the tiles in Porto.",
                "kind": "preference",
            },
        ]
    },
    separators=COMPACT,
)

REPAIR = "Your answer could not be used ({error}). Answer again with only the JSON object, as described."


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def event_text(event: Event) -> str:
    """What the model reads of one event: the content with dates resolved, an image caption, a tool call."""
    content, _ = resolve_relative_dates(event.content, event.timestamp) if event.content else ("", None)
    parts = [content] if content else []
    if event.caption:
        parts.append(f"(shares an image: {event.caption})")
    if event.tool is not None:
        arguments = json.dumps(event.tool.arguments, ensure_ascii=False, default=str)
        call = f"called tool {event.tool.name} with {arguments}"
        if event.tool.result is not None:
            result = event.tool.result
            call += " -> " + (result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, default=str))
        parts.append(call)
    return _clip(" ".join(parts), MAX_EVENT_CHARS)


def event_speaker(event: Event) -> str:
    return event.speaker or (event.agent_id or "agent" if event.role == "tool" else event.role)


def event_lines(events: Sequence[Event], marks: Sequence[str]) -> list[str]:
    """`events` as lines, each after its mark: a "<day>:" header whenever the day changes
    (the list starts with one), the time (HH:MM) only when it differs from the line before."""
    lines: list[str] = []
    day: date | None = None
    clock: str | None = None
    for mark, event in zip(marks, events, strict=True):
        if event.timestamp.date() != day:
            day, clock = event.timestamp.date(), None
            lines.append(f"{format_day(day)}:")
        now = f"{event.timestamp:%H:%M}"
        when = f" {now}" if now != clock else ""
        clock = now
        lines.append(f"{mark}{when} {event_speaker(event)}: {event_text(event)}")
    return lines


def recent_lines(units: list[MemoryUnit]) -> list[str]:
    """The newest units as lines, oldest first, at most `MAX_RECENT_UNITS` and `MAX_RECENT_TOKENS` in all.

    Every prompt token costs a small CPU model about as much as a generated one, and these
    lines only steer it away from repeats, so they get a small budget."""
    lines: list[str] = []
    spent = 0
    for unit in reversed(units[-MAX_RECENT_UNITS:]):
        line = f"- {_clip(unit.text, MAX_RECENT_CHARS)}"
        spent += count_tokens(line)
        if spent > MAX_RECENT_TOKENS:
            break
        lines.append(line)
    return lines[::-1]


def user_message(window: CompressionWindow) -> str:
    sections = []
    known = recent_lines(window.recent_units)
    if known:
        sections.append("Already known notes (do not repeat):\n" + "\n".join(known))
    if window.context_events:
        earlier = event_lines(window.context_events, ["-"] * len(window.context_events))
        sections.append("Earlier events (context only, do not cite):\n" + "\n".join(earlier))
    numbered = event_lines(window.events, [f"[{i}]" for i in range(1, len(window.events) + 1)])
    sections.append("Events:\n" + "\n".join(numbered))
    return "\n\n".join(sections)


def prefix_messages() -> list[dict[str, str]]:
    """The messages every window's prompt starts with (a backend may keep their KV cache)."""
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": EXAMPLE_EVENTS},
        {"role": "assistant", "content": EXAMPLE_ANSWER},
    ]


def messages(window: CompressionWindow) -> list[dict[str, str]]:
    """Chat messages: instructions, one worked example, then the window."""
    return [*prefix_messages(), {"role": "user", "content": user_message(window)}]


def repair_messages(original: list[dict[str, str]], answer: str, error: str) -> list[dict[str, str]]:
    return [
        *original,
        {"role": "assistant", "content": answer[:2000]},
        {"role": "user", "content": REPAIR.format(error=error)},
    ]


def unit_schema(n_events: int) -> dict[str, Any]:
    """JSON schema of the answer for a window of `n_events` events, numbered from 1.

    `source` may only hold numbers of the window's events, so a grammar-constrained
    model cannot cite anything else. The answer holds only what a model must decide
    (which events, what they say, what kind of note): persons, entities, keywords,
    location and the event time are read off the text and its sources by grounding, so
    generating them only costs tokens (a third of SmolLM2's output when they were
    allowed; a small model copies them from the example). At least one unit: with this
    short example SmolLM2 otherwise answered `{"units":[]}` for short agent-log windows
    (what the model gets wrong, grounding rejects and extractive units stand in for).
    """
    # No maxLength: llama.cpp's converter unrolls it into a huge, slow grammar (max_tokens bounds length).
    return {
        "type": "object",
        "properties": {
            "units": {
                "type": "array",
                "minItems": 1,
                "maxItems": 2 * n_events,
                "items": {
                    "type": "object",
                    # `source` first: the model picks the events, then restates them
                    "properties": {
                        "source": {
                            "type": "array",
                            "items": {"enum": list(range(1, n_events + 1))},
                            "minItems": 1,
                            "maxItems": n_events,
                        },
                        "text": {"type": "string", "minLength": 8},
                        "kind": {"enum": list(KINDS)},
                    },
                    "required": ["source", "text", "kind"],
                },
            }
        },
        "required": ["units"],
    }


def schema_events(schema: dict[str, Any]) -> int:
    """How many events the window of a `unit_schema` has."""
    return len(schema["properties"]["units"]["items"]["properties"]["source"]["items"]["enum"])
