"""Query analysis: time expressions -> ranges, entity mentions, complexity -> retrieval scope."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from memory_service.context.analysis import TimeRange, analyze, entity_mentions, time_range_of

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("What happened in 2022?", TimeRange(utc(2022, 1, 1), utc(2023, 1, 1))),
        ("What did Ann paint last May?", TimeRange(utc(2023, 5, 1), utc(2023, 6, 1))),
        ("What did Ann paint last February?", TimeRange(utc(2024, 2, 1), utc(2024, 3, 1))),
        ("Where was Ann in May 2023?", TimeRange(utc(2023, 5, 1), utc(2023, 6, 1))),
        ("What did we decide on 8 May 2023?", TimeRange(utc(2023, 5, 8), utc(2023, 5, 9))),
        ("What did we decide on May 8th, 2023?", TimeRange(utc(2023, 5, 8), utc(2023, 5, 9))),
        ("What was logged on 2023-07-02?", TimeRange(utc(2023, 7, 2), utc(2023, 7, 3))),
        ("What did Jon do before June 2023?", TimeRange(None, utc(2023, 6, 1))),
        ("What has Jon done since 2021?", TimeRange(utc(2021, 1, 1), None)),
        ("What did Jon do after March 2023?", TimeRange(utc(2023, 4, 1), None)),
        ("What did we plan last week?", TimeRange(utc(2024, 2, 26), utc(2024, 3, 4))),
        ("What did Ann cook?", None),
    ],
)
def test_time_expressions_become_ranges(query: str, expected: TimeRange | None) -> None:
    assert time_range_of(query, NOW) == expected


def test_temporal_flag_without_a_range() -> None:
    when = analyze("When did Caroline go to the support group?", NOW)
    assert when.temporal and when.time_range is None
    assert not analyze("What does Caroline like to cook?", NOW).temporal


def test_entity_mentions_skip_question_words_and_months() -> None:
    assert entity_mentions("What did Gina buy in New York last May?") == ["Gina", "New York"]
    assert entity_mentions("When did Caroline's sister visit Bank of America?") == ["Caroline", "Bank of America"]
    assert entity_mentions("how are you?") == []


def test_complexity_widens_the_scope() -> None:
    simple = analyze("What did Ann paint last May?", NOW)
    assert not simple.multi_hop and not simple.expand and simple.candidates == 50
    for query in (
        "What activities do Caroline and Melanie both enjoy?",
        "Why did Gina open her own store?",
        "What books has Ann read?",
        "Would Jon enjoy a trip to Rome?",
    ):
        analysis = analyze(query, NOW)
        assert analysis.multi_hop and analysis.expand and analysis.candidates == 100, query
