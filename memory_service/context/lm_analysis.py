"""Query analysis assisted by the local LM, merged conservatively into the rule-based one.

The rules (`query_analysis.analyze`) find capitalised names, explicit dates and
multi-hop cue words. What they miss: names written in lower case ("did caroline go
..."), the plain form of a word the units may use ("painting" -> "paint"), and a
question that needs several facts without any cue word. The LM is asked for those.

Its answer only ever ADDS to the rules' analysis, and only what is grounded:
- an entity counts when it occurs in the query (case-insensitive, whole words);
- a keyword counts when each of its words is a query word or shares a stem with one
  (a short expansion the lexical and symbolic search can use, never a new topic);
- a time expression counts when it is copied from the query; it sets the temporal
  flag (the range itself stays the rules': they parse every expression they can);
- "needs several facts" can switch multi-hop on (a wider pool, expansion), never off.
Nothing the rules found is dropped. An LM that errs, times out or answers nonsense
leaves the rules' analysis as it is. Answers are cached per query string (LRU), so a
repeated question costs no LM call.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from compressors.lm.client import LMClient
from compressors.prompts.query_analysis import ANSWER_SCHEMA, question_messages
from compressors.text.words import STOPWORDS, query_words, stem_words
from memory_service.context.analysis import QUESTION_WORDS, QueryAnalysis, analyze
from stores.lru import LRU

log = logging.getLogger(__name__)

MAX_ADDED_TERMS = 6
MAX_PHRASE_WORDS = 4


@dataclass
class LMAnalysisStats:
    asked: int = 0
    cache_hits: int = 0
    failures: int = 0
    terms_added: int = 0
    entities_added: int = 0
    multi_hop_added: int = 0
    rejected: int = 0  # proposed terms/entities/expressions that were not grounded


@dataclass(frozen=True)
class LMAnswer:
    entities: tuple[str, ...]
    keywords: tuple[str, ...]
    time_expression: str
    several_facts: bool


def parse_answer(answer: Any) -> LMAnswer:
    """The model's JSON as an LMAnswer; ValueError for anything not shaped like ANSWER_SCHEMA."""
    if not isinstance(answer, dict):
        raise ValueError(f"not an analysis: {answer!r}"[:200])
    lists = []
    for key in ("entities", "keywords"):
        value = answer.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{key} is not a list of strings: {value!r}"[:200])
        lists.append(tuple(v.strip() for v in value if v.strip()))
    expression = answer.get("time_expression", "")
    several = answer.get("needs_several_facts", False)
    if not isinstance(expression, str) or not isinstance(several, bool):
        raise ValueError(f"not an analysis: {answer!r}"[:200])
    return LMAnswer(lists[0], lists[1], expression.strip(), several)


def _occurs(phrase: str, query: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(phrase.lower())}(?!\w)", query.lower()) is not None


def merge(rules: QueryAnalysis, answer: LMAnswer, base_candidates: int) -> tuple[QueryAnalysis, LMAnalysisStats]:
    """The rules' analysis plus what of the LM's answer is grounded in the query (see the module doc)."""
    stats = LMAnalysisStats()
    query = rules.query
    words_of_query = query_words(query)
    query_stems = set(stem_words(words_of_query))
    entities = list(rules.entities)
    known_entities = {e.lower() for e in entities}
    for entity in answer.entities:
        words = entity.split()
        if (
            not words
            or len(words) > MAX_PHRASE_WORDS
            or not _occurs(entity, query)
            or all(w.lower() in STOPWORDS or w.lower() in QUESTION_WORDS for w in words)
        ):
            stats.rejected += 1
            continue
        if entity.lower() not in known_entities:
            entities.append(entity)
            known_entities.add(entity.lower())
            stats.entities_added += 1
    terms = list(rules.terms)
    for keyword in answer.keywords:
        words = query_words(keyword)
        grounded = (
            0 < len(words) <= MAX_PHRASE_WORDS
            and len(keyword) <= 40
            and all(w in words_of_query or stem_words([w])[0] in query_stems for w in words)
        )
        if not grounded:
            stats.rejected += 1
            continue
        for word in words:
            if word in STOPWORDS or word in terms or stats.terms_added >= MAX_ADDED_TERMS:
                continue
            terms.append(word)
            stats.terms_added += 1
    temporal = rules.temporal
    if answer.time_expression:
        if _occurs(answer.time_expression, query) and any(w not in STOPWORDS for w in query_words(answer.time_expression)):
            temporal = True
        else:
            stats.rejected += 1
    merged = replace(rules, terms=terms, entities=entities, temporal=temporal)
    if answer.several_facts and not rules.multi_hop:
        stats.multi_hop_added = 1
        merged = replace(merged, multi_hop=True, expand=True, complexity=rules.complexity + 1, candidates=base_candidates * 2)
    return merged, stats


class LMQueryAnalyzer:
    """`analyze` has the signature of `query_analysis.analyze`; call it off the event loop
    (an LM answer takes seconds on a CPU). `timeout_s` bounds one LM call."""

    def __init__(self, lm: LMClient, timeout_s: float = 10.0, cache_size: int = 4096) -> None:
        self.lm = lm
        self.timeout_s = timeout_s
        self.stats = LMAnalysisStats()
        self._answers: LRU[str, LMAnswer] = LRU(cache_size)
        self._lock = threading.Lock()

    def _count(self, **increments: int) -> None:
        with self._lock:
            for name, value in increments.items():
                setattr(self.stats, name, getattr(self.stats, name) + value)

    def ask(self, query: str) -> LMAnswer | None:
        """The LM's (cached) answer for a query; None when the LM failed."""
        cached = self._answers.get(query)
        if cached is not None:
            self._count(cache_hits=1)
            return cached
        self._count(asked=1)
        try:
            answer = parse_answer(self.lm.ask_json(question_messages(query), ANSWER_SCHEMA, self.timeout_s))
        except Exception as exc:
            log.info("LM query analysis failed (%s); using the rules alone", f"{type(exc).__name__}: {exc}"[:200])
            self._count(failures=1)
            return None
        self._answers.put(query, answer)
        return answer

    def analyze(self, query: str, now: datetime | None = None, base_candidates: int = 50) -> QueryAnalysis:
        rules = analyze(query, now or datetime.now(UTC), base_candidates)
        answer = self.ask(query)
        if answer is None:
            return rules
        merged, added = merge(rules, answer, base_candidates)
        self._count(
            terms_added=added.terms_added,
            entities_added=added.entities_added,
            multi_hop_added=added.multi_hop_added,
            rejected=added.rejected,
        )
        return merged


def query_analyzer(choice: str, compressor: object, timeout_s: float = 10.0) -> LMQueryAnalyzer | None:
    """The analyzer for a `query_analysis` setting (None: the rules alone).

    `auto` means the rules: an LM answer costs ~1-5 s with SmolLM2 on a CPU, past the
    context path's latency target; `lm` asks the service's LM compressor.
    """
    if choice in ("rules", "auto"):
        return None
    if choice != "lm":
        raise ValueError(f"query_analysis must be rules, lm or auto, not {choice!r}")
    if not isinstance(compressor, LMClient):
        raise ValueError("query_analysis=lm needs an LM compressor (llama_cpp, transformers or openai)")
    return LMQueryAnalyzer(compressor, timeout_s)
