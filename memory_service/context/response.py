"""A `ContextResult` as the REST response body (shared by the API route and the CLI)."""

from __future__ import annotations

from memory_service.context.pipeline import ContextResult
from memory_service.context.retrieval import Candidate
from memory_service.schemas import ChatMessage, ContextResponse, ContextStats, ContextUnit


def context_response(result: ContextResult) -> ContextResponse:
    shown = {p.candidate.unit.id: p.text for p in result.pieces}
    return ContextResponse(
        context=result.context,
        tokens=result.tokens,
        units=[
            ContextUnit(
                id=c.unit.id,
                text=c.unit.text,
                score=c.score,
                kind=c.unit.kind,
                event_time=c.unit.event_time,
                source_event_ids=c.unit.source_event_ids,
                shown=shown.get(c.unit.id),
                found_by=found_by(c),
            )
            for c in result.chosen
        ],
        empty=result.empty,
        stats=ContextStats(
            candidates_considered=result.candidates_considered,
            units_chosen=len(result.chosen),
            timings_ms={k: round(v, 3) for k, v in result.timings_ms.items()},
            tokens=result.tokens,
            history_tokens=result.history_tokens,
            compression_ratio=round(result.compression_ratio, 3),
            best_relevance=round(result.best_relevance, 4),
            abstention=result.answerability.reason if result.answerability else None,
        ),
        messages=None if result.messages is None else [ChatMessage(role="system", content=m["content"]) for m in result.messages],
    )


def found_by(candidate: Candidate) -> list[str]:
    """The retrieval signals that put the unit among the candidates."""
    signals = {
        "dense": candidate.dense is not None,
        "lexical": candidate.lexical is not None or candidate.second_lexical > 0,
        "entity": candidate.entity_match,
        "time": candidate.in_time_range,
    }
    return [name for name, hit in signals.items() if hit]
