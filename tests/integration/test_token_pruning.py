"""Token pruning with the real packaged SmolLM2-135M (llama.cpp), in a real context call.

Pruned units are shorter and keep every number and capitalised word; scores are cached
per unit, so asking again costs no LM pass; a model that cannot be loaded leaves every
text as it was.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from memory_service.context.packing import display_text
from memory_service.domain import EventIn, Scope
from memory_service.service import MemoryService
from memory_service.settings import Settings
from memory_service.tokens import count_tokens

pytestmark = pytest.mark.slow

T0 = datetime(2023, 5, 8, 10, tzinfo=UTC)
SAID = [
    "I went to the LGBTQ support group on 7 May 2023 and it was really powerful, so I think I will go back there again.",
    "Melanie and I actually went camping with the kids in the Rocky Mountains for 3 days and it was a lot of fun.",
    "I have been thinking about it for a while and I really want to study counseling at Boston University in 2024.",
]
QUERY = "What did Caroline do at the support group?"
FACT = re.compile(r"\S*(?:\d|[A-Z])\S*")


def events() -> list[EventIn]:
    return [EventIn(event_id=f"e{i}", user_id="u", session_id="s", role="user", speaker="Caroline", content=text, timestamp=T0)
            for i, text in enumerate(SAID)]


async def open_service(sqlite_url: str, tmp_path, embedder, **settings) -> MemoryService:
    service = await MemoryService.open(
        Settings(data_dir=tmp_path / "data", database_url=sqlite_url, prune_tokens=True, **settings), embedder=embedder,
        run_jobs=False,
    )
    await service.ingest(events(), wait=True)
    return service


def facts(text: str) -> list[str]:
    return [w.strip(".,;:!?") for w in FACT.findall(text)]


async def test_real_lm_prunes_units_keeping_numbers_and_names(sqlite_url: str, tmp_path, embedder) -> None:
    service = await open_service(sqlite_url, tmp_path, embedder, prune_keep_ratio=0.6)
    try:
        result = await service.context(Scope(user_id="u"), QUERY, 512)
        pruner = service.pruner
        assert pruner is not None and pruner.stats.scored == 3 and pruner.stats.failures == 0
        pruned = [p for p in result.pieces if p.text != display_text(p.candidate.unit)]
        assert pruned, "no unit was pruned"
        for piece in pruned:
            original = display_text(piece.candidate.unit)
            assert count_tokens(piece.text) < count_tokens(original)
            assert len(piece.text.split()) >= 0.6 * len(original.split()) - 1
            for fact in facts(original):
                assert fact in piece.text, (fact, piece.text)
            if "support" in original:
                assert "support" in piece.text  # query words are kept
        assert "prune_ms" in result.timings_ms
        again = await service.context(Scope(user_id="u"), QUERY, 512)
        assert pruner.stats.scored == 3 and pruner.stats.cache_hits >= 3  # scored once per unit
        assert again.context == result.context
    finally:
        await service.close()


async def test_a_model_that_cannot_load_leaves_units_unpruned(sqlite_url: str, tmp_path, embedder) -> None:
    service = await open_service(sqlite_url, tmp_path, embedder, prune_model=str(tmp_path / "missing.gguf"))
    try:
        result = await service.context(Scope(user_id="u"), QUERY, 512)
        assert service.pruner is not None and service.pruner.stats.failures == 1
        assert result.pieces and all(p.text == display_text(p.candidate.unit) for p in result.pieces)
    finally:
        await service.close()
