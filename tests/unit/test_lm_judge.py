"""The LM supersession judge's rules: when it asks, and which verdicts count.

A scripted backend stands in for the model here to pin the grounding rules down exactly;
the real SmolLM2 runs the same path in tests/integration/test_lm_judge.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from memory_service.consolidate.lm_judge import LMSupersessionJudge, grounded_update, judge_factory
from memory_service.domain import MemoryUnit
from tests.scripted_lm import ScriptedLM

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def unit(text: str, persons: list[str], day: int, uid: int = 1) -> MemoryUnit:
    at = T0 + timedelta(days=day)
    return MemoryUnit(id=uid, tenant="t", user_id="u", text=text, persons=persons, source_event_ids=[f"e{uid}"],
                      valid_from=at, event_time=at, compressor="extractive", compressor_version="1", hash=str(uid),
                      created_at=at, updated_at=at)


OLD = unit("Caroline works at the city library.", ["Caroline"], 0, 1)
NEW = unit("Caroline's new job is at the Riverside bakery.", ["Caroline"], 30, 2)


def verdict(updates: bool, old: str, new: str) -> str:
    return json.dumps({"updates": updates, "old_value": old, "new_value": new})


def test_grounding_rules() -> None:
    assert grounded_update({"updates": True, "old_value": "the city library", "new_value": "Riverside bakery"}, OLD, NEW)
    assert grounded_update({"updates": False, "old_value": "", "new_value": ""}, OLD, NEW) is False
    # Quoted values must be in the notes, differ, and the new one must be new.
    assert grounded_update({"updates": True, "old_value": "the post office", "new_value": "Riverside bakery"}, OLD, NEW) is None
    assert grounded_update({"updates": True, "old_value": "Caroline", "new_value": "Caroline"}, OLD, NEW) is None
    assert grounded_update({"updates": True, "old_value": "library", "new_value": "Caroline"}, OLD, NEW) is None
    with pytest.raises(ValueError):
        grounded_update({"answer": "yes"}, OLD, NEW)


def test_judge_asks_only_for_close_same_subject_pairs_the_heuristic_declined() -> None:
    lm = ScriptedLM([verdict(True, "city library", "Riverside bakery")])
    judge = LMSupersessionJudge(lm, min_similarity=0.6)
    assert judge.supersedes(OLD, NEW, 0.7)
    assert judge.stats.asked == 1 and judge.stats.updates_accepted == 1
    assert "First note (01 January 2024): Caroline works at the city library." in lm.prompts[0]
    # Another person, too far apart, or a same-attribute pair the heuristic compares: no call.
    other = unit("Melanie's new job is at the Riverside bakery.", ["Melanie"], 30, 3)
    assert not judge.supersedes(OLD, other, 0.9)
    assert not judge.supersedes(OLD, NEW, 0.5)
    boston, denver = unit("Caroline lives in Boston.", ["Caroline"], 0, 4), unit("Caroline lives in Denver.", ["Caroline"], 9, 5)
    assert judge.supersedes(boston, denver, 0.7)  # the heuristic's own yes
    assert not judge.supersedes(boston, unit("Caroline lives in Boston now.", ["Caroline"], 9, 6), 0.95)
    assert judge.stats.asked == 1


def test_ungrounded_or_failed_verdicts_are_a_no_and_calls_are_bounded() -> None:
    lm = ScriptedLM([verdict(True, "the post office", "bakery"), "raise", "not json at all", verdict(True, "library", "bakery")])
    judge = LMSupersessionJudge(lm, max_calls=3)
    assert not judge.supersedes(OLD, NEW, 0.7)
    assert not judge.supersedes(OLD, NEW, 0.7)
    assert not judge.supersedes(OLD, NEW, 0.7)
    assert not judge.supersedes(OLD, NEW, 0.7)  # over budget: not asked
    assert (judge.stats.asked, judge.stats.updates_ungrounded, judge.stats.failures) == (3, 1, 2)
    assert len(lm.answers) == 1


def test_judge_factory_follows_the_setting() -> None:
    lm = ScriptedLM([])
    assert judge_factory("heuristic", lm) is None
    assert judge_factory("auto", object()) is None
    factory = judge_factory("auto", lm)
    assert factory is not None and factory() is not factory()
    with pytest.raises(ValueError, match="needs an LM compressor"):
        judge_factory("lm", object())
