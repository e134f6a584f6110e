"""The answerability decision (`context.answerability.assess`) on hand-made candidates."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from memory_service.context.analysis import analyze
from memory_service.context.answerability import assess, concerns, subjects_of
from memory_service.context.config import AbstentionConfig, recipe

CONFIG = AbstentionConfig()


@dataclass
class Unit:
    text: str
    persons: list[str] = field(default_factory=list)


@dataclass
class Cand:
    unit: Unit
    dense: float | None = 0.6
    score: float = 1.0


def said(person: str, text: str, dense: float = 0.6, persons: list[str] | None = None) -> Cand:
    return Cand(Unit(f"{person} said: {text}", persons if persons is not None else [person]), dense)


WALKS = [
    said("Caroline", "I found a rainbow sidewalk in my neighborhood during my walk.", 0.7),
    said("Melanie", "I painted a sunrise over the lake last year."),
    said("Melanie", "The kids and I went camping in the mountains."),
    said("Caroline", "I went to a support group yesterday."),
]


def test_the_right_person_is_answerable() -> None:
    result = assess(WALKS, analyze("What did Caroline find in her neighborhood during her walk?"), CONFIG)
    assert result.answerable and result.reason == "answerable"
    assert result.subjects == ["Caroline"]
    assert result.subject_support is not None and result.subject_support > 0.9


def test_the_wrong_person_is_not() -> None:
    result = assess(WALKS, analyze("What did Melanie find in her neighborhood during her walk?"), CONFIG)
    assert not result.answerable and result.reason == "wrong_subject"
    assert result.other_support is not None and result.subject_support is not None
    assert result.other_support - result.subject_support >= CONFIG.subject_margin


def test_a_unit_naming_the_subject_in_its_text_concerns_them() -> None:
    mention = said(
        "Melanie", "Caroline found a rainbow sidewalk in her neighborhood during a walk.", persons=["Melanie", "Caroline"]
    )
    assert concerns(mention.unit, {"caroline"})
    result = assess([mention, *WALKS[1:]], analyze("What did Caroline find during her walk?"), CONFIG)
    assert result.answerable


def test_a_subject_must_be_a_person_of_the_memory() -> None:
    # "Paris" is no unit's person: an entity, not a subject; the attribute decides alone.
    cands = [said("Tom", "I loved the museums in Paris.", 0.7, ["Tom", "Paris"][:1])]
    assert subjects_of(analyze("What did Tom like in Paris?"), cands) == ["Tom"]
    # a question in the first person is the asker's; one asking "who" asks for the doer
    assert assess(WALKS, analyze("What did I find during my walk with Melanie?"), CONFIG).subject_support is None
    assert assess(WALKS, analyze("Who found something during a walk with Melanie?"), CONFIG).answerable
    assert subjects_of(analyze("What is there to see in Paris?"), cands) == []


def test_distinctive_words_in_no_candidate_are_uncovered() -> None:
    project = [
        Cand(Unit("User said: I set up the Flask project with a SQLite database and pytest."), 0.55),
        Cand(Unit("Assistant said: Use blueprints to split the routes of the project."), 0.5),
        Cand(Unit("User said: The login page now validates the password length."), 0.45),
    ]
    # Off by default (it separated nothing on the dev sets); a deployment can turn it on.
    on = replace(CONFIG, attribute_threshold=0.3)
    question = analyze("Which Kubernetes autoscaling thresholds did I configure?")
    assert assess(project, question, CONFIG).answerable
    missing = assess(project, question, on)
    assert not missing.answerable and missing.reason == "uncovered"
    assert missing.attribute_coverage == 0.0
    present = assess(project, analyze("Which database did I set up the Flask project with?"), on)
    assert present.answerable and present.attribute_coverage > 0.9


def test_nothing_close_in_meaning_is_irrelevant() -> None:
    far = [said("Caroline", "I went to a support group yesterday.", 0.1)]
    result = assess(far, analyze("What is the boiling point of tungsten?"), CONFIG)
    assert not result.answerable and result.reason == "irrelevant"
    # ... unless a best candidate holds every query word (a keyword query far from a sentence)
    assert assess(far, analyze("support group"), CONFIG).answerable


def test_nicknames_and_irregular_verbs() -> None:
    # "Mel" is short for "Melanie"; "find" matches "found"
    result = assess(WALKS, analyze("What did Mel find in her neighborhood during her walk?"), CONFIG)
    assert result.reason == "wrong_subject"
    right = assess(WALKS, analyze("What did Caroline find during her walk?"), CONFIG)
    assert right.subject_support == 1.0


def test_a_question_to_the_listener_is_about_the_listener() -> None:
    # Melanie asks about Caroline's pottery: the attribute belongs to someone other than Melanie
    cands = [
        said("Melanie", "What made you pick pottery for your art?", 0.7),
        said("Caroline", "I painted the lake at sunrise.", 0.5),
    ]
    result = assess(cands, analyze("Why did Melanie pick pottery for her art?"), CONFIG)
    assert result.subject_support == 0.0 and result.other_support == 1.0
    assert result.reason == "wrong_subject"


def test_no_candidates_or_no_attribute() -> None:
    assert not assess([], analyze("What did Caroline find?"), CONFIG).answerable
    assert assess(WALKS, analyze("Caroline?"), CONFIG).answerable  # only a subject: nothing to cover
    assert assess(WALKS, None, CONFIG).answerable


def test_the_parameters_switch_each_check_off() -> None:
    wrong = analyze("What did Melanie find in her neighborhood during her walk?")
    assert assess(WALKS, wrong, replace(CONFIG, subject_margin=2.0)).answerable
    off = recipe("no_abstention").abstention
    assert assess(WALKS, wrong, off).answerable
    far = [said("Caroline", "I went to a support group yesterday.", 0.1)]
    assert assess(far, analyze("Which Kubernetes thresholds did I configure?"), off).answerable
