"""The supersession judge's prompt: does a later memory note update an earlier one?

An `LMClient` answers it; `memory_service.consolidate.lm_judge` decides what a
verdict is worth. Change `VERSION` whenever the messages or the schema change.
"""

from __future__ import annotations

from typing import Any

from memory_service.domain import MemoryUnit

VERSION = "1"

SYSTEM = """You compare two memory notes about the same person or thing. The second note was written later.
Answer whether the second note UPDATES the first: the same fact (where someone lives or works, a setting, a number, a plan, a preference, a relationship) now has a different value, so the first note is no longer true.
A second note that adds detail, talks about something else, or describes another occasion is NOT an update.
Answer with JSON only: {"updates": true or false, "old_value": "words copied from the first note", "new_value": "words copied from the second note"}"""

VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "updates": {"type": "boolean"},
        "old_value": {"type": "string", "maxLength": 120},
        "new_value": {"type": "string", "maxLength": 120},
    },
    "required": ["updates", "old_value", "new_value"],
}


def verdict_messages(old: MemoryUnit, new: MemoryUnit) -> list[dict[str, str]]:
    def when(unit: MemoryUnit) -> str:
        return (unit.event_time or unit.valid_from).strftime("%d %B %Y")

    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"First note ({when(old)}): {old.text}\nSecond note ({when(new)}): {new.text}"},
    ]
