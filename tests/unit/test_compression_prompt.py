"""How the compression prompt renders a window: the date once per day, the time when it changes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from compressors.lm.models import DEFAULT_CONTEXT_TOKENS, DEFAULT_SEQUENCES
from compressors.prompts import compression as prompt
from memory_service.domain import CompressionWindow, Event, ToolCall
from memory_service.settings import Settings

T0 = datetime(2024, 3, 14, 9, 5, tzinfo=UTC)


def event(i: int, at: datetime, content: str, speaker: str | None = "Ann", **fields: object) -> Event:
    values: dict[str, object] = {"role": "user", **fields}
    return Event(tenant="t", event_id=f"e{i}", user_id="u", speaker=speaker, content=content,
                 timestamp=at, received_at=at, **values)  # type: ignore[arg-type]


def test_the_date_is_written_once_per_day_and_the_time_when_it_changes() -> None:
    window = CompressionWindow(
        context_events=[event(0, T0 - timedelta(days=1), "We met at the cafe.")],
        events=[
            event(1, T0, "I adopted a cat yesterday."),
            event(2, T0 + timedelta(seconds=20), "What is its name?", speaker="Bo"),
            event(3, T0 + timedelta(minutes=3), "Miso."),
            event(4, T0 + timedelta(days=1), "Miso slept all day.", speaker=None),
        ],
    )
    message = prompt.user_message(window)
    assert message == (
        "Earlier events (context only, do not cite):\n"
        "13 March 2024:\n"
        "- 09:05 Ann: We met at the cafe.\n\n"
        "Events:\n"
        "14 March 2024:\n"
        "[1] 09:05 Ann: I adopted a cat on 13 March 2024.\n"  # relative dates still resolved per event
        "[2] Bo: What is its name?\n"  # same minute: no time
        "[3] 09:08 Ann: Miso.\n"
        "15 March 2024:\n"
        "[4] 09:05 user: Miso slept all day."  # a new day starts with its header and the time
    )
    assert "|" not in message


def test_each_section_starts_with_its_day_so_every_event_has_a_date() -> None:
    window = CompressionWindow(context_events=[event(0, T0, "Hello.")], events=[event(1, T0, "Hi.")])
    sections = prompt.user_message(window).split("\n\n")
    assert [s.splitlines()[1] for s in sections] == ["14 March 2024:", "14 March 2024:"]


def test_tool_calls_and_image_captions_are_still_shown() -> None:
    tool = event(1, T0, "", speaker=None, role="tool", agent_id="deployer",
                 tool=ToolCall(name="get_weather", arguments={"city": "Lisbon"}, result={"temp_c": 19}))
    pic = event(2, T0, "Look!", metadata={"blip_caption": "a grey cat on a sofa"})
    lines = prompt.event_lines([tool, pic], ["[1]", "[2]"])
    assert lines[1] == '[1] 09:05 deployer: called tool get_weather with {"city": "Lisbon"} -> {"temp_c": 19}'
    assert lines[2] == "[2] Ann: Look! (shares an image: a grey cat on a sofa)"


def test_the_worked_example_is_compact_json_in_the_same_format() -> None:
    answer = prompt.EXAMPLE_ANSWER
    assert answer == json.dumps(json.loads(answer), separators=(",", ":"))
    assert prompt.EXAMPLE_EVENTS.splitlines()[1] == "3 June 2024:"
    assert " | " not in prompt.EXAMPLE_EVENTS
    assert prompt.VERSION == "4"
    # only what the model must decide; the other fields are read off the text by grounding
    assert all(set(unit) == {"source", "text", "kind"} for unit in json.loads(answer)["units"])


def test_lm_defaults_have_one_source() -> None:
    settings = Settings()
    assert settings.llm_sequences == DEFAULT_SEQUENCES
    assert settings.llm_context_tokens == DEFAULT_CONTEXT_TOKENS
