"""Packs retrieved units into a token budget (see `selection`) and renders the context for the predictor."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Literal

from memory_service import tracing
from memory_service.context.analysis import QueryAnalysis
from memory_service.context.config import DEFAULT_SELECTION, SelectionParams
from memory_service.context.retrieval import Candidate
from memory_service.context.selection import Piece, select
from memory_service.domain import MemoryUnit
from memory_service.tokens import count_tokens

ContextFormat = Literal["text", "json", "messages"]

HEADER = "Memories (oldest first):"
SYSTEM_PROMPT = (
    "Memories from earlier interactions that may help with the next request, oldest first, "
    "grouped under the date each was said or happened. Use them only if relevant."
)
_SAID = re.compile(r"^([^\W\d][\w .'\u2019-]{0,60}?) said: ")


@dataclass
class PackedContext:
    context: str
    tokens: int
    chosen: list[Candidate]
    pieces: list[Piece] = field(default_factory=list)
    messages: list[dict[str, str]] | None = None


def unit_date(unit: MemoryUnit) -> str:
    when: datetime = unit.event_time or unit.valid_from
    return when.strftime("%Y-%m-%d")


CONFLICT_MARK = "[conflicts with"


def display_text(unit: MemoryUnit) -> str:
    """The unit's text as shown: "X said: ..." becomes "X: ..." (same meaning, fewer tokens).

    A unit consolidation found contradicted by another ("I've never used X" against "I used
    X": no time order says which holds) carries "[conflicts with what was said on <date>]",
    so the predictor sees both as disputed instead of one silently winning.
    """
    text = _SAID.sub(r"\1: ", unit.text, count=1)
    dates = sorted({str(h.get("said", ""))[:10] for h in unit.history if h.get("op") == "conflicts_with"} - {""})
    if dates:
        text = f"{text} {CONFLICT_MARK} what was said on {', '.join(dates)}]"
    return text


def unit_line(unit: MemoryUnit) -> str:
    return f"- [{unit_date(unit)}] {unit.text}"


@lru_cache(maxsize=100_000)
def _line_tokens(text: str, tokenizer: str) -> int:
    return count_tokens(f"- {text}", tokenizer) + 1


def _time_key(piece: Piece) -> tuple[datetime, int]:
    unit = piece.candidate.unit
    return (unit.event_time or unit.valid_from, unit.id)


def render(pieces: Sequence[Piece], fmt: ContextFormat) -> str:
    """Pieces in time order; text groups lines under one date line each, json is a list of {date, text}."""
    if not pieces:
        return ""
    ordered = sorted(pieces, key=_time_key)
    if fmt == "json":
        return json.dumps([{"date": unit_date(p.candidate.unit), "text": p.text} for p in ordered], ensure_ascii=False)
    lines = [HEADER]
    current = None
    for piece in ordered:
        day = unit_date(piece.candidate.unit)
        if day != current:
            lines.append(f"{day}:")
            current = day
        lines.append(f"- {piece.text}")
    return "\n".join(lines)


def pack(
    candidates: Sequence[Candidate],
    budget_tokens: int,
    fmt: ContextFormat = "text",
    tokenizer: str = "cl100k_base",
    analysis: QueryAnalysis | None = None,
    params: SelectionParams = DEFAULT_SELECTION,
    display: Callable[[Candidate], str] | None = None,
) -> PackedContext:
    """Select pieces by marginal gain into the budget, then render them in time order.

    `display` gives a candidate's text (default `display_text`; token pruning passes its own).

    Line costs are summed (a line's tokens do not depend on its neighbours once
    separated by newlines), and the final text is measured exactly; the rare overshoot
    from token merges drops the least relevant piece until it fits.
    """
    fixed = count_tokens(HEADER, tokenizer) + 1 if fmt != "json" else 2
    if fmt == "messages":
        fixed += count_tokens(SYSTEM_PROMPT, tokenizer) + 1

    if fmt == "json":
        def line_tokens(text: str) -> int:
            return count_tokens(json.dumps({"date": "2000-01-01", "text": text}, ensure_ascii=False), tokenizer) + 1

        def group_tokens(candidate: Candidate) -> tuple[str, int]:
            return unit_date(candidate.unit), 0
    else:
        def line_tokens(text: str) -> int:
            return _line_tokens(text, tokenizer)

        def group_tokens(candidate: Candidate) -> tuple[str, int]:
            day = unit_date(candidate.unit)
            return day, count_tokens(f"{day}:", tokenizer) + 1

    with tracing.span("context.selection", attributes={"candidates": len(candidates)}):
        pieces = select(
            candidates, analysis, budget_tokens - fixed, line_tokens, group_tokens,
            display or (lambda c: display_text(c.unit)), params,
        )
    with tracing.span("context.packing", attributes={"pieces": len(pieces)}):
        return _render_within(pieces, budget_tokens, fmt, tokenizer)


def _render_within(pieces: list[Piece], budget_tokens: int, fmt: ContextFormat, tokenizer: str) -> PackedContext:
    """Render; while token merges overshoot the budget, drop the least relevant piece."""
    while True:
        text = render(pieces, fmt)
        messages = None
        if fmt == "messages":
            text = f"{SYSTEM_PROMPT}\n{text}" if pieces else ""
            messages = [{"role": "system", "content": text}] if pieces else []
        tokens = count_tokens(text, tokenizer)
        if tokens <= budget_tokens or not pieces:
            ordered = sorted(pieces, key=_time_key)
            return PackedContext(text, tokens, [p.candidate for p in ordered], ordered, messages)
        pieces.remove(min(pieces, key=lambda p: p.relevance))
