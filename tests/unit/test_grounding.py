"""Grounding of LM units against their source events (pure, no model)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from compressors.grounding import Evidence, edit_distance, ground
from memory_service.domain import Event, MemoryUnitDraft, ToolCall

T0 = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)


def event(event_id: str, speaker: str | None, content: str, role: str = "user", tool: ToolCall | None = None) -> Event:
    return Event(
        tenant="t", event_id=event_id, user_id="u", role=role, speaker=speaker, content=content,
        timestamp=T0, received_at=T0, tool=tool,
    )


EVENTS = [
    event("e1", "Caroline", "I went to the LGBTQ support group yesterday; my db runs on port 5433."),
    event("e2", "Melanie", "I ran a charity race last Saturday. The shirt said \"run for hope\"."),
    event("e3", None, "", role="tool", tool=ToolCall(name="get_weather", arguments={"city": "Lisbon"}, result={"temp_c": 19})),
]
NAMES = ["Caroline", "Melanie"]


def check(text: str, *sources: str):
    return ground(MemoryUnitDraft(text=text, source_event_ids=list(sources)), EVENTS, NAMES)


def test_supported_unit_passes_unchanged_with_fields_filled() -> None:
    verdict = check("Caroline went to the LGBTQ support group on 7 May 2023.", "e1")
    assert verdict.draft is not None and not verdict.repaired and not verdict.problems
    assert verdict.draft.text == "Caroline went to the LGBTQ support group on 7 May 2023."
    assert verdict.draft.event_time == datetime(2023, 5, 7, tzinfo=UTC)  # the date the text states
    assert verdict.draft.persons == ["Caroline"]
    assert "support" in verdict.draft.keywords


def test_near_miss_number_is_repaired_from_the_source() -> None:
    verdict = check("Caroline's database runs on port 5432.", "e1")
    assert verdict.draft is not None and verdict.repaired
    assert "5433" in verdict.draft.text and "5432" not in verdict.draft.text


def test_number_with_no_close_source_value_rejects() -> None:
    verdict = check("Caroline's database runs on port 7000.", "e1")
    assert verdict.draft is None
    assert any("7000" in p for p in verdict.problems)


def test_number_from_another_event_of_the_window_is_not_support() -> None:
    # 5433 is in e1, but the unit cites only e2
    assert check("Melanie ran a charity race on port 5433.", "e2").draft is None


def test_wrong_date_rejects_and_resolved_relative_date_is_supported() -> None:
    assert check("Caroline went to the support group on 9 May 2023.", "e1").draft is None
    assert check("Melanie ran a charity race on 6 May 2023.", "e2").draft is not None  # "last Saturday"


def test_invented_name_rejects_and_misspelt_name_is_repaired() -> None:
    assert check("Melanie ran a charity race in Paris.", "e2").draft is None
    verdict = check("Carolyn went to the support group.", "e1")
    assert verdict.draft is not None and verdict.draft.text.startswith("Caroline ")
    # a misspelling is repaired only towards a name of the cited events, never another speaker's
    assert check("Carolyn ran a charity race.", "e2").draft is None


def test_quotes_must_be_verbatim() -> None:
    assert check('Melanie\'s race shirt said "run for hope".', "e2").draft is not None
    assert check('Melanie\'s race shirt said "run for peace".', "e2").draft is None


def test_text_restating_nothing_rejects() -> None:
    assert check("2023-05-08 Melanie", "e2").draft is None
    assert check("Melanie enjoys quantum chemistry lectures.", "e2").draft is None


def test_first_person_is_rewritten_to_the_speaker() -> None:
    verdict = check("I ran a charity race.", "e2")
    assert verdict.draft is not None and verdict.repaired
    assert verdict.draft.text == "Melanie ran a charity race."


def test_tool_call_values_are_supported() -> None:
    verdict = check("The agent called get_weather for Lisbon: 19 degrees.", "e3")
    assert verdict.draft is not None, verdict.problems


def test_unsupported_fields_are_dropped_not_rejected() -> None:
    draft = MemoryUnitDraft(
        text="Melanie ran a charity race.",
        source_event_ids=["e2"],
        persons=["Dana"],
        entities=["Porto"],
        location="Porto",
        event_time=datetime(1999, 1, 1, tzinfo=UTC),
    )
    verdict = ground(draft, EVENTS, NAMES)
    assert verdict.draft is not None
    assert verdict.draft.persons == ["Melanie"] and "Porto" not in verdict.draft.entities
    assert verdict.draft.location is None
    assert verdict.draft.event_time == datetime(2023, 5, 6, tzinfo=UTC)  # from "last Saturday"


def test_citing_no_window_event_rejects() -> None:
    assert check("Melanie ran a charity race.", "nope").draft is None


@pytest.mark.parametrize(("a", "b", "d"), [("5433", "5432", 1), ("Caroline", "Carolyn", 2), ("", "ab", 2), ("abc", "abc", 0)])
def test_edit_distance(a: str, b: str, d: int) -> None:
    assert edit_distance(a, b) == d


def test_evidence_numbers_skip_day_and_month_of_dates() -> None:
    evidence = Evidence.of([EVENTS[1]])
    assert "2023" in evidence.numbers
    assert "6" not in evidence.numbers  # "6 May 2023" supports the date, not a bare 6


def test_first_person_across_several_speakers_rejects() -> None:
    verdict = check("I'm going to the support group and running a charity race.", "e1", "e2")
    assert verdict.draft is None and any("first person" in p for p in verdict.problems)


def test_provenance_keeps_only_the_events_restated() -> None:
    verdict = check("Melanie ran a charity race on 6 May 2023.", "e1", "e2")
    assert verdict.draft is not None and verdict.draft.source_event_ids == ["e2"]
    both = check("Caroline went to the support group and Melanie ran a charity race.", "e1", "e2")
    assert both.draft is not None and both.draft.source_event_ids == ["e1", "e2"]
