"""What LMCompressor does with each kind of model answer (a scripted backend: pure logic, no model).

The same paths run against the real SmolLM2 in tests/integration/test_lm_compressors.py.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from compressors.lm.client import Generation, GenerationTimeout, Messages
from compressors.lm.compressor import LMCompressor
from memory_service.domain import CompressionWindow, Event

T0 = datetime(2024, 3, 14, 9, 0, tzinfo=UTC)


class Scripted(LMCompressor):
    name = "scripted"

    def __init__(self, *answers: Any, enforces_schema: bool = False) -> None:
        super().__init__("script", timeout_s=5)
        self.answers = list(answers)
        self.enforces_schema = enforces_schema
        self.seen: list[Messages] = []

    def _generate(self, messages: Messages, schema: dict[str, Any], deadline: float) -> Generation:
        self.seen.append(messages)
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return Generation(answer, 100, 20)


def window() -> CompressionWindow:
    contents = [
        ("Priya", "Please move the staging database to port 5433."),
        ("Bot", "Done, staging now listens on port 5433."),
        ("Priya", "Thanks!"),
    ]
    events = [
        Event(tenant="t", event_id=f"e{i}", agent_id="a", role="user" if s == "Priya" else "assistant", speaker=s,
              content=c, timestamp=T0, received_at=T0)
        for i, (s, c) in enumerate(contents)
    ]
    return CompressionWindow(events=events)


def answer(*units: dict[str, Any]) -> str:
    return json.dumps({"units": list(units)})


def covered(result) -> set[str]:  # type: ignore[no-untyped-def]
    return {i for u in result.units for i in u.draft.source_event_ids}


def test_good_answer_is_used_and_silent_events_get_extractive_units() -> None:
    lm = Scripted(answer({"source": [1], "text": "Priya asked to move the staging database to port 5433.", "kind": "event"}))
    result = lm.compress_window(window())
    assert result.fallback is None and result.lm_units == 1 and result.rejected == 0
    by = {u.draft.source_event_ids[0]: u.compressor for u in result.units}
    assert by["e0"] == "scripted" and by["e1"] == "extractive"  # the LM skipped e1
    assert "e2" not in by  # "Thanks!" is filler for both
    assert result.lm_calls == 1 and result.prompt_tokens == 100 and result.completion_tokens == 20


def test_ungrounded_unit_is_replaced_by_the_extractive_unit_of_its_event() -> None:
    lm = Scripted(answer({"source": [2], "text": "Bot moved the production database to port 7000.", "kind": "fact"}))
    result = lm.compress_window(window())
    assert result.rejected == 1 and result.fallback is None
    assert all(u.compressor == "extractive" for u in result.units)
    assert covered(result) == {"e0", "e1"}


def test_invalid_json_is_asked_again_once_with_the_error() -> None:
    good = answer({"source": [1, 2], "text": "Priya had the staging database moved to port 5433.", "kind": "event"})
    lm = Scripted("Sure! Here are the notes: none", good)
    result = lm.compress_window(window())
    assert result.fallback is None and result.lm_calls == 2
    assert "could not be used" in lm.seen[1][-1]["content"]
    assert [u.compressor for u in result.units] == ["scripted"]


def test_invalid_twice_falls_back_to_extractive_and_says_why() -> None:
    result = Scripted("not json", "still not json").compress_window(window())
    assert result.fallback is not None and "InvalidOutput" in result.fallback
    assert all(u.compressor == "extractive" for u in result.units) and covered(result) == {"e0", "e1"}


def test_schema_enforcing_backend_is_not_asked_again() -> None:
    lm = Scripted("", enforces_schema=True)
    result = lm.compress_window(window())
    assert result.fallback is not None and "empty" in result.fallback and len(lm.seen) == 1


def test_timeout_and_crash_fall_back() -> None:
    for failure in (GenerationTimeout("too slow"), RuntimeError("model crashed"), MemoryError()):
        result = Scripted(failure).compress_window(window())
        assert result.fallback is not None and type(failure).__name__ in result.fallback
        assert covered(result) == {"e0", "e1"}


def test_duplicate_units_are_kept_once() -> None:
    unit = {"source": [1], "text": "Priya asked to move the staging database to port 5433.", "kind": "event"}
    result = Scripted(answer(unit, unit)).compress_window(window())
    assert sum(u.compressor == "scripted" for u in result.units) == 1


def test_timing_is_recorded() -> None:
    class Slow(Scripted):
        def _generate(self, messages: Messages, schema: dict[str, Any], deadline: float) -> Generation:
            time.sleep(0.05)
            return super()._generate(messages, schema, deadline)

    result = Slow("[]").compress_window(window())
    assert result.lm_seconds >= 0.05


def test_cache_identity_changes_with_the_extractive_version() -> None:
    # cached LM windows hold extractive stand-in units, so a new extractive version must miss the cache
    from compressors.cache_key import window_key

    lm = Scripted()
    before = lm.cache_identity
    assert before.prompt_version.endswith(f"extractive{lm.fallback.version}")
    assert len(before.prompt_version) <= 32  # the cache table's column
    lm.fallback.version = "next"
    assert window_key(window(), lm.cache_identity) != window_key(window(), before)


def test_an_event_keeps_its_extractive_unit_unless_an_accepted_unit_carries_its_content() -> None:
    # grounded and citing both, but it restates e0 alone (4 of its 5 content words; 2 of e1's 4)
    lm = Scripted(answer({"source": [1, 2], "text": "Priya asked to move the staging database to a new port.", "kind": "event"}))
    result = lm.compress_window(window())
    assert result.rejected == 0
    by = [(u.compressor, u.draft.source_event_ids) for u in result.units]
    assert ("extractive", ["e0"]) not in by  # carried: its extractive unit would only repeat it
    assert ("extractive", ["e1"]) in by  # "Done, staging now listens on port 5433": not carried
    assert by[0][0] == "scripted"


def test_carried_events_need_most_of_an_events_content_words() -> None:
    from compressors.grounding import carried_events

    events = window().events
    text = "Priya asked to move the staging database to a new port."
    assert [e.event_id for e in carried_events(text, events)] == ["e0", "e2"]  # "Thanks!" has no content words
    assert carried_events("Priya mentioned the database.", events[:1]) == []
    assert [e.event_id for e in carried_events("Priya asked to move the staging database to port 5433.", events)] == ["e0", "e1", "e2"]
