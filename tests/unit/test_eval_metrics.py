"""The LoCoMo eval's metrics and BM25 baseline on hand-made data with known answers."""

from __future__ import annotations

import pytest

from memory_service.eval.bm25 import TurnBM25
from memory_service.eval.locomo import Turn, category_names, is_abstention, sample_questions, sample_turns
from memory_service.eval.recall import (
    content_hit,
    content_hits,
    content_stems,
    provenance,
    score,
    stopword_share,
    token_recall,
)
from memory_service.eval.report import headline, results
from memory_service.eval.run import BM25, OURS, Answer, EvalConfig, EvalRun, QuestionRecord
from memory_service.tokens import count_tokens


def turn(dia_id: str, speaker: str, text: str, caption: str | None = None) -> Turn:
    return Turn(dia_id=dia_id, speaker=speaker, text=text, caption=caption, session_date="1:56 pm on 8 May, 2023")


def test_content_stems_normalise_both_sides_alike() -> None:
    assert content_stems("Caroline's painting classes") == content_stems("caroline painted a class")
    assert content_stems("on 2023-05-07") == content_stems("7 May 2023") == {"7", "may_month", "2023"}
    assert content_stems("I may swim") == {"swim"}  # the modal is a stop word, the month is not
    assert content_stems("yes") == {"yes"}  # no content word: every word counts
    assert content_stems("") == set()


def test_content_hit_needs_60_percent_of_the_turns_content_words_by_default() -> None:
    text = "Melanie ran a charity race for mental health"  # melani, ran, chariti, race, mental, health
    assert content_hit(text, content_stems("Melanie: charity race, mental"))  # 4 of 6
    assert not content_hit(text, content_stems("race charity health"))  # 3 of 6: half, under 60%
    assert content_hit(text, content_stems("race charity health"), 0.5)  # ... exactly half
    assert not content_hit(text, content_stems("Melanie health"), 0.5)  # 2 of 6
    assert not content_hit("", content_stems("anything"))


def test_content_hits_at_both_thresholds() -> None:
    turns = {
        "D1:1": turn("D1:1", "Mel", "Melanie ran a charity race for mental health"),  # 6 stems
        "D1:2": turn("D1:2", "Mel", "Melanie painted a sunrise"),  # melani, paint, sunris
    }
    context = "Melanie: charity race, health. She painted."  # D1:1 4 of 6, D1:2 2 of 3
    assert content_hits(["D1:1", "D1:2", "D9:9"], turns, context) == {0.6: ["D1:1", "D1:2"], 0.5: ["D1:1", "D1:2"]}
    context = "Melanie: charity race."  # D1:1 3 of 6, D1:2 1 of 3
    assert content_hits(["D1:1", "D1:2"], turns, context) == {0.6: [], 0.5: ["D1:1"]}


def test_provenance_counts_each_unit_and_cited_event_against_the_units_shown_text() -> None:
    turns = {"D1:1": turn("D1:1", "Ann", "I adopted a beagle named Max"), "D1:2": turn("D1:2", "Bo", "Bo bought a red kayak")}
    # the unit shows 3 of D1:1's 4 stems (adopt, beagl, max; not "name"), none of D1:2's; D9:9 is no turn
    assert provenance([("Ann adopted Max, a beagle.", ["D1:1", "D1:2", "D9:9"])], turns) == (1, 3)
    # 2 of D1:2's 4 stems (bo, kayak) is exactly half: enough; each unit is judged on its own shown text
    assert provenance([("Bo has a kayak.", ["D1:2"]), ("Ann adopted Max", ["D1:2"])], turns) == (1, 2)
    assert provenance([], turns) == (0, 0)


def test_stopword_share() -> None:
    assert stopword_share("The cat sat on the mat.") == pytest.approx(3 / 6)  # the, on, the
    assert stopword_share("I don\u2019t know") == pytest.approx(2 / 3)  # i, don't (one word), know
    assert stopword_share("2023-05-07: Ann called") == 0.0  # 2023, 05, 07, ann, called
    assert stopword_share("great day") == 0.0  # the compressors' filler words are not stop words here
    assert stopword_share("... !") is None


def test_abstention_and_category_names_come_from_the_data() -> None:
    assert is_abstention({"category": 5, "question_type": "abstention"})
    assert is_abstention({"category": 2, "question_type": "Abstention (unanswerable)"})
    assert is_abstention({"category": 5, "adversarial_answer": "Max", "evidence": ["D1:2"]})
    assert not is_abstention({"category": 5, "question_type": "event_ordering", "answer": "x"})
    assert not is_abstention({"category": 5, "answer": "x"})  # a category id means nothing by itself
    samples = [
        {"sample_id": "a", "qa": [
            {"question": "?", "answer": "x", "category": 7, "question_type": "event_ordering"},
            {"question": "?", "answer": "x", "category": 7, "question_type": "event_ordering"},
            {"question": "?", "answer": "x", "category": 7, "question_type": "ordering"},
            {"question": "?", "answer": "x", "category": 3},
            {"question": "?", "answer": "x", "category": 12},
        ]},
    ]
    # the commonest question_type; a category without one gets LoCoMo's label, if it has one
    assert category_names(samples) == {3: "open-domain", 7: "event_ordering", 12: ""}
    questions = sample_questions({"sample_id": "a", "qa": [
        {"question": "?", "answer": "none", "evidence": [], "category": 5, "question_type": "abstention"},
    ]})
    assert questions[0].abstention and questions[0].question_type == "abstention"


def test_answer_token_recall() -> None:
    context = content_stems("- [2023-05-07] Caroline went to the LGBTQ support group.")
    assert token_recall("7 May 2023", context) == 1.0
    assert token_recall("8 May 2023", context) == pytest.approx(2 / 3)
    assert token_recall("support groups, counselling", context) == pytest.approx(2 / 3)
    assert token_recall("", context) is None


def test_score_counts_citations_and_content_separately() -> None:
    turns = {"D1:1": turn("D1:1", "Ann", "I adopted a beagle named Max"), "D1:2": turn("D1:2", "Bo", "Bo bought a red kayak")}
    # cites both turns, but only the first one's words are in the text (an over-broad provenance)
    hits, content, answer = score(["D1:1", "D1:2"], "a beagle", turns, {"D1:1", "D1:2"}, "Ann adopted Max, a beagle.")
    assert hits == ["D1:1", "D1:2"] and content == ["D1:1"] and answer == 1.0
    # an evidence id the conversation lacks is never a content hit
    assert score(["D9:9"], None, turns, set(), "Ann adopted Max")[1:] == ([], None)


TURNS = [
    turn("D1:1", "Ann", "Good morning!"),
    turn("D1:2", "Bo", "I adopted a beagle puppy named Max last week, and the beagle already loves the park near our house " * 3),
    turn("D1:3", "Ann", "Where do you walk the beagle?"),
    turn("D1:4", "Bo", "We go hiking with it.", caption="a photo of a dog on a mountain trail"),
]


def test_bm25_fills_best_first_skipping_what_does_not_fit() -> None:
    index = TurnBM25(TURNS)
    long_turn = count_tokens(TURNS[1].render())
    assert long_turn > 60
    filled = index.fill("Which beagle did Bo adopt?", 60)
    # the long turn scores best but does not fit; the next beagle turn does, then others fill the rest
    assert "D1:2" not in [t.dia_id for t in filled.turns]
    assert filled.turns[0].dia_id == "D1:3"
    assert filled.tokens == count_tokens(filled.context) <= 60
    assert not filled.empty
    full = index.fill("Which beagle did Bo adopt?", 10_000)
    assert [t.dia_id for t in full.turns][:2] == ["D1:2", "D1:3"] and len(full.turns) == 4
    assert "[image: a photo of a dog on a mountain trail]" in full.context


def test_bm25_dated_fill_shows_turns_in_order_under_their_session_dates_within_the_budget() -> None:
    turns = [
        Turn("D1:1", "Ann", "I adopted a beagle", None, "1:56 pm on 8 May, 2023"),
        Turn("D1:2", "Bo", "Nice, a beagle!", None, "1:56 pm on 8 May, 2023"),
        Turn("D2:1", "Ann", "The beagle chewed my shoe", None, "10:00 am on 20 June, 2023"),
        Turn("D2:2", "Bo", "Oh no", None, "10:00 am on 20 June, 2023"),
    ]
    index = TurnBM25(turns)
    full = index.fill("beagle", 10_000, dated=True)
    assert full.context == (
        "1:56 pm on 8 May, 2023:\nAnn: I adopted a beagle\nBo: Nice, a beagle!\n"
        "10:00 am on 20 June, 2023:\nAnn: The beagle chewed my shoe\nBo: Oh no"
    )
    assert full.tokens == count_tokens(full.context)
    for budget in range(1, full.tokens + 1):
        filled = index.fill("beagle", budget, dated=True)
        assert filled.tokens == count_tokens(filled.context) <= budget
        # every shown turn sits under its own session's date line
        for t in filled.turns:
            assert f"{t.session_date}:" in filled.context
    assert index.fill("beagle", 10_000).context.count(":") == 4  # undated: speakers only


def test_bm25_is_empty_when_no_turn_shares_a_word() -> None:
    filled = TurnBM25(TURNS).fill("quantum chromodynamics", 100)
    assert filled.empty


def test_sample_turns_reads_sessions_in_order_with_captions() -> None:
    sample = {
        "sample_id": "s",
        "conversation": {
            "speaker_a": "Ann",
            "speaker_b": "Bo",
            "session_10_date_time": "1:00 pm on 9 June, 2023",
            "session_10": [{"speaker": "Bo", "dia_id": "D10:1", "text": "later"}],
            "session_2_date_time": "1:00 pm on 8 May, 2023",
            "session_2": [{"speaker": "Ann", "dia_id": "D2:1", "text": "look", "blip_caption": "a cat"}],
        },
    }
    turns = sample_turns(sample)
    assert [t.dia_id for t in turns] == ["D2:1", "D10:1"]
    assert turns[0].content == "look a cat" and turns[0].session_date == "1:00 pm on 8 May, 2023"


def answer(hits: list[str], empty: bool = False, tokens: int = 100) -> Answer:
    return Answer(hits, hits, 1.0 if hits else 0.0, empty, tokens, 5.0, 1, len(hits))


def test_results_average_over_questions_and_pool_over_turns(tmp_path) -> None:
    records = [
        QuestionRecord("c/q0", "c", 1, "?", "a", ["D1:1"], {OURS: {512: answer(["D1:1"])}, BM25: {512: answer([])}}),
        QuestionRecord(
            "c/q1", "c", 4, "?", "a", ["D1:1", "D1:2", "D1:3"], {OURS: {512: answer(["D1:2"])}, BM25: {512: answer([], True)}}
        ),
        QuestionRecord(
            "c/q2", "c", 5, "?", None, ["D2:1"], {OURS: {512: answer([], True)}, BM25: {512: answer(["D2:1"])}},
            abstention=True,
        ),
    ]
    run = EvalRun(EvalConfig(tmp_path, [512]), {}, records, {}, None, "now")
    ours = results(run)[OURS]["512"]
    assert ours["overall"]["questions"] == 2  # the abstention question is not in the overall
    assert headline(run) == [1, 4]  # by default, the categories with an answerable question
    assert ours["overall"]["evidence_recall"] == pytest.approx((1.0 + 1 / 3) / 2)
    assert ours["overall"]["evidence_recall_turns"] == pytest.approx(2 / 4)
    assert ours["overall"]["false_empty_rate"] == 0.0
    assert ours["by_category"]["5"]["abstain_rate"] == 1.0 and ours["by_category"]["5"]["false_empty_rate"] is None
    assert ours["abstention"]["questions"] == 1 and ours["abstention"]["abstain_rate"] == 1.0
    assert ours["by_category"]["1"]["evidence_recall"] == 1.0 and ours["by_category"]["1"]["abstain_rate"] is None
    bm25 = results(run)[BM25]["512"]
    assert bm25["overall"]["evidence_recall"] == 0.0 and bm25["overall"]["false_empty_rate"] == 0.5
    assert bm25["by_category"]["5"]["abstain_rate"] == 0.0


def scored(hits: list[str], content_50: list[str], supported: int, citations: int, stopwords: float | None,
           answer_recall: float | None = 1.0, empty: bool = False) -> Answer:
    return Answer(hits, hits, answer_recall, empty, 100, 5.0, 2, len(hits), content_hits_50=content_50,
                  supported_citations=supported, citations=citations, stopword_share=stopwords)


def test_results_of_the_new_metrics_and_the_headline_categories(tmp_path) -> None:
    def record(i: int, category: int, evidence: list[str], a: Answer, abstention: bool = False) -> QuestionRecord:
        return QuestionRecord(f"c/q{i}", "c", category, "?", "a", evidence, {OURS: {512: a}, BM25: {512: a}},
                              abstention=abstention)

    records = [
        record(0, 1, ["D1:1", "D1:2"], scored(["D1:1"], ["D1:1", "D1:2"], 3, 4, 0.3)),
        record(1, 2, ["D1:3"], scored([], ["D1:3"], 1, 6, 0.5, answer_recall=0.5)),
        record(2, 3, ["D1:4"], scored(["D1:4"], ["D1:4"], 1, 1, 0.1, answer_recall=0.0, empty=True)),
        record(3, 5, [], scored([], [], 0, 0, None, answer_recall=None, empty=True), abstention=True),
        record(4, 5, [], scored([], [], 2, 2, 0.2, answer_recall=None), abstention=True),
    ]
    run = EvalRun(EvalConfig(tmp_path, [512], headline=[1, 2]), {}, records, {}, None, "now")
    ours = results(run)[OURS]["512"]
    overall = ours["overall"]  # categories 1 and 2 only
    assert overall["questions"] == 2
    assert overall["content_recall"] == pytest.approx((0.5 + 0.0) / 2)
    assert overall["content_recall_50"] == 1.0
    assert overall["answer_recall"] == pytest.approx(0.75)
    assert overall["provenance_precision"] == pytest.approx((3 + 1) / (4 + 6))  # pooled over pairs
    assert overall["stopword_share"] == pytest.approx(0.4)
    assert overall["false_empty_rate"] == 0.0 and overall["abstain_rate"] is None
    assert ours["by_category"]["3"]["false_empty_rate"] == 1.0
    abstention = ours["abstention"]
    assert abstention["questions"] == 2 and abstention["abstain_rate"] == 0.5
    assert abstention["stopword_share"] == pytest.approx(0.2)  # the empty context has no words
    assert abstention["provenance_precision"] == 1.0 and abstention["answer_recall"] is None
