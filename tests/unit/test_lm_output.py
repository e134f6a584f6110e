"""The LM answer schema, parsing (with salvage of cut-off answers) and the cache encoding."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from compressors.base import ProducedDraft
from compressors.cache_key import CacheIdentity, decode, encode, window_key
from compressors.lm.output import InvalidOutput, parse_answer, salvage_units, to_draft
from compressors.prompts.compression import schema_events, unit_schema
from memory_service.domain import CompressionWindow, Event, MemoryUnitDraft

T0 = datetime(2024, 3, 14, 9, 0, tzinfo=UTC)


def window(prefix: str = "e", contents: tuple[str, ...] = ("one", "two", "three")) -> CompressionWindow:
    events = [
        Event(tenant="t", event_id=f"{prefix}{i}", user_id="u", role="user", speaker="Ann", content=c,
              timestamp=T0, received_at=T0)
        for i, c in enumerate(contents)
    ]
    return CompressionWindow(events=events)


def test_schema_only_allows_the_window_event_numbers() -> None:
    schema = unit_schema(3)
    item = schema["properties"]["units"]["items"]
    assert item["properties"]["source"]["items"]["enum"] == [1, 2, 3]
    assert item["required"] == ["source", "text", "kind"]
    assert set(item["properties"]) == {"source", "text", "kind"}  # nothing a grammar-bound model must spend tokens on
    assert schema_events(schema) == 3
    assert set(item["properties"]["kind"]["enum"]) == {"fact", "event", "preference", "procedure", "summary"}


def test_parse_keeps_a_raw_newline_inside_a_text() -> None:
    # grammars allow control characters in strings; strict JSON would reject the whole answer
    raw = '{"units":[{"source":[1],"text":"Ann likes\ntea.","kind":"fact"},{"source":[1],"text":"Bo\tsings'
    assert [u.text for u in parse_answer(raw)] == ["Ann likes tea."]
    assert [u.text for u in parse_answer(raw + '.","kind":"fact"}]}')] == ["Ann likes tea.", "Bo sings."]


def test_parse_accepts_fences_lists_and_lenient_fields() -> None:
    units = parse_answer('```json\n[{"source": "2", "text": "Ann  likes tea.", "kind": "Preference", "persons": "Ann"}]\n```')
    assert units[0].source == [2] and units[0].text == "Ann likes tea." and units[0].persons == ["Ann"]
    draft = to_draft(units[0], ["a", "b"])
    assert draft is not None and draft.source_event_ids == ["b"] and draft.kind == "preference"


def test_cut_off_answer_keeps_its_complete_units() -> None:
    raw = '{"units": [{"source": [1], "text": "Ann likes tea.", "kind": "fact"}, {"source": [2], "text": "Ann lik'
    units = parse_answer(raw)
    assert [u.text for u in units] == ["Ann likes tea."]


@pytest.mark.parametrize("raw", ["", "   ", "I cannot do that.", '{"units": [{"source": [1], "te', '{"units": 3}'])
def test_unreadable_answers_raise(raw: str) -> None:
    with pytest.raises(InvalidOutput):
        parse_answer(raw)


def test_to_draft_drops_out_of_range_sources_and_bad_dates() -> None:
    unit = parse_answer(json.dumps({"units": [{"source": [0, 9], "text": "Ann likes tea.", "kind": "fact"}]}))[0]
    assert to_draft(unit, ["a", "b"]) is None
    unit = parse_answer(json.dumps({"units": [{"source": [1], "text": "x y z", "kind": "odd", "event_time": "2024-13-40"}]}))[0]
    draft = to_draft(unit, ["a"])
    assert draft is not None and draft.kind == "fact" and draft.event_time is None


def test_cache_key_ignores_ids_and_scope_but_not_content_or_identity() -> None:
    identity = CacheIdentity("llama_cpp", "m", "1")
    a, b = window("a"), window("b")
    assert window_key(a, identity) == window_key(b, identity)
    assert window_key(a, identity) != window_key(window("a", ("one", "two", "four")), identity)
    assert window_key(a, identity) != window_key(a, CacheIdentity("llama_cpp", "m", "2"))
    assert window_key(a, identity) != window_key(a, CacheIdentity("llama_cpp", "other", "1"))


def test_cached_units_are_repointed_to_the_new_window_ids() -> None:
    a, b = window("a"), window("b")
    units = [ProducedDraft(MemoryUnitDraft(text="Ann said one and three.", source_event_ids=["a0", "a2"]), "llama_cpp", "p1:m")]
    payload = json.loads(json.dumps(encode(units, a)))  # through JSON, as the database stores it
    decoded = decode(payload, b)
    assert decoded is not None
    assert decoded[0].draft.source_event_ids == ["b0", "b2"]
    assert (decoded[0].compressor, decoded[0].version) == ("llama_cpp", "p1:m")
    assert decode(payload, window("c", ("one",))) is None  # positions outside the window: not this entry


def test_repetition_guard_stops_once_a_units_text_repeats_before_the_unit_is_written() -> None:
    from compressors.lm.compressor import RepetitionGuard

    first = '{"units":[{"source":[1],"text":"Ann likes \\"green\\" tea.","kind":"fact"}'
    guard = RepetitionGuard(max_units=6)
    assert not guard.should_stop(first)
    assert not guard.should_stop(first + ',{"source":[2],"text":"Ann likes')  # text not closed yet
    assert not guard.should_stop(first + ',{"source":[2],"text":"Ann likes \\"green\\" tea at noon."')
    # a closed text equal to an earlier unit's (case and spacing aside) stops at once
    repeat = first + ',{"source":[2],"text":"ann likes  \\"green\\" tea."'
    assert RepetitionGuard(max_units=6).should_stop(repeat)
    assert [u.text for u in parse_answer(repeat)] == ['Ann likes "green" tea.']  # the complete unit is kept
    # a complete repeat, and too many units, stop as before
    assert RepetitionGuard(max_units=6).should_stop(first + ',{"source":[2],"text":"Ann likes \\"green\\" tea.","kind":"fact"}')
    assert RepetitionGuard(max_units=1).should_stop(first + ',{"source":[2],"text":"Bo drinks coffee.","kind":"fact"}')


def test_repetition_guard_stops_a_text_that_runs_on() -> None:
    from compressors.lm.compressor import RepetitionGuard

    first = '{"units":[{"source":[1],"text":"Ann likes \\"green\\" tea.","kind":"fact"}'
    guard = RepetitionGuard(max_units=6, max_text_chars=30)
    assert not guard.should_stop(first + ',{"source":[2],"text":"Bo drinks coffee')
    assert guard.should_stop(first + ',{"source":[2],"text":"Bo drinks coffee at noon and at night')
    # a closed text is the model's own: only the one still being written is cut
    closed = first + ',{"source":[2],"text":"Bo drinks coffee at noon and at night.","kind":"fact"}'
    assert not RepetitionGuard(max_units=6, max_text_chars=30).should_stop(closed)
    assert not RepetitionGuard(max_units=6).should_stop(closed[:-20])  # no cap by default
    # the cut unit keeps its full sentences, if it has any (the guard counts complete units only)
    assert [u.text for u in parse_answer(first + ',{"source":[2],"text":"Bo drinks coffee at noon and')] == ['Ann likes "green" tea.']
    cut = first + ',{"source":[2,3],"text":"Bo drinks coffee. At noon he \\"rests\\"! And then'
    units = parse_answer(cut)
    assert [(u.text, u.source, u.kind) for u in units[1:]] == [('Bo drinks coffee. At noon he "rests"!', [2, 3], "fact")]
    assert len(salvage_units(cut)) == 1
    assert len(parse_answer('{"units":[{"source":[1],"text":"Bo sings. \\u00')) == 1  # a cut escape: the sentence before
    assert parse_answer('{"units":[{"source":[1],"text":"29 January 2023:","kind":"event"}]}')  # complete units are as written
