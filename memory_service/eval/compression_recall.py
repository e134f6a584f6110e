"""The eval's text metrics applied to compressions of sampled windows, without retrieval.

For the MI comparison (`benchmarks/mi_compressors.py`): on the same windows whose I(X;Z) is
estimated, how much of the windows' content and of the answers they hold reaches each
compressor's output. The context metrics of `memory_service.eval.run` measure the same
things after retrieval, selection and packing; these isolate the compressor.

- content recall: share of the windows' turns whose content reaches the window's
  compression (`recall.content_hit`, 60% of the turn's content stems).
- answer-token recall: for each answerable question with an evidence turn in a sampled
  window, the share of the answer's content stems in the compressions of those windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from memory_service.domain import CompressionWindow
from memory_service.eval.locomo import Question
from memory_service.eval.recall import content_hit, content_stems, mean, token_recall


@dataclass
class CompressionRecall:
    content_recall: float | None
    answer_token_recall: float | None
    turns: int
    questions: int

    def as_dict(self) -> dict[str, float | int | None]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 4)

        return {"content_recall": r(self.content_recall), "answer_token_recall": r(self.answer_token_recall),
                "recall_turns": self.turns, "recall_questions": self.questions}


def compression_recall(
    windows: Sequence[CompressionWindow], compressions: Sequence[str], questions: Sequence[Question]
) -> CompressionRecall:
    """Content and answer-token recall of `compressions[i]` (of `windows[i]`), see the module doc."""
    stems = [content_stems(z) if z else set() for z in compressions]
    hits: list[float] = []
    where: dict[str, int] = {}
    for i, window in enumerate(windows):
        for event in window.events:
            where[event.event_id] = i
            if event.content and content_stems(event.content):
                hits.append(float(content_hit(event.content, stems[i])))
    answers: list[float] = []
    for q in questions:
        if q.abstention or not q.answer:
            continue
        found = {where[e] for e in (f"{q.sample_id}/{d}" for d in q.evidence) if e in where}
        if not found:
            continue
        share = token_recall(q.answer, set().union(*(stems[i] for i in found)))
        if share is not None:
            answers.append(share)
    return CompressionRecall(mean(hits), mean(answers), len(hits), len(answers))
