from datetime import UTC, datetime

import pytest

from compressors.base import Compressor, available_compressors, create_compressor
from compressors.extractive import ExtractiveCompressor, format_tool_arguments, summarize_tool_result
from memory_service.domain import CompressionWindow, Event, MemoryUnitDraft, ToolCall

TS = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)  # a Monday
_ids = iter(range(1_000_000))


def make_event(
    content: str = "",
    *,
    role: str = "user",
    speaker: str | None = "Caroline",
    event_id: str | None = None,
    timestamp: datetime = TS,
    tool: ToolCall | None = None,
    metadata: dict | None = None,
    agent_id: str | None = None,
) -> Event:
    return Event(
        tenant="local",
        event_id=event_id or f"ev-{next(_ids)}",
        user_id="u1",
        agent_id=agent_id,
        session_id="s1",
        role=role,
        speaker=speaker,
        content=content,
        timestamp=timestamp,
        received_at=timestamp,
        tool=tool,
        metadata=metadata or {},
    )


def compress(*events: Event, context: tuple[Event, ...] = ()) -> list[MemoryUnitDraft]:
    return ExtractiveCompressor().compress(CompressionWindow(events=list(events), context_events=list(context)))


def only(*events: Event) -> MemoryUnitDraft:
    drafts = compress(*events)
    assert len(drafts) == 1
    return drafts[0]


def test_registered_and_protocol():
    assert "extractive" in available_compressors()
    compressor = create_compressor("extractive", model="ignored", temperature=0.3)
    assert isinstance(compressor, ExtractiveCompressor)
    assert isinstance(compressor, Compressor)
    assert (compressor.name, compressor.version) == ("extractive", "2")


def test_one_unit_per_event_with_exact_provenance():
    events = [
        make_event("I adopted a cat named Luna.", event_id="a"),
        make_event("My brother lives in Berlin.", speaker="Melanie", event_id="b"),
    ]
    drafts = compress(*events)
    assert [d.source_event_ids for d in drafts] == [["a"], ["b"]]
    assert drafts[0].text == "Caroline adopted a cat named Luna."
    assert drafts[1].text == "Melanie's brother lives in Berlin."


def test_context_events_are_never_cited():
    context = make_event("I'm moving to Denver next month.", event_id="ctx")
    drafts = compress(make_event("I found a new apartment.", event_id="new"), context=(context,))
    assert [d.source_event_ids for d in drafts] == [["new"]]
    assert all("Denver" not in d.text for d in drafts)


def test_context_speakers_are_known_names():
    context = make_event("Hi!", speaker="Melanie", event_id="ctx")
    [draft] = compress(make_event("Melanie, I saw your painting.", event_id="x"), context=(context,))
    assert draft.persons == ["Caroline", "Melanie"]


def test_filler_sentences_are_dropped():
    draft = only(make_event("Hey Mel! Thanks so much! I started a pottery class. Haha 😊 Take care!"))
    assert draft.text == "Caroline started a pottery class."


def test_all_filler_event_yields_nothing():
    assert compress(make_event("Hey Mel! Thanks so much! 😊 Sounds good, take care!")) == []
    assert compress(make_event("haha lol"), make_event("ok", role="assistant", speaker=None)) == []


def test_pronoun_rewrite_and_said_prefix():
    assert only(make_event("I'm a counselor and I love my job.")).text == (
        "Caroline is a counselor and Caroline loves Caroline's job."
    )
    assert only(make_event("The weather in Lisbon was perfect.")).text == (
        "Caroline said: The weather in Lisbon was perfect."
    )
    assert only(make_event("You should try the new bakery.", speaker="Melanie")).text == (
        "Melanie said: You should try the new bakery."
    )


def test_relative_date_resolved_into_text_and_event_time():
    draft = only(make_event("I went to a LGBTQ support group yesterday and it was so powerful."))
    assert draft.text == "Caroline went to a LGBTQ support group on 7 May 2023 and it was so powerful."
    assert draft.event_time == datetime(2023, 5, 7, tzinfo=UTC)
    assert draft.kind == "event"
    assert draft.importance == pytest.approx(0.7)


def test_event_time_defaults_to_timestamp():
    draft = only(make_event("Caroline's favorite color is green."))
    assert draft.event_time == TS


def test_kinds():
    assert only(make_event("I love painting landscapes.")).kind == "preference"
    assert only(make_event("My favorite book is Dune.")).kind == "preference"
    assert only(make_event("I prefer tea over coffee.")).kind == "preference"
    assert only(make_event("I work as a nurse.")).kind == "fact"
    assert only(make_event("We moved to Ohio on 3 March.")).kind == "event"
    assert only(make_event("We moved to Ohio last year.")).kind == "event"
    preference = only(make_event("I enjoy running."))
    assert preference.importance == pytest.approx(0.7)
    assert only(make_event("I work as a nurse.")).importance == pytest.approx(0.5)


def test_metadata_fields_filled():
    draft = only(make_event("I visited the Golden Gate Bridge with my sister Anna, it cost $40."))
    assert draft.persons[0] == "Caroline"
    assert "Anna" in draft.persons
    assert "Golden Gate Bridge" in draft.entities
    assert "$40" in draft.entities
    assert "bridge" in draft.keywords
    assert draft.keywords == [k.lower() for k in draft.keywords]


def test_speaker_is_a_person_only_for_named_user_or_assistant():
    assert only(make_event("I painted a sunset.")).persons == ["Caroline"]
    assert "user" not in only(make_event("I painted a sunset.", speaker=None)).persons
    system = only(make_event("Caroline prefers short answers.", role="system", speaker="Planner"))
    assert "Planner" not in system.persons


def test_blip_caption_is_appended():
    event = make_event("Here is my latest painting!", metadata={"blip_caption": "a photo of a sunset over a lake"})
    draft = only(event)
    assert draft.text.endswith("(shared an image: a photo of a sunset over a lake)")
    assert draft.text.startswith("Here is Caroline's latest painting!") or draft.text.startswith("Caroline said:")
    assert "sunset" in draft.keywords


def test_caption_alone_keeps_an_image_turn():
    draft = only(make_event("Look! 😊", metadata={"blip_caption": "a dog on a beach"}))
    assert draft.text == "Caroline shared an image: a dog on a beach"


def test_short_turn_stays_one_unit():
    text = "I adopted a golden retriever named Max from the Portland shelter. " * 1 + (
        "Max loves swimming in Lake Tahoe every summer, and we go there with my sister Ana."
    )
    draft = only(make_event(text, event_id="short"))
    assert draft.text.startswith("Caroline adopted a golden retriever named Max") and "Ana" in draft.text


def test_long_event_is_capped_in_original_order():
    sentences = [
        "I adopted a golden retriever named Max from the Portland shelter in 2019.",
        "It was a thing that was kind of there and so on, you know how it is.",
        "Well, it is what it is and that is about all there is to say about it.",
        "And so it went on and on for a while, as these things tend to go.",
        "Max loves swimming in Lake Tahoe every summer with my sister Ana.",
    ]
    draft = only(make_event(" ".join(sentences)))
    assert len(draft.text.split()) <= 60
    assert draft.text.startswith("Caroline adopted a golden retriever named Max")
    assert draft.text.index("Portland") < draft.text.index("Tahoe")  # the densest sentences, in order
    assert sum(vague in draft.text for vague in ("kind of there", "it is what it is", "on and on")) < 3


def test_code_block_does_not_crowd_out_the_prose():
    code = "\n".join(f"    value_{i} = compute_something_long(argument_{i}, other_{i})" for i in range(40))
    text = f"I'm moving the billing job to Celery 5.3 next week.\n```python\ndef run():\n{code}\n```\nIt retries 3 times."
    draft = only(make_event(text, role="user", speaker="Craig"))
    assert "Craig is moving the billing job to Celery 5.3" in draft.text
    assert "code (python): defines run()." in draft.text and "compute_something_long" not in draft.text
    assert "retries 3 times" in draft.text


def test_sentence_repeated_within_a_turn_is_dropped():
    filler_talk = "It was a thing that was kind of there and so on and so forth, you know how it is. "
    draft = only(make_event("I adopted a dog named Max. " + filler_talk * 5 + "Max loves Lake Tahoe."))
    assert draft.text.count("kind of there") == 1
    assert draft.text.index("Max.") < draft.text.index("Tahoe")


def test_markdown_marks_are_dropped():
    text = "### Plan\n- **Database:** use *PostgreSQL 15* with `pgvector`\n- __Cache__: Redis 7"
    draft = only(make_event(text, role="assistant", speaker="Assistant"))
    assert "**" not in draft.text and "#" not in draft.text and "`" not in draft.text and "__" not in draft.text
    assert "Database: use PostgreSQL 15 with pgvector" in draft.text and "Cache: Redis 7" in draft.text


def test_code_block_becomes_one_line_of_what_it_does():
    text = (
        "Here is my app:\n```python\nfrom flask import Flask\n\napp = Flask(__name__)\n"
        'app.config["SECRET_KEY"] = "s3cr3t"\n\n@app.route("/health")\ndef health():\n    return "ok"\n'
        '\nif __name__ == "__main__":\n    app.run(port=8080)\n```\nIt crashes on start.'
    )
    draft = only(make_event(text, role="user", speaker="Craig"))
    assert "code (python): imports flask (Flask); defines health() (app.route /health); " in draft.text
    assert 'SECRET_KEY="s3cr3t"' in draft.text and "app.run(port=8080)" in draft.text
    assert "return" not in draft.text  # the body is not copied
    assert draft.text.index("Craig's app") < draft.text.index("code (python)") < draft.text.index("crashes")


def test_single_huge_sentence_is_truncated():
    draft = only(make_event("I like " + " and ".join(f"item{i}" for i in range(100)) + "."))
    assert len(draft.text.split()) <= 61


def test_tool_unit_keeps_name_args_and_result_gist():
    tool = ToolCall(
        name="get_weather",
        arguments={"city": "Paris", "units": "metric", "days": 3, "options": {"hourly": True}},
        result={"temp": 21, "conditions": "sunny", "forecast": [1, 2, 3]},
    )
    draft = only(make_event("", role="assistant", speaker=None, tool=tool, event_id="t1"))
    assert draft.text == (
        "assistant called tool get_weather with city=Paris, units=metric, days=3, +1 more; "
        "result: temp=21, conditions=sunny, forecast=[3 items]"
    )
    assert draft.kind == "procedure"
    assert draft.source_event_ids == ["t1"]
    assert draft.keywords[0] == "get_weather"
    assert draft.entities[0] == "get_weather"
    assert draft.importance == pytest.approx(0.5)
    assert draft.event_time == TS


def test_tool_string_result_and_long_values():
    tool = ToolCall(
        name="search_docs",
        arguments={"query": "how to configure the connection pool size for postgres in production"},
        result="The pool size is set with MEMORY_POOL_SIZE. It defaults to 10. More text follows here.",
    )
    draft = only(make_event("", role="tool", speaker=None, agent_id="helper", tool=tool))
    assert len("how to configure the connection pool si…") == 40
    assert draft.text == (
        'helper called tool search_docs with query="how to configure the connection pool si…"; '
        "result: The pool size is set with MEMORY_POOL_SIZE."
    )


def tool_event(name: str, arguments: dict | None = None, result: object = None, content: str = "") -> Event:
    tool = ToolCall(name=name, arguments=arguments or {}, result=result)
    return make_event(content, role="tool", speaker=None, tool=tool)


def test_tool_errors_say_failed():
    traceback = "Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: bad value"
    run = only(tool_event("run", {"cmd": "pytest -q"}, traceback))
    assert run.text == 'agent called tool run with cmd="pytest -q"; failed: ValueError: bad value'
    search = only(tool_event("search", {"q": "x"}, {"error": {"message": "rate limited"}}))
    assert search.text == "agent called tool search with q=x; failed: rate limited"
    plain = only(tool_event("open", {}, "Error: file not found"))
    assert plain.text == "agent called tool open; failed: file not found"
    status = only(tool_event("pay", {"amount": 5}, {"status": "failed", "reason": "card declined"}))
    assert status.text == "agent called tool pay with amount=5; failed: card declined"


def test_tool_noise_is_low_importance():
    tool = ToolCall(name="write_file", arguments={"path": "/tmp/notes/todo.md"}, result="OK")
    draft = only(make_event("", role="tool", speaker=None, tool=tool))
    assert draft.text == "agent called tool write_file with path=/tmp/notes/todo.md; result: OK"
    assert draft.importance == pytest.approx(0.3)
    assert "/tmp/notes/todo.md" in draft.entities
    none_result = only(make_event("", role="tool", speaker=None, tool=ToolCall(name="ping")))
    assert none_result.text == "agent called tool ping"
    assert none_result.importance == pytest.approx(0.3)


def test_tool_result_from_content_when_result_missing():
    tool = ToolCall(name="ls", arguments={"dir": "src"})
    draft = only(make_event("main.py utils.py", role="tool", speaker=None, tool=tool))
    assert draft.text == "agent called tool ls with dir=src; result: main.py utils.py"


def test_tool_call_with_informative_content():
    tool = ToolCall(name="deploy", arguments={"env": "staging"}, result={"status": "ok"})
    draft = only(make_event("I'm deploying the fix now.", role="assistant", speaker="Ada", tool=tool))
    assert draft.text == "Ada called tool deploy with env=staging; result: status=ok. Ada is deploying the fix now."
    assert draft.persons[0] == "Ada"


def test_summarize_tool_result_shapes():
    assert summarize_tool_result(None) == ("", False, True)
    assert summarize_tool_result({}) == ("{}", False, True)
    assert summarize_tool_result("null") == ("null", False, True)
    assert summarize_tool_result('{"ok": false, "message": "denied"}') == ("denied", True, False)
    assert summarize_tool_result([{"id": 1, "name": "a"}, {"id": 2}]) == ("2 items, first: id=1, name=a", False, False)
    words = " ".join(f"w{i}" for i in range(50))
    gist, failed, noise = summarize_tool_result(words)
    assert len(gist.split()) == 30 and not failed and not noise


def test_format_tool_arguments():
    assert format_tool_arguments({}) == ""
    assert format_tool_arguments({"a": 1, "b": [1, 2], "c": "x y", "d": True}) == 'a=1, c="x y", d=true, +1 more'


def test_naive_and_odd_inputs_do_not_crash():
    weird = [
        make_event("```\n{}\n```"),
        make_event("... !!! ???"),
        make_event("I I I me me my my mine"),
        make_event("https://example.com"),
        tool_event("x", {"blob": "a" * 10_000}, "b" * 10_000),
    ]
    for draft in compress(*weird):
        assert draft.text and len(draft.text) < 1000


@pytest.mark.timeout(60)  # a catastrophic regex would hang here; speed itself is benchmarked
def test_huge_inputs_stay_bounded():
    huge = [
        make_event("x" * 200_000),
        make_event("I went there. " * 20_000),
        make_event("a, " * 50_000),
        make_event("I" * 10_000 + " I " * 10_000),
        make_event("Look!", metadata={"blip_caption": "a photo " * 10_000}),
    ]
    drafts = compress(*huge)
    assert len(drafts) == len(huge)
    assert all(len(d.text) < 1500 for d in drafts)
    # a long log of distinct sentences and a huge code block: one bounded unit each
    log = " ".join(f"Step {i} finished with code {i * 7}." for i in range(20_000))
    drafts = compress(make_event(log, event_id="log"), make_event("```\n" + "x = 1\n" * 100_000))
    assert len(drafts) == 2
    assert all(len(d.text) < 1500 for d in drafts)
