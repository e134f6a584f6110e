"""Native LM code in child processes: the real packaged SmolLM2 through the isolated path, and
the pruner, the supersession judge and query analysis carrying on when the child dies."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import pytest

from compressors.lm.isolated import IsolatedCompressor, IsolatedScorer, isolate
from compressors.lm.process import LMProcessDied
from memory_service.consolidate.lm_judge import LMSupersessionJudge
from memory_service.context.lm_analysis import LMQueryAnalyzer
from memory_service.context.pruning import TokenPruner
from memory_service.domain import CompressionWindow, Event, MemoryUnit

pytestmark = pytest.mark.slow

T0 = datetime(2024, 3, 14, 10, tzinfo=UTC)
CRASHING = "tests.crashing_lm:create_crashing_compressor"


def window(*texts: str) -> CompressionWindow:
    return CompressionWindow(events=[
        Event(event_id=f"e{i}", tenant="t", user_id="ann", session_id="s", role="user", speaker="Ann", content=text,
              timestamp=T0, received_at=T0)
        for i, text in enumerate(texts)
    ])


def unit(unit_id: int, text: str, day: int) -> MemoryUnit:
    at = T0 + timedelta(days=day)
    return MemoryUnit(id=unit_id, tenant="t", user_id="u", text=text, persons=["Caroline"], source_event_ids=[f"e{unit_id}"],
                      valid_from=at, event_time=at, compressor="extractive", compressor_version="1", hash=str(unit_id),
                      created_at=at, updated_at=at)


def test_the_packaged_smollm2_compresses_and_answers_json_from_a_child_process() -> None:
    compressor = isolate("llama_cpp", {"timeout_s": 120, "max_tokens": 200})
    try:
        assert isinstance(compressor, IsolatedCompressor)
        assert compressor.process.pid not in (None, os.getpid())
        assert compressor.name == "llama_cpp" and compressor.version.startswith("p") and "SmolLM2" in compressor.version
        assert compressor.cache_identity is not None and compressor.cache_identity.compressor == "llama_cpp"
        result = compressor.compress_window(window("I adopted a grey cat named Miso last week.",
                                                   "My sister Julia lives in Lisbon."))
        assert result.fallback is None and result.lm_calls == 1
        assert {u.compressor for u in result.units} <= {"llama_cpp", "extractive"}
        assert {i for u in result.units for i in u.draft.source_event_ids} == {"e0", "e1"}
        answer = compressor.ask_json([{"role": "user", "content": 'Reply with {"ok": true}'}],
                                     {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]})
        assert isinstance(answer, dict) and isinstance(answer.get("ok"), bool)
    finally:
        compressor.close()


def test_pruning_returns_texts_unpruned_while_its_scorer_crashes_then_recovers() -> None:
    scorer = IsolatedScorer("tests.crashing_lm:CrashingScorer", backoff_s=0.2)
    pruner = TokenPruner(lambda: scorer, keep_ratio=0.5)
    long_text = "Ann adopted a grey cat named Miso from the shelter near the harbour last week"
    try:
        assert pruner.prune_many([(1, "h1", f"{long_text} segfault-now")], "cat") == {}
        assert pruner.stats.failures == 1 and "SIGSEGV" in (scorer.process.last_failure or "")
        assert pruner.prune_many([(2, "h2", long_text)], "cat") == {}  # backing off: no wait, no pruning
        assert pruner.stats.failures == 2
        time.sleep(0.3)
        pruned = pruner.prune_many([(2, "h2", long_text)], "cat")
        assert 2 in pruned and len(pruned[2].split()) < len(long_text.split())
        assert "Miso" in pruned[2] and "cat" in pruned[2]
        assert scorer.process.starts == 2
    finally:
        scorer.close()


def test_the_judge_and_query_analysis_fall_back_when_the_lm_process_dies() -> None:
    lm = IsolatedCompressor(CRASHING, {"model": "segfault-now"}, label="crashing", backoff_s=0.2)
    try:
        judge = LMSupersessionJudge(lm)
        old = unit(1, "Caroline works at the city library.", 0)
        new = unit(2, "Caroline's new job is at the Riverside bakery.", 30)
        assert not judge.supersedes(old, new, 0.7)
        assert judge.stats.asked == 1 and judge.stats.failures == 1
        analyzer = LMQueryAnalyzer(lm)
        time.sleep(0.3)
        analysis = analyzer.analyze("Where does Caroline work?")
        assert analyzer.stats.failures == 1 and analysis.entities  # the rules' analysis
        assert lm.process.failures == 2
        with pytest.raises(LMProcessDied):
            time.sleep(0.5)
            lm.ask_json([{"role": "user", "content": "hi"}], {"type": "object"})
    finally:
        lm.close()
