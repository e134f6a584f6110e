"""Selection discounts a piece by the share of its words the chosen pieces already show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from memory_service.context.config import SelectionParams
from memory_service.context.retrieval import Candidate
from memory_service.context.selection import select
from memory_service.domain import MemoryUnit


def _candidate(unit_id: int, text: str, score: float) -> Candidate:
    when = datetime(2023, 5, 1, tzinfo=UTC) + timedelta(hours=unit_id)
    unit = MemoryUnit(
        id=unit_id, tenant="local", user_id="u", text=text, source_event_ids=[f"e{unit_id}"], valid_from=when,
        event_time=when, compressor="test", compressor_version="1", hash=str(unit_id), created_at=when, updated_at=when,
    )
    vector = np.zeros(8, dtype=np.float32)
    vector[unit_id] = 1.0  # orthogonal vectors: the vectors see no redundancy at all
    return Candidate(unit=unit, score=score, dense=score, vector=vector)


POOL = [
    _candidate(1, "Maria bought a red bicycle at the Sunday market.", 1.0),
    _candidate(2, "On Sunday Maria went to the market and bought a bicycle, a red one.", 0.9),
    _candidate(3, "Maria's brother repairs old cars in his garage.", 0.8),
]


def _line(text: str) -> int:
    return len(text.split())


def _group(candidate: Candidate) -> tuple[str, int]:
    return "2023-05-01", 0


def _two_pieces() -> int:
    return _line(POOL[0].unit.text) + max(_line(c.unit.text) for c in POOL[1:])


def test_a_restatement_in_other_words_loses_to_a_new_fact() -> None:
    chosen = select(POOL, None, _two_pieces(), _line, _group, lambda c: c.unit.text, SelectionParams(novelty=0.3))
    assert [p.candidate.unit.id for p in chosen] == [1, 3]


def test_without_the_word_redundancy_the_restatement_wins() -> None:
    chosen = select(POOL, None, _two_pieces(), _line, _group, lambda c: c.unit.text, SelectionParams(novelty=0.0))
    assert [p.candidate.unit.id for p in chosen] == [1, 2]
