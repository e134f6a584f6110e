"""Supersession judged by the real packaged SmolLM2-135M (llama.cpp), in a real consolidation.

SmolLM2 answers "updates: true" to nearly every pair and quotes the prompt instead of
the notes, so what this pins down is the safety of the LM path: the judge is asked about
the close same-subject pairs the heuristic declined, nothing is closed on a verdict that
does not quote the notes, the heuristic's own updates still happen, and an LM that
cannot be reached changes nothing. A bigger model's grounded "yes" closes the older
unit through the same code (the grounding rules are pinned in tests/unit/test_lm_judge.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from compressors.backends.llamacpp import LlamaCppCompressor
from compressors.backends.openai_compat import OpenAICompressor
from memory_service.consolidate.lm_judge import LMSupersessionJudge
from memory_service.domain import EventIn, Scope
from memory_service.service import MemoryService
from memory_service.settings import Settings
from tests.server import free_port

pytestmark = pytest.mark.slow

T0 = datetime(2023, 1, 10, 12, 0, tzinfo=UTC)
OWNER = Scope(user_id="caroline")
SAID = [
    (0, "I live in Boston."),
    (0, "I drive a red Honda Civic."),
    (0, "I like pizza."),
    (40, "I live in Denver."),
    (40, "I sold my Honda Civic and bought a blue Tesla."),
]


def events() -> list[EventIn]:
    return [
        EventIn(event_id=f"e{i}", user_id="caroline", session_id="s1", role="user", speaker="Caroline",
                content=text, timestamp=T0 + timedelta(days=day, minutes=i))
        for i, (day, text) in enumerate(SAID)
    ]


@pytest.fixture(scope="module")
def llama() -> LlamaCppCompressor:
    return LlamaCppCompressor(timeout_s=120, max_tokens=120)


@pytest.fixture
async def service(sqlite_url: str, tmp_path, embedder):
    service = await MemoryService.open(Settings(data_dir=tmp_path / "data", database_url=sqlite_url), embedder=embedder, run_jobs=False)
    await service.ingest(events(), wait=True)
    yield service
    await service.close()


async def closures(service: MemoryService) -> dict[str, str]:
    units = await service.store.list_units(OWNER, limit=100, include_invalid=True)
    by_id = {u.id: u for u in units}
    return {u.text: by_id[u.superseded_by].text for u in units if u.level == 0 and u.superseded_by is not None}


async def test_real_lm_judge_is_asked_and_only_grounded_verdicts_close(service: MemoryService, llama) -> None:
    judges: list[LMSupersessionJudge] = []

    def factory() -> LMSupersessionJudge:
        judges.append(LMSupersessionJudge(llama))
        return judges[-1]

    service.consolidator.judge_factory = factory
    report = await service.consolidate(OWNER)
    closed = await closures(service)
    stats = judges[0].stats
    assert report.judge["asked"] == stats.asked >= 1  # the Honda pair (cosine ~0.7, no attribute rule) went to the LM
    assert any("Boston" in old and "Denver" in new for old, new in closed.items())  # the heuristic's update
    assert not any("pizza" in old for old in closed)  # never asked: too far from everything
    lm_closed = [old for old in closed if "Honda" in old]
    assert len(lm_closed) == stats.updates_accepted  # closed exactly when a verdict was grounded
    assert report.superseded == 1 + stats.updates_accepted


async def test_unreachable_lm_leaves_the_heuristic_in_charge(service: MemoryService) -> None:
    dead = OpenAICompressor(model="none", base_url=f"http://127.0.0.1:{free_port()}/v1", timeout_s=5)
    judges: list[LMSupersessionJudge] = []
    service.consolidator.judge_factory = lambda: judges.append(LMSupersessionJudge(dead)) or judges[-1]
    report = await service.consolidate(OWNER)
    assert judges[0].stats.failures == judges[0].stats.asked >= 1
    closed = await closures(service)
    assert list(closed.items()) == [(old, new) for old, new in closed.items() if "Boston" in old]
    assert len(closed) == report.superseded == 1
