"""The LoCoMo eval's metrics and BM25 baseline on hand-made data with known answers."""

from __future__ import annotations

import pytest

from memory_service.eval.bm25 import TurnBM25
from memory_service.eval.locomo import Turn, sample_turns
from memory_service.eval.recall import content_hit, content_stems, score, token_recall
from memory_service.eval.report import results
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


def test_content_hit_needs_half_of_the_turns_content_words() -> None:
    text = "Melanie ran a charity race for mental health"  # melani, ran, chariti, race, mental, health
    assert content_hit(text, content_stems("Melanie: charity race, mental"))  # 4 of 6
    assert content_hit(text, content_stems("race charity health"))  # 3 of 6: exactly half
    assert not content_hit(text, content_stems("Melanie health"))  # 2 of 6
    assert not content_hit("", content_stems("anything"))


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
        QuestionRecord("c/q2", "c", 5, "?", None, ["D2:1"], {OURS: {512: answer([], True)}, BM25: {512: answer(["D2:1"])}}),
    ]
    run = EvalRun(EvalConfig(tmp_path, [512]), {}, records, {}, None, "now")
    ours = results(run)[OURS]["512"]
    assert ours["overall"]["questions"] == 2  # category 5 is not in the overall
    assert ours["overall"]["evidence_recall"] == pytest.approx((1.0 + 1 / 3) / 2)
    assert ours["overall"]["evidence_recall_turns"] == pytest.approx(2 / 4)
    assert ours["overall"]["false_empty_rate"] == 0.0
    assert ours["by_category"]["5"]["abstain_rate"] == 1.0
    assert ours["by_category"]["1"]["evidence_recall"] == 1.0
    bm25 = results(run)[BM25]["512"]
    assert bm25["overall"]["evidence_recall"] == 0.0 and bm25["overall"]["false_empty_rate"] == 0.5
    assert bm25["by_category"]["5"]["abstain_rate"] == 0.0
