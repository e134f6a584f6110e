"""The reference compressors of the MI comparison (identity, truncate) and the recall of compressions."""

from compressors.base import Compressor, available_compressors, create_compressor
from compressors.extractive import ExtractiveCompressor
from compressors.reference import raw_text
from memory_service.domain import CompressionWindow
from memory_service.eval.compression_recall import compression_recall
from memory_service.eval.locomo import Question
from memory_service.tokens import count_tokens
from tests.unit.test_extractive import make_event

LONG = ("Well, honestly, I think that I finally adopted a small grey cat named Miso from the shelter on Elm "
        "Street last week, and she already sleeps on my piano every single afternoon.")


def window(*contents: str) -> CompressionWindow:
    return CompressionWindow(events=[make_event(c, event_id=f"conv/D1:{i + 1}") for i, c in enumerate(contents)])


def test_registered_and_protocol() -> None:
    assert {"identity", "truncate"} <= set(available_compressors())
    assert isinstance(create_compressor("identity"), Compressor)
    assert isinstance(create_compressor("truncate"), Compressor)


def test_identity_keeps_every_event_raw() -> None:
    w = window(LONG, "ok.")
    drafts = create_compressor("identity").compress(w)
    assert [d.text for d in drafts] == [f"Caroline: {LONG}", "Caroline: ok."]
    assert [d.source_event_ids for d in drafts] == [["conv/D1:1"], ["conv/D1:2"]]
    assert raw_text(w.events[0]) == drafts[0].text


def test_identity_and_the_mi_context_carry_an_image_caption_like_the_compressors_see_it() -> None:
    from memory_service.ingest.offline import render_context

    event = make_event("Look at this!", metadata={"blip_caption": "a  photo of a red\nkayak"})
    w = CompressionWindow(events=[event])
    (identity,) = create_compressor("identity").compress(w)
    assert identity.text == "Caroline: Look at this!\n(shares an image: a photo of a red kayak)"
    assert "a photo of a red kayak" in render_context(w)
    assert "a photo of a red kayak" in ExtractiveCompressor().compress(w)[0].text


def test_truncate_spends_extractive_budget_on_the_raw_text_prefix() -> None:
    w = window(LONG, "The meeting moved to Friday at 10 in room B.")
    extractive = ExtractiveCompressor().compress(w)
    truncated = create_compressor("truncate").compress(w)
    assert len(truncated) == len(extractive)
    for t, e in zip(truncated, extractive, strict=True):
        assert t.source_event_ids == e.source_event_ids
        source = raw_text(next(ev for ev in w.events if ev.event_id == t.source_event_ids[0]))
        assert source.startswith(t.text)
        if t.text != source:  # cut: to extractive's count (decode/re-encode may merge a token)
            assert abs(count_tokens(t.text) - count_tokens(e.text)) <= 1
        else:  # extractive's unit is as long as the raw turn or longer
            assert count_tokens(e.text) >= count_tokens(source) - 1
    long_turn = create_compressor("truncate").compress(window(" ".join([LONG] * 4)))[0]
    assert count_tokens(long_turn.text) < count_tokens(" ".join([LONG] * 4)) / 2  # extractive keeps <= 60 words


def test_compression_recall_counts_turns_and_answers() -> None:
    w = window("I adopted a cat named Miso in March.", "We went hiking near Lake Tahoe.")
    questions = [
        Question("conv", "What is the cat called?", "Miso", ["D1:1"], 1),
        Question("conv", "Where did they hike?", "Lake Tahoe", ["D1:2"], 1),
        Question("conv", "Elsewhere", "Paris", ["D9:9"], 1),  # evidence outside the windows: not counted
        Question("conv", "Nothing", None, [], 5, abstention=True),
    ]
    full = compression_recall([w], ["Caroline adopted a cat named Miso in March. They went hiking near Lake Tahoe."], questions)
    assert (full.content_recall, full.answer_token_recall, full.turns, full.questions) == (1.0, 1.0, 2, 2)
    half = compression_recall([w], ["Caroline has a cat, Miso."], questions)
    assert half.content_recall == 0.0 and half.answer_token_recall == 0.5
    assert compression_recall([w], [""], questions).answer_token_recall == 0.0
