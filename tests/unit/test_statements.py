"""Subject-attribute-value statements: frames that generalise, and the hard negatives that must not match."""

from __future__ import annotations

import pytest

from memory_service.consolidate.statements import (
    MAX_KEY_CHARS,
    Statement,
    compare,
    extract,
    keys,
    other_subjects,
    storable_key,
)


def facts(text: str, persons: tuple[str, ...] = ()) -> set[tuple[str, str, frozenset[str], bool]]:
    return {(s.subject, s.attribute, s.value, s.negated) for s in extract(text, persons)}


def one(text: str) -> tuple[str, str, set[str]]:
    found = extract(text)
    assert len(found) == 1, (text, found)
    return found[0].subject, found[0].attribute, set(found[0].value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Maya said: I live in Porto with my two cats.", ("maya", "residence", {"porto"})),
        ("Maya said: Porto is where we live.", ("maya", "residence", {"porto"})),
        ("Maya said: Porto has been home for three years now.", ("maya", "residence", {"porto"})),
        ("Maya said: After months of packing we finally settled in Bergen.", ("maya", "residence", {"bergen"})),
        ("Maya said: Just finished moving into my new apartment in Seattle.", ("maya", "residence", {"seattle"})),
        ("Maya said: I'm a paramedic.", ("maya", "occupation", {"paramedic"})),
        ("Maya said: My favourite dessert is tiramisu.", ("maya", "favorite", {"tiramisu"})),
        ("Maya said: Tiramisu is my all-time favorite dessert.", ("maya", "favorite", {"tiramisu"})),
        ("Maya said: My husband is Tom.", ("maya", "partner", {"tom"})),
        ("Maya said: Caroline moved to Denver.", ("caroline", "residence", {"denver"})),
        ("Caroline works at the library.", ("caroline", "employer", {"library"})),
        ("Melanie said: Caroline's new job is at the museum.", ("caroline", "employer", {"museum"})),
    ],
)
def test_frames(text: str, expected: tuple[str, str, set[str]]) -> None:
    assert one(text) == expected


def test_a_job_states_role_and_employer_and_the_hirer_hires_the_speaker() -> None:
    hired = facts("Maya said: City General took me on as a nurse last spring.")
    assert hired == {
        ("maya", "occupation", frozenset({"nurse"}), False),
        ("maya", "employer", frozenset({"city", "general"}), False),
    }


def test_a_car_is_its_make_and_model_without_colour() -> None:
    assert one("Maya said: I drive a silver Toyota Prius.")[2] == one("Maya said: I drive a Toyota Prius.")[2]
    bought = one("Maya said: I got rid of the Prius and bought a Tesla Model 3.")
    assert bought[:2] == ("maya", "vehicle") and "tesla" in bought[2]
    assert extract("Maya said: I bought a sandwich.") == []  # "bought a" is a car only for a car


@pytest.mark.parametrize(
    "text",
    [
        "Maya said: I visited Rome last week.",  # a one-off event, not a residence
        "Maya said: We went to Lisbon for our honeymoon.",
        "Maya said: I'm thinking about moving to Rome.",  # a plan
        "Maya said: If I moved to Paris I would learn French.",  # a hypothetical
        "Maya said: I might get a job at Google.",
        "Maya said: I'm going to drive a truck across the country.",
        "Maya said: I used to live in Madrid.",  # the habitual past
        "Maya said: I lived in Lyon for ten years.",
        "Maya said: Do you live in Boston?",  # questions
        "Maya said: Is your favorite color blue?",
        "Maya said: One of my favorite movies is Alien.",  # not the one favourite
        "Maya said: I love hiking and painting.",  # liking is not a single favourite
        "Maya said: Lyon is a great city to visit.",
        "Maya said: She lives in Oslo.",  # an unresolved pronoun
    ],
)
def test_hard_negatives_state_nothing(text: str) -> None:
    # an experience ("visited Rome") is recorded only to be contradicted, never as a state
    assert [s for s in extract(text) if s.attribute != "did"] == []


def test_another_persons_attribute_has_another_subject() -> None:
    assert keys(extract("Maya said: My sister lives in Oslo.")) == ["maya's sister|residence"]
    assert keys(extract("Maya said: My friend drives a Ford Focus.")) == ["maya's friend|vehicle"]
    assert keys(extract("Maya said: My brother works at Google.")) == ["maya's brother|employer"]


def test_negation_and_ending_verbs() -> None:
    assert facts("Maya said: I don't live in Porto anymore.") == {("maya", "residence", frozenset({"porto"}), True)}
    assert facts("Maya said: I quit my job at the bakery.") == {("maya", "employer", frozenset({"bakery"}), True)}


def test_speaker_from_persons_when_there_is_no_prefix() -> None:
    assert keys(extract("I live in Porto.", ["Maya"])) == ["maya|residence"]


def test_compare_restatement_update_and_unrelated() -> None:
    def s(attribute: str, *value: str, negated: bool = False) -> Statement:
        return Statement("maya", attribute, frozenset(value), negated)

    assert compare([s("residence", "porto")], [s("residence", "porto")]).restates
    assert compare([s("employer", "acme", "corp")], [s("employer", "acme")]).restates
    assert compare([s("residence", "porto")], [s("residence", "bergen")]).updates
    assert compare([s("residence", "porto")], [s("residence", "porto", negated=True)]).updates
    unrelated = compare([s("residence", "porto")], [s("employer", "acme")])
    assert not unrelated.restates and not unrelated.updates and unrelated.shared == 0
    # a role and an employer are different attributes: no conflict between them
    assert not compare([s("occupation", "nurse")], [s("employer", "acme")]).updates


def test_paraphrased_pairs_share_keys() -> None:
    first = extract("Maya said: I'm employed by Helix as an analyst.")
    again = extract("Maya said: The analyst position at Helix keeps me busy.")
    update = extract("Maya said: Northwind hired me as a pharmacist, today was day one.")
    assert compare(first, again).restates
    assert compare(first, update).updates


def test_favourites_of_one_category_only() -> None:
    dessert = extract("Maya said: My favourite dessert is tiramisu.")
    assert dessert[0].category == "food"
    colour = extract("Maya said: My favorite colour is teal.")
    assert not compare(dessert, colour).shared  # another category: neither a restatement nor an update
    unnamed = extract("Maya said: Nothing beats tiramisu.")  # no category noun, the same value
    assert compare(dessert, unnamed).restates
    guessed = [Statement("maya", "favorite", frozenset({"cannoli"}), guess="food")]
    unknown = [Statement("maya", "favorite", frozenset({"cannoli"}))]
    assert compare(dessert, guessed).updates and not compare(dessert, unknown).updates
    assert extract("Maya said: Hiking is the best.") == []  # praise, not a favourite


def test_a_denial_contradicts_instead_of_updating() -> None:
    used = extract("Maya said: I visited Japan in 2019.")
    never = extract("Maya said: I've never been to Japan.")
    comparison = compare(used, never)
    assert comparison.contradicts and not comparison.updates and not comparison.restates
    # experiences are many: two different ones neither merge nor update
    other = extract("Maya said: I visited Peru in 2021.")
    assert compare(used, other).shared == 0
    # "no longer" is an update, not a contradiction
    assert compare(extract("Maya said: I live in Porto."), extract("Maya said: I no longer live in Porto.")).updates


def test_packing_marks_a_contradicted_unit() -> None:
    from datetime import UTC, datetime

    from memory_service.context.packing import CONFLICT_MARK, display_text
    from memory_service.domain import MemoryUnit

    now = datetime(2024, 5, 1, tzinfo=UTC)
    unit = MemoryUnit(
        id=1, tenant="t", text="Maya said: I've never been to Japan.", kind="fact", source_event_ids=["e1"],
        valid_from=now, compressor="x", compressor_version="1", hash="h", created_at=now, updated_at=now,
        history=[{"op": "conflicts_with", "unit": 2, "said": "2024-03-02T10:00:00+00:00"}],
    )
    assert display_text(unit) == f"Maya: I've never been to Japan. {CONFLICT_MARK} what was said on 2024-03-02]"


# -- precision: what may close another unit ------------------------------------------------


def subjects(text: str) -> set[str]:
    return {s.subject for s in extract(text)}


def test_a_things_setting_belongs_to_the_thing_not_the_speaker() -> None:
    a = extract("Dev said: payments-api listens on port 8443.")
    b = extract("Dev said: The ledger service now serves on port 7000.")
    assert [s.key for s in a] == ["payments-api|port"] and [s.key for s in b] == ["ledger service|port"]
    assert keys(a) == ["payments api|port", "payments-api|port"] and keys(b) == ["ledger service|port", "ledger|port"]
    assert compare(a, b).shared == 0  # two services' ports: no update
    assert extract("Dev said: It listens on port 80.") == []  # whose port is unknown
    assert extract("Dev said: We deploy to Heroku.") == []  # a person has no hosting


def test_a_named_relation_is_that_person() -> None:
    assert subjects("Maya said: My cousin Priyanka lives in Leeds.") == {"priyanka"}
    assert subjects("Tom's neighbour Arjun works at Initech.") == {"arjun"}
    assert subjects("Maya said: Priyanka, an old classmate of mine, is based in Leeds.") == {"priyanka"}
    assert subjects("Maya said: Priyanka, a neighbour of Tom's, lives in Leeds.") == {"priyanka"}
    # the name holds for its sentence only
    assert keys(extract("Maya said: Priyanka, a nurse, lives in Leeds. Based in Derby myself.")) == [
        "maya|residence", "priyanka|residence",
    ]


def test_an_unnamed_relation_of_many_restates_but_never_updates() -> None:
    leeds = extract("Maya said: My colleague lives in Leeds.")
    derby = extract("Maya said: My colleague lives in Derby.")
    assert not leeds[0].firm and not compare(leeds, derby).updates  # maybe two colleagues
    assert compare(leeds, extract("Maya said: My colleague is based in Leeds.")).restates
    # one of a kind: a different value is an update
    assert compare(extract("Maya said: My mother lives in Leeds."), extract("Maya said: My mother lives in Derby.")).updates


def test_a_name_before_a_participle_or_a_role_is_the_subject() -> None:
    assert facts("Maya said: Tom is employed by Initech as an accountant.") == {
        ("tom", "occupation", frozenset({"accountant"}), False),
        ("tom", "employer", frozenset({"initech"}), False),
    }
    assert facts("Maya said: Tom is a welder at Brightforge.") == {
        ("tom", "occupation", frozenset({"welder"}), False),
        ("tom", "employer", frozenset({"brightforge"}), False),
    }
    assert extract("Maya said: Tom is a member at Ironworks Gym.") == []  # no job
    assert subjects("Maya said: Porto is where we live.") == {"maya"}  # a value first is still the speaker's


def test_a_passing_mention_restates_but_never_updates() -> None:
    mention = extract("Maya said: My flat in Leeds has thin walls.")
    assert keys(mention) == ["maya|residence"] and not mention[0].firm
    assert not compare(extract("Maya said: I live in Porto."), mention).updates
    assert compare(extract("Maya said: I live in Leeds."), mention).restates
    assert not compare(extract("Maya said: I work as a baker."), extract("Maya said: I applied for the barista role.")).updates


def test_a_pro_form_is_no_attribute() -> None:
    assert extract("Maya said: I stopped using the old laptop; the new one is a ThinkPad.") == []
    assert extract("Maya said: The other is Bob.") == []


@pytest.mark.parametrize(
    "text",
    [
        "Maya said: I'd happily live in Vienna.",
        "Maya said: I was based in Cairo.",
        "Maya said: We were living in Quito.",
        "Maya said: I need to move to Berlin.",
        "Maya said: I'm about to start as a chef at Noma.",
        "Maya said: I can't decide whether to work at Initech.",
    ],
)
def test_wishes_needs_and_the_past_tense_state_nothing(text: str) -> None:
    assert extract(text) == []


def test_a_tool_result_without_fields_is_one_value_of_the_call() -> None:
    old = extract("agent called tool team_lead with team=search; result: @dana")
    new = extract("agent called tool team_lead with team=search; result: @femi")
    other = extract("agent called tool team_lead with team=infra; result: @dana")
    assert keys(old) == ["tool team_lead(team=search)|result"]
    assert compare(old, new).updates
    assert compare(old, old).restates
    assert compare(old, other).shared == 0  # other arguments: another subject


def test_a_tool_result_and_a_sentence_state_one_setting() -> None:
    call = extract("agent called tool read_settings with service=orders; result: port=8001, workers=4")
    said = extract("Dev said: The orders service listens on port 8002 now.")
    again = extract("Dev said: orders-service listens on port 8001.")
    assert "orders|port" in keys(call) and "orders|port" in keys(said) and "orders|port" in keys(again)
    assert compare(call, said).updates and compare(again, said).updates
    assert compare(call, again).restates
    # Two calls with other arguments stay two subjects, even though each names "orders" in an argument.
    other = extract("agent called tool read_settings with service=orders, region=eu; result: port=9000")
    assert compare(call, other).shared == 0


def test_a_qualified_setting_belongs_to_what_qualifies_it() -> None:
    atlas = extract("Dev said: For the Atlas project, the deploy target is Fly.io.")
    borealis = extract("Dev said: The deploy target for Borealis is Render.")
    borealis_later = extract("Dev said: Borealis's deploy target is Heroku.")
    assert {s.subject for s in atlas} == {"atlas project"} and {s.subject for s in borealis} == {"borealis"}
    assert compare(atlas, borealis).shared == 0  # two projects' targets: no update
    assert compare(borealis, borealis_later).updates  # one project's target, changed
    # "for now", "for a while" name no thing: the owner's own setting
    assert {s.key for s in extract("Dev said: The deadline is June 3 for now.")} == {"*|has:deadline"}
    billing = extract("Dev said: The port of the billing service is 8080.")
    ledger = extract("Dev said: The port of the ledger service is 9090.")
    assert compare(billing, ledger).shared == 0
    assert other_subjects(billing, ledger) and not other_subjects(billing, extract("Dev said: billing listens on port 1."))


def test_a_key_longer_than_its_column_keeps_its_head_and_a_digest_of_the_whole() -> None:
    # An LM may write a tool call out in full: its subject carries every argument.
    def call(extra: str) -> str:
        args = ", ".join(f"host_{n:02d}=node-{n:02d}.eu-west.internal" for n in range(12))
        return f"Ops called tool probe with {args}, {extra}; result: status=ok"

    first, again, other = keys(extract(call("mode=full"))), keys(extract(call("mode=full"))), keys(extract(call("mode=fast")))
    assert len(first) == 1 and len(first[0]) == MAX_KEY_CHARS and "#" in first[0]
    assert first[0].startswith("tool probe(host_00=node-00")
    assert first == again and first != other  # stable, and calls that differ only at the end stay apart
    assert storable_key("maya|residence") == "maya|residence"
