"""The merge rules of LM-assisted query analysis: only grounded additions, nothing the rules found lost.

A scripted backend stands in for the model to pin the rules down exactly; the real
SmolLM2 runs the same path in tests/integration/test_lm_query_analysis.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from compressors.extractive import ExtractiveCompressor
from memory_service.context.analysis import analyze
from memory_service.context.lm_analysis import LMAnswer, LMQueryAnalyzer, merge, parse_answer, query_analyzer
from tests.scripted_lm import ScriptedLM

NOW = datetime(2024, 6, 1, tzinfo=UTC)


def answer(entities=(), keywords=(), time_expression="", several=False) -> str:
    return json.dumps({"entities": list(entities), "keywords": list(keywords), "time_expression": time_expression,
                       "needs_several_facts": several})


def test_grounded_additions_are_merged_and_rule_findings_kept() -> None:
    query = "what did caroline paint at the lake in May 2023?"
    rules = analyze(query, NOW)
    merged, stats = merge(rules, parse_answer(json.loads(answer(
        entities=["caroline", "the lake", "Paris"],
        keywords=["painting", "lake", "sunset", "paint the lake"],
        time_expression="May 2023",
        several=True,
    ))), 50)
    assert "caroline" in merged.entities and "the lake" in merged.entities
    assert "Paris" not in merged.entities  # not in the query
    assert "painting" in merged.terms  # shares a stem with "paint"
    assert "sunset" not in merged.terms  # a new topic, not grounded
    assert set(rules.terms) <= set(merged.terms) and set(rules.entities) <= set(merged.entities)
    assert merged.time_range == rules.time_range and merged.temporal
    assert merged.multi_hop and merged.expand and merged.candidates == 100
    assert stats.entities_added == 2 and stats.rejected == 2


def test_the_lm_never_takes_anything_away() -> None:
    query = "Did Caroline and Melanie both go camping last year?"
    rules = analyze(query, NOW)
    assert rules.multi_hop and rules.time_range is not None
    merged, stats = merge(rules, LMAnswer((), (), "", False), 50)
    assert merged == rules
    assert stats.terms_added == stats.entities_added == stats.multi_hop_added == 0


def test_ungrounded_time_expression_and_stopword_entities_are_rejected() -> None:
    query = "what does Melanie like to eat?"
    rules = analyze(query, NOW)
    merged, stats = merge(rules, LMAnswer(("what", "Melanie"), ("the", "to eat"), "before the trip", False), 50)
    assert merged.entities == rules.entities and not merged.temporal
    assert merged.terms == rules.terms  # "to eat": grounded, but "to" is a stopword and "eat" known
    assert stats.rejected == 3  # "what", "the" (not in the query) and the expression


def test_added_terms_are_bounded() -> None:
    query = "apples bananas cherries dates elderberries figs grapes honeydew"
    rules = analyze(query, NOW)
    merged, stats = merge(rules, LMAnswer((), tuple(w[:-1] for w in query.split()), "", False), 50)
    assert stats.terms_added == 6 and len(merged.terms) == len(rules.terms) + 6


@pytest.mark.parametrize("bad", [[], {"entities": "x", "keywords": []}, {"entities": [], "keywords": [1]},
                                 {"entities": [], "keywords": [], "needs_several_facts": "yes"}])
def test_malformed_answers_are_refused(bad: Any) -> None:
    with pytest.raises(ValueError):
        parse_answer(bad)


def test_analyzer_caches_per_query_and_falls_back_on_errors() -> None:
    lm = ScriptedLM([answer(entities=["caroline"]), "raise", "not json"])
    analyzer = LMQueryAnalyzer(lm)
    first = analyzer.analyze("where does caroline live?", NOW)
    again = analyzer.analyze("where does caroline live?", NOW)
    assert first.entities == again.entities == ["caroline"]
    assert analyzer.stats.asked == 1 and analyzer.stats.cache_hits == 1
    for query in ("where does melanie live?", "what is Ann's job?"):  # a crash, then an answer that is not JSON
        assert analyzer.analyze(query, NOW) == analyze(query, NOW)
    assert analyzer.stats.failures == 2 and analyzer.stats.asked == 3


def test_setting_choices() -> None:
    lm = ScriptedLM([])
    assert query_analyzer("auto", lm) is None and query_analyzer("rules", lm) is None
    assert isinstance(query_analyzer("lm", lm), LMQueryAnalyzer)
    with pytest.raises(ValueError):
        query_analyzer("lm", ExtractiveCompressor())
    with pytest.raises(ValueError):
        query_analyzer("magic", lm)
