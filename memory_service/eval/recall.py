"""The eval's metrics: evidence recall, and the text metrics (content recall, answer-token
recall, provenance precision, the share of stop words).

Evidence recall: the share of annotated evidence turns (of the questions the conversation
answers) that a unit in the returned context cites. `evidence_recall` serves the
benchmarks; the text metrics below and `score` serve `memory_service.eval.run`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from bm25s.stopwords import STOPWORDS_EN_PLUS

from compressors.text.words import MONTH_NAMES, STOPWORDS, stem_word
from memory_service.domain import Scope
from memory_service.eval import locomo
from memory_service.eval.locomo import Turn
from memory_service.service import MemoryService


@dataclass
class RecallReport:
    questions: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    context_tokens: list[int] = field(default_factory=list)
    hits: dict[int, int] = field(default_factory=dict)
    evidence: dict[int, int] = field(default_factory=dict)

    def recall(self, categories: Sequence[int] = (1, 2, 3, 4)) -> float:
        total = sum(self.evidence.get(c, 0) for c in categories)
        return sum(self.hits.get(c, 0) for c in categories) / total if total else 0.0

    def summary(self) -> dict[str, Any]:
        lat = np.asarray(self.latencies_ms or [0.0])
        return {
            "questions": self.questions,
            "p50_ms": float(np.percentile(lat, 50)),
            "p95_ms": float(np.percentile(lat, 95)),
            "mean_ms": float(lat.mean()),
            "context_tokens_mean": float(np.mean(self.context_tokens)) if self.context_tokens else 0.0,
            "evidence_recall": {
                "overall_1_4": self.recall(),
                "by_category": {str(c): self.recall([c]) for c in sorted(self.evidence)},
            },
        }


async def evidence_recall(
    service: MemoryService,
    samples: Sequence[dict[str, Any]],
    budget: int,
    on_question: Callable[[], None] | None = None,
) -> RecallReport:
    report = RecallReport()
    await service.context(Scope(user_id=str(samples[0]["sample_id"])), "warm up", budget)
    for sample in samples:
        for q in locomo.sample_questions(sample):
            started = time.perf_counter()
            result = await service.context(Scope(user_id=q.sample_id), q.question, budget)
            report.latencies_ms.append((time.perf_counter() - started) * 1000)
            report.questions += 1
            if on_question is not None:
                on_question()
            if q.abstention or not q.evidence:
                continue
            cited = {eid for c in result.chosen for eid in c.unit.source_event_ids}
            report.hits[q.category] = report.hits.get(q.category, 0) + sum(
                f"{q.sample_id}/{dia}" in cited for dia in q.evidence
            )
            report.evidence[q.category] = report.evidence.get(q.category, 0) + len(q.evidence)
            report.context_tokens.append(result.tokens)
    return report


# --------------------------------------------------------------------------- text metrics
#
# Both sides of every comparison (an evidence turn or a gold answer, and the context
# text) go through `content_stems`: lowercase; ISO dates "2023-05-07" written out as
# "7 May 2023" (the service prints dates as ISO, the dataset writes them out); numbers
# without leading zeros; words split on anything not a letter or digit (so "Caroline's"
# gives "caroline" and "s"); stop words (compressors.text.STOPWORDS) and one-letter
# words dropped, except the month "May" (capitalised; "may" is a stop word); Snowball
# English stems (PyStemmer). Numbers of any length are kept.

CONTENT_RECALL_THRESHOLD = 0.6
"""An evidence turn's content reaches a context when at least this share of its distinct
content stems are among the context's stems (the headline content recall)."""
CONTENT_RECALL_THRESHOLDS = (0.6, 0.5)
"""Content recall is reported at each of these (keys `content_recall`, `content_recall_50`)."""
PROVENANCE_THRESHOLD = 0.5
"""A unit's citation of an event is supported when at least this share of the event's
distinct content stems appear in the text the context shows for the unit."""

_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_WORD = re.compile(r"[A-Za-z0-9]+")
_MONTH_MAY = "may_month"  # cannot collide: _WORD never yields "_"
_MONTHS = tuple(m.capitalize() for m in MONTH_NAMES)


def _write_out_date(m: re.Match[str]) -> str:
    month = int(m.group(2))
    if not 1 <= month <= 12:
        return m.group(0)
    return f"{int(m.group(3))} {_MONTHS[month - 1]} {m.group(1)}"


def _word(raw: str) -> str:
    if raw.isdigit():
        return raw.lstrip("0") or "0"
    return _MONTH_MAY if raw == "May" else raw.lower()


def _words(text: str) -> list[str]:
    return [_word(w) for w in _WORD.findall(_ISO_DATE.sub(_write_out_date, text))]


def content_stems(text: str) -> set[str]:
    """The distinct content stems of a text (see the rules above); all stems when it has no content word."""
    words = _words(text)
    content = [w for w in words if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]
    return {w if w == _MONTH_MAY else stem_word(w) for w in content or words}


def token_recall(reference: str, context_stems: set[str]) -> float | None:
    """Share of the reference's content stems present in the context; None when it has none."""
    stems = content_stems(reference)
    if not stems:
        return None
    return len(stems & context_stems) / len(stems)


def content_hit(turn_text: str, context_stems: set[str], threshold: float = CONTENT_RECALL_THRESHOLD) -> bool:
    """Whether most of an evidence turn's content reaches the context (see CONTENT_RECALL_THRESHOLD)."""
    share = token_recall(turn_text, context_stems)
    return share is not None and share >= threshold


def provenance(pieces: Sequence[tuple[str, Sequence[str]]], turns: dict[str, Turn]) -> tuple[int, int]:
    """(supported, cited) over the (shown text, cited dia_ids) of a context's units.

    Every (unit, cited event) pair counts once; it is supported when at least
    PROVENANCE_THRESHOLD of the event's distinct content stems are in the unit's shown
    text (not the whole context). A cited id the conversation lacks is unsupported.
    """
    supported = cited = 0
    for text, dia_ids in pieces:
        stems = content_stems(text)
        for dia in dia_ids:
            cited += 1
            supported += dia in turns and content_hit(turns[dia].content, stems, PROVENANCE_THRESHOLD)
    return supported, cited


# A fixed list of English function words (NLTK's 179, as bm25s ships them), not the
# project's STOPWORDS: those are tuned by the compressors (fillers such as "great" or
# "day"), and the instrument must not move when they do.
_FUNCTION_WORDS = frozenset(w.lower() for w in STOPWORDS_EN_PLUS)
_PLAIN_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)*")


def stopword_share(text: str) -> float | None:
    """Share of a text's words that are stop words (None when it has no word).

    Words: runs of letters and digits, lowercased, an inner apostrophe kept ("don't" is one
    word); curly apostrophes read as straight ones; stop words: `_FUNCTION_WORDS`.
    """
    words = _PLAIN_WORD.findall(text.lower().replace("\u2019", "'"))
    if not words:
        return None
    return sum(w in _FUNCTION_WORDS for w in words) / len(words)


def mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


def score(
    evidence: Sequence[str],
    answer: str | None,
    turns: dict[str, Turn],
    cited: set[str],
    context: str,
    threshold: float = CONTENT_RECALL_THRESHOLD,
) -> tuple[list[str], list[str], float | None]:
    """(evidence hits by citation, evidence hits by content at `threshold`, answer-token recall) of one context."""
    stems = content_stems(context)
    hits = [d for d in evidence if d in cited]
    content = [d for d in evidence if d in turns and content_hit(turns[d].content, stems, threshold)]
    return hits, content, token_recall(answer, stems) if answer else None


def content_hits(evidence: Sequence[str], turns: dict[str, Turn], context: str) -> dict[float, list[str]]:
    """Threshold -> the evidence dia_ids whose content reaches the context, for each CONTENT_RECALL_THRESHOLDS."""
    stems = content_stems(context)
    return {
        t: [d for d in evidence if d in turns and content_hit(turns[d].content, stems, t)] for t in CONTENT_RECALL_THRESHOLDS
    }
