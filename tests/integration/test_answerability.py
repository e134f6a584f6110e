"""Answerability through the real service: real SQLite, FAISS, the packaged MiniLM embedder and
the extractive compressor. A question about the right topic but the wrong person comes back empty."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from memory_service.domain import EventIn, Scope
from memory_service.service import MemoryService
from memory_service.settings import Settings


def event(eid: str, speaker: str, text: str, when: datetime) -> EventIn:
    return EventIn(
        event_id=eid, user_id="u1", session_id="s1", role="user", speaker=speaker, content=text, timestamp=when
    )


@pytest.fixture
async def service(tmp_path: Path, sqlite_url: str, embedder):
    settings = Settings(data_dir=tmp_path / "data", database_url=sqlite_url)
    service = await MemoryService.open(settings, embedder=embedder, run_jobs=False)
    yield service
    await service.close()


CHAT = [
    ("Caroline", "Hey Mel! I found a rainbow sidewalk in my neighborhood during my walk this morning."),
    ("Melanie", "That sounds lovely. I spent the weekend painting a sunrise over the lake."),
    ("Caroline", "I also signed up for a pottery class at the community center."),
    ("Melanie", "The kids and I went camping in the mountains and roasted marshmallows."),
    ("Caroline", "I am researching adoption agencies because I want to build a family."),
    ("Melanie", "I bought new running shoes for the charity race next month."),
]


async def test_a_wrong_person_question_is_empty_and_the_right_one_is_not(service: MemoryService) -> None:
    t0 = datetime(2023, 5, 8, 13, tzinfo=UTC)
    await service.ingest(
        [event(f"e{i}", who, text, t0 + timedelta(minutes=i)) for i, (who, text) in enumerate(CHAT)], wait=True
    )
    scope = Scope(user_id="u1")

    right = await service.context(scope, "What did Caroline find in her neighborhood during her walk?", 256)
    assert not right.empty and "rainbow sidewalk" in right.context
    assert right.answerability is not None and right.answerability.reason == "answerable"

    wrong = await service.context(scope, "What did Melanie find in her neighborhood during her walk?", 256)
    assert wrong.empty and wrong.context == "" and wrong.chosen == [] and wrong.tokens == 0
    assert wrong.answerability is not None and wrong.answerability.reason == "wrong_subject"
    # as close in meaning as the right-person question: relevance alone would have answered it
    assert wrong.best_relevance >= service.settings.empty_threshold

    for query in ("What did Melanie buy for the charity race?", "Where did Melanie go camping with the kids?"):
        answer = await service.context(scope, query, 256)
        assert not answer.empty, query
