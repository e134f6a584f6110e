"""LM-assisted query analysis with the real packaged SmolLM2-135M (llama.cpp), in a real context call.

Whatever the small model says, the merged analysis keeps every term and entity the rules
found and adds only what the query grounds; an LM that cannot be reached leaves the
rules' analysis as it is and the context is still answered.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from compressors.backends.llamacpp import LlamaCppCompressor
from compressors.backends.openai_compat import OpenAICompressor
from compressors.text.words import stem_words
from memory_service.context.analysis import analyze
from memory_service.context.lm_analysis import LMQueryAnalyzer
from memory_service.domain import EventIn, Scope
from memory_service.service import MemoryService
from memory_service.settings import Settings
from tests.server import free_port

pytestmark = pytest.mark.slow

T0 = datetime(2023, 5, 8, 10, tzinfo=UTC)
SAID = [
    "I went to the LGBTQ support group yesterday and it was powerful.",
    "I painted a sunrise over the lake last week.",
    "We went camping in the mountains with the kids.",
]
QUERY = "what did caroline paint at the lake?"


@pytest.fixture(scope="module")
def llama() -> LlamaCppCompressor:
    return LlamaCppCompressor(timeout_s=60, max_tokens=120)


@pytest.fixture
async def service(sqlite_url: str, tmp_path, embedder):
    service = await MemoryService.open(Settings(data_dir=tmp_path / "data", database_url=sqlite_url), embedder=embedder, run_jobs=False)
    await service.ingest(
        [EventIn(event_id=f"e{i}", user_id="u", session_id="s", role="user", speaker="Caroline", content=text, timestamp=T0)
         for i, text in enumerate(SAID)],
        wait=True,
    )
    yield service
    await service.close()


def grounded(analysis, query: str) -> bool:
    words = [w.lower() for w in re.findall(r"\w+", query)]
    stems = set(stem_words(words))
    return all(e.lower() in query.lower() for e in analysis.entities) and all(
        t in words or stem_words([t])[0] in stems for t in analysis.terms
    )


async def test_real_lm_analysis_adds_only_grounded_terms(service: MemoryService, llama: LlamaCppCompressor) -> None:
    analyzer = LMQueryAnalyzer(llama, timeout_s=60)
    service.query_analyzer = analyzer
    rules = analyze(QUERY, None, service.settings.candidates)
    result = await service.context(Scope(user_id="u"), QUERY, 256)
    assert analyzer.stats.asked == 1 and analyzer.stats.failures == 0  # the LM path was taken and answered
    analysis = result.analysis
    assert analysis is not None and analysis.query == QUERY
    assert set(rules.terms) <= set(analysis.terms) and set(rules.entities) <= set(analysis.entities)
    assert analysis.multi_hop >= rules.multi_hop and analysis.time_range == rules.time_range
    assert grounded(analysis, QUERY)
    assert "sunrise over the lake" in result.context
    again = await service.context(Scope(user_id="u"), QUERY, 256)
    assert analyzer.stats.asked == 1 and analyzer.stats.cache_hits == 1
    assert again.analysis == analysis


async def test_unreachable_lm_falls_back_to_the_rules(service: MemoryService) -> None:
    dead = OpenAICompressor(model="none", base_url=f"http://127.0.0.1:{free_port()}/v1", timeout_s=5)
    analyzer = LMQueryAnalyzer(dead, timeout_s=5)
    service.query_analyzer = analyzer
    result = await service.context(Scope(user_id="u"), QUERY, 256)
    assert analyzer.stats.asked == analyzer.stats.failures == 1
    rules = analyze(QUERY, None, service.settings.candidates)
    assert result.analysis is not None
    assert (result.analysis.terms, result.analysis.entities, result.analysis.multi_hop) == (rules.terms, rules.entities, rules.multi_hop)
    assert "sunrise over the lake" in result.context


async def test_settings_wire_the_lm_analyzer(sqlite_url: str, tmp_path, embedder, llama: LlamaCppCompressor) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=sqlite_url, query_analysis="lm")
    service = await MemoryService.open(settings, embedder=embedder, compressor=llama, run_jobs=False)
    try:
        assert isinstance(service.query_analyzer, LMQueryAnalyzer) and service.query_analyzer.lm is llama
    finally:
        await service.close()
    auto = await MemoryService.open(replace_settings(settings, "auto"), embedder=embedder, compressor=llama, run_jobs=False)
    try:
        assert auto.query_analyzer is None  # auto = the rules: an LM call costs seconds per query
    finally:
        await auto.close()


def replace_settings(settings: Settings, choice: str) -> Settings:
    return settings.model_copy(update={"query_analysis": choice})
