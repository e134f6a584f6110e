"""Packs retrieved units into a token budget and renders the context for the predictor."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from memory_service.domain import MemoryUnit
from memory_service.retrieval import Candidate
from memory_service.tokens import count_tokens

ContextFormat = Literal["text", "json"]

HEADER = "Relevant memories (oldest first):"


@dataclass
class PackedContext:
    context: str
    tokens: int
    chosen: list[Candidate]


def unit_date(unit: MemoryUnit) -> str:
    when: datetime = unit.event_time or unit.valid_from
    return when.strftime("%Y-%m-%d")


def unit_line(unit: MemoryUnit) -> str:
    return f"- [{unit_date(unit)}] {unit.text}"


def _entry(unit: MemoryUnit, fmt: ContextFormat) -> str:
    if fmt == "json":
        return json.dumps({"date": unit_date(unit), "text": unit.text}, ensure_ascii=False)
    return unit_line(unit)


def render(chosen: Sequence[Candidate], fmt: ContextFormat) -> str:
    if not chosen:
        return ""
    entries = [_entry(c.unit, fmt) for c in chosen]
    if fmt == "json":
        return "[" + ", ".join(entries) + "]"
    return "\n".join([HEADER, *entries])


def _time_key(candidate: Candidate) -> tuple[datetime, int]:
    unit = candidate.unit
    return (unit.event_time or unit.valid_from, unit.id)


def pack(candidates: Sequence[Candidate], budget_tokens: int, fmt: ContextFormat = "text", tokenizer: str = "cl100k_base") -> PackedContext:
    """Greedy: take candidates best first while the rendered context stays within the budget.

    A unit that does not fit is skipped and smaller ones after it may still fit. Line
    costs are summed (a line's tokens do not depend on its neighbours once separated by
    newlines), and the final text is measured exactly; the rare overshoot from token
    merges across lines drops the lowest-scored unit until it fits.
    """
    used = count_tokens(HEADER, tokenizer) if fmt == "text" else 1
    chosen: list[Candidate] = []
    for candidate in candidates:
        cost = count_tokens(_entry(candidate.unit, fmt), tokenizer) + 1
        if used + cost > budget_tokens:
            continue
        chosen.append(candidate)
        used += cost
    while True:
        ordered = sorted(chosen, key=_time_key)
        text = render(ordered, fmt)
        tokens = count_tokens(text, tokenizer)
        if tokens <= budget_tokens or not chosen:
            return PackedContext(text, tokens, ordered)
        chosen.pop()
